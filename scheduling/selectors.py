"""Reads of this app."""

from __future__ import annotations

from django.db.models import QuerySet

from bms.errors import NotFoundError
from bms.roles import Role, has_role
from bms.users import RequestUser
from scheduling.models import OptimizationJob, Schedule


def optimization_job_get(*, job_id: int, user: RequestUser) -> OptimizationJob:
    """A job its creator (or an admin) may see; anyone else gets the same 404 as for a missing id."""
    job = OptimizationJob.objects.select_related("channel", "created_by").filter(pk=job_id).first()
    if job is None or not (job.created_by_id == getattr(user, "pk", None) or has_role(user, Role.ADMIN)):
        raise NotFoundError(f"No optimisation job {job_id}.", details={"id": job_id})
    return job


def schedule_list(*, channel: str | None = None) -> QuerySet[Schedule]:
    qs = Schedule.objects.select_related("channel", "created_by")
    if channel:
        qs = qs.filter(channel__code=channel)
    return qs


def schedule_get(*, schedule_id: int) -> Schedule:
    schedule = (
        Schedule.objects.select_related("channel").prefetch_related("entries__program").filter(pk=schedule_id).first()
    )
    if schedule is None:
        raise NotFoundError(f"No schedule {schedule_id}.", details={"id": schedule_id})
    return schedule
