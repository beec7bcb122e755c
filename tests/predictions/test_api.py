"""POST /api/v1/predict and /api/v1/predict/batch: answers and every bad input path."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from predictions.apis import PredictOutput, answer_json
from predictions.models import PredictionLog
from predictions.predict import (
    ABAssignment,
    Answer,
    Interval,
    ModelRef,
    SaneRange,
    TargetPrediction,
    prediction_log_flush,
)
from programs.models import TARGETS
from registry.models import ModelVersion

pytestmark = pytest.mark.django_db
START = "2024-01-15T20:00:00-05:00"


def _no_logs() -> bool:
    prediction_log_flush()
    return PredictionLog.objects.count() == 0


def test_predict_answers_the_documented_shape(world, analyst_client):
    program = world.programs[0]
    response = analyst_client.post(
        "/api/v1/predict", {"program_id": program.pk, "target": "rating", "features": {"start": START}}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "prediction",
        "target",
        "program_id",
        "model",
        "interval",
        "intervals",
        "history_through",
        "clipped",
        "latency_ms",
    }
    assert body["clipped"] is False
    version = world.production["rating"]
    assert body["model"] == {"id": version.pk, "algorithm": "random_forest", "version": version.version}
    assert body["target"] == "rating"
    assert body["program_id"] == program.pk
    assert set(body["interval"]) == {"low", "high", "level"}
    assert [i["level"] for i in body["intervals"]] == [0.8, 0.9, 0.95]
    assert body["interval"] == body["intervals"][1]  # PREDICT_INTERVAL_LEVEL 0.9
    assert body["latency_ms"] > 0


def test_answers_keep_to_the_documented_serializers(world, analyst_client):
    """The views write the typed answers out by hand (apis.answer_json); that must be what the schema's
    serializers say."""
    from predictions.apis import PredictBatchApi, PredictOutput

    program = world.programs[0]
    for target in ("rating", "all"):
        body = analyst_client.post(
            "/api/v1/predict", {"program_id": program.pk, "target": target}, format="json"
        ).json()
        assert PredictOutput(body).data == body
        assert all(type(v) is float for v in (body.get("prediction", 0.0), body["latency_ms"]))
    items = [{"program_id": p.pk, "target": "all"} for p in world.programs[:2]]
    batch = analyst_client.post("/api/v1/predict/batch", {"items": items}, format="json").json()
    assert PredictBatchApi.OutputSerializer(batch).data == batch


def test_predict_takes_an_external_id_and_target_all(world, analyst_client):
    program = world.programs[1]
    response = analyst_client.post(
        "/api/v1/predict", {"program_id": program.external_id, "target": "all"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["target"] == "all"
    assert body["program_id"] == program.pk
    assert [p["target"] for p in body["predictions"]] == list(TARGETS)


def test_batch_answers_in_item_order(world, analyst_client):
    items = [
        {"program_id": p.pk, "target": t, "features": {"start": START}}
        for p, t in zip(world.programs[:4], TARGETS, strict=True)
    ]
    response = analyst_client.post("/api/v1/predict/batch", {"items": items}, format="json")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["program_id"], r["target"]) for r in results] == [(i["program_id"], i["target"]) for i in items]
    single = analyst_client.post("/api/v1/predict", items[2], format="json").json()
    single.pop("latency_ms")
    assert results[2] == single


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"program_id": 999999, "target": "rating"}, 404, "unknown_program"),
        ({"program_id": "NOPE999", "target": "rating"}, 404, "unknown_program"),
        ({"program_id": "@P", "target": "share"}, 400, "validation_error"),
        ({"target": "rating"}, 400, "validation_error"),
        ({"program_id": "@P", "target": "rating", "features": {"start": "2024-13-45T25:00"}}, 400, "validation_error"),
        ({"program_id": "@P", "target": "rating", "features": {"start": "tomorrow"}}, 400, "validation_error"),
        ({"program_id": "@P", "target": "rating", "features": {"start": "1900-01-01T00:00:00Z"}}, 400, "bad_date"),
        ({"program_id": "@P", "target": "rating", "extra": 1}, 400, "validation_error"),
        ({"program_id": "@P", "target": "rating", "features": {"weather": "rain"}}, 400, "validation_error"),
        ({"program_id": "@P", "target": "rating", "features": {"channel": "nope"}}, 400, "unknown_channel"),
        ({"program_id": "@P", "target": "rating", "features": {"duration_minutes": 0}}, 400, "validation_error"),
        ({"program_id": "@P", "target": "rating", "features": {"is_live": "maybe"}}, 400, "validation_error"),
        ({"program_id": "@P", "target": "rating", "features": "x"}, 400, "validation_error"),
        ({"program_id": True, "target": "rating"}, 400, "validation_error"),
        ([1, 2], 400, "validation_error"),
    ],
)
def test_predict_rejects_bad_input(world, analyst_client, body, status, code):
    if isinstance(body, dict) and body.get("program_id") == "@P":
        body = {**body, "program_id": world.programs[0].pk}
    response = analyst_client.post("/api/v1/predict", body, format="json")
    assert response.status_code == status, response.json()
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert _no_logs()


def test_predict_rejects_malformed_json(world, analyst_client):
    response = analyst_client.post("/api/v1/predict", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"items": []}, 400, "validation_error"),
        ({"items": "x"}, 400, "validation_error"),
        ({}, 400, "validation_error"),
        ({"items": [{"program_id": "@P", "target": "rating"}], "more": 1}, 400, "validation_error"),
        (
            {"items": [{"program_id": "@P", "target": "rating"}, {"program_id": 999999, "target": "rating"}]},
            404,
            "unknown_program",
        ),
        ({"items": [{"program_id": "@P", "target": "rating", "features": {"start": "nope"}}]}, 400, "validation_error"),
    ],
)
def test_batch_rejects_bad_input(world, analyst_client, body, status, code):
    for item in body.get("items", []) if isinstance(body.get("items"), list) else []:
        if item["program_id"] == "@P":
            item["program_id"] = world.programs[0].pk
    response = analyst_client.post("/api/v1/predict/batch", body, format="json")
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code
    assert _no_logs()


def test_batch_refuses_too_many_items(world, analyst_client, settings):
    settings.PREDICT_BATCH_MAX_ITEMS = 3
    items = [{"program_id": world.programs[0].pk, "target": "rating"}] * 4
    response = analyst_client.post("/api/v1/predict/batch", {"items": items}, format="json")
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_many_items"
    assert error["details"] == {"max_items": 3, "items": 4}
    assert _no_logs()


def test_no_production_model_is_a_409(world, analyst_client):
    ModelVersion.objects.filter(target="engagement", status="production").update(status="archived")
    response = analyst_client.post(
        "/api/v1/predict", {"program_id": world.programs[0].pk, "target": "engagement"}, format="json"
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "no_production_model"
    assert "no production model for target 'engagement'" in error["message"]
    all_targets = analyst_client.post(
        "/api/v1/predict", {"program_id": world.programs[0].pk, "target": "all"}, format="json"
    )
    assert all_targets.status_code == 409
    assert _no_logs()


def test_predict_needs_the_analyst_role(world, viewer_client, anon_client):
    body = {"program_id": world.programs[0].pk, "target": "rating"}
    assert viewer_client.post("/api/v1/predict", body, format="json").status_code == 403
    assert anon_client.post("/api/v1/predict", body, format="json").status_code == 401
    assert viewer_client.post("/api/v1/predict/batch", {"items": [body]}, format="json").status_code == 403


def _target_prediction(**changes: object) -> TargetPrediction:
    interval = Interval(low=1.0, high=3.0, level=0.9)
    base = TargetPrediction(
        prediction=2.0,
        target="rating",
        program_id=7,
        model=ModelRef(id=3, algorithm="xgboost", version=2),
        interval=interval,
        intervals=(Interval(low=1.5, high=2.5, level=0.8), interval),
        history_through=datetime(2024, 5, 1, 20, 0, tzinfo=UTC),
        clipped=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_clipped_ab_answer_is_written_with_its_raw_value_range_and_arm_in_the_documented_order():
    clipped = _target_prediction(
        clipped=True,
        raw_prediction=40.5,
        sane_range=SaneRange(low=0.0, high=2.0),
        ab_test=ABAssignment(test_id=5, arm="challenger"),
    )
    body = answer_json(Answer(target="rating", program_id=7, predictions=(clipped,)))
    assert list(body) == [
        "prediction", "target", "program_id", "model", "interval", "intervals", "history_through", "clipped",
        "raw_prediction", "sane_range", "ab_test",
    ]  # fmt: skip
    assert body["raw_prediction"] == 40.5
    assert body["sane_range"] == {"low": 0.0, "high": 2.0}
    assert body["ab_test"] == {"test_id": 5, "arm": "challenger"}
    assert body["history_through"] == "2024-05-01T20:00:00+00:00"
    assert body["intervals"] == [{"low": 1.5, "high": 2.5, "level": 0.8}, {"low": 1.0, "high": 3.0, "level": 0.9}]
    assert PredictOutput(body).data == body


def test_an_answer_for_all_targets_carries_the_latest_history_point_and_no_absent_fields():
    early = _target_prediction(target="rating", history_through=datetime(2024, 5, 1, tzinfo=UTC))
    late = _target_prediction(target="revenue", history_through=datetime(2024, 5, 3, tzinfo=UTC))
    unknown = _target_prediction(target="audience", history_through=None)
    body = answer_json(Answer(target="all", program_id=7, predictions=(early, late, unknown)))
    assert list(body) == ["target", "program_id", "history_through", "predictions"]
    assert body["history_through"] == "2024-05-03T00:00:00+00:00"
    predictions = body["predictions"]
    assert isinstance(predictions, list)
    assert [p["target"] for p in predictions] == ["rating", "revenue", "audience"]
    assert all("raw_prediction" not in p and "sane_range" not in p and "ab_test" not in p for p in predictions)
    assert predictions[2]["history_through"] is None
    assert PredictOutput(body).data == body
