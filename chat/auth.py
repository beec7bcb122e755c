"""WebSocket authentication: the session cookie or a JWT (``?token=`` or ``Authorization: Bearer``).

A JWT, when present, decides the user (an invalid or expired one gives an anonymous user, never the
cookie's user); without one, Django's session cookie does, as for the pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser, User

from bms.users import RequestUser

if TYPE_CHECKING:
    from asgiref.typing import ASGIReceiveCallable, ASGISendCallable
    from channels.consumer import _ChannelScope
    from channels.utils import _ChannelApplication


def _token_from_scope(scope: _ChannelScope) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            text = value.decode("latin-1")
            if text.lower().startswith("bearer "):
                return text[7:].strip()
    return None


def user_for_jwt(raw: str) -> RequestUser:
    from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError

    from bms.tokens import JWTAuthentication

    auth = JWTAuthentication()
    try:
        validated = auth.get_validated_token(raw.encode())
        user = auth.get_user(validated)
    except (InvalidToken, TokenError, AuthenticationFailed):
        return AnonymousUser()
    return user if isinstance(user, User) and user.is_active else AnonymousUser()


class JwtAuthMiddleware(BaseMiddleware):
    async def __call__(
        self, scope: _ChannelScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> _ChannelApplication:
        raw = _token_from_scope(scope)
        if raw:
            # The stubs type scope["user"] as the lazy object of AuthMiddleware; a JWT puts the user itself.
            scope = {**scope, "user": await database_sync_to_async(user_for_jwt)(raw)}  # type: ignore[typeddict-item]
        return await super().__call__(scope, receive, send)


def JwtOrSessionAuthMiddleware(inner: _ChannelApplication) -> _ChannelApplication:  # noqa: N802 - named like the Channels stacks
    return AuthMiddlewareStack(JwtAuthMiddleware(inner))
