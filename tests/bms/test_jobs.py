"""Embedded mode's in-process jobs (bms.jobs): without a broker, delay() runs the task on a thread."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from rest_framework.test import APIClient

from bms.celery import app
from scheduling.models import OptimizationJob
from tests.conftest import client_for, make_user
from tests.scheduling.factories import catalogue_factory, channel_factory, fake_value_matrices

ran: list[tuple[str, str]] = []


@app.task(name="tests.jobs.inner")
def inner() -> None:
    ran.append(("inner", threading.current_thread().name))


@app.task(name="tests.jobs.outer")
def outer() -> None:
    ran.append(("outer", threading.current_thread().name))
    inner.delay()


@pytest.fixture
def eager(eager_tasks: None) -> None:
    ran.clear()


def _wait(predicate: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_task_and_what_it_sends_run_on_one_background_thread(eager: None, settings: Any) -> None:
    settings.JOBS_IN_BACKGROUND = True
    outer.delay()
    _wait(lambda: len(ran) == 2)
    (first, first_thread), (second, second_thread) = ran
    assert (first, second) == ("outer", "inner")
    assert first_thread.startswith("bms-job")
    assert second_thread == first_thread
    assert threading.current_thread().name not in (first_thread, second_thread)


def test_without_the_setting_tasks_run_inline(eager: None, settings: Any) -> None:
    settings.JOBS_IN_BACKGROUND = False
    outer.delay()
    me = threading.current_thread().name
    assert ran == [("outer", me), ("inner", me)]


@pytest.mark.django_db(transaction=True)
def test_starting_an_optimisation_returns_before_it_runs(
    eager: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.JOBS_IN_BACKGROUND = True
    monkeypatch.setattr("scheduling.matrices.value_matrices", fake_value_matrices)
    from scheduling import services

    go = threading.Event()
    real_run = services.optimization_job_run

    def held_run(*, job_id: int, token: str) -> Any:
        assert go.wait(20)
        return real_run(job_id=job_id, token=token)

    monkeypatch.setattr(services, "optimization_job_run", held_run)
    channel = channel_factory(code="bg")
    catalogue_factory(channel=channel, n=12)
    client: APIClient = client_for(make_user("planner", "analyst"))
    body = {"channel": "bg", "date": "2025-03-08", "daypart": "prime_time", "time_budget": 5, "generations": 10,
            "population": 8, "top_k": 1, "pareto": False, "max_per_day": 1}  # fmt: skip
    response = client.post("/api/v1/schedules/optimize", body, format="json")
    assert response.status_code == 202
    job_id = response.json()["id"]
    assert OptimizationJob.objects.get(pk=job_id).status == "queued"  # the request did not run it
    go.set()
    _wait(lambda: OptimizationJob.objects.get(pk=job_id).status == "succeeded")
    assert client.get(f"/api/v1/schedules/jobs/{job_id}").json()["result"]["schedules"]
