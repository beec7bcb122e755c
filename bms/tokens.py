"""JWT refresh that honours a password change.

simplejwt's ``CHECK_REVOKE_TOKEN`` puts a digest of the user's password hash in every token and
``JWTAuthentication`` refuses an access token whose digest no longer matches; its refresh serializer
does not look, so an old refresh token would mint fresh access tokens. This one does, and refuses a
refresh token whose user is gone (simplejwt's own lookup raises ``DoesNotExist`` there).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenRefreshSerializer as _TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.utils import get_md5_hash_password


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
