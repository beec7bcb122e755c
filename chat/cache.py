"""Response cache for chat answers and the usage statistics kept beside it.

Key = sha256(normalised question + session-independent parameters + user role + data version +
registry generation). A data import bumps the data version and a promotion bumps the registry
generation, so stale answers are never found again (they expire by TTL); nothing scans keys.

Statistics live in the same cache backend (Redis in production) as integer counters changed with
atomic ``incr``; latencies are kept as microsecond sums and costs as micro-dollars so every counter
is an integer.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict

from django.conf import settings
from django.core.cache import cache

from bms.cache import incr_many
from bms.metrics import CHAT_LATENCY, LLM_CACHE_REQUESTS, LLM_COST, LLM_TOKENS
from bms.versions import versions_read
from programs.selectors import DATA_VERSION
from registry.selectors import REGISTRY_GENERATION

KEY_PREFIX = "chat:answer:v1:"
STATS_PREFIX = "chat:stats:"
USAGE_PREFIX = "chat:usage:"
USAGE_INDEX = "chat:usage:index"
_STAT_NAMES = ("requests", "hits", "misses", "lat_cached_us", "lat_uncached_us", "tokens_saved", "cost_saved_uusd")

_SPACES = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s?!.]+$")


def normalise_question(question: str) -> str:
    """Case, surrounding/trailing punctuation and runs of whitespace do not change the question."""
    text = _SPACES.sub(" ", question.strip().lower())
    return _TRAILING.sub("", text)


def current_versions() -> tuple[int, int]:
    """(data version, registry generation): the two numbers that make cached answers stale.

    Every question, a cache hit too, pays this read: both marks in one statement (``bms.versions``)."""
    data_version, generation = versions_read(DATA_VERSION, REGISTRY_GENERATION)
    return data_version, generation


def cache_key(
    *, question: str, role: str, params: Mapping[str, object] | None = None, versions: tuple[int, int] | None = None
) -> str:
    """The answer's key; ``versions``: ``current_versions()`` already read for this request."""
    data_version, generation = versions if versions is not None else current_versions()
    material = json.dumps(
        {
            "q": normalise_question(question),
            "p": params or {},
            "r": role,
            "dv": data_version,
            "rg": generation,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return KEY_PREFIX + hashlib.sha256(material.encode()).hexdigest()


def answer_get(key: str) -> dict[str, object] | None:
    return answer_from(cache.get(key))


def answer_from(value: object) -> dict[str, object] | None:
    """A cached answer as read from the cache (None: not there)."""
    return value if isinstance(value, dict) else None


def answer_set(key: str, payload: Mapping[str, object], *, timeout: int | None = None) -> None:
    cache.set(key, payload, timeout=timeout or settings.CHAT_CACHE_TTL_SECONDS)


# The metric children of a hit and of a miss, bound once (``labels()`` looks them up under a lock).
_REQUESTS_COUNTED = {hit: LLM_CACHE_REQUESTS.labels(result="hit" if hit else "miss") for hit in (True, False)}
_LATENCY_OBSERVED = {hit: CHAT_LATENCY.labels(cache="hit" if hit else "miss") for hit in (True, False)}


def price_usd(*, provider: str, input_tokens: int, output_tokens: int) -> float:
    price_in, price_out = settings.LLM_PRICES_PER_MTOK.get(provider, (0.0, 0.0))
    return (input_tokens * price_in + output_tokens * price_out) / 1_000_000


def request_record(*, hit: bool, latency_ms: float, usage: Mapping[str, tuple[int, int]] | None = None) -> None:
    """Count one chat request. On a hit, the tokens the cached answer originally cost are saved, each
    priced at the provider that actually spent them (``usage``: provider -> (input, output))."""
    micros = max(0, int(latency_ms * 1000))
    counts = {STATS_PREFIX + "requests": 1}
    if hit:
        counts |= {STATS_PREFIX + "hits": 1, STATS_PREFIX + "lat_cached_us": micros}
        spent = usage or {}
        saved_tokens = sum(i + o for i, o in spent.values())
        if saved_tokens:
            cost = sum(price_usd(provider=p, input_tokens=i, output_tokens=o) for p, (i, o) in spent.items())
            counts |= {STATS_PREFIX + "tokens_saved": saved_tokens, STATS_PREFIX + "cost_saved_uusd": round(cost * 1e6)}
    else:
        counts |= {STATS_PREFIX + "misses": 1, STATS_PREFIX + "lat_uncached_us": micros}
    incr_many(counts)  # one round trip on Redis for the request's counters
    _REQUESTS_COUNTED[hit].inc()
    _LATENCY_OBSERVED[hit].observe(latency_ms / 1000)


@dataclass(frozen=True)
class CacheStats:
    total_requests: int
    cache_hits: int
    cache_misses: int
    hit_rate: float
    avg_latency_cached_ms: float
    avg_latency_uncached_ms: float
    tokens_saved: int
    cost_savings: float


def stats() -> CacheStats:
    values = cache.get_many([STATS_PREFIX + name for name in _STAT_NAMES])
    v = {name: int(values.get(STATS_PREFIX + name) or 0) for name in _STAT_NAMES}
    return CacheStats(
        total_requests=v["requests"],
        cache_hits=v["hits"],
        cache_misses=v["misses"],
        hit_rate=round(v["hits"] / v["requests"], 4) if v["requests"] else 0.0,
        avg_latency_cached_ms=round(v["lat_cached_us"] / v["hits"] / 1000, 3) if v["hits"] else 0.0,
        avg_latency_uncached_ms=round(v["lat_uncached_us"] / v["misses"] / 1000, 3) if v["misses"] else 0.0,
        tokens_saved=v["tokens_saved"],
        cost_savings=round(v["cost_saved_uusd"] / 1_000_000, 6),
    )


def _usage_names(provider: str, model: str) -> tuple[str, str, str, str]:
    base = f"{USAGE_PREFIX}{provider}:{model}:"
    return base + "input", base + "output", base + "requests", base + "errors"


def usage_record(*, provider: str, model: str, input_tokens: int, output_tokens: int, ok: bool = True) -> None:
    """Tokens and calls per provider/model (an offline answer is recorded as provider ``offline``)."""
    index = cache.get(USAGE_INDEX) or []
    entry = [provider, model]
    if entry not in index:
        # The index only grows by a handful of provider/model pairs; a lost race re-adds on the next call.
        cache.set(USAGE_INDEX, [*index, entry], timeout=None)
    key_in, key_out, key_requests, key_errors = _usage_names(provider, model)
    counts = {key_requests if ok else key_errors: 1}
    if input_tokens:
        counts[key_in] = input_tokens
        LLM_TOKENS.labels(provider=provider, model=model, kind="input").inc(input_tokens)
    if output_tokens:
        counts[key_out] = output_tokens
        LLM_TOKENS.labels(provider=provider, model=model, kind="output").inc(output_tokens)
    incr_many(counts)
    cost = price_usd(provider=provider, input_tokens=input_tokens, output_tokens=output_tokens)
    if cost:
        LLM_COST.labels(provider=provider, model=model).inc(cost)


class UsageRow(TypedDict):
    """Tokens and requests of one provider's model, counted in the shared cache."""

    provider: str
    model: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    estimated_cost_usd: float


def usage() -> list[UsageRow]:
    rows: list[UsageRow] = []
    for provider, model in cache.get(USAGE_INDEX) or []:
        names = _usage_names(provider, model)
        values = cache.get_many(list(names))
        input_tokens, output_tokens, requests, errors = (int(values.get(n) or 0) for n in names)
        rows.append(
            {
                "provider": provider,
                "model": model,
                "requests": requests,
                "errors": errors,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
                "estimated_cost_usd": round(
                    price_usd(provider=provider, input_tokens=input_tokens, output_tokens=output_tokens), 6
                ),
            }
        )
    rows.sort(key=lambda r: (r["provider"], r["model"]))
    return rows
