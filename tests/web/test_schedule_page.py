"""Schedule optimiser page: form -> job (run as a worker would) -> result, save, export."""

import csv
import io

import numpy as np
import pytest

from scheduling.models import OptimizationJob, Schedule
from scheduling.services import optimization_job_run

FORM = {
    "channel": "ch0",
    "date": "2025-03-07",
    "daypart": "prime_time",
    "slot_minutes": "60",
    "max_consecutive_genre": "2",
    "min_genres_per_daypart": "0",
    "max_per_day": "1",
    "weight_revenue": "1",
    "weight_audience": "0.5",
    "weight_balance": "1",
    "time_budget": "1",
    "top_k": "3",
}


def fake_values(*, programs, starts, channel):
    """Revenue/audience grow with the program's index and the slot's position (deterministic)."""
    p = np.arange(1, len(programs) + 1, dtype=float)[:, None]
    s = np.arange(1, len(starts) + 1, dtype=float)[None, :]
    return 1000.0 * p * s, 10.0 * p + s


@pytest.fixture
def fake_matrices(monkeypatch):
    monkeypatch.setattr("scheduling.matrices.value_matrices", fake_values)


def _run_job(client, django_capture_on_commit_callbacks, form=FORM):
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/schedule/", form)
    job = OptimizationJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/schedule/jobs/{job.pk}/"
    optimization_job_run(job_id=job.pk)  # what the Celery worker does with the enqueued id
    return job


@pytest.mark.django_db
def test_the_form_offers_the_channels_and_dayparts(analyst_web, broadcasts):
    html = analyst_web.get("/schedule/").content.decode()
    assert '<option value="ch0">Channel 0</option>' in html
    assert '<option value="prime_time">prime time</option>' in html


@pytest.mark.django_db
def test_an_optimisation_runs_and_its_result_is_shown(
    analyst_web, broadcasts, fake_matrices, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    job = _run_job(analyst_web, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.params["weights"] == {"revenue": 1.0, "audience": 0.5, "balance": 1.0}
    analyst_web.get(f"/schedule/jobs/{job.pk}/")
    with django_assert_max_num_queries(8):
        response = analyst_web.get(f"/schedule/jobs/{job.pk}/")
    html = response.content.decode()
    assert 'data-testid="job-status">succeeded<' in html
    best = job.result["schedules"][0]
    assert f"${best['totals']['revenue']:,.0f}" in html
    timeline = html.split('data-testid="timeline"')[1].split("</form>")[0]
    assert timeline.count('class="tl-row"') == len(best["entries"]) == 3
    for entry in best["entries"]:
        assert f"<strong>{entry['title']}</strong>" in timeline
    assert 'data-source="pareto-data"' in html
    state = analyst_web.get(f"/schedule/jobs/{job.pk}/status").json()
    assert state["status"] == "succeeded"
    assert state["finished"] is True


@pytest.mark.django_db
def test_a_queued_job_shows_progress_and_polls(
    analyst_web, broadcasts, fake_matrices, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        analyst_web.post("/schedule/", FORM)
    job = OptimizationJob.objects.get()
    html = analyst_web.get(f"/schedule/jobs/{job.pk}/").content.decode()
    assert 'data-testid="job-status">queued<' in html
    assert f'data-poll-url="/schedule/jobs/{job.pk}/status" data-poll-done="0"' in html
    assert "Export CSV" not in html


@pytest.mark.django_db
def test_saving_and_exporting_the_best_schedule(
    analyst_web, broadcasts, fake_matrices, django_capture_on_commit_callbacks
):
    job = _run_job(analyst_web, django_capture_on_commit_callbacks)
    response = analyst_web.post(f"/schedule/jobs/{job.pk}/save", {"name": "Friday prime v1", "index": "0"}, follow=True)
    saved = Schedule.objects.get()
    assert saved.name == "Friday prime v1"
    assert saved.entries.count() == 3
    assert f"Saved proposal “Friday prime v1” (#{saved.pk})." in response.content.decode()

    export = analyst_web.get(f"/schedule/jobs/{job.pk}/export.csv")
    assert export["Content-Type"] == "text/csv; charset=utf-8"
    assert export["Content-Disposition"] == f'attachment; filename="schedule-job-{job.pk}-0.csv"'
    lines = export.content.decode().splitlines()
    assert (
        lines[0]
        == "position,start,end,length_minutes,program_id,external_id,title,genre,content_rating,revenue,audience"
    )
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    job.refresh_from_db()
    assert [r["external_id"] for r in rows] == [e["external_id"] for e in job.result["schedules"][0]["entries"]]


@pytest.mark.django_db
def test_saving_without_a_name_changes_nothing(
    analyst_web, broadcasts, fake_matrices, django_capture_on_commit_callbacks
):
    job = _run_job(analyst_web, django_capture_on_commit_callbacks)
    response = analyst_web.post(f"/schedule/jobs/{job.pk}/save", {"name": "  "}, follow=True)
    assert "Give the proposal a name." in response.content.decode()
    assert Schedule.objects.count() == 0


@pytest.mark.django_db
def test_export_formula_cells_are_quoted(analyst_web, broadcasts, fake_matrices, django_capture_on_commit_callbacks):
    from programs.models import Program

    Program.objects.filter(channel__code="ch0").update(title="=HYPERLINK(1)")
    job = _run_job(analyst_web, django_capture_on_commit_callbacks)
    rows = list(csv.DictReader(io.StringIO(analyst_web.get(f"/schedule/jobs/{job.pk}/export.csv").content.decode())))
    assert {r["title"] for r in rows} == {"'=HYPERLINK(1)"}


@pytest.mark.django_db
def test_invalid_input_is_a_400_and_creates_no_job(analyst_web, broadcasts):
    response = analyst_web.post("/schedule/", {**FORM, "date": "not-a-date", "weight_revenue": "-1"})
    assert response.status_code == 400
    assert "Enter a valid date." in response.content.decode()
    assert OptimizationJob.objects.count() == 0


@pytest.mark.django_db
def test_impossible_constraints_are_reported_and_create_no_job(analyst_web, broadcasts, fake_matrices):
    # The whole broadcast day (20 hours) but only three one-hour programs on ch0, each once a day.
    response = analyst_web.post("/schedule/", {**FORM, "slot_minutes": "30", "daypart": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert "No schedule satisfies the hard constraints." in html
    assert "day 0: 1200 minutes cannot be filled end to end by the 3 programs allowed in them" in html
    assert OptimizationJob.objects.count() == 0


@pytest.mark.django_db
def test_one_hour_programs_fill_prime_time_on_a_half_hour_grid(
    analyst_web, broadcasts, fake_matrices, django_capture_on_commit_callbacks
):
    job = _run_job(analyst_web, django_capture_on_commit_callbacks, {**FORM, "slot_minutes": "30"})
    job.refresh_from_db()
    entries = job.result["schedules"][0]["entries"]
    assert [(e["start"][11:16], e["end"][11:16]) for e in entries] == [
        ("20:00", "21:00"),
        ("21:00", "22:00"),
        ("22:00", "23:00"),
    ]
    html = analyst_web.get(f"/schedule/jobs/{job.pk}/").content.decode()
    assert html.count('data-testid="airing"') == 3
    assert 'style="top: 0.0px; height: 72.0px;' in html


@pytest.mark.django_db
def test_other_users_jobs_are_not_found(
    analyst_web, broadcasts, fake_matrices, django_capture_on_commit_callbacks, django_user_model
):
    from django.contrib.auth.models import Group
    from django.test import Client

    job = _run_job(analyst_web, django_capture_on_commit_callbacks)
    other = django_user_model.objects.create_user(username="other", password="x")
    other.groups.add(Group.objects.get_or_create(name="analyst")[0])
    client = Client()
    client.force_login(other)
    assert client.get(f"/schedule/jobs/{job.pk}/").status_code == 404
    assert client.get(f"/schedule/jobs/{job.pk}/export.csv").status_code == 404


@pytest.mark.django_db
def test_a_viewer_cannot_optimise(viewer_web, broadcasts):
    assert viewer_web.post("/schedule/", FORM).status_code == 403
    assert OptimizationJob.objects.count() == 0
