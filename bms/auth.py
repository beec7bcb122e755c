"""Authentication: hashed API keys (``X-API-Key``, cached per process: bms.api_key_cache) and audit hooks
for logins."""

from __future__ import annotations

import copy
from collections.abc import Mapping

from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from bms.api_key_cache import api_key_cache_clear, api_key_cache_get, api_key_cache_put
from bms.models import ApiKey, AuditEvent
from bms.roles import user_role
from bms.services import audit_event_record, hash_api_key


def _lookup(key_hash: str) -> ApiKey | None:
    key = api_key_cache_get(key_hash)
    if key is not None:
        return key
    key = ApiKey.objects.select_related("user").filter(key_hash=key_hash, revoked_at__isnull=True).first()
    if key is None or not key.user.is_active:
        api_key_cache_clear(key_hash)
        return None
    user_role(key.user)  # resolved now, so the role is kept with the user
    api_key_cache_put(key_hash, key)
    return key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    header = "HTTP_X_API_KEY"

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        raw = request.META.get(self.header)
        if not raw:
            return None
        key = _lookup(hash_api_key(raw))
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        # Touch at most once a minute so a busy service does not write on every request.
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        # Each request gets its own user object: a view may set attributes on request.user.
        return copy.copy(key.user), key

    def authenticate_header(self, request: Request) -> str:
        return "X-API-Key"


# Django's own login signals are the one seam through which every login path passes (admin, pages;
# the JWT token endpoint sends user_login_failed through authenticate() but records its success
# itself as a "token" event, bms.apis); auditing them here is the exception to "no signals".
@receiver(user_logged_in)
def _audit_login(sender: type[User], request: HttpRequest | None, user: User, **kwargs: object) -> None:
    audit_event_record(action=AuditEvent.Action.LOGIN, actor=user, request=request)


@receiver(user_login_failed)
def _audit_login_failed(
    sender: str, credentials: Mapping[str, object], request: HttpRequest | None = None, **kwargs: object
) -> None:
    audit_event_record(
        action=AuditEvent.Action.LOGIN_FAILED, target=str(credentials.get("username", "")), request=request
    )
