"""A killed worker: the redelivered message runs its job again, a duplicate does not, the sweep ends lost jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from scheduling.models import OptimizationJob
from scheduling.services import optimization_job_run, optimization_jobs_sweep, optimization_stale_seconds
from scheduling.tasks import optimization_jobs_sweep as sweep_task
from tests.scheduling.factories import catalogue_factory, channel_factory, fake_value_matrices

FAST = {"time_budget": 5, "generations": 10, "population": 8, "top_k": 1, "pareto": False, "max_per_day": 1}
Status = OptimizationJob.Status


@pytest.fixture(autouse=True)
def _fake_matrices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("scheduling.matrices.value_matrices", fake_value_matrices)


@pytest.fixture
def queued(db: Any, analyst_client: APIClient) -> OptimizationJob:
    channel = channel_factory(code="sched")
    catalogue_factory(channel=channel, n=12)
    body = {"channel": "sched", "date": "2025-03-08", "daypart": "prime_time", **FAST}
    response = analyst_client.post("/api/v1/schedules/optimize", body, format="json")  # on_commit not run
    assert response.status_code == 202
    return OptimizationJob.objects.get(pk=response.json()["id"])


def test_the_message_that_claimed_a_job_runs_it_again_after_its_worker_died(queued: OptimizationJob) -> None:
    OptimizationJob.objects.filter(pk=queued.pk).update(
        status=Status.RUNNING, claimed_by="task-a", progress_generation=4
    )
    assert optimization_job_run(job_id=queued.pk, token="task-b") is None  # another message: skipped
    job = optimization_job_run(job_id=queued.pk, token="task-a")  # the same message, redelivered
    assert job is not None
    assert (job.status, job.claimed_by) == (Status.SUCCEEDED, "task-a")
    assert job.result is not None
    assert job.progress_generation == job.result["generations"] > 0  # ran from the start, not from generation 4
    assert len(job.result["schedules"]) == 1
    assert optimization_job_run(job_id=queued.pk, token="task-a") is None  # done: never again


def test_the_sweep_fails_jobs_whose_worker_and_message_were_lost(queued: OptimizationJob) -> None:
    stale = timezone.now() - timedelta(seconds=optimization_stale_seconds() + 60)
    lost = OptimizationJob.objects.create(
        channel=queued.channel, params=queued.params, status=Status.RUNNING, heartbeat_at=stale, claimed_by="t"
    )
    busy = OptimizationJob.objects.create(
        channel=queued.channel, params=queued.params, status=Status.RUNNING, heartbeat_at=timezone.now()
    )
    OptimizationJob.objects.filter(pk=queued.pk).update(created_at=stale)
    assert sweep_task() == {"failed": [lost.pk, queued.pk]}
    lost.refresh_from_db()
    queued.refresh_from_db()
    busy.refresh_from_db()
    assert (lost.status, lost.error) == (Status.FAILED, "its worker was lost (no progress for too long)")
    assert (queued.status, queued.error) == (Status.FAILED, "never started (its message was lost)")
    assert (busy.status, busy.error, busy.finished_at) == (Status.RUNNING, "", None)
    assert optimization_jobs_sweep() == {"failed": []}


def test_the_sweep_waits_longer_than_a_redelivery_takes(settings: Any) -> None:
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert visibility > settings.CELERY_TASK_LONGEST_SECONDS >= settings.SCHEDULE_TASK_TIME_LIMIT
    assert optimization_stale_seconds() == visibility + settings.SCHEDULE_TASK_TIME_LIMIT


def test_the_sweep_is_scheduled(db: Any) -> None:
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="scheduling: sweep lost optimisation jobs")
    assert (task.task, task.crontab.minute) == ("scheduling.optimization_jobs_sweep", "*/5")
