"""Throttling: per client IP for anonymous callers, per user for authenticated ones -> 429."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.test import APIClient

from bms.cache import FallbackRedisCache, _local_count_hit, count_hit
from bms.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def low_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    # DRF copies the rates onto the throttle class at import, so the class attribute is what counts.
    monkeypatch.setattr(
        "rest_framework.throttling.SimpleRateThrottle.THROTTLE_RATES", {"anon": "2/minute", "user": "3/minute"}
    )


def test_anonymous_callers_are_throttled_per_ip(low_rates: None) -> None:
    client = APIClient(REMOTE_ADDR="198.51.100.7")
    body = {"username": "x", "password": "y"}
    statuses = [client.post("/api/v1/auth/token", body, format="json").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    response = client.post("/api/v1/auth/token", body, format="json")
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "throttled"
    assert 0 < error["details"]["retry_after_seconds"] <= 60
    assert int(response["Retry-After"]) == error["details"]["retry_after_seconds"]
    # A throttled request never reached authentication: only the two allowed attempts were audited.
    assert AuditEvent.objects.filter(action="login_failed").count() == 2
    other_ip = APIClient(REMOTE_ADDR="198.51.100.8")
    assert other_ip.post("/api/v1/auth/token", body, format="json").status_code == 401


def test_authenticated_callers_are_throttled_per_user(low_rates: None, viewer_client: APIClient, analyst: User) -> None:
    statuses = [viewer_client.get("/api/v1/programs").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert viewer_client.get("/api/v1/programs").json()["error"]["code"] == "throttled"
    other_user = APIClient()
    other_user.force_authenticate(analyst)
    assert other_user.get("/api/v1/programs").status_code == 200


def test_health_is_not_throttled(low_rates: None, client: Any) -> None:
    assert [client.get("/health").status_code for _ in range(5)] == [200] * 5


def test_a_window_starts_at_the_first_request_and_the_429_says_when_it_ends(
    low_rates: None, viewer_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_000_000.5]
    monkeypatch.setattr("bms.cache.time.time", lambda: now[0])
    backend = caches["default"]
    if isinstance(backend, FallbackRedisCache):
        # Redis times its own windows (test_the_redis_counter_...); here the process-memory counter that
        # also serves while Redis is unreachable: the backend is held in its degraded state.
        monkeypatch.setattr(backend, "_down_until", float("inf"))
    assert [viewer_client.get("/api/v1/programs").status_code for _ in range(3)] == [200, 200, 200]
    now[0] += 45
    response = viewer_client.get("/api/v1/programs")
    assert response.status_code == 429
    assert response["Retry-After"] == "15"
    now[0] += 15  # the window of the first request ended: a new one starts
    assert [viewer_client.get("/api/v1/programs").status_code for _ in range(4)] == [200, 200, 200, 429]


@pytest.mark.redis
def test_the_redis_counter_counts_in_one_key_that_always_expires() -> None:
    backend = caches["default"]
    assert isinstance(backend, FallbackRedisCache)
    assert [count_hit("t:a", 60)[0] for _ in range(3)] == [1, 2, 3]
    count, left = count_hit("t:a", 60)
    assert count == 4
    assert 58 < left <= 60
    redis = backend.client.get_client(write=True)
    name = backend.client.make_key("t:a")
    assert 58 < redis.ttl(name) <= 60
    redis.persist(name)  # a counter that lost its expiry (e.g. created by a bare INCR) gets one again
    assert count_hit("t:a", 30)[0] == 5
    assert 28 < redis.ttl(name) <= 30
    assert count_hit("t:b", 60)[0] == 1  # callers are counted apart


def test_the_local_counter_counts_per_window() -> None:
    cache = LocMemCache("t", {})
    now = [100.0]
    hits = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("bms.cache.time.time", lambda: now[0])  # the cache's expiry reads the same clock
        for at in (100.0, 100.0, 159.5, 160.0):
            now[0] = at
            hits.append(_local_count_hit(cache, "k", 60))
    assert hits == [(1, 60.0), (2, 60.0), (3, 0.5), (1, 60.0)]
