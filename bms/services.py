"""Services for API keys and audit events."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from django.utils import timezone

from bms.models import ApiKey, AuditEvent

API_KEY_PREFIX = "bms_"


def hash_api_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_create(*, user: User, name: str) -> tuple[ApiKey, str]:
    """Create a key for ``user``; returns the row and the raw key (shown once, never stored)."""
    raw = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(user=user, name=name, prefix=raw[:12], key_hash=hash_api_key(raw))
    audit_event_record(action=AuditEvent.Action.API_KEY, actor=user, target=key.name, details={"created": key.prefix})
    return key, raw


def api_key_revoke(*, key: ApiKey) -> None:
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_event_record(
    *,
    action: str,
    actor: Any = None,
    target: str = "",
    details: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    user = actor if actor is not None and not isinstance(actor, AnonymousUser) else None
    return AuditEvent.objects.create(
        action=action,
        actor=user if user is not None and user.pk else None,
        actor_name=user.get_username() if user is not None else "",
        target=target[:255],
        details=details or {},
        ip_address=client_ip(request),
    )
