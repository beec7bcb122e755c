"""The chat service: one path for the REST endpoint and the WebSocket consumer."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from bms.cache import shared_cache_unavailable
from bms.errors import ApplicationError
from bms.roles import user_role
from chat import cache as chat_cache
from chat import offline
from chat.agent import default_models, run_agent
from chat.grounding import ungrounded_numbers
from chat.history import MessageRecord, SessionRecord, get_store
from chat.providers import AllProvidersFailedError
from chat.tools import TOOLS, ToolCall

EventSink = Callable[[str, dict[str, Any]], None]
_PENDING = "chat:pending-clarification:"
_TOKEN = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class ChatAnswer:
    response: str
    session_id: str
    metadata: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"response": self.response, "session_id": self.session_id, "metadata": self.metadata}


def chat_session_create(*, user: Any, title: str = "") -> SessionRecord:
    return get_store().session_create(owner_id=user.pk, title=title)


def chat_session_list(*, user: Any, limit: int = 30) -> list[SessionRecord]:
    """The user's sessions, newest first, from whichever history store is configured."""
    return get_store().session_list(owner_id=user.pk, limit=limit)


def chat_history(*, user: Any, session_id: Any) -> tuple[SessionRecord, list[MessageRecord]]:
    """A session's messages, oldest first. Another user's (or an unknown) session is not found."""
    store = get_store()
    session = store.session_get(session_id=session_id, owner_id=user.pk)
    return session, store.message_list(session_id=session.id)


def _validate(message: Any) -> str:
    if not isinstance(message, str) or not message.strip():
        raise ApplicationError("The message is empty.", code="empty_message")
    text = message.strip()
    if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise ApplicationError(
            f"The message is longer than {settings.CHAT_MAX_MESSAGE_CHARS} characters.",
            code="message_too_long",
            details={"max_chars": settings.CHAT_MAX_MESSAGE_CHARS, "length": len(text)},
        )
    return text


def _effective_question(session_id: str, text: str) -> str:
    """A reply to a clarifying question is read together with the question it answers.

    The pending question is kept in the cache (not read back from the history) so a normal
    question costs no extra query; it is consumed by the next message either way.
    """
    pending = cache.get(_PENDING + session_id)
    if pending is None:
        return text
    cache.delete(_PENDING + session_id)
    return f"{pending} {text}" if len(text) <= 200 else text


def _stream(on_event: EventSink | None, text: str) -> None:
    if on_event is None:
        return
    for token in _TOKEN.findall(text):
        on_event("token", {"text": token})


def _answer_uncached(
    *, user: Any, question: str, on_event: EventSink | None, models: Sequence[tuple[str, str, Any]] | None
) -> tuple[str, dict[str, Any], list[ToolCall]]:
    chain = list(models) if models is not None else default_models()
    meta: dict[str, Any] = {"input_tokens": 0, "output_tokens": 0, "provider": "offline", "model_used": "offline"}
    if chain:
        try:
            result = run_agent(user=user, question=question, models=chain, on_event=on_event)
        except AllProvidersFailedError as exc:
            meta["fallback"] = {"reason": "all providers failed", "failures": exc.failures}
        else:
            meta.update(
                provider=result.provider,
                model_used=f"{result.provider}:{result.model}",
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
                tool_calls_capped=result.capped,
            )
            if result.failures:
                meta["provider_failures"] = result.failures
            sources = [question, *[c.arguments for c in result.tool_calls], *[c.result for c in result.tool_calls]]
            missing = ungrounded_numbers(result.text, sources)
            text = result.text
            if missing or not text:
                # The LLM stated numbers no tool gave it (or nothing at all): use the offline
                # rendering of the same tool results instead, and say so in the metadata.
                meta["grounding"] = {"replaced": True, "ungrounded_numbers": missing[:20]}
                text = (
                    offline.render(result.tool_calls)
                    if result.tool_calls
                    else offline.answer(user=user, question=question).text
                )
            else:
                meta["grounding"] = {"replaced": False, "ungrounded_numbers": []}
            return text, meta, result.tool_calls
    answer = offline.answer(user=user, question=question, on_event=on_event)
    meta["grounding"] = {"replaced": False, "ungrounded_numbers": []}
    if answer.clarification:
        meta["clarification"] = True
        meta["question"] = question
    return answer.text, meta, answer.tool_calls


def chat_answer(
    *,
    user: Any,
    session_id: Any,
    message: Any,
    on_event: EventSink | None = None,
    models: Sequence[tuple[str, str, Any]] | None = None,
) -> ChatAnswer:
    """Answer one message in one of the user's sessions.

    Looks the question up in the response cache first (key: question, role, data version, registry
    generation); on a miss asks the LLM chain (or the offline agent when no provider is configured
    or all fail), checks the answer's numbers against the tool results, stores both messages and
    records cache and token statistics. ``on_event`` receives ``tool_call`` and ``token`` events.
    """
    started = time.perf_counter()
    text = _validate(message)
    store = get_store()
    session = store.session_get(session_id=session_id, owner_id=user.pk)
    question = _effective_question(session.id, text)
    key = chat_cache.cache_key(question=question, role=user_role(user).label)
    cached = chat_cache.answer_get(key)
    if cached is not None:
        response = cached["response"]
        meta = dict(cached["metadata"])
        for call in meta.get("tool_calls", []):
            if on_event:
                on_event("tool_call", {"name": call["name"], "arguments": call["arguments"], "cached": True})
        _stream(on_event, response)
        latency_ms = (time.perf_counter() - started) * 1000
        saved_in, saved_out = int(meta.get("input_tokens") or 0), int(meta.get("output_tokens") or 0)
        meta.update(cache_hit=True, tokens_used=0, tokens_saved=saved_in + saved_out, latency_ms=round(latency_ms, 2))
        chat_cache.request_record(
            hit=True,
            latency_ms=latency_ms,
            provider=str(meta.get("provider") or "offline"),
            input_tokens=saved_in,
            output_tokens=saved_out,
        )
    else:
        response, meta, calls = _answer_uncached(user=user, question=question, on_event=on_event, models=models)
        meta["tool_calls"] = [c.as_dict() for c in calls]
        meta["tokens_used"] = int(meta["input_tokens"]) + int(meta["output_tokens"])
        cacheable = (
            not meta.get("clarification")
            and "fallback" not in meta
            and all(c.ok and TOOLS[c.name].cacheable for c in calls)
        )
        if cacheable:
            chat_cache.answer_set(key, {"response": response, "metadata": meta})
        if meta["provider"] == "offline":
            chat_cache.usage_record(provider="offline", model="offline", input_tokens=0, output_tokens=0)
        _stream(on_event, response)
        latency_ms = (time.perf_counter() - started) * 1000
        meta = {**meta, "cache_hit": False, "latency_ms": round(latency_ms, 2)}
        chat_cache.request_record(hit=False, latency_ms=latency_ms)
    if shared_cache_unavailable():
        # Said in the answer (REST and WebSocket): the answer is right, but not shared or remembered.
        meta = {
            **meta,
            "unavailable": {
                "redis": "The shared cache is unreachable: answers are not cached across processes and "
                "chat statistics miss this period."
            },
        }
    store.exchange_add(session_id=session.id, question=text, answer=response, metadata=meta)
    if meta.get("clarification"):
        cache.set(_PENDING + session.id, question, timeout=settings.CHAT_CACHE_TTL_SECONDS)
    return ChatAnswer(response=response, session_id=session.id, metadata=meta)
