"""WebSocket authentication: the session cookie or a JWT (``?token=`` or ``Authorization: Bearer``).

A JWT, when present, decides the user (an invalid or expired one gives an anonymous user, never the
cookie's user); without one, Django's session cookie does, as for the pages.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser


def _token_from_scope(scope: dict[str, Any]) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            text = value.decode("latin-1")
            if text.lower().startswith("bearer "):
                return text[7:].strip()
    return None


def user_for_jwt(raw: str) -> Any:
    from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError

    from bms.tokens import JWTAuthentication

    auth = JWTAuthentication()
    try:
        validated = auth.get_validated_token(raw.encode())
        user = auth.get_user(validated)
    except (InvalidToken, TokenError, AuthenticationFailed):
        return AnonymousUser()
    return user if user.is_active else AnonymousUser()


class JwtAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:  # Channels' scope: a dict
        raw = _token_from_scope(scope)
        if raw:
            scope = {**scope, "user": await database_sync_to_async(user_for_jwt)(raw)}
        return await super().__call__(scope, receive, send)


def JwtOrSessionAuthMiddleware(inner: Any) -> Any:  # noqa: N802 - named like the Channels stacks
    return AuthMiddlewareStack(JwtAuthMiddleware(inner))
