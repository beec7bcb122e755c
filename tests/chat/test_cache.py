"""Cache keys and statistics, below the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from chat import cache as chat_cache
from chat.grounding import ungrounded_numbers
from programs.services import data_version_bump


def test_the_key_ignores_case_spacing_and_trailing_punctuation(db: Any) -> None:
    a = chat_cache.cache_key(question="Top 5 programs by rating?", role="analyst")
    b = chat_cache.cache_key(question="  top 5   PROGRAMS by rating ?! ", role="analyst")
    assert a == b
    assert a.startswith("chat:answer:v1:")


def test_the_key_depends_on_role_question_params_and_data_version(db: Any) -> None:
    base = chat_cache.cache_key(question="q", role="analyst")
    assert chat_cache.cache_key(question="q", role="admin") != base
    assert chat_cache.cache_key(question="q2", role="analyst") != base
    assert chat_cache.cache_key(question="q", role="analyst", params={"lang": "en"}) != base
    data_version_bump(source="edit")
    assert chat_cache.cache_key(question="q", role="analyst") != base


def test_answers_expire_after_the_configured_ttl(db: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cache, "set", lambda key, value, timeout=None: seen.update(key=key, timeout=timeout))
    settings.CHAT_CACHE_TTL_SECONDS = 123
    chat_cache.answer_set("k", {"response": "r", "metadata": {}})
    assert seen == {"key": "k", "timeout": 123}


def test_stats_start_at_zero_and_count_hits_and_misses(db: Any) -> None:
    assert chat_cache.stats().total_requests == 0
    chat_cache.request_record(hit=False, latency_ms=40.0)
    chat_cache.request_record(hit=True, latency_ms=2.0, usage={"gemini": (1_000_000, 0)})
    chat_cache.request_record(hit=True, latency_ms=4.0)
    s = chat_cache.stats()
    assert (s.total_requests, s.cache_hits, s.cache_misses) == (3, 2, 1)
    assert s.hit_rate == 0.6667
    assert (s.avg_latency_cached_ms, s.avg_latency_uncached_ms) == (3.0, 40.0)
    assert (s.tokens_saved, s.cost_savings) == (1_000_000, 0.1)


@pytest.mark.parametrize(
    ("answer", "sources", "missing"),
    [
        ("Night Watch averaged 4.50 points.", [{"mean": 4.5}], []),
        ("Revenue was $56,500 per airing.", [{"mean": 56500.0}], []),
        ("Revenue was $56,501.", [{"mean": 56500.0}], ["$56,501"]),
        ("It rose by +12.3%.", [{"change_pct": 12.345}], []),
        ("About 1.2M viewers.", [{"audience": 1_234_567}], []),
        ("A share of 45%.", [{"share": 0.45}], []),
        ("1. A\n2. B\n3. C scored 7.", [{"x": 7}], []),
        ("On 2025-01-13 at 20:00.", ["2025-01-13T20:00:00-05:00"], []),
        ("It scored 99.", [{"x": 7}], ["99"]),
    ],
)
def test_grounding_accepts_rounded_and_scaled_numbers_only(answer: str, sources: Any, missing: list[str]) -> None:
    assert ungrounded_numbers(answer, sources) == missing


def test_the_versions_are_the_newest_data_version_and_promotion(db: Any) -> None:
    from django.utils import timezone

    from programs.selectors import data_version_current
    from registry.models import PromotionEvent
    from registry.selectors import registry_generation
    from tests.chat.factories import model_version_factory

    assert chat_cache.current_versions() == (data_version_current(), registry_generation())
    bumped = data_version_bump(source="edit")
    version = model_version_factory(target="rating")
    event = PromotionEvent.objects.create(
        version=version, target="rating", from_status="candidate", to_status="production", created_at=timezone.now()
    )
    assert chat_cache.current_versions() == (bumped.pk, event.pk)
    assert chat_cache.current_versions() == (data_version_current(), registry_generation())


def test_counters_are_added_in_one_call_from_missing_or_existing(db: Any) -> None:
    from bms.cache import incr_many

    cache.set("chat:test:a", 5, timeout=None)
    incr_many({"chat:test:a": 2, "chat:test:b": 3})
    incr_many({"chat:test:b": 4})
    assert cache.get_many(["chat:test:a", "chat:test:b"]) == {"chat:test:a": 7, "chat:test:b": 7}


@pytest.mark.loopback  # a Redis URL where nothing listens
def test_counters_go_to_the_process_while_redis_is_down(db: Any) -> None:
    from django.core.cache import caches
    from django.test import override_settings

    from bms.cache import FallbackRedisCache, incr_many, shared_cache_unavailable
    from tests.live import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    dead = {
        "BACKEND": "bms.cache.FallbackRedisCache",
        "LOCATION": url,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5, "FALLBACK_RETRY_SECONDS": 60},
    }
    with override_settings(CACHES={"default": dead}, REDIS_URL=url):
        backend = caches["default"]
        assert isinstance(backend, FallbackRedisCache)
        incr_many({"chat:test:n": 2})  # Redis fails: counted in the process
        assert shared_cache_unavailable() is True
        incr_many({"chat:test:n": 3})
        assert backend.get("chat:test:n") == 5
        chat_cache.request_record(hit=True, latency_ms=1.5)
        assert (chat_cache.stats().total_requests, chat_cache.stats().cache_hits) == (1, 1)
