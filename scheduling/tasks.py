"""Celery tasks of the scheduling app (thin: take an id, call the service)."""

from __future__ import annotations

from celery import Task, shared_task
from django.conf import settings


@shared_task(
    bind=True,
    name="scheduling.optimization_job_run",
    soft_time_limit=settings.SCHEDULE_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.SCHEDULE_TASK_TIME_LIMIT,
)
def optimization_job_run_task(self: Task[[int], str | None], job_id: int) -> str | None:
    """Run one optimisation job; a job that is no longer QUEUED (duplicate delivery, cancelled) is skipped,
    unless this is the message that claimed it, redelivered after its worker died: it runs again."""
    from scheduling.services import optimization_job_run

    job = optimization_job_run(job_id=job_id, token=str(self.request.id or ""))
    return None if job is None else job.status


@shared_task(name="scheduling.optimization_jobs_sweep")
def optimization_jobs_sweep() -> dict[str, list[int]]:
    """Scheduled every few minutes: fail jobs whose worker and message were both lost."""
    from scheduling.services import optimization_jobs_sweep

    return optimization_jobs_sweep()
