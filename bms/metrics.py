"""Every Prometheus metric BMS exports, defined in one place (names ``bms_*`` with units).

Apps import the objects from here; the Grafana dashboards and alert rules refer to these names.
/metrics serves ``exposition_registry()``: the process's own registry, or, under gunicorn's workers
(``PROMETHEUS_MULTIPROC_DIR`` set, bms/gunicorn_conf.py), every worker's values added up.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any, Generic, Literal, TypeVar

import psutil
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# Predictions
PREDICTION_LATENCY = Histogram(
    "bms_prediction_latency_seconds",
    "Time to compute a prediction (model call only), by target and algorithm.",
    ["target", "algorithm"],
    buckets=_LATENCY_BUCKETS,
)
PREDICTIONS = Counter(
    "bms_predictions_total", "Predictions served, by target, algorithm and outcome.", ["target", "algorithm", "outcome"]
)
# Whether this process serves a target's production model (0: its artifact is missing or tampered).
# Gauges of a process's own state are "liveall" in multiprocess mode: a sample per live process (pid label),
# dropped when gunicorn or Celery marks the process dead.
MODEL_AVAILABLE = Gauge(
    "bms_model_available",
    "1 when this process serves the target's production model, 0 when unavailable.",
    ["target"],
    multiprocess_mode="liveall",
)

# Training
CACHE_FALLBACKS = Counter(
    "bms_cache_fallback_total", "Cache calls answered by the process's memory because Redis was unreachable."
)
PREDICTION_LOGS_DROPPED = Counter(
    "bms_prediction_logs_dropped_total", "Prediction logs dropped after failed flushes or a full buffer."
)
TRAINING_DURATION = Histogram(
    "bms_training_duration_seconds",
    "Wall time of a training run.",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600),
)
MODEL_TRAINING_DURATION = Histogram(
    "bms_model_training_duration_seconds",
    "Wall time to train and evaluate one model, by target and algorithm.",
    ["target", "algorithm"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)

# Chat / LLM
LLM_CACHE_REQUESTS = Counter(
    "bms_llm_cache_requests_total", "Chat questions looked up in the cache, by result.", ["result"]
)
LLM_TOKENS = Counter(
    "bms_llm_tokens_total", "LLM tokens used, by provider, model and kind.", ["provider", "model", "kind"]
)
LLM_REQUESTS = Counter(
    "bms_llm_requests_total", "LLM calls, by provider, model and outcome.", ["provider", "model", "outcome"]
)
LLM_COST = Counter("bms_llm_cost_usd_total", "Estimated LLM cost in USD, by provider and model.", ["provider", "model"])
LLM_CIRCUIT_STATE = Gauge(
    "bms_llm_circuit_state",
    "Circuit breaker of each LLM provider: 0 closed, 1 half-open, 2 open (skipped).",
    ["provider"],
    multiprocess_mode="liveall",
)
CHAT_LATENCY = Histogram(
    "bms_chat_latency_seconds",
    "Time to answer a chat question, by cache result.",
    ["cache"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30),
)

# Scheduling
SCHEDULE_JOB_DURATION = Histogram(
    "bms_schedule_job_duration_seconds",
    "Wall time of a schedule optimisation job.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120),
)
SCHEDULE_GAP = Gauge("bms_schedule_gap_ratio", "Gap of the last optimised schedule to its upper bound (0.01 = 1%).")
SCHEDULE_JOBS = Counter("bms_schedule_jobs_total", "Schedule optimisation jobs finished, by status.", ["status"])

# Celery
CELERY_TASKS = Counter(
    "bms_celery_tasks_total", "Celery tasks finished, by task name and outcome.", ["task", "outcome"]
)
CELERY_TASKS_PUBLISHED = Counter(
    "bms_celery_tasks_published_total", "Celery tasks sent to the broker by this process, by task name.", ["task"]
)
# Declared here, not registered: bms.celery_metrics.QueueDepthCollector reads it from the broker on each scrape.
CELERY_QUEUE_DEPTH = Gauge("bms_celery_queue_depth", "Messages waiting in a Celery queue.", ["queue"], registry=None)

# Data
DATA_VERSION = Gauge("bms_data_version", "Current broadcast data version.")
HISTORY_STATE_BUILDS = Counter(
    "bms_history_state_builds_total",
    "Serving history state preparations after a data change (predictions.lookups.history_prebuild), by outcome: "
    "built, ready (already there), stale (the data changed again), failed.",
    ["outcome"],
)
HISTORY_STATE_BUILD_SECONDS = Histogram(
    "bms_history_state_build_seconds",
    "Wall time of a full build of every target's serving history state from the airings.",
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600),
)


Families = TypeVar("Families", bound=tuple[Metric, ...])


class DatabaseCollector(Collector, Generic[Families]):
    """Metrics read from the database at every scrape, so every process shows the truth.

    A change made in a worker, and a restart, change nothing here. An app subclasses this with its
    families (``families``: names and help only) and how to fill them (``fill``: a few small queries);
    the project wiring registers it (``collector_register``, from ``bms/wiring.py``). /metrics answers
    while the database is down: the families are then empty (the database's own alert says why).
    """

    def families(self) -> Families:
        raise NotImplementedError

    def fill(self, families: Families) -> None:
        raise NotImplementedError

    def collect(self) -> Iterator[Metric]:
        from django.apps import apps

        families = self.families()
        if apps.ready:
            try:
                self.fill(families)
            except Exception:
                logger.warning("%s unavailable", type(self).__name__, exc_info=True)
        yield from families

    def describe(self) -> list[Metric]:
        # Names only: registering the collector must not query the database.
        return list(self.families())


COLLECTORS: list[DatabaseCollector[Any]] = []


# Every collector that reads the truth at scrape time (the apps' DatabaseCollectors, the broker's queue depth):
# /metrics asks them in every mode.
SCRAPE_COLLECTORS: list[Collector] = []


def scrape_collector_register(collector: Collector) -> None:
    """Register a scrape-time collector with the default registry and with /metrics in multiprocess mode."""
    REGISTRY.register(collector)
    SCRAPE_COLLECTORS.append(collector)


def collector_register(collector: DatabaseCollector[Any]) -> None:
    """Register an app's collector with the default registry, once per class (bms/wiring.py)."""
    if any(type(c) is type(collector) for c in COLLECTORS):
        return
    scrape_collector_register(collector)
    COLLECTORS.append(collector)


class _WorkersCollector(Collector):
    """Every worker's values from the multiprocess directory, and each ``bms_*`` family declared.

    A family with no values in any worker yet (an LLM counter before the first chat) has no file there;
    it is still declared, as the default registry declares it, so dashboards and alerts find the name.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        seen: set[str] = set()
        for family in MultiProcessCollector(None, path=self.directory).collect():
            seen.add(family.name)
            yield family
        for metric in _DECLARED:
            for family in metric.describe():
                if family.name not in seen:
                    seen.add(family.name)
                    yield family


class _ServerProcessesCollector(Collector):
    """CPU and memory of the whole server: its root process and all the root's children.

    Under gunicorn the worker answering the scrape is a child: the root is its parent, the master. A
    Celery worker's main process answers its own /metrics: it is the root, its pool processes the
    children. prometheus_client's own process collector would report only the process that answers.
    """

    def __init__(self, *, root_is_parent: bool) -> None:
        self.root_is_parent = root_is_parent

    def collect(self) -> Iterator[Metric]:
        cpu = rss = 0.0
        try:
            root = psutil.Process(os.getppid() if self.root_is_parent else os.getpid())
            members = [root, *root.children()]
        except psutil.Error:
            members = [psutil.Process()]
        for member in members:
            try:
                with member.oneshot():
                    times = member.cpu_times()
                    cpu += times.user + times.system
                    rss += member.memory_info().rss
            except psutil.Error:  # a worker that exited between the listing and the read
                continue
        yield CounterMetricFamily("process_cpu_seconds", "Total user and system CPU time spent in seconds.", cpu)
        yield GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.", rss)


def exposition_registry(multiprocess_dir: str, *, server: Literal["web", "worker"] = "web") -> CollectorRegistry:
    """What a /metrics serves: the default registry, or in multiprocess mode all processes' values added up.

    ``server="web"``: gunicorn's /metrics (a worker answers; the scrape-time collectors run here).
    ``server="worker"``: the Celery worker's metrics port (the main process answers; queue depth and the
    database gauges are left to the web process, so each family has one source).
    """
    if not multiprocess_dir:
        return REGISTRY
    registry = CollectorRegistry()
    registry.register(_WorkersCollector(multiprocess_dir))
    registry.register(_ServerProcessesCollector(root_is_parent=server == "web"))
    if server == "web":
        for collector in SCRAPE_COLLECTORS:
            registry.register(collector)
    return registry


_DECLARED = [m for m in list(globals().values()) if isinstance(m, MetricWrapperBase) and m is not CELERY_QUEUE_DEPTH]
