"""Celery task metrics: outcome counters from Celery's signals, queue depth, the worker's registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import pytest
from celery.signals import task_retry
from django.test import override_settings
from prometheus_client import REGISTRY

from bms import celery_metrics
from bms.celery import app as celery_app
from bms.metrics import CELERY_TASKS, CELERY_TASKS_PUBLISHED


@celery_app.task(name="tests.ops.ok")
def ok_task(x: int) -> int:
    return x * 2


@celery_app.task(name="tests.ops.boom")
def boom_task() -> None:
    raise ValueError("boom")


@celery_app.task(name="tests.ops.flaky", bind=True, max_retries=1, default_retry_delay=0)
def flaky_task(self: Any) -> None:
    raise self.retry(exc=RuntimeError("try again"))


def _count(task: str, outcome: str) -> float:
    return CELERY_TASKS.labels(task=task, outcome=outcome)._value.get()


def test_a_successful_task_counts_one_success() -> None:
    before = {o: _count("tests.ops.ok", o) for o in ("success", "failure", "retry")}

    assert ok_task.apply(args=(21,)).get() == 42

    assert _count("tests.ops.ok", "success") == before["success"] + 1
    assert _count("tests.ops.ok", "failure") == before["failure"]
    assert _count("tests.ops.ok", "retry") == before["retry"]


def test_a_failing_task_counts_one_failure_and_no_success() -> None:
    before = {o: _count("tests.ops.boom", o) for o in ("success", "failure")}

    result = boom_task.apply(throw=False)

    assert result.failed()
    assert _count("tests.ops.boom", "failure") == before["failure"] + 1
    assert _count("tests.ops.boom", "success") == before["success"]


def test_a_retry_is_counted_as_retry() -> None:
    before = {o: _count("tests.ops.flaky", o) for o in ("retry", "failure", "success")}

    # Sent as celery.app.trace sends it when a task raises Retry (eager apply() re-raises instead).
    task_retry.send(sender=flaky_task, request=None, reason="try again", einfo=None)

    assert _count("tests.ops.flaky", "retry") == before["retry"] + 1
    assert _count("tests.ops.flaky", "failure") == before["failure"]
    assert _count("tests.ops.flaky", "success") == before["success"]


@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")
def test_publishing_a_task_counts_it_for_the_sender() -> None:
    before = CELERY_TASKS_PUBLISHED.labels(task="tests.ops.published")._value.get()
    with celery_app.connection_for_write() as conn:
        celery_app.send_task("tests.ops.published", queue="ops-unit-test", connection=conn)
        # kombu's stubs type the channel as its abstract base, which lacks the transport's queue_purge.
        conn.default_channel.queue_purge("ops-unit-test")  # type: ignore[attr-defined]

    assert CELERY_TASKS_PUBLISHED.labels(task="tests.ops.published")._value.get() == before + 1


def test_queue_depths_is_empty_for_a_non_redis_broker() -> None:
    assert celery_metrics.queue_depths(broker_url="memory://", queues=["celery"]) == {}
    assert celery_metrics.queue_depths(broker_url="amqp://guest@127.0.0.1//", queues=["celery"]) == {}


@pytest.mark.loopback  # a Redis URL where nothing listens
def test_queue_depths_is_empty_when_redis_does_not_answer() -> None:
    # Port 1 on loopback: connection refused at once; the scrape must not fail or hang.
    assert celery_metrics.queue_depths(broker_url="redis://127.0.0.1:1/0", queues=["celery"]) == {}


@pytest.mark.redis
def test_queue_depths_reads_llen_of_each_queue() -> None:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("ops-a", "ops-b")
    client.rpush("ops-a", b"1", b"2", b"3")
    try:
        depths = celery_metrics.queue_depths(broker_url=settings.REDIS_URL, queues=["ops-a", "ops-b"])
    finally:
        client.delete("ops-a", "ops-b")
    assert depths == {"ops-a": 3, "ops-b": 0}


def test_queue_depth_collector_sets_the_gauge_from_the_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(celery_metrics, "queue_depths", lambda **kw: dict.fromkeys(kw["queues"], 7))
    with override_settings(CELERY_MONITORED_QUEUES=["celery", "ops-x"]):
        families = list(celery_metrics.QueueDepthCollector().collect())

    samples = {s.labels["queue"]: s.value for f in families for s in f.samples}
    assert samples["celery"] == 7
    assert samples["ops-x"] == 7
    assert [f.name for f in families] == ["bms_celery_queue_depth"]


def test_queue_depth_family_appears_exactly_once_in_the_default_registry() -> None:
    names = [f.name for f in REGISTRY.collect() if f.name == "bms_celery_queue_depth"]
    assert names == ["bms_celery_queue_depth"]


def test_worker_registry_is_the_default_one_without_multiprocess_dir() -> None:
    with override_settings(PROMETHEUS_MULTIPROC_DIR=""):
        assert celery_metrics.worker_registry() is REGISTRY


def test_worker_registry_in_multiprocess_mode_serves_files_and_process_metrics(tmp_path: Path) -> None:
    with override_settings(PROMETHEUS_MULTIPROC_DIR=str(tmp_path)):
        registry = celery_metrics.worker_registry()
    assert registry is not REGISTRY
    families = {f.name: f for f in registry.collect()}
    assert "bms_celery_queue_depth" not in families
    assert "bms_celery_tasks" in families  # declared before any task ran, as the web's /metrics does
    # The worker's main process answers: its own memory is counted (gunicorn's would count its parent).
    (rss,) = families["process_resident_memory_bytes"].samples
    assert rss.value >= psutil.Process().memory_info().rss


def test_worker_init_clears_stale_multiprocess_files(tmp_path: Path) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "keep.txt").write_text("not ours")
    with override_settings(PROMETHEUS_MULTIPROC_DIR=str(tmp_path)):
        celery_metrics._on_worker_init()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_worker_ready_starts_no_server_when_the_port_is_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Any] = []
    monkeypatch.setattr(celery_metrics, "start_http_server", lambda *a, **kw: started.append((a, kw)))
    with override_settings(CELERY_METRICS_PORT=0):
        celery_metrics._on_worker_ready()
    assert started == []
    with override_settings(CELERY_METRICS_PORT=9808, CELERY_METRICS_ADDR="127.0.0.1", PROMETHEUS_MULTIPROC_DIR=""):
        celery_metrics._on_worker_ready()
    assert started == [((9808,), {"addr": "127.0.0.1", "registry": REGISTRY})]
