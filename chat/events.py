"""What a chat streams while it answers (the WebSocket consumer forwards each as ``{"type": kind, ...}``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias, TypedDict

from bms.jsontypes import JSONObject


class ChatEvent(TypedDict, total=False):
    """A ``token`` of the answer's text, or a ``tool_call`` as it is made (or replayed from the cache)."""

    text: str  # token
    name: str  # tool_call: the tool
    arguments: JSONObject  # tool_call: its arguments as asked
    cached: bool  # tool_call: replayed from a cached answer


EventSink: TypeAlias = Callable[[str, ChatEvent], None]
