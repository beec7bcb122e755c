"""Celery observability: task outcome counters, queue depth on scrape, the worker's /metrics server.

Imported by ``bms.celery`` so both the web process and the worker connect the same handlers.
Celery signals are the only sanctioned place for this (STYLE.md forbids Django model signals; these
are the task runtime's own hooks and do nothing but count).

Worker pools:
- ``solo``/``threads``: tasks run in the main process; ``worker_ready`` starts
  ``prometheus_client.start_http_server`` on ``CELERY_METRICS_PORT`` over the default registry.
- ``prefork``: tasks run in child processes, so the worker must be started with
  ``PROMETHEUS_MULTIPROC_DIR`` set (compose and Kubernetes do). The children then write their counters
  to that directory and the main process serves them, with the CPU and memory of itself and its pool,
  through ``bms.metrics.exposition_registry`` (the same builder as gunicorn's /metrics).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator

from celery.signals import (
    before_task_publish,
    task_failure,
    task_retry,
    task_success,
    worker_init,
    worker_process_shutdown,
    worker_ready,
)
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from bms.gunicorn_conf import metrics_dir_reset
from bms.metrics import (
    CELERY_QUEUE_DEPTH,
    CELERY_TASKS,
    CELERY_TASKS_PUBLISHED,
    exposition_registry,
    scrape_collector_register,
)

logger = logging.getLogger(__name__)

# Cap the time a scrape can spend asking Redis: a slow broker must not stall /metrics.
_REDIS_TIMEOUT_SECONDS = 0.5


def _task_name(sender: object) -> str:
    name = getattr(sender, "name", None)
    return str(name) if name else "unknown"


@before_task_publish.connect
def _on_before_task_publish(sender: object = None, **_: object) -> None:
    # sender is the task name here (a str); the web process counts what it enqueues.
    CELERY_TASKS_PUBLISHED.labels(task=str(sender or "unknown")).inc()


@task_success.connect
def _on_task_success(sender: object = None, **_: object) -> None:
    CELERY_TASKS.labels(task=_task_name(sender), outcome="success").inc()


@task_failure.connect
def _on_task_failure(sender: object = None, **_: object) -> None:
    CELERY_TASKS.labels(task=_task_name(sender), outcome="failure").inc()


@task_retry.connect
def _on_task_retry(sender: object = None, **_: object) -> None:
    CELERY_TASKS.labels(task=_task_name(sender), outcome="retry").inc()


def monitored_queues() -> list[str]:
    from django.conf import settings

    return list(getattr(settings, "CELERY_MONITORED_QUEUES", None) or ["celery"])


def queue_depths(*, broker_url: str, queues: Iterable[str]) -> dict[str, int]:
    """LLEN of each queue on a Redis broker; an empty dict for other brokers or when Redis is down."""
    if not broker_url.startswith(("redis://", "rediss://", "unix://")):
        return {}
    import redis

    client = redis.Redis.from_url(
        broker_url, socket_timeout=_REDIS_TIMEOUT_SECONDS, socket_connect_timeout=_REDIS_TIMEOUT_SECONDS
    )
    try:
        return {queue: int(client.llen(queue)) for queue in queues}
    except redis.RedisError as exc:
        logger.warning("celery queue depth unavailable: %s", exc)
        return {}
    finally:
        client.close()


class QueueDepthCollector(Collector):
    """Reads ``bms_celery_queue_depth`` from the broker at every scrape.

    The family is built here, not kept in the gauge: in multiprocess mode (gunicorn) a set gauge would also
    be written to the worker's file and served twice.
    """

    def collect(self) -> Iterator[Metric]:
        from django.conf import settings

        if not settings.configured:
            return
        depths = queue_depths(broker_url=str(settings.CELERY_BROKER_URL), queues=monitored_queues())
        [family] = CELERY_QUEUE_DEPTH.describe()
        for queue, depth in depths.items():
            family.add_sample(family.name, {"queue": queue}, depth)
        yield family

    def describe(self) -> list[Metric]:
        # No describe-time broker call: registering the collector must not touch the network.
        return []


_QUEUE_COLLECTOR = QueueDepthCollector()
scrape_collector_register(_QUEUE_COLLECTOR)


def _multiproc_dir() -> str:
    # prometheus_client reads PROMETHEUS_MULTIPROC_DIR itself at import; settings mirrors it for us.
    from django.conf import settings

    return str(getattr(settings, "PROMETHEUS_MULTIPROC_DIR", "") or "")


@worker_init.connect
def _on_worker_init(**_: object) -> None:
    """Clear stale multiprocess files left by a previous worker (main process, before forking)."""
    directory = _multiproc_dir()
    if directory:
        metrics_dir_reset(directory)


def worker_registry() -> CollectorRegistry:
    """The registry the worker serves (``bms.metrics.exposition_registry`` for a Celery worker)."""
    return exposition_registry(_multiproc_dir(), server="worker")


@worker_ready.connect
def _on_worker_ready(**_: object) -> None:
    from django.conf import settings

    port = int(getattr(settings, "CELERY_METRICS_PORT", 0) or 0)
    if port <= 0:
        return
    addr = str(getattr(settings, "CELERY_METRICS_ADDR", "0.0.0.0"))  # noqa: S104 - scraped from other containers  # nosec B104
    start_http_server(port, addr=addr, registry=worker_registry())
    logger.info("celery worker metrics on %s:%s", addr, port)


@worker_process_shutdown.connect
def _on_worker_process_shutdown(pid: int | None = None, **_: object) -> None:
    if _multiproc_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())
