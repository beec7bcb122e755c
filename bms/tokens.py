"""JWT refresh that honours a password change, and access tokens that end at a sign-out.

simplejwt's ``CHECK_REVOKE_TOKEN`` puts a digest of the user's password hash in every token and
``JWTAuthentication`` refuses an access token whose digest no longer matches; its refresh serializer
does not look, so an old refresh token would mint fresh access tokens. This one does, and refuses a
refresh token whose user is gone (simplejwt's own lookup raises ``DoesNotExist`` there).

A sign-out (API logout, web or admin logout) revokes refresh tokens in the database (the blacklist), but
access tokens are stateless. Rather than a per-token denylist, a sign-out marks the user "signed out at
<second>" in the cache for one access-token lifetime (``access_tokens_end``), and ``JWTAuthentication``
refuses an access token issued in or before that second (``iat`` has whole seconds, so a token obtained
in the very second of a sign-out is refused too: sign in again): every access token the user held ends at once (other
devices refresh; their refresh tokens are still good after an API logout of one device). One cache read
per JWT request; while Redis is down the mark lives in the process that wrote it (bms.cache), so other
processes accept such a token until it expires (``JWT_ACCESS_MINUTES``, 15 by default).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication as _JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.serializers import TokenRefreshSerializer as _TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import get_md5_hash_password

_SIGNED_OUT_KEY = "bms:jwt:signed-out:{}"


def _lifetime_seconds() -> int:
    return int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()) + 1


def access_tokens_end(*, user_id: int | str | None, at: float) -> None:
    """Refuse every access token of ``user_id`` issued in or before the whole second ``at`` (a sign-out)."""
    cache.set(_SIGNED_OUT_KEY.format(user_id), int(at), timeout=_lifetime_seconds())


class JWTAuthentication(_JWTAuthentication):
    """simplejwt's, plus: an access token issued up to the user's last sign-out is refused (401)."""

    # simplejwt annotates the return with a TypeVar that no argument binds (AbstractBaseUser or its
    # TokenUser); this one returns the model's user.
    def get_user(self, validated_token: Token) -> AbstractBaseUser:  # type: ignore[override]
        user_id = validated_token.get(jwt_settings.USER_ID_CLAIM)
        signed_out = cache.get(_SIGNED_OUT_KEY.format(user_id)) if user_id is not None else None
        issued = validated_token.get("iat")
        if signed_out is not None and (issued is None or int(issued) <= int(signed_out)):
            raise InvalidToken({"detail": "The token was ended by a sign-out.", "code": "token_signed_out"})
        return super().get_user(validated_token)


class TokenRefreshSerializer(_TokenRefreshSerializer):
    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])
        user_id = refresh.payload.get(jwt_settings.USER_ID_CLAIM)
        user = get_user_model().objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()
        if user is None:
            raise AuthenticationFailed("No active account found for the given token.", code="no_active_account")
        if refresh.payload.get(jwt_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
            raise AuthenticationFailed("The user's password has been changed.", code="password_changed")
        return super().validate(attrs)
