"""WebSocket ``ws/chat/<session_id>/``: the same chat service as REST, streamed as events.

Client sends ``{"message": "..."}``; the server sends ``{"type": "tool_call", ...}`` for each tool the
agent runs, ``{"type": "token", "text": ...}`` chunks of the (already grounded) answer, then
``{"type": "final", "response", "session_id", "metadata"}``. Errors: ``{"type": "error", "error": {...}}``.
Close codes: 4401 not authenticated, 4403 role too low, 4404 unknown session.
"""

from __future__ import annotations

import time

from channels.generic.websocket import JsonWebsocketConsumer
from django.core.cache import cache
from rest_framework.settings import api_settings

from bms.errors import ApplicationError, NotFoundError
from bms.roles import Role, user_role
from bms.users import User
from chat.events import ChatEvent
from chat.history import get_store
from chat.services import chat_answer

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _rate() -> tuple[int, int] | None:
    rate = api_settings.DEFAULT_THROTTLE_RATES.get("chat")
    if not isinstance(rate, str) or not rate:
        return None
    count, period = rate.split("/")
    return int(count), _PERIODS[period[0]]


def message_allowed(user_id: int) -> bool:
    """The REST ``chat`` throttle's rate, applied per user to WebSocket messages (fixed window)."""
    rate = _rate()
    if rate is None:
        return True
    limit, seconds = rate
    key = f"chat:ws-rate:{user_id}:{int(time.time() // seconds)}"
    cache.add(key, 0, timeout=seconds + 1)
    try:
        return int(cache.incr(key)) <= limit
    except ValueError:
        return True


class ChatConsumer(JsonWebsocketConsumer):
    session_id: str
    user: User
    # The socket answers only its own client: nothing is ever sent to it through the channel layer, so
    # it does not listen there (with channels_redis each socket would poll Redis, and a Redis outage
    # would close every chat socket).
    # channels reads an alias it does not know (None) as "no layer"; the stubs allow only str.
    channel_layer_alias = None  # type: ignore[assignment]

    def connect(self) -> None:
        user = self.scope.get("user")
        if not isinstance(user, User):  # none, or anonymous
            self._refuse(4401, "not signed in")
            return
        if user_role(user) < Role.ANALYST:
            self._refuse(4403, "the chat needs the analyst role")
            return
        try:
            session = get_store().session_get(
                session_id=self.scope["url_route"]["kwargs"]["session_id"], owner_id=user.pk
            )
        except NotFoundError:
            self._refuse(4404, "no such chat session")
            return
        self.session_id = session.id
        self.user = user
        self.accept()

    def _refuse(self, code: int, reason: str) -> None:
        """Accept, then close with ``code``: a browser sees the code and reason (a close before accepting
        reaches a real client only as HTTP 403 on the handshake, whatever the cause)."""
        self.accept()
        self.close(code=code, reason=reason)

    def _event(self, kind: str, data: ChatEvent) -> None:
        self.send_json({"type": kind, **data})

    def receive_json(self, content: object, **kwargs: object) -> None:
        user = self.user
        if not isinstance(content, dict) or not isinstance(content.get("message"), str):
            self.send_json(
                {"type": "error", "error": {"code": "validation_error", "message": 'Send {"message": "..."}.'}}
            )
            return
        if not message_allowed(user.pk):
            self.send_json({"type": "error", "error": {"code": "throttled", "message": "Too many messages."}})
            return
        try:
            answer = chat_answer(
                user=user, session_id=self.session_id, message=content["message"], on_event=self._event
            )
        except ApplicationError as exc:
            self.send_json({"type": "error", "error": {"code": exc.code, "message": exc.message}})
            return
        self.send_json({"type": "final", **answer.as_dict()})

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: object) -> None:
        try:
            super().receive(text_data=text_data, bytes_data=bytes_data, **kwargs)
        except ValueError:  # not JSON
            self.send_json({"type": "error", "error": {"code": "parse_error", "message": "Messages are JSON."}})
