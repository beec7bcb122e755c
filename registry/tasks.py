"""Celery tasks of a training run: dispatch -> one task per model (a chord) -> finish (selection).

Tasks take ids, claim their row with a conditional update and call one service. A job is claimed for
the task id; Celery keeps the id on retry and on redelivery after a lost worker (acks_late +
reject_on_worker_lost), so exactly that message may resume it, and registration is one transaction.
"""

from __future__ import annotations

import logging

from celery import Task, chord, group, shared_task
from celery.exceptions import MaxRetriesExceededError
from django.conf import settings

from registry import run_data, services
from registry.models import ModelVersion, TrainingJob, TrainingRun

logger = logging.getLogger(__name__)

JOB_MAX_RETRIES = 3


@shared_task(bind=True, name="registry.training_run_dispatch", acks_late=True)
def training_run_dispatch(self: Task[[int], str], run_id: int) -> str:
    """Claim the run (QUEUED -> RUNNING), record its dataset, fan out one task per job.

    Redelivered after its worker died before the fan-out (same task id), it resumes the run.
    """
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None:
        return "missing"
    try:
        if not services.training_run_prepare(run=run, token=str(self.request.id or "")):
            return "already-claimed"
        job_ids = dispatch_order(run)
        header = group(training_job_run.s(job_id) for job_id in job_ids)
        chord(header)(training_run_complete.si(run_id))
        services.training_run_dispatched(run=run)
    except Exception as exc:
        logger.exception("dispatch of run %s failed", run_id)
        services.training_run_fail(run=run, error=f"dispatch failed: {type(exc).__name__}: {exc}")
        raise
    return "dispatched"


def dispatch_order(run: TrainingRun) -> list[int]:
    """The run's queued jobs in the order they are queued: target by target (a worker process reuses a
    target's dataset for its next job, ``registry.run_data``), and within a target the algorithm that took
    longest in the latest run first, so the run ends on short jobs and no worker waits long for the last
    one (longest-processing-time-first). Algorithms never timed yet go first (their cost is unknown)."""
    jobs = list(run.jobs.filter(status=TrainingJob.Status.QUEUED).values_list("id", "target", "algorithm"))
    previous = ModelVersion.objects.exclude(run=run).exclude(run=None).order_by("-created_at", "-id").first()
    timed: dict[str, list[float]] = {}
    if previous is not None:
        for algorithm, seconds in ModelVersion.objects.filter(run_id=previous.run_id).values_list(
            "algorithm", "training_seconds"
        ):
            timed.setdefault(algorithm, []).append(float(seconds))
    latest = {algorithm: sum(values) / len(values) for algorithm, values in timed.items()}
    targets = {t: i for i, t in enumerate(run.targets)}
    jobs.sort(key=lambda j: (targets.get(j[1], len(targets)), -latest.get(j[2], float("inf")), j[0]))
    return [job_id for job_id, _, _ in jobs]


@shared_task(bind=True, name="registry.training_job_run", acks_late=True, max_retries=JOB_MAX_RETRIES)
def training_job_run(self: Task[[int], dict[str, object]], job_id: int) -> dict[str, object]:
    """Train one model. Never raises (except to retry), so the chord's callback always runs."""
    token = str(self.request.id or f"job-{job_id}")
    job = services.training_job_claim(job_id=job_id, token=token)
    if job is None:
        return {"job_id": job_id, "status": "skipped"}
    try:
        outcome = services.training_job_execute(job=job, token=token)
    except services.RetryableTrainingError as exc:
        try:
            raise self.retry(exc=exc, countdown=2**self.request.retries)
        except MaxRetriesExceededError:
            services.training_job_fail(job=job, token=token, error=f"gave up after retries: {exc}")
            return {"job_id": job_id, "status": TrainingJob.Status.FAILED, "error": str(exc)}
    if not job.run.jobs.filter(status=TrainingJob.Status.QUEUED).exists():
        run_data.release(job.run)  # no job of the run is left to take: free this process's copy
    return {"job_id": job_id, "status": outcome.status, "version_id": outcome.version_id, "error": outcome.error}


@shared_task(bind=True, name="registry.training_run_complete", acks_late=True)
def training_run_complete(self: Task[[int], dict[str, object]], run_id: int) -> dict[str, object]:
    """The chord callback: selection and promotion, run -> SUCCEEDED/PARTIAL/FAILED.

    A job still open here belongs to another delivery (a per-model message redelivered after a worker
    died, or a resumed dispatch's second fan-out): that delivery's callback, or the sweep, finishes
    the run, not this one.
    """
    run = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING).first()
    if run is None:
        return {"run_id": run_id, "status": "not-running"}
    if services.training_run_open_jobs(run=run):
        return {"run_id": run_id, "status": "jobs-still-open"}
    run = services.training_run_finish(run=run)
    return {"run_id": run_id, "status": run.status, "selection": run.selection}


@shared_task(name="registry.training_runs_sweep")
def training_runs_sweep() -> dict[str, list[int]]:
    """Scheduled every few minutes: finish or fail runs whose callback or worker was lost."""
    swept = services.training_runs_sweep()
    return {"finished": swept.finished, "failed": swept.failed}  # the task's result: JSON


@shared_task(name="registry.training_run_nightly")
def training_run_nightly() -> int | None:
    """Scheduled by django-celery-beat (see the registry data migration); respects the on/off setting."""
    if not settings.NIGHTLY_TRAINING_ENABLED:
        return None
    run = services.training_run_start(trigger=TrainingRun.Trigger.NIGHTLY)
    return run.pk
