"""Embedded mode's in-process jobs: without a broker, a task sent with ``delay()`` runs on a thread.

With Redis, ``delay()`` queues a message for a Celery worker and the request returns at once. In the
embedded default there is no broker and Celery runs tasks eagerly, inside the call — so starting a
training run or a schedule optimisation would hold the HTTP request for minutes, with no progress to
watch. With ``JOBS_IN_BACKGROUND`` (default on, off in tests), the task is run eagerly on one of
``JOB_THREADS`` background threads of the process instead; what it starts itself (a training run's
chord) runs inline on that thread, as a worker would run it. The jobs record their own progress and
outcome in the database (runs, jobs), so the pages and the API see them as they would with a worker.
A process exits only after its running jobs finished (``concurrent.futures`` joins its threads).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from celery import Task, uuid
from celery.result import AsyncResult
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_on_job_thread = threading.local()


def _jobs_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=max(1, settings.JOB_THREADS), thread_name_prefix="bms-job")
        return _executor


_P = ParamSpec("_P")
_R = TypeVar("_R", covariant=True)


class BmsTask(Task[_P, _R]):
    """Every task's class (``bms.celery``): sends to the background threads when it would run inline."""

    def apply_async(
        self,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        task_id: str | None = None,
        *more: Any,
        **options: Any,
    ) -> AsyncResult[_R]:
        in_background = self.app.conf.task_always_eager and settings.JOBS_IN_BACKGROUND
        if not in_background or getattr(_on_job_thread, "active", False) or more:
            return super().apply_async(args, kwargs, task_id, *more, **options)
        task_id = task_id or uuid()
        _jobs_executor().submit(self._run_in_background, args, kwargs, task_id, options)
        return self.AsyncResult(task_id)

    def _run_in_background(
        self, args: tuple[Any, ...] | None, kwargs: dict[str, Any] | None, task_id: str, options: dict[str, Any]
    ) -> None:
        _on_job_thread.active = True
        try:
            result = super().apply_async(args, kwargs, task_id=task_id, **options)  # eager: runs here
            if result.failed():
                logger.error("in-process job %s[%s] failed: %r", self.name, task_id, result.result)
        except Exception:
            logger.exception("in-process job %s[%s] failed", self.name, task_id)
        finally:
            _on_job_thread.active = False
            connections.close_all()
