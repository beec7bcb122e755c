"""LLM providers: Groq -> Gemini -> OpenRouter, built from settings, with a bounded fallback chain.

All three are reached through their OpenAI-compatible endpoints with ``langchain_openai.ChatOpenAI``
(one seam to test against a loopback stub). Each has an explicit timeout and no client-side retries:
retries and fallback are decided here, so they stay bounded and visible. A provider without a key is
left out of the chain.

Two bounds keep a question's latency finite whatever the providers do: one time budget per question
across every provider and retry (``CHAT_TIME_BUDGET_SECONDS``; each call runs in a worker thread the
caller stops waiting for), and a circuit breaker per provider (pybreaker: after
``LLM_BREAKER_FAILURES`` retryable failures in a row the provider is skipped for
``LLM_BREAKER_COOLDOWN_SECONDS``). Breaker state is in ``/health/deep`` and ``bms_llm_circuit_state``.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias, TypedDict

import httpx
import openai
import pybreaker
from django.conf import settings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage

from bms.metrics import LLM_CIRCUIT_STATE, LLM_REQUESTS
from chat import cache as chat_cache

logger = logging.getLogger(__name__)


class ChatRunnable(Protocol):
    """What the fallback chain calls: a chat model, or one with tools bound (``bind_tools``)."""

    def invoke(self, input: list[BaseMessage]) -> BaseMessage: ...


ModelEntry: TypeAlias = tuple[str, str, BaseChatModel]
"""``(provider, model, client)``: one link of the chain, before its tools are bound."""


@dataclass(frozen=True)
class Provider:
    name: str
    model: str
    api_key: str = field(repr=False)
    base_url: str

    def client(self) -> BaseChatModel:
        # a call never outlives the question's budget by much, even in its abandoned thread
        return _client(self, min(settings.LLM_TIMEOUT_SECONDS, settings.CHAT_TIME_BUDGET_SECONDS))


@functools.lru_cache(maxsize=16)
def _client(provider: Provider, timeout: float) -> BaseChatModel:
    """One client per provider and settings per process: building one costs ~0.3 s (TLS contexts),
    which a question must not pay every time."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=provider.model,
        api_key=provider.api_key,  # type: ignore[arg-type]
        base_url=provider.base_url,
        timeout=timeout,
        max_retries=0,
        temperature=0,
    )


def groq() -> Provider:
    return Provider("groq", settings.GROQ_MODEL, settings.GROQ_API_KEY, settings.GROQ_BASE_URL)


def gemini() -> Provider:
    return Provider("gemini", settings.GEMINI_MODEL, settings.GEMINI_API_KEY, settings.GEMINI_BASE_URL)


def openrouter() -> Provider:
    return Provider("openrouter", settings.OPENROUTER_MODEL, settings.OPENROUTER_API_KEY, settings.OPENROUTER_BASE_URL)


def provider_chain() -> list[Provider]:
    """Configured providers in fallback order (none configured -> the offline agent answers)."""
    return [p for p in (groq(), gemini(), openrouter()) if p.api_key]


class AllProvidersFailedError(Exception):
    def __init__(self, failures: list[str]) -> None:
        super().__init__("; ".join(failures) or "no provider configured")
        self.failures = failures


def is_retryable(exc: BaseException) -> bool:
    """Rate limits, timeouts, connection failures and 5xx are worth another try; the rest is not."""
    if isinstance(exc, (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, (httpx.TimeoutException, httpx.TransportError, TimeoutError, ConnectionError))


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException, TimeoutError)):
        return "timeout"
    if isinstance(exc, pybreaker.CircuitBreakerError):
        return "circuit open"
    return type(exc).__name__


class BudgetSpentError(TimeoutError):
    """The question's time budget ran out while waiting for a provider."""


_STATE_VALUES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}


class _StateGauge(pybreaker.CircuitBreakerListener):
    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        LLM_CIRCUIT_STATE.labels(provider=cb.name).set(_STATE_VALUES.get(new_state.name, 0))
        logger.warning(
            "LLM circuit breaker of %s: %s -> %s", cb.name, getattr(old_state, "name", old_state), new_state.name
        )


_breakers: dict[str, pybreaker.CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker(provider: str) -> pybreaker.CircuitBreaker:
    """The circuit breaker of one provider (per process; only retryable failures count)."""
    with _breakers_lock:
        cb = _breakers.get(provider)
        if cb is None:
            cb = pybreaker.CircuitBreaker(
                fail_max=settings.LLM_BREAKER_FAILURES,
                reset_timeout=settings.LLM_BREAKER_COOLDOWN_SECONDS,
                exclude=[lambda exc: not is_retryable(exc)],
                listeners=[_StateGauge()],
                name=provider,
                throw_new_error_on_trip=False,  # the failure that trips it is reported as itself
            )
            _breakers[provider] = cb
            LLM_CIRCUIT_STATE.labels(provider=provider).set(0)
        return cb


class BreakerState(TypedDict):
    state: str  # closed, open or half-open
    failures: int  # consecutive failures


def breaker_states() -> dict[str, BreakerState]:
    """State of every provider's breaker this process has used: for /health/deep."""
    with _breakers_lock:
        items = list(_breakers.items())
    return {name: {"state": cb.current_state, "failures": cb.fail_counter} for name, cb in sorted(items)}


def breakers_reset() -> None:
    """Forget every breaker (tests; an operator after fixing a provider restarts the process instead)."""
    with _breakers_lock:
        _breakers.clear()


def _bounded_invoke(runnable: ChatRunnable, messages: list[BaseMessage], seconds: float) -> BaseMessage:
    """``runnable.invoke`` in a daemon thread; stop waiting after ``seconds`` (the thread ends by its
    client timeout, which is capped at the budget)."""
    answers: list[BaseMessage] = []
    errors: list[Exception] = []

    def work() -> None:
        try:
            answers.append(runnable.invoke(messages))
        except Exception as exc:  # re-raised in the caller's thread
            errors.append(exc)

    worker = threading.Thread(target=work, name="llm-call", daemon=True)
    worker.start()
    worker.join(max(0.0, seconds))
    if worker.is_alive():
        raise BudgetSpentError(f"no answer within {seconds:.1f} s")
    if errors:
        raise errors[0]
    return answers[0]


def _usage(message: AIMessage) -> tuple[int, int]:
    usage = message.usage_metadata
    if usage is None:
        return 0, 0
    return int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)


@dataclass
class CallOutcome:
    message: AIMessage
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    failures: list[str]


def invoke_with_fallback(
    chain: Sequence[tuple[str, str, ChatRunnable]],
    messages: list[BaseMessage],
    *,
    max_retries: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float | None = None,
) -> CallOutcome:
    """Call each (provider, model, runnable) in order until one answers.

    A retryable error is tried again up to ``max_retries`` times (short exponential backoff), any
    other error moves straight to the next provider; a provider whose breaker is open is skipped.
    Nothing waits past ``deadline`` (``time.monotonic()``; default: one budget from now). Token
    usage and outcomes are recorded.
    """
    retries = settings.LLM_MAX_RETRIES if max_retries is None else max_retries
    if deadline is None:
        deadline = time.monotonic() + settings.CHAT_TIME_BUDGET_SECONDS
    failures: list[str] = []
    for provider, model, runnable in chain:
        cb = breaker(provider)
        if cb.current_state == pybreaker.STATE_OPEN:
            failures.append(f"{provider}: circuit open")
            continue
        for attempt in range(retries + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failures.append(f"{provider}: time budget spent")
                raise AllProvidersFailedError(failures)
            try:
                message = cb.call(_bounded_invoke, runnable, messages, remaining)
            except Exception as exc:  # any provider failure is recorded and falls through to the next
                if isinstance(exc, pybreaker.CircuitBreakerError):
                    failures.append(f"{provider}: circuit open")
                    LLM_REQUESTS.labels(provider=provider, model=model, outcome="error").inc()
                    break
                retry = is_retryable(exc)
                failures.append(f"{provider}: {describe_error(exc)}")
                LLM_REQUESTS.labels(provider=provider, model=model, outcome="error").inc()
                chat_cache.usage_record(provider=provider, model=model, input_tokens=0, output_tokens=0, ok=False)
                logger.warning("LLM call to %s failed: %s", provider, describe_error(exc))
                if retry and attempt < retries:
                    sleep(max(0.0, min(0.25 * 2**attempt, 2.0, deadline - time.monotonic())))
                    continue
                break
            if not isinstance(message, AIMessage):
                message = AIMessage(content=str(getattr(message, "content", message)))
            input_tokens, output_tokens = _usage(message)
            LLM_REQUESTS.labels(provider=provider, model=model, outcome="ok").inc()
            chat_cache.usage_record(
                provider=provider, model=model, input_tokens=input_tokens, output_tokens=output_tokens
            )
            return CallOutcome(message, provider, model, input_tokens, output_tokens, failures)
    raise AllProvidersFailedError(failures)
