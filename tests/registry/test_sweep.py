"""registry.training_runs_sweep: runs whose chord callback or worker was lost are moved on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from registry.models import TrainingJob, TrainingRun
from registry.services import SweepResult, training_run_start, training_runs_sweep
from registry.tasks import training_runs_sweep as sweep_task

pytestmark = pytest.mark.django_db


def _run(status: str, *, started_minutes_ago: float, job_status: str, job_minutes_ago: float) -> TrainingRun:
    run = training_run_start(trigger="manual", targets=["rating"], algorithms=["elasticnet"], dispatch=False)
    now = timezone.now()
    TrainingRun.objects.filter(pk=run.pk).update(status=status, started_at=now - timedelta(minutes=started_minutes_ago))
    moment = now - timedelta(minutes=job_minutes_ago)
    finished = job_status in (TrainingJob.Status.SUCCEEDED, TrainingJob.Status.FAILED)
    run.jobs.update(status=job_status, started_at=moment, finished_at=moment if finished else None)
    if finished:
        TrainingRun.objects.filter(pk=run.pk).update(models_done=1, models_failed=1)
    run.refresh_from_db()
    return run


def test_a_run_whose_jobs_all_ended_long_ago_is_finished(settings) -> None:
    run = _run("running", started_minutes_ago=60, job_status="failed", job_minutes_ago=30)
    assert training_runs_sweep() == SweepResult(finished=[run.pk], failed=[])
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED  # finished: its only job had failed, so no model
    assert run.selection["rating"]["reason"] == "no model was trained for this target"
    assert run.finished_at is not None


def test_a_run_idle_past_the_stale_limit_is_finished_and_its_open_job_failed(settings) -> None:
    settings.TRAINING_RUN_STALE_MINUTES = 120
    run = _run("running", started_minutes_ago=200, job_status="running", job_minutes_ago=150)
    assert training_runs_sweep().finished == [run.pk]
    job = run.jobs.get()
    assert (job.status, job.error) == (TrainingJob.Status.FAILED, "did not finish (worker lost?)")


def test_runs_still_working_are_left_alone(settings) -> None:
    settings.TRAINING_RUN_STALE_MINUTES = 120
    busy = _run("running", started_minutes_ago=90, job_status="running", job_minutes_ago=20)
    just_done = _run("running", started_minutes_ago=30, job_status="failed", job_minutes_ago=2)
    queued = training_run_start(trigger="manual", targets=["rating"], algorithms=["elasticnet"], dispatch=False)
    assert sweep_task() == {"finished": [], "failed": []}
    for run in (busy, just_done):
        run.refresh_from_db()
        assert run.status == TrainingRun.Status.RUNNING
    queued.refresh_from_db()
    assert queued.status == TrainingRun.Status.QUEUED


def test_a_run_queued_past_the_stale_limit_is_failed(settings) -> None:
    settings.TRAINING_RUN_STALE_MINUTES = 120
    run = training_run_start(trigger="manual", targets=["rating"], algorithms=["elasticnet"], dispatch=False)
    assert training_runs_sweep(now=timezone.now() + timedelta(minutes=121)) == SweepResult(finished=[], failed=[run.pk])
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert run.error == "never started within 120 minutes"


def test_the_sweep_is_scheduled() -> None:
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="registry: sweep stuck training runs")
    assert task.task == "registry.training_runs_sweep"
    assert task.enabled
    assert (task.crontab.minute, task.crontab.hour) == ("*/10", "*")
