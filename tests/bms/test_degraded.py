"""Redis or the broker down: the cache and throttles answer from the process, jobs answer 503, health says so.

Redis here is a port nothing listens on (a real server stopped and started under load is in
tests/reliability); the broker check is replaced at its one seam (``bms.broker.broker_ping``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client, override_settings
from kombu.exceptions import OperationalError as KombuOperationalError
from rest_framework.test import APIClient

from bms import health
from bms.cache import FallbackRedisCache, shared_cache_unavailable
from registry.models import TrainingRun
from scheduling.models import OptimizationJob
from tests.live import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.loopback]  # a Redis URL where nothing listens


@pytest.fixture
def dead_redis() -> Iterator[str]:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    cache = {
        "BACKEND": "bms.cache.FallbackRedisCache",
        "LOCATION": url,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5, "FALLBACK_RETRY_SECONDS": 60},
    }
    with override_settings(CACHES={"default": cache}, REDIS_URL=url):
        yield url


def test_the_cache_answers_from_the_process_while_redis_is_down(dead_redis: str) -> None:
    cache = caches["default"]
    assert isinstance(cache, FallbackRedisCache)
    assert shared_cache_unavailable() is False
    cache.set("k", 41)
    assert shared_cache_unavailable() is True
    cache.incr("k")
    assert cache.get("k") == 42
    assert cache.add("k", 0) is False
    assert cache.get_many(["k", "missing"]) == {"k": 42}


def test_the_cache_tries_redis_again_after_the_window(dead_redis: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = caches["default"]
    assert isinstance(cache, FallbackRedisCache)
    cache.set("k", 1)
    assert cache.degraded is True
    monkeypatch.setattr(cache, "_down_until", 0.0)  # the window passed
    assert cache.degraded is False
    assert cache.get("k") == 1  # Redis still down: tried, failed, answered locally again
    assert cache.degraded is True


def test_throttles_limit_locally_while_redis_is_down(
    dead_redis: str, viewer_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "rest_framework.throttling.SimpleRateThrottle.THROTTLE_RATES", {"anon": "3/minute", "user": "3/minute"}
    )
    statuses = [viewer_client.get("/api/v1/programs").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_chat_says_the_shared_cache_is_unavailable(dead_redis: str, analyst_client: APIClient) -> None:
    session = analyst_client.post("/api/v1/sessions/create", {}, format="json").json()["session_id"]
    response = analyst_client.post("/api/v1/chat", {"session_id": session, "message": "hello"}, format="json")
    assert response.status_code == 200
    assert set(response.json()["metadata"]["unavailable"]) == {"redis"}


def test_deep_health_reports_redis_down(dead_redis: str) -> None:
    response = Client().get("/health/deep")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["ok"] is False
    assert checks["redis"]["error"].startswith("ConnectionError")
    assert checks["database"]["ok"] is True


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from bms.celery import app

    def refused() -> None:
        raise KombuOperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("bms.broker.broker_ping", refused)
    before = app.conf.task_always_eager
    app.conf.task_always_eager = False  # a broker is configured (as in production)
    yield
    app.conf.task_always_eager = before


def _assert_broker_503(response: Any) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("broker_unavailable", {"retry_after_seconds": 30})


def test_a_training_run_needs_the_broker_and_leaves_nothing_without_it(
    broker_down: None, admin_client_api: APIClient
) -> None:
    body = {"targets": ["engagement"], "algorithms": ["elasticnet"]}
    _assert_broker_503(admin_client_api.post("/api/v1/training-runs", body, format="json"))
    assert TrainingRun.objects.count() == 0


def test_an_optimisation_needs_the_broker_and_leaves_nothing_without_it(
    broker_down: None, analyst_client: APIClient
) -> None:
    from tests.scheduling.factories import catalogue_factory, channel_factory

    catalogue_factory(channel=channel_factory(code="sched"), n=12)
    body = {"channel": "sched", "date": "2025-03-08", "daypart": "prime_time", "generations": 5}
    _assert_broker_503(analyst_client.post("/api/v1/schedules/optimize", body, format="json"))
    assert OptimizationJob.objects.count() == 0


def test_deep_health_reports_the_broker_down(broker_down: None) -> None:
    response = Client().get("/health/deep")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["error"].startswith("OperationalError: Error 111")


class _ExhaustedPool:
    max_size = 21

    def get_stats(self) -> dict[str, int]:
        return {"pool_size": 21, "pool_available": 0, "requests_waiting": 3}


def test_deep_health_notices_an_exhausted_pool_without_waiting_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import connections

    monkeypatch.setattr(type(connections["default"]), "pool", _ExhaustedPool(), raising=False)
    check = health._timed(health._database)
    assert check["ok"] is False
    assert check["error"] == "RuntimeError: connection pool exhausted: 21/21 in use, 3 waiting"


def test_a_database_outage_in_a_view_is_a_503_to_retry(
    viewer_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    def pool_timeout(**kwargs: Any) -> None:
        raise OperationalError("couldn't get a connection after 5.00 sec")

    monkeypatch.setattr("programs.apis.selectors.program_list", pool_timeout)
    response = viewer_client.get("/api/v1/programs")
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "database_unavailable"
