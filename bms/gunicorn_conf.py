"""gunicorn for BMS's HTTP: ``gunicorn -c bms/gunicorn_conf.py`` (docker/Dockerfile, compose, deploy/k8s).

Sync workers on ``bms.wsgi``: each worker process runs one request at a time with Django's own WSGI
handler, so requests never contend for an interpreter lock inside a process. Measured against the custom
ASGI handler it replaced (docs/architecture.md "Serving", bench/predict.py): 745 predict req/s at 16
connections with a p99 of 30.9 ms, against 745 req/s and 39.7 ms; gthread workers missed the target
(p99 80.3 ms). WebSockets are not served here: uvicorn runs ``bms.asgi`` for ``/ws/`` only.

The worker count is gunicorn's own ``WEB_CONCURRENCY`` (set in the image, compose and the manifests to
2 x the container's cores + 1: a sync worker waiting on the database or Redis leaves its core to the
others). gunicorn reads ``PORT`` for its bind address the same way.

Metrics: every worker has its own Prometheus values, so the container runs prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``): each worker writes its values to files there and
/metrics (``bms.metrics.exposition_registry``) adds them up. The master clears the directory when it
starts and marks a worker's files dead when it exits, so a restarted worker's gauges do not linger.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

wsgi_app = "bms.wsgi:application"
worker_class = "sync"
# No keepalive setting: sync workers close each connection after its response (a busy worker must not
# sit on an idle client), so the proxy in front opens one per request on the local network.
# A worker that does not report for this long is restarted. Long work (training, LLM answers with their own
# timeouts) runs on Celery workers or inside its own limits, so only a stuck process gets here.
timeout = 120
graceful_timeout = 25  # inside Kubernetes' 30 s termination grace period
accesslog = None  # bms.access_log writes one JSON line per request
# No proxy headers are believed here: bms.client_ip reads X-Forwarded-For from TRUSTED_PROXIES only, and
# SECURE_PROXY_SSL_HEADER decides about X-Forwarded-Proto.
forwarded_allow_ips = ""
# Bodies are parsed by Django with its own limits; these only stop absurd request lines and headers early.
limit_request_line = 8190
limit_request_fields = 100


def _multiproc_dir() -> str:
    # Read before Django starts (this file is gunicorn's, not the project's): the same variable that
    # prometheus_client reads in every worker.
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def metrics_dir_reset(directory: str) -> None:
    """Create the multiprocess directory if needed and delete the value files (``*.db``) and folders in it.

    Also the Celery worker's reset (bms/celery_metrics.py). It lives here because gunicorn's master reads
    this file before any of BMS is imported (importing ``bms`` would create the metrics in the master).
    """
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for child in path.iterdir():
        if child.is_file() and child.suffix == ".db":
            child.unlink()
        elif child.is_dir():
            shutil.rmtree(child)


def on_starting(server: Any) -> None:
    """Empty the metrics directory of a previous master's workers (a restarted container keeps /tmp)."""
    directory = _multiproc_dir()
    if directory:
        metrics_dir_reset(directory)


def post_worker_init(worker: Any) -> None:
    # The worker has imported the app and loaded the models (bms.wsgi): it takes requests from now on.
    worker.log.info("worker ready (pid: %s)", worker.pid)


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: drop its live gauges (its counters stay, so the sums never go down)."""
    if _multiproc_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
