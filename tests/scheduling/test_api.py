"""The job API: create (202), run (eager on commit), read, cancel, save; invalid requests are 4xx."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rest_framework.test import APIClient

from scheduling.models import OptimizationJob, Schedule, ScheduleEntry
from scheduling.services import optimization_job_run
from tests.chat.fakes import result_of
from tests.conftest import client_for, make_user
from tests.scheduling.factories import (
    airing_factory,
    catalogue_factory,
    channel_factory,
    fake_value_matrices,
    program_factory,
)

NY = ZoneInfo("America/New_York")
URL = "/api/v1/schedules/optimize"
FAST = {"time_budget": 5, "generations": 20, "population": 8, "top_k": 2, "pareto": False, "max_per_day": 1}


@pytest.fixture(autouse=True)
def _fake_matrices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("scheduling.matrices.value_matrices", fake_value_matrices)


@pytest.fixture
def channel(db: Any) -> Any:
    channel = channel_factory(code="sched")
    catalogue_factory(channel=channel, n=12)
    return channel


def _post(client: APIClient, body: dict[str, Any], django_capture_on_commit_callbacks: Any) -> Any:
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(URL, body, format="json")


def test_it_optimises_prime_time_and_reports_everything(
    analyst_client: APIClient, channel: Any, django_capture_on_commit_callbacks: Any
) -> None:
    programs = list(channel.programs.order_by("pk"))
    start = datetime(2025, 3, 8, 20, 0, tzinfo=NY)
    airing_factory(program=programs[0], start=start)
    body = {"channel": "sched", "date": "2025-03-08", "daypart": "prime_time", **FAST, "pareto": True}
    response = _post(analyst_client, body, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    job_id = response.json()["id"]

    detail = analyst_client.get(f"/api/v1/schedules/jobs/{job_id}")
    assert detail.status_code == 200
    data = detail.json()
    assert data["status"] == "succeeded"
    assert data["channel"] == "sched"
    assert data["progress"]["max"] == 20
    result = data["result"]
    assert len(result["schedules"]) == 2
    best = result["schedules"][0]
    assert [e["start"] for e in best["entries"]] == [
        "2025-03-08T20:00:00-05:00",
        "2025-03-08T20:30:00-05:00",
        "2025-03-08T21:00:00-05:00",
        "2025-03-08T21:30:00-05:00",
        "2025-03-08T22:00:00-05:00",
        "2025-03-08T22:30:00-05:00",
    ]
    assert len({e["program_id"] for e in best["entries"]}) == 6  # max 1 airing a day
    assert result["constraint_report"]["hard"]["violations"] == 0
    assert result["constraint_report"]["soft"]["run_violations"] == 0
    assert result["bound"] >= result["totals"]["objective"] > 0
    assert 0 <= result["gap"] <= 0.01
    assert result["baselines"]["greedy"]["improvement_pct"] >= 0
    current = result["baselines"]["current"]
    assert current["airings"] == 1
    assert current["window_minutes"] == 180
    assert [e["title"] for e in current["entries"]] == [programs[0].title]
    assert current["improvement_pct"] is not None
    assert result["runtime_seconds"] > 0
    assert len(result["pareto"]) >= 1


def test_explicit_slots_fixed_programs_and_goals_are_honoured(
    analyst_client: APIClient, channel: Any, django_capture_on_commit_callbacks: Any
) -> None:
    programs = list(channel.programs.order_by("pk"))
    news = programs[0]
    slots = [{"start": f"2025-03-10T{h:02d}:{m:02d}:00-04:00", "length": 30} for h in (17, 18) for m in (0, 30)]
    body = {
        "channel": "sched",
        "slots": slots,
        "fixed": [{"start": "2025-03-10T18:00:00-04:00", "program": news.external_id}],
        "goals": [{"genre": "sports", "daypart": "prime_access", "weight": 5.0}],
        "weights": {"revenue": 1, "audience": 0.5},
        **FAST,
    }
    response = _post(analyst_client, body, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    job = OptimizationJob.objects.get(pk=response.json()["id"])
    assert job.result is not None
    entries = job.result["schedules"][0]["entries"]
    assert entries[2]["program_id"] == news.pk
    assert job.result["constraint_report"]["soft"]["goals_met"] == {"goal 1": 1}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"channel": "nope", "date": "2025-03-08"}, "unknown_channel"),
        ({"channel": "empty", "date": "2025-03-08"}, "no_candidates"),
        ({"channel": "sched"}, "validation_error"),
        ({"channel": "sched", "date": "2025-03-08", "colour": "red"}, "validation_error"),
        ({"channel": "sched", "date": "2025-03-08", "candidates": ["NOPE1"]}, "unknown_program"),
        ({"channel": "sched", "date": "2025-03-08", "start_time": "25:00"}, "invalid_time"),
    ],
)
def test_invalid_requests_are_refused_with_the_reason(
    analyst_client: APIClient, channel: Any, body: dict[str, Any], code: str
) -> None:
    channel_factory(code="empty")
    response = analyst_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert OptimizationJob.objects.count() == 0


def test_impossible_constraints_are_refused_with_the_conflict_report(analyst_client: APIClient, channel: Any) -> None:
    # a whole day (20 hours) of twelve half-hour programs, each at most once a day
    body = {"channel": "sched", "date": "2025-03-08", "max_per_day": 1}
    response = analyst_client.post(URL, body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "infeasible_constraints"
    (conflict,) = error["details"]["conflicts"]
    assert conflict["day"] == 0
    assert "max_per_day" in conflict["constraints"]
    assert conflict["message"] == (
        "day 0: 1200 minutes cannot be filled end to end by the 12 programs allowed in them "
        "(lengths [30] min, at most 360 minutes within the airing limits)"
    )
    assert conflict["slots"] == list(range(40))
    assert conflict["programs"] == [p.external_id for p in channel.programs.order_by("pk")]
    assert OptimizationJob.objects.count() == 0


def test_a_rating_window_nothing_fits_names_the_window(analyst_client: APIClient, channel: Any) -> None:
    body = {
        "channel": "sched",
        "date": "2025-03-08",
        "daypart": "prime_time",
        "rating_windows": [{"start": "20:00", "end": "23:00", "ratings": ["R"]}],
    }
    response = analyst_client.post(URL, body, format="json")
    assert response.status_code == 400
    conflicts = response.json()["error"]["details"]["conflicts"]
    assert len(conflicts) == 6
    assert {tuple(c["constraints"]) for c in conflicts} == {("content_rating_window",)}


def test_a_job_can_be_cancelled_while_queued_and_then_does_not_run(analyst_client: APIClient, channel: Any) -> None:
    response = analyst_client.post(
        URL, {"channel": "sched", "date": "2025-03-08", "daypart": "prime_time", **FAST}, format="json"
    )
    job_id = response.json()["id"]  # on_commit not run: still queued
    cancel = analyst_client.post(f"/api/v1/schedules/jobs/{job_id}/cancel")
    assert cancel.status_code == 200
    assert cancel.json()["status"] == "cancelled"
    assert optimization_job_run(job_id=job_id) is None
    job = OptimizationJob.objects.get(pk=job_id)
    assert job.status == "cancelled"
    assert job.result is None
    again = analyst_client.post(f"/api/v1/schedules/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_state"


def test_a_cancel_during_the_run_stops_the_ga_and_is_kept(
    analyst_client: APIClient, channel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = analyst_client.post(
        URL, {"channel": "sched", "date": "2025-03-08", "daypart": "prime_time", **FAST}, format="json"
    )
    job_id = response.json()["id"]
    from scheduling import services
    from scheduling.timeline_ga import optimize_timeline

    real = optimize_timeline

    def optimize_then_cancel(timeline: Any, params: Any, progress: Any) -> Any:
        OptimizationJob.objects.filter(pk=job_id).update(status="cancelled")
        assert progress(1, params.generations) is False
        return real(timeline, params, progress=progress)

    monkeypatch.setattr(services, "optimize_timeline", optimize_then_cancel)
    optimization_job_run(job_id=job_id)
    job = OptimizationJob.objects.get(pk=job_id)
    assert job.status == "cancelled"
    assert job.result is None


def test_a_saved_proposal_keeps_its_entries(
    analyst_client: APIClient, channel: Any, django_capture_on_commit_callbacks: Any
) -> None:
    response = _post(
        analyst_client,
        {"channel": "sched", "date": "2025-03-08", "daypart": "prime_time", **FAST},
        django_capture_on_commit_callbacks,
    )
    job_id = response.json()["id"]
    saved = analyst_client.post(
        f"/api/v1/schedules/jobs/{job_id}/save", {"name": "Saturday prime", "index": 1}, format="json"
    )
    assert saved.status_code == 201
    body = saved.json()
    assert (body["name"], body["entries"], body["job"]) == ("Saturday prime", 6, job_id)
    schedule = Schedule.objects.get(pk=body["id"])
    job = OptimizationJob.objects.get(pk=job_id)
    assert job.result is not None
    expected = [(e["position"], e["program_id"]) for e in job.result["schedules"][1]["entries"]]
    assert list(schedule.entries.values_list("position", "program_id")) == expected
    bad = analyst_client.post(f"/api/v1/schedules/jobs/{job_id}/save", {"name": "x", "index": 9}, format="json")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_index"
    assert (Schedule.objects.count(), ScheduleEntry.objects.count()) == (1, 6)


def test_saving_a_job_that_has_not_succeeded_is_refused(analyst_client: APIClient, channel: Any) -> None:
    job_id = analyst_client.post(
        URL, {"channel": "sched", "date": "2025-03-08", "daypart": "prime_time", **FAST}, format="json"
    ).json()["id"]
    response = analyst_client.post(f"/api/v1/schedules/jobs/{job_id}/save", {"name": "x"}, format="json")
    assert response.status_code == 409
    assert Schedule.objects.count() == 0


def test_other_analysts_cannot_see_a_job_but_admins_can(
    analyst_client: APIClient, admin_client_api: APIClient, channel: Any
) -> None:
    job_id = analyst_client.post(
        URL, {"channel": "sched", "date": "2025-03-08", "daypart": "prime_time", **FAST}, format="json"
    ).json()["id"]
    other = client_for(make_user("other", "analyst"))
    assert other.get(f"/api/v1/schedules/jobs/{job_id}").status_code == 404
    assert other.post(f"/api/v1/schedules/jobs/{job_id}/cancel").status_code == 404
    assert admin_client_api.get(f"/api/v1/schedules/jobs/{job_id}").status_code == 200
    assert analyst_client.get("/api/v1/schedules/jobs/999999").status_code == 404


def test_viewers_may_not_optimise(viewer_client: APIClient, channel: Any) -> None:
    response = viewer_client.post(URL, {"channel": "sched", "date": "2025-03-08"}, format="json")
    assert response.status_code == 403
    assert OptimizationJob.objects.count() == 0


def test_a_prediction_failure_fails_the_job_with_the_reason(
    analyst_client: APIClient, channel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bms.errors import ConflictError

    def no_model(**_: Any) -> Any:
        raise ConflictError("There is no production model for target 'revenue'.", code="no_production_model")

    monkeypatch.setattr("scheduling.matrices.value_matrices", no_model)
    job_id = analyst_client.post(
        URL, {"channel": "sched", "date": "2025-03-08", "daypart": "prime_time", **FAST}, format="json"
    ).json()["id"]
    job = optimization_job_run(job_id=job_id)
    assert job is not None
    assert job.status == "failed"
    assert job.error == "There is no production model for target 'revenue'."
    assert job.result == {"error": {"code": "no_production_model", "details": {}}}


def test_every_returned_schedule_passes_the_checker(
    analyst_client: APIClient, channel: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from scheduling.build import timeline_spec_build
    from scheduling.requests import ScheduleRequest
    from scheduling.timeline import check_timeline, start_array

    job_id = _post(
        analyst_client,
        {
            "channel": "sched",
            "date": "2025-03-08",
            "start_time": "06:00",
            "end_time": "10:00",
            "max_per_day": 2,
            **FAST,
        },
        django_capture_on_commit_callbacks,
    ).json()["id"]
    job = OptimizationJob.objects.get(pk=job_id)
    assert job.status == "succeeded", job.error
    spec = timeline_spec_build(ScheduleRequest.from_json(job.params))
    timeline = spec.zeros()
    index = {p.pk: i for i, p in enumerate(spec.programs)}
    cells = {s.isoformat(): c for c, s in enumerate(spec.starts)}
    assert job.result is not None
    for sched in job.result["schedules"]:
        y = start_array(timeline, [(cells[e["start"]], index[e["program_id"]]) for e in sched["entries"]])
        assert check_timeline(timeline, y) == []
        assert sum(e["length_minutes"] for e in sched["entries"]) == 240


def test_the_service_takes_a_typed_request_and_a_job_stores_it_as_json(analyst: Any, channel: Any) -> None:
    from bms.errors import ApplicationError
    from scheduling.requests import ScheduleRequest
    from scheduling.services import optimization_job_create

    request = ScheduleRequest.from_json({"channel": "sched", "date": "2025-03-08", "daypart": "prime_time"})
    job = optimization_job_create(user=analyst, request=request)
    assert job.status == "queued"
    assert job.params["date"] == "2025-03-08"
    assert job.params["max_per_day"] == 2  # the defaults are the dataclass's, stored once
    assert "max_per_week" not in job.params
    assert ScheduleRequest.from_json(job.params) == request
    with pytest.raises(ApplicationError) as info:
        ScheduleRequest.from_json({"channel": "sched", "date": "08/03/2025"})
    assert info.value.code == "invalid_request"
    assert info.value.details == {"field": "date"}
    assert OptimizationJob.objects.count() == 1


def test_the_chat_tool_answers_a_whole_day_with_its_timeline(
    analyst: Any, channel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat.tools import run_tool

    def worker_runs_it(job: Any) -> None:  # what a worker does while the tool waits
        optimization_job_run(job_id=job.pk)
        job.refresh_from_db()

    monkeypatch.setattr("chat.tools._wait_for_job", worker_runs_it)

    programs = list(channel.programs.order_by("pk"))
    for n in range(3):  # twelve half-hours twice a day do not fill 20 hours; three films do the rest
        program_factory(channel=channel, title=f"Film {n}", genre="movie", content_rating="PG", duration_minutes=120)
    airing_factory(program=programs[1], start=datetime(2025, 3, 8, 6, 0, tzinfo=NY))
    call = run_tool(
        user=analyst, name="optimize_schedule", arguments={"channel": "sched", "date": "2025-03-08", "daypart": None}
    )
    assert call.ok, call.error
    job = OptimizationJob.objects.get()
    assert call.result is not None
    assert result_of(call)["status"] == "succeeded", (job.error, job.result)
    lines = result_of(call)["proposal"]["timeline"]
    assert lines[0].startswith("06:00-")
    assert lines[-1][6:11] == "02:00"
    # consecutive: each airing starts where the one before it ended
    assert all(a[6:11] == b[:5] for a, b in pairwise(lines))
    assert result_of(call)["proposal"]["vs_current_pct"] is not None
    job = OptimizationJob.objects.get(pk=result_of(call)["job_id"])
    assert "daypart" not in job.params


def test_a_timeline_keeps_its_pin_fills_with_the_filler_and_refuses_an_r_film_before_22(
    analyst_client: APIClient, channel: Any, django_capture_on_commit_callbacks: Any
) -> None:
    film = program_factory(channel=channel, title="Night Film", genre="movie", content_rating="R", duration_minutes=90)
    filler = program_factory(channel=channel, title="Station Break", genre="other", duration_minutes=30)
    base = {"channel": "sched", "date": "2025-03-08", "start_time": "20:00", "end_time": "01:00", **FAST}
    # the film pinned at 21:00 would be on air 21:00-22:30, before R opens at 22:00
    refused = analyst_client.post(
        URL, {**base, "fixed": [{"start": "2025-03-08T21:00:00-05:00", "program": film.external_id}]}, format="json"
    )
    assert refused.status_code == 400
    conflict = refused.json()["error"]["details"]["conflicts"][0]
    assert conflict["constraints"] == ["pinned_airing", "content_rating_window"]
    assert conflict["programs"] == [film.external_id]
    assert OptimizationJob.objects.count() == 0
    # at 22:00 it is kept; two half-hours once a day and the film cannot fill five hours: the filler does
    two = [p.external_id for p in channel.programs.order_by("pk")[:2]]
    body = {
        **base,
        "candidates": [*two, film.external_id],
        "fixed": [{"start": "2025-03-08T22:00:00-05:00", "program": film.external_id}],
        "filler": filler.external_id,
    }
    response = _post(analyst_client, body, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    job = OptimizationJob.objects.get(pk=response.json()["id"])
    assert job.status == "succeeded", job.error
    assert job.result is not None
    for schedule in job.result["schedules"]:
        entries = schedule["entries"]
        assert [(e["start"][11:16], e["end"][11:16]) for e in entries if e["program_id"] == film.pk] == [
            ("22:00", "23:30")
        ]
        assert sum(e["length_minutes"] for e in entries) == 300
        assert sum(e["program_id"] == filler.pk for e in entries) >= 5
        assert schedule["hard_violations"] == []
