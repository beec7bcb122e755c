"""The chat service: one path for the REST endpoint and the WebSocket consumer."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict, cast

from django.conf import settings
from django.core.cache import cache

from bms.cache import shared_cache_unavailable
from bms.errors import ApplicationError
from bms.jsontypes import json_object
from bms.roles import user_role
from bms.users import User
from chat import cache as chat_cache
from chat import offline
from chat.agent import default_models, run_agent
from chat.events import EventSink
from chat.grounding import claim_problems
from chat.history import AnswerMeta, MessageRecord, SessionKey, SessionRecord, get_store
from chat.providers import AllProvidersFailedError, ModelEntry
from chat.tools import TOOLS, ToolCall
from chat.understanding import Scope, is_write_request, looks_like_follow_up

_PENDING = "chat:pending-clarification:"
_SCOPE = "chat:last-scope:"
_TOKEN = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class ChatAnswer:
    response: str
    session_id: str
    metadata: AnswerMeta

    def as_dict(self) -> dict[str, object]:
        return {"response": self.response, "session_id": self.session_id, "metadata": self.metadata}


def chat_session_create(*, user: User, title: str = "") -> SessionRecord:
    return get_store().session_create(owner_id=user.pk, title=title)


def chat_session_list(*, user: User, limit: int = 30) -> list[SessionRecord]:
    """The user's sessions, newest first, from whichever history store is configured."""
    return get_store().session_list(owner_id=user.pk, limit=limit)


def chat_history(*, user: User, session_id: SessionKey) -> tuple[SessionRecord, list[MessageRecord]]:
    """A session's messages, oldest first. Another user's (or an unknown) session is not found."""
    store = get_store()
    session = store.session_get(session_id=session_id, owner_id=user.pk)
    return session, store.message_list(session_id=session.id)


def _validate(message: object) -> str:
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


def _scope_from(saved: object) -> tuple[Scope | None, str | None]:
    """The scope and intent of the session's last answered question (what a follow-up may inherit)."""
    if not isinstance(saved, dict):
        return None, None
    return Scope.from_dict(saved["scope"]), saved.get("intent")


class SavedScope(TypedDict):
    scope: dict[str, object]  # ``Scope.as_dict()``
    intent: str | None


class CachedAnswer(TypedDict):
    """An answer in the response cache (``chat.cache.answer_set``)."""

    response: str
    metadata: AnswerMeta
    scope: SavedScope | None


def _cached(value: dict[str, object] | None) -> CachedAnswer | None:
    # the cache returns what ``chat_answer`` stored there: a CachedAnswer
    return cast(CachedAnswer | None, value)


@dataclass(frozen=True)
class _Lookup:
    question: str  # what is answered: the message, or a clarified question with its reply
    previous: Scope | None  # the scope a follow-up inherits
    previous_intent: str | None
    key: str
    cached: CachedAnswer | None


def _look_up(*, session_id: str, text: str, role: str) -> _Lookup:
    """The question to answer, the scope it inherits, its cache key and the cached answer, if any.

    A reply to a clarifying question is read together with the question it answers; that pending
    question is kept in the cache (not read back from the history) and consumed by the next message
    either way, and such a reply inherits nothing else. A follow-up ("and for revenue?") inherits the
    scope of the session's last answered question. The pending question is read in the same round
    trip as what the usual message needs next: its cached answer, or for a follow-up that scope.
    """
    versions = chat_cache.current_versions()
    pending_key = _PENDING + session_id
    follow_up = looks_like_follow_up(text)
    plain_key = chat_cache.cache_key(question=text, role=role, versions=versions)
    found = cache.get_many([pending_key, _SCOPE + session_id if follow_up else plain_key])
    pending = found.get(pending_key)
    if pending is not None:
        cache.delete(pending_key)
        question = f"{pending} {text}" if len(text) <= 200 else text
        key = chat_cache.cache_key(question=question, role=role, versions=versions)
        return _Lookup(question, None, None, key, _cached(chat_cache.answer_get(key)))
    if not follow_up:
        return _Lookup(text, None, None, plain_key, _cached(chat_cache.answer_from(found.get(plain_key))))
    previous, intent = _scope_from(found.get(_SCOPE + session_id))
    key = plain_key
    if previous is not None:
        params = {"ctx": previous.as_dict(), "intent": intent}
        key = chat_cache.cache_key(question=text, role=role, params=params, versions=versions)
    return _Lookup(text, previous, intent, key, _cached(chat_cache.answer_get(key)))


def _stream(on_event: EventSink | None, text: str) -> None:
    if on_event is None:
        return
    for token in _TOKEN.findall(text):
        on_event("token", {"text": token})


@dataclass
class _Uncached:
    text: str
    meta: AnswerMeta
    calls: list[ToolCall]
    scope: Scope | None
    intent: str | None


def _context_note(previous: Scope | None, intent: str | None) -> str:
    """The previous question's scope, for the LLM when the message is a follow-up."""
    if previous is None:
        return ""
    parts = [f"{p.title} ({p.external_id})" for p in previous.programs]
    parts += [
        f"{k} {v}"
        for k, v in previous.as_dict().items()
        if k in ("targets", "channel", "genre", "since", "until") and v
    ]
    return (
        f"(Follow-up; the previous question was {intent or 'a question'} about: {', '.join(parts) or 'everything'}.)\n"
    )


def _answer_uncached(
    *,
    user: User,
    question: str,
    on_event: EventSink | None,
    models: Sequence[ModelEntry] | None,
    previous: Scope | None,
    previous_intent: str | None,
) -> _Uncached:
    deadline = time.monotonic() + settings.CHAT_TIME_BUDGET_SECONDS  # building the clients counts too
    chain = list(models) if models is not None else default_models()
    meta: AnswerMeta = {"input_tokens": 0, "output_tokens": 0, "provider": "offline", "model_used": "offline"}
    if chain:
        try:
            result = run_agent(
                user=user,
                question=_context_note(previous, previous_intent) + question,
                user_message=question,
                models=chain,
                on_event=on_event,
                deadline=deadline,
            )
        except AllProvidersFailedError as exc:
            meta["fallback"] = {"reason": "all providers failed", "failures": exc.failures}
        else:
            meta.update(
                {
                    "provider": result.provider,
                    "model_used": f"{result.provider}:{result.model}",
                    "input_tokens": result.input_tokens,
                    "output_tokens": result.output_tokens,
                    "usage": result.usage,
                    "tool_calls_capped": result.capped,
                }
            )
            if result.failures:
                meta["provider_failures"] = result.failures
            if result.refused:
                meta["refused_tools"] = result.refused
            problems = claim_problems(result.text, result.tool_calls, question)
            text = result.text
            understood = offline.read(question, previous=previous, previous_intent=previous_intent)
            if problems or not text:
                # A claim no tool supports (or no answer at all): use the offline rendering of the
                # same tool results instead, and say so in the metadata.
                meta["grounding"] = {"replaced": True, "problems": problems[:20]}
                text = (
                    offline.render(result.tool_calls)
                    if result.tool_calls
                    else offline.answer(
                        user=user, question=question, previous=previous, previous_intent=previous_intent
                    ).text
                )
            else:
                meta["grounding"] = {"replaced": False, "problems": []}
            last = understood.steps[-1] if understood.steps else None
            return _Uncached(text, meta, result.tool_calls, last.scope if last else None, last.intent if last else None)
    answer = offline.answer(
        user=user, question=question, on_event=on_event, previous=previous, previous_intent=previous_intent
    )
    meta["grounding"] = {"replaced": False, "problems": []}
    if answer.clarification:
        meta["clarification"] = True
        meta["question"] = question
    if answer.follow_up:
        meta["follow_up"] = True
    return _Uncached(answer.text, meta, answer.tool_calls, answer.scope, answer.intent)


def chat_answer(
    *,
    user: User,
    session_id: SessionKey,
    message: object,
    on_event: EventSink | None = None,
    models: Sequence[ModelEntry] | None = None,
) -> ChatAnswer:
    """Answer one message in one of the user's sessions.

    A request to change data gets a plain refusal. Otherwise the question (read together with a
    pending clarification, and with the previous question's scope when it is a follow-up) is looked
    up in the response cache (key: question, follow-up context, role, data version, registry
    generation); on a miss the LLM chain answers within one time budget (or the offline agent, when
    no provider is configured or none answers in time), its claims are checked against the tool
    results, both messages are stored and cache and token statistics recorded. An offline answer
    given during an outage is cached for a short while. ``on_event`` receives ``tool_call`` and
    ``token`` events.
    """
    started = time.perf_counter()
    text = _validate(message)
    store = get_store()
    sid, title = store.session_title(session_id=session_id, owner_id=user.pk)
    if is_write_request(text):
        cache.delete(_PENDING + sid)
        meta: AnswerMeta = {
            "provider": "offline",
            "model_used": "offline",
            "cache_hit": False,
            "tokens_used": 0,
            "tool_calls": [],
            "refused": "write",
        }
        meta["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        store.exchange_add(session_id=sid, question=text, answer=offline.CANT_CHANGE, metadata=meta, titled=bool(title))
        return ChatAnswer(response=offline.CANT_CHANGE, session_id=sid, metadata=meta)
    lookup = _look_up(session_id=sid, text=text, role=user_role(user).label)
    question, key, cached = lookup.question, lookup.key, lookup.cached
    if cached is not None:
        response = cached["response"]
        meta = cached["metadata"].copy()
        for call in meta.get("tool_calls", []):
            if on_event:
                on_event(
                    "tool_call",
                    {"name": str(call["name"]), "arguments": json_object(call["arguments"]), "cached": True},
                )
        _stream(on_event, response)
        latency_ms = (time.perf_counter() - started) * 1000
        usage = {p: (int(t[0]), int(t[1])) for p, t in (meta.get("usage") or {}).items()}
        saved = sum(i + o for i, o in usage.values())
        meta.update({"cache_hit": True, "tokens_used": 0, "tokens_saved": saved, "latency_ms": round(latency_ms, 2)})
        chat_cache.request_record(hit=True, latency_ms=latency_ms, usage=usage)
        if cached.get("scope"):
            cache.set(_SCOPE + sid, cached["scope"], timeout=settings.CHAT_CACHE_TTL_SECONDS)
    else:
        done = _answer_uncached(
            user=user,
            question=question,
            on_event=on_event,
            models=models,
            previous=lookup.previous,
            previous_intent=lookup.previous_intent,
        )
        response, meta, calls = done.text, done.meta, done.calls
        meta["tool_calls"] = [c.as_dict() for c in calls]
        meta["tokens_used"] = int(meta["input_tokens"]) + int(meta["output_tokens"])
        saved_scope = {"scope": done.scope.as_dict(), "intent": done.intent} if done.scope is not None else None
        cacheable = not meta.get("clarification") and all(c.ok and TOOLS[c.name].cacheable for c in calls)
        if cacheable:
            payload = {"response": response, "metadata": meta, "scope": saved_scope}
            # During an outage the offline answer is cached too (so the repeat does not wait for
            # the providers again), but only briefly: the LLM answers again once they are back.
            ttl = settings.CHAT_FALLBACK_CACHE_TTL_SECONDS if "fallback" in meta else None
            chat_cache.answer_set(key, payload, timeout=ttl)
        if saved_scope is not None and not meta.get("clarification"):
            cache.set(_SCOPE + sid, saved_scope, timeout=settings.CHAT_CACHE_TTL_SECONDS)
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
    store.exchange_add(session_id=sid, question=text, answer=response, metadata=meta, titled=bool(title))
    if meta.get("clarification"):
        cache.set(_PENDING + sid, question, timeout=settings.CHAT_CACHE_TTL_SECONDS)
    return ChatAnswer(response=response, session_id=sid, metadata=meta)
