"""Celery tasks of the scheduling app (thin: take an id, call the service)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings


@shared_task(
    name="scheduling.optimization_job_run",
    soft_time_limit=int(settings.SCHEDULE_TIME_BUDGET_SECONDS * 4 + 60),
    time_limit=int(settings.SCHEDULE_TIME_BUDGET_SECONDS * 4 + 120),
)
def optimization_job_run_task(job_id: int) -> str | None:
    """Run one optimisation job; a job that is no longer QUEUED (duplicate delivery, cancelled) is skipped."""
    from scheduling.services import optimization_job_run

    job = optimization_job_run(job_id=job_id)
    return None if job is None else job.status
