"""Services for API keys and audit events."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from bms.api_key_cache import api_key_cache_clear
from bms.errors import InvalidStateError
from bms.models import ApiKey, AuditEvent
from bms.tokens import access_tokens_end
from bms.users import RequestUser

API_KEY_PREFIX = "bms_"


def hash_api_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *, user: User, name: str, actor: RequestUser | None = None, request: HttpRequest | None = None
) -> tuple[ApiKey, str]:
    """Create a key for ``user``; returns the row and the raw key (shown once, never stored).

    ``actor`` is who made it (an admin, or the owner when None).
    """
    raw = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(user=user, name=name, prefix=raw[:12], key_hash=hash_api_key(raw))
    audit_event_record(
        action=AuditEvent.Action.API_KEY,
        actor=actor if actor is not None else user,
        target=key.name,
        details={"created": key.prefix, "user": user.get_username()},
        request=request,
    )
    return key, raw


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: RequestUser | None = None, request: HttpRequest | None = None) -> ApiKey:
    """Revoke a key at once (the next request with it is 401). Revoking twice is an InvalidStateError."""
    updated = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if not updated:
        raise InvalidStateError(f"API key {key.prefix} is already revoked.", details={"key": key.prefix})
    key.refresh_from_db(fields=["revoked_at"])
    # This process forgets the key now and again after the commit (a request in between may have cached it).
    api_key_cache_clear(key.key_hash)
    transaction.on_commit(lambda: api_key_cache_clear(key.key_hash))
    audit_event_record(
        action=AuditEvent.Action.API_KEY,
        actor=actor,
        target=key.name,
        details={"revoked": key.prefix, "user": key.user.get_username()},
        request=request,
    )
    return key


def refresh_token_revoke(*, raw: str) -> None:
    """Blacklist one refresh token (API logout) and end the user's access tokens issued so far
    (``bms.tokens.access_tokens_end``). A bad, expired or already revoked token raises simplejwt's
    ``TokenError``."""
    token = RefreshToken(raw)  # type: ignore[arg-type]
    token.blacklist()
    access_tokens_end(user_id=token.get(jwt_settings.USER_ID_CLAIM), at=time.time())


def user_refresh_tokens_revoke(*, user: User) -> int:
    """Blacklist every unexpired refresh token issued to ``user`` (web and admin logout); returns how many.

    The user's access tokens issued so far end too (``bms.tokens.access_tokens_end``); a password change
    invalidates both kinds at once (simplejwt's ``CHECK_REVOKE_TOKEN`` claim, bms.tokens)."""
    outstanding = OutstandingToken.objects.filter(
        user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    created = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )
    access_tokens_end(user_id=getattr(user, jwt_settings.USER_ID_FIELD), at=time.time())
    return len(created)


def client_ip(request: HttpRequest | None) -> str | None:
    """The client as bms.client_ip.ClientIpMiddleware resolved it (a trusted proxy's X-Forwarded-For)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_event_record(
    *,
    action: str,
    actor: RequestUser | None = None,
    target: str = "",
    details: Mapping[str, object] | None = None,
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
