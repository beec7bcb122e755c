"""LLM providers: Groq -> Gemini -> OpenRouter, built from settings, with a bounded fallback chain.

All three are reached through their OpenAI-compatible endpoints with ``langchain_openai.ChatOpenAI``
(one seam to test against a loopback stub). Each has an explicit timeout and no client-side retries:
retries and fallback are decided here, so they stay bounded and visible. A provider without a key is
left out of the chain.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from django.conf import settings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage

from bms.metrics import LLM_REQUESTS
from chat import cache as chat_cache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provider:
    name: str
    model: str
    api_key: str = field(repr=False)
    base_url: str

    def client(self) -> BaseChatModel:
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=self.model,
            api_key=self.api_key,  # type: ignore[arg-type]
            base_url=self.base_url,
            timeout=settings.LLM_TIMEOUT_SECONDS,
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
    return type(exc).__name__


def _usage(message: AIMessage) -> tuple[int, int]:
    meta: dict[str, Any] = dict(message.usage_metadata or {})
    return int(meta.get("input_tokens") or 0), int(meta.get("output_tokens") or 0)


@dataclass
class CallOutcome:
    message: AIMessage
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    failures: list[str]


def invoke_with_fallback(
    chain: Sequence[tuple[str, str, Any]],
    messages: list[BaseMessage],
    *,
    max_retries: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CallOutcome:
    """Call each (provider, model, runnable) in order until one answers.

    A retryable error is tried again up to ``max_retries`` times (short exponential backoff), any
    other error moves straight to the next provider. Token usage and outcomes are recorded.
    """
    retries = settings.LLM_MAX_RETRIES if max_retries is None else max_retries
    failures: list[str] = []
    for provider, model, runnable in chain:
        for attempt in range(retries + 1):
            try:
                message = runnable.invoke(messages)
            except Exception as exc:  # any provider failure is recorded and falls through to the next
                retry = is_retryable(exc)
                failures.append(f"{provider}: {describe_error(exc)}")
                LLM_REQUESTS.labels(provider=provider, model=model, outcome="error").inc()
                chat_cache.usage_record(provider=provider, model=model, input_tokens=0, output_tokens=0, ok=False)
                logger.warning("LLM call to %s failed: %s", provider, describe_error(exc))
                if retry and attempt < retries:
                    sleep(min(0.25 * 2**attempt, 2.0))
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
