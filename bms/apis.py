"""Auth endpoints: the JWT pair and its refresh, each recorded as a ``token`` audit event."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from bms.models import AuditEvent
from bms.services import audit_event_record


class TokenObtainApi(TokenObtainPairView):
    """POST username + password -> ``{"access", "refresh"}``. Bad credentials -> 401."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        audit_event_record(
            action=AuditEvent.Action.TOKEN,
            actor=getattr(serializer, "user", None),
            details={"grant": "password"},
            request=request,
        )
        return Response(serializer.validated_data, status=status.HTTP_200_OK)


class TokenRefreshApi(TokenRefreshView):
    """POST refresh -> a new access token and (rotation) a new refresh; the old refresh is blacklisted."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        user_id = AccessToken(serializer.validated_data["access"]).get(jwt_settings.USER_ID_CLAIM)
        user = get_user_model().objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()
        audit_event_record(action=AuditEvent.Action.TOKEN, actor=user, details={"grant": "refresh"}, request=request)
        return Response(serializer.validated_data, status=status.HTTP_200_OK)
