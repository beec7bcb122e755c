"""Auth endpoints: the JWT pair, its refresh (each recorded as a ``token`` audit event) and logout."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView, TokenViewBase

from bms.lockout import login_locked
from bms.models import AuditEvent
from bms.services import audit_event_record, refresh_token_revoke


def _validated(view: TokenViewBase, request: Request) -> BaseSerializer[None]:
    """The token view's serializer on the request's body, validated; a bad token is 401 ``InvalidToken`` (as
    in simplejwt's own ``TokenViewBase.post``, which both views replace to record the audit event)."""
    serializer = view.get_serializer(data=request.data)
    try:
        serializer.is_valid(raise_exception=True)
    except TokenError as exc:
        raise InvalidToken(exc.args[0]) from exc
    return serializer


class TokenObtainApi(TokenObtainPairView):
    """POST username + password -> ``{"access", "refresh"}``. Bad credentials -> 401; too many failed
    logins for the account or the client address -> 429 ``login_locked`` (bms.lockout)."""

    def post(self, request: Request, *args: object, **kwargs: object) -> Response:
        try:
            serializer = _validated(self, request)
        except AuthenticationFailed:
            # django-axes flags the request it was handed by authenticate(): this DRF request, which its
            # middleware (reading the Django request underneath) never sees.
            if getattr(request, "axes_locked_out", False):
                raise login_locked() from None
            raise
        audit_event_record(
            action=AuditEvent.Action.TOKEN,
            actor=getattr(serializer, "user", None),
            details={"grant": "password"},
            request=request,
        )
        return Response(serializer.validated_data, status=status.HTTP_200_OK)


class TokenRefreshApi(TokenRefreshView):
    """POST refresh -> a new access token and (rotation) a new refresh; the old refresh is blacklisted.
    A refresh token issued before the user's last password change is refused (bms.tokens)."""

    def post(self, request: Request, *args: object, **kwargs: object) -> Response:
        serializer = _validated(self, request)
        user_id = AccessToken(serializer.validated_data["access"]).get(jwt_settings.USER_ID_CLAIM)
        user = get_user_model().objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()
        audit_event_record(action=AuditEvent.Action.TOKEN, actor=user, details={"grant": "refresh"}, request=request)
        return Response(serializer.validated_data, status=status.HTTP_200_OK)


class LogoutApi(APIView):
    """POST refresh -> 204; the refresh token is blacklisted (holding it is the proof, no other auth)."""

    authentication_classes: list[type[BaseAuthentication]] = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer[None]):
        refresh = serializers.CharField()

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'  # a bad token is 401, as on the token endpoints

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            refresh_token_revoke(raw=data.validated_data["refresh"])
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)
