"""The 7 tools: validated arguments, role checks, results equal to the owning app's selectors."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from django.core import signing
from django.utils import timezone

from bms.errors import ApplicationError, NotFoundError
from chat.tools import TOOLS, export_file_for, export_link, run_tool, tool_schemas
from programs import selectors
from tests.chat.factories import user_factory
from tests.chat.fakes import result_of


def test_there_are_seven_tools_with_json_schemas() -> None:
    assert sorted(TOOLS) == sorted(
        [
            "get_programs",
            "get_program_details",
            "predict_values",
            "get_best_model",
            "analyze_trends",
            "export_data",
            "optimize_schedule",
        ]
    )
    specs: list[dict[str, Any]] = tool_schemas()
    schemas = {s["function"]["name"]: s["function"]["parameters"] for s in specs}
    assert schemas["get_best_model"]["required"] == ["target"]
    assert schemas["get_programs"]["properties"]["n"]["maximum"] == 50


def test_top_programs_equal_the_selector(world: Any, analyst: Any) -> None:
    call = run_tool(user=analyst, name="get_programs", arguments={"target": "rating", "n": 3})
    assert call.ok
    assert call.result == {"ranked_by": "rating", "programs": selectors.top_programs(target="rating", n=3)}
    assert [p["external_id"] for p in result_of(call)["programs"]] == ["NWT001", "CTL005", "LTR003"]
    assert [p["mean"] for p in result_of(call)["programs"]] == [4.5, 3.0, 2.5]


def test_program_list_filters_by_genre_and_channel(world: Any, viewer: Any) -> None:
    call = run_tool(user=viewer, name="get_programs", arguments={"genre": "drama", "channel": "wtv"})
    assert call.result is not None
    assert result_of(call)["total"] == 1
    assert result_of(call)["programs"][0]["external_id"] == "CTL005"


def test_program_details_carry_the_selector_aggregates(world: Any, viewer: Any) -> None:
    call = run_tool(user=viewer, name="get_program_details", arguments={"program": "NWT001"})
    assert call.result is not None
    targets = result_of(call)["detail"]["targets"]
    assert targets["revenue"] == {"mean": 56500.0, "min": 52000.0, "max": 61000.0, "count": 2}
    assert result_of(call)["detail"]["airing_count"] == 2
    assert result_of(call)["program"]["title"] == "Night Watch"


def test_an_unknown_program_is_a_tool_error_not_an_exception(world: Any, viewer: Any) -> None:
    call = run_tool(user=viewer, name="get_program_details", arguments={"program": "NOPE999"})
    assert call.error == {"code": "not_found", "message": "No program matches 'NOPE999'."}
    assert call.result is None


@pytest.mark.parametrize(
    ("name", "arguments", "where"),
    [
        ("get_programs", {"n": 0}, "n"),
        ("get_programs", {"n": 500}, "n"),
        ("get_programs", {"target": "profit"}, "target"),
        ("get_programs", {"bogus": 1}, "bogus"),
        ("get_best_model", {}, "target"),
        ("analyze_trends", {"period": "decade"}, "period"),
        ("export_data", {"format": "pdf"}, "format"),
        ("predict_values", {"program": ""}, "program"),
        ("optimize_schedule", {"date": "not-a-date"}, "date"),
    ],
)
def test_bad_arguments_are_rejected_by_the_schema(
    world: Any, analyst: Any, name: str, arguments: Any, where: str
) -> None:
    call = run_tool(user=analyst, name=name, arguments=arguments)
    assert call.error is not None
    assert call.error["code"] == "invalid_arguments"
    assert call.error["message"].startswith(where)


def test_an_unknown_tool_is_an_error(analyst: Any) -> None:
    call = run_tool(user=analyst, name="drop_tables", arguments={})
    assert call.error is not None
    assert call.error["code"] == "unknown_tool"


@pytest.mark.parametrize("name", ["predict_values", "export_data", "optimize_schedule"])
def test_viewer_cannot_run_analyst_tools(world: Any, viewer: Any, name: str, fake_optimizer: Any) -> None:
    call = run_tool(user=viewer, name=name, arguments={"program": "NWT001"} if name == "predict_values" else {})
    assert call.error is not None
    assert call.error["code"] == "permission_denied"
    assert fake_optimizer == []


def test_best_model_lists_metrics_and_top_factors(best_models: Any, viewer: Any) -> None:
    call = run_tool(user=viewer, name="get_best_model", arguments={"target": "audience"})
    assert call.result is not None
    assert result_of(call)["model"]["algorithm"] == "xgboost"
    assert result_of(call)["model"]["metrics"]["r2"] == 0.873
    assert [f["feature"] for f in result_of(call)["top_factors"]] == ["daypart", "lead_in", "genre", "is_holiday"]


def test_best_model_without_any_model_says_none(db: Any, viewer: Any) -> None:
    call = run_tool(user=viewer, name="get_best_model", arguments={"target": "rating"})
    assert call.result == {"target": "rating", "model": None}


def test_trends_equal_the_selector(world: Any, viewer: Any) -> None:
    call = run_tool(user=viewer, name="analyze_trends", arguments={"target": "revenue", "genre": "drama"})
    series = selectors.trend_series(target="revenue", period="week", genre="drama")
    assert call.result is not None
    assert result_of(call)["series"]["change_pct"] == series.change_pct
    assert [p["mean"] for p in result_of(call)["series"]["points"]] == [p.mean for p in series.points]
    assert result_of(call)["series"]["direction"] == "up"


def test_predict_values_calls_the_prediction_service(world: Any, analyst: Any, fake_predict: Any) -> None:
    call = run_tool(user=analyst, name="predict_values", arguments={"program": "LTR003", "target": "revenue"})
    assert call.result is not None
    assert [p["target"] for p in result_of(call)["predictions"]] == ["revenue"]
    assert fake_predict == [{"program": "LTR003", "target": "revenue", "features": {}}]


def test_optimize_returns_a_proposal_and_saves_nothing(world: Any, analyst: Any, fake_optimizer: Any) -> None:
    call = run_tool(user=analyst, name="optimize_schedule", arguments={"channel": "kbs", "date": "2025-03-03"})
    assert call.result is not None
    assert result_of(call)["job_id"] == 41
    assert result_of(call)["proposal"]["totals"] == {"revenue": 97000.0, "audience": 740.0}
    assert len(fake_optimizer) == 1
    request = fake_optimizer[0]["request"]
    # validated exactly as POST /api/v1/schedules/optimize validates (types and defaults)
    assert (request.channel, request.date, request.daypart) == ("kbs", date(2025, 3, 3), "prime_time")
    assert request.slot_minutes == 30
    assert call.result is not None
    assert result_of(call)["note"].startswith("A proposal only")


def test_export_makes_a_file_and_a_link_only_its_owner_can_use(world: Any, analyst_client: Any, analyst: Any) -> None:
    call = run_tool(user=analyst, name="export_data", arguments={"format": "csv", "filters": {"channel": "kbs"}})
    assert call.ok, call.error
    assert call.result is not None
    url = result_of(call)["download"]["url"]
    response = analyst_client.get(url)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert body.count("\n") == 5  # header + 4 airings on kbs
    other = user_factory("other")
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(other)
    assert client.get(url).status_code == 404


def test_an_expired_or_forged_link_is_refused(world: Any, analyst: Any, settings: Any) -> None:
    call = run_tool(user=analyst, name="export_data", arguments={"format": "json"})
    assert call.result is not None
    token = result_of(call)["download"]["url"].rsplit("/", 1)[1]
    assert export_file_for(user=analyst, token=token).name == result_of(call)["download"]["filename"]
    settings.EXPORT_LINK_TTL_SECONDS = -1
    with pytest.raises(ApplicationError) as expired:
        export_file_for(user=analyst, token=token)
    assert expired.value.code == "link_expired"
    with pytest.raises(NotFoundError):
        export_file_for(user=analyst, token=token[:-3] + "abc")
    forged = signing.dumps({"f": "../../etc/passwd", "u": analyst.pk}, salt="wrong-salt")
    with pytest.raises(NotFoundError):
        export_file_for(user=analyst, token=forged)


def test_a_link_cannot_escape_the_export_root(analyst: Any, settings: Any, tmp_path: Any) -> None:
    settings.EXPORT_ROOT = tmp_path
    inside = tmp_path / "a.csv"
    inside.write_text("x")
    link: dict[str, Any] = export_link(user=analyst, path=inside)
    assert link["url"].startswith("/api/v1/exports/")
    assert datetime.fromisoformat(link["expires_at"]) > timezone.now()
    token = signing.dumps({"f": "../outside.csv", "u": analyst.pk}, salt="chat.export-link", compress=True)
    (tmp_path.parent / "outside.csv").write_text("secret")
    with pytest.raises(NotFoundError):
        export_file_for(user=analyst, token=token)


@pytest.mark.django_db(transaction=True)  # autocommit, as in a request: the eager job runs on commit
def test_optimize_runs_the_real_scheduling_job_and_changes_no_schedule(
    world: Any, analyst: Any, monkeypatch: pytest.MonkeyPatch, eager_tasks: None
) -> None:
    import numpy as np

    from scheduling.models import OptimizationJob, Schedule

    def value_matrices(*, programs: Any, starts: Any, channel: Any) -> tuple[Any, Any]:
        rows = np.arange(1, len(programs) + 1, dtype=float)[:, None]
        cols = np.ones(len(starts))[None, :]
        return rows * cols * 1000.0, rows * cols * 10.0

    monkeypatch.setattr("scheduling.matrices.value_matrices", value_matrices)
    call = run_tool(
        user=analyst,
        name="optimize_schedule",
        arguments={"channel": "wtv", "date": "2025-03-03", "daypart": "prime_time", "slot_minutes": 60},
    )
    assert call.ok, call.error
    job = OptimizationJob.objects.get()
    assert call.result is not None
    assert result_of(call)["job_id"] == job.pk
    assert result_of(call)["status"] == "succeeded"
    best = result_of(call)["proposal"]["best"]
    assert len(best["entries"]) == 3  # 20:00-23:00 in 60-minute slots
    assert job.result is not None
    assert result_of(call)["proposal"]["totals"]["revenue"] == job.result["totals"]["revenue"]
    assert Schedule.objects.count() == 0


def test_best_model_comes_with_the_baselines_it_had_to_beat(world: Any, viewer: Any) -> None:
    from registry.models import ModelVersion

    baselines = {
        "program_mean": {"r2": 0.4, "rmse": 2.0},
        "previous_airing": {"r2": 0.6, "rmse": 1.5},
        "best": "previous_airing",
    }
    ModelVersion.objects.create(
        target="engagement",
        algorithm="catboost",
        version=1,
        status=ModelVersion.Status.PRODUCTION,
        metrics={"r2": 0.8, "rmse": 1.2, "baselines": baselines},
        artifact_path="engagement/catboost/v1.cbm.zip",
        artifact_format=ModelVersion.ArtifactFormat.CATBOOST_CBM,
        artifact_sha256="0" * 64,
    )
    call = run_tool(user=viewer, name="get_best_model", arguments={"target": "engagement"})
    assert call.ok
    assert call.result is not None
    assert result_of(call)["baselines"] == baselines
    assert result_of(call)["model"]["algorithm"] == "catboost"
