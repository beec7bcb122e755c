"""Predictions against the registry's own artifacts: equality, promotion, batch, matrix, logs."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.utils.dateparse import parse_datetime

from predictions import services
from predictions.fastpath import RawRows
from predictions.models import PredictionLog
from predictions.predictor import get_predictor, reset_predictor, residual_interval
from programs.models import TARGETS, Airing
from registry.artifacts import load_model
from registry.features import airings_frame, slot_frame
from registry.models import ModelVersion
from registry.services import model_version_promote, model_version_rollback

NY = ZoneInfo("America/New_York")
# After the generated 40 days (2024-01-01 .. 2024-02-09): some slots with stored airings, some without.
SLOTS = [
    datetime(2024, 1, 15, 20, 0, tzinfo=NY),
    datetime(2024, 1, 20, 7, 30, tzinfo=NY),
    datetime(2024, 2, 5, 21, 0, tzinfo=NY),
    datetime(2024, 3, 2, 19, 0, tzinfo=NY),
]
pytestmark = pytest.mark.django_db


def test_prediction_equals_the_registry_artifact_for_the_same_row(world):
    for target in TARGETS:
        version = world.production[target]
        artifact = load_model(version)
        for program in world.programs[:3]:
            for start in SLOTS:
                answer = services.predict(program=program, target=target, features={"start": start.isoformat()})
                frame = slot_frame(programs=[program], starts=[start])
                expected = float(artifact.predict(frame)[0])
                assert answer["prediction"] == pytest.approx(expected, rel=1e-9, abs=1e-9)
                assert answer["model"] == {"id": version.pk, "algorithm": "random_forest", "version": version.version}
                assert answer["target"] == target
                assert answer["program_id"] == program.pk


def test_every_algorithm_is_served_equal_to_its_artifact(world):
    predictor = get_predictor()
    frame = slot_frame(programs=world.programs[:6], starts=SLOTS)
    versions = list(ModelVersion.objects.all())
    assert {v.algorithm for v in versions} == {
        "random_forest", "xgboost", "catboost", "gradient_boosting", "mlp", "elasticnet"
    }  # fmt: skip
    for version in versions:
        serving = predictor.version(version.pk)
        assert serving.fast is not None, f"{version} fell back to the sklearn path"
        np.testing.assert_allclose(serving.predict(frame), load_model(version).predict(frame), rtol=1e-9, atol=1e-9)


def test_feature_rows_equal_the_registry_slot_frame(world):
    program, other = world.programs[0], world.programs[5]
    channel = world.channels[1]
    items = [
        {"program_id": program.pk, "target": "rating", "features": {"start": SLOTS[0].isoformat()}},
        {"program_id": other.pk, "target": "rating", "features": {"start": SLOTS[1].isoformat(), "is_premiere": True}},
        {
            "program_id": program.pk,
            "target": "rating",
            "features": {"start": SLOTS[2].isoformat(), "channel": channel.code, "duration_minutes": 90},
        },
    ]
    rows = services._resolve(items, user_key=None)
    ours = services._raw_rows(rows).to_frame()
    theirs = [
        slot_frame(programs=[program], starts=[SLOTS[0]]),
        slot_frame(programs=[other], starts=[SLOTS[1]], overrides={"is_premiere": True}),
        slot_frame(programs=[program], starts=[SLOTS[2]], channel=channel, overrides={"duration_minutes": 90.0}),
    ]
    for i, frame in enumerate(theirs):
        mine = ours.iloc[[i]].drop(columns=["external_id"]).reset_index(drop=True)
        expected = frame.drop(columns=["external_id"]).reset_index(drop=True)
        assert mine.to_dict("records") == expected.to_dict("records")
    assert ours["lead_in_program_id"].tolist()[0] != -1  # a stored airing precedes that prime-time slot


def test_target_all_answers_every_target(world):
    program = world.programs[1]
    answer = services.predict(program=program, target="all", features={"start": SLOTS[0].isoformat()})
    assert answer["target"] == "all"
    assert answer["program_id"] == program.pk
    assert [a["target"] for a in answer["predictions"]] == list(TARGETS)
    for a in answer["predictions"]:
        single = services.predict(program=program, target=a["target"], features={"start": SLOTS[0].isoformat()})
        assert a["prediction"] == single["prediction"]
        assert a["interval"]["low"] <= a["prediction"] <= a["interval"]["high"]
        assert a["interval"]["level"] == 0.9
    assert answer["latency_ms"] > 0


def test_promotion_is_picked_up_without_a_restart(world, settings):
    program = world.programs[2]
    features = {"start": SLOTS[0].isoformat()}
    settings.PREDICTOR_GENERATION_CHECK_MS = 60_000
    before = services.predict(program=program, target="revenue", features=features)
    assert before["model"]["algorithm"] == "random_forest"
    challenger = world.challengers["revenue"]
    # Promotion commits inside the test transaction: no on-commit hook fires, only the generation changes.
    model_version_promote(version=challenger, actor=None, reason="test", force=True)
    still = services.predict(program=program, target="revenue", features=features)
    assert still["model"]["id"] == before["model"]["id"]  # not re-checked within the interval
    settings.PREDICTOR_GENERATION_CHECK_MS = 0
    after = services.predict(program=program, target="revenue", features=features)
    assert after["model"] == {"id": challenger.pk, "algorithm": "xgboost", "version": challenger.version}
    expected = float(load_model(challenger).predict(slot_frame(programs=[program], starts=[SLOTS[0]]))[0])
    assert after["prediction"] == pytest.approx(expected, rel=1e-9)
    model_version_rollback(target="revenue", actor=None, reason="test")
    back = services.predict(program=program, target="revenue", features=features)
    assert back["model"]["id"] == before["model"]["id"]
    assert back["prediction"] == before["prediction"]


def test_a_warm_prediction_runs_no_query(world, django_assert_num_queries, settings):
    settings.PREDICTOR_GENERATION_CHECK_MS = 60_000  # the registry/data version checks are due once a minute
    program = world.programs[3]
    services.predict(program=program, target="rating", features={"start": SLOTS[0].isoformat()})
    with django_assert_num_queries(0):
        services.predict(program=program, target="rating", features={"start": SLOTS[0].isoformat()})


def test_batch_equals_singles(world):
    items = [
        {"program_id": p.pk, "target": t, "features": {"start": s.isoformat()}}
        for p, t, s in zip(world.programs[:8], [*TARGETS, *TARGETS], SLOTS * 2, strict=True)
    ]
    items.append({"program_id": world.programs[0].external_id, "target": "all"})
    items.append(
        {
            "program_id": world.programs[4].pk,
            "target": "audience",
            "features": {"start": SLOTS[1].isoformat(), "channel": world.channels[1].code, "is_live": True},
        }
    )
    items[-2]["features"] = {"start": SLOTS[2].isoformat()}
    batch = services.predict_batch(items=items)
    assert len(batch["results"]) == len(items)
    for item, result in zip(items, batch["results"], strict=True):
        single = services.predict(program=item["program_id"], target=item["target"], features=item["features"])
        single.pop("latency_ms")
        assert result == single


def test_predict_matrix_is_programs_by_slots(world):
    programs = world.programs[:5]
    matrix = services.predict_matrix(target="audience", programs=programs, starts=SLOTS, channel=world.channels[0])
    assert matrix.shape == (5, 4)
    frame = slot_frame(programs=programs, starts=SLOTS, channel=world.channels[0])
    expected = load_model(world.production["audience"]).predict(frame).reshape(5, 4)
    np.testing.assert_allclose(matrix, expected, rtol=1e-9)
    assert services.predict_matrix(target="audience", programs=[], starts=SLOTS).shape == (0, 4)


def test_predictions_are_logged_in_bulk(world, settings):
    settings.PREDICTION_LOG_FLUSH_SIZE = 1000
    program = world.programs[0]
    answer = services.predict(program=program, target="rating", features={"start": SLOTS[3].isoformat()})
    assert PredictionLog.objects.count() == 0  # buffered, not written on the request path
    assert services.prediction_log_flush() == 1
    log = PredictionLog.objects.get()
    assert log.output == answer["prediction"]
    assert log.model_version_id == answer["model"]["id"]
    assert (log.target, log.algorithm, log.arm, log.served) == ("rating", "random_forest", "", True)
    assert log.program_id == program.pk
    assert log.channel_id == program.channel_id
    assert log.slot_start == SLOTS[3]
    assert len(log.inputs_digest) == 16
    assert log.latency_ms > 0


def test_log_buffer_flushes_by_size(world, settings):
    settings.PREDICTION_LOG_FLUSH_SIZE = 3
    for start in SLOTS[:2]:
        services.predict(program=world.programs[0], target="rating", features={"start": start.isoformat()})
    assert PredictionLog.objects.count() == 0
    services.predict(program=world.programs[0], target="rating", features={"start": SLOTS[2].isoformat()})
    assert PredictionLog.objects.count() == 3


def test_raw_rows_round_trip(world):
    frame = slot_frame(programs=world.programs[:2], starts=SLOTS[:2])
    rows = RawRows.from_frame(frame)
    back = rows.to_frame().drop(columns=["external_id"])
    assert back.to_dict("records") == frame.drop(columns=["external_id"]).to_dict("records")
    assert len(set(rows.digests())) == 4


def test_interval_is_the_holdout_residual_quantiles(world):
    version = world.production["rating"]
    program = world.programs[2]
    answer = services.predict(program=program, target="rating", features={"start": SLOTS[0].isoformat()})
    since = parse_datetime(version.metrics["holdout_start"])
    holdout = airings_frame(Airing.objects.filter(start__gte=since, rating__isnull=False))
    residuals = holdout["rating"].to_numpy() - load_model(version).predict(holdout)
    low, high = np.quantile(residuals, [0.05, 0.95])
    assert answer["interval"]["low"] == pytest.approx(max(0.0, answer["prediction"] + low))
    assert answer["interval"]["high"] == pytest.approx(answer["prediction"] + high)
    assert answer["interval"]["level"] == 0.9


def test_residual_interval_prefers_quantiles_stored_with_the_version():
    stored = {"residual_quantiles": {"0.05": -2.0, "0.5": 0.1, "0.95": 3.0}, "rmse": 1.0}
    assert residual_interval(stored, 0.9) == (-2.0, 3.0, 0.9)
    low, high, level = residual_interval({"rmse": 2.0}, 0.9)
    assert (low, high, level) == (pytest.approx(-2.0 * 1.644854), pytest.approx(2.0 * 1.644854), 0.9)
    assert residual_interval({}, 0.9) == (0.0, 0.0, 0.9)


def test_a_prediction_outside_the_sane_range_is_clipped_and_flagged(world, monkeypatch):
    from django.db.models import Max

    from registry import guards

    program = world.programs[1]
    features = {"start": SLOTS[3].isoformat()}
    version = world.production["revenue"]
    holdout_start = parse_datetime(version.metrics["holdout_start"])
    largest = Airing.objects.filter(start__lt=holdout_start).aggregate(m=Max("revenue"))["m"]
    plain = services.predict(program=program, target="revenue", features=features)
    assert plain["clipped"] is False
    assert "raw_prediction" not in plain
    assert 0 < plain["prediction"] <= 3 * largest  # the real model stays inside 0 ... 3 x max
    # Make the range tiny: the same model's value now lies above it.
    monkeypatch.setattr(guards, "SANE_RANGE_FACTOR", 1e-6)
    reset_predictor()  # the range is fixed when a model loads
    high = 1e-6 * largest
    answer = services.predict(program=program, target="revenue", features=features)
    assert answer["prediction"] == high
    assert answer["clipped"] is True
    assert answer["raw_prediction"] == plain["prediction"]
    assert answer["sane_range"] == {"low": 0.0, "high": high}
    assert 0.0 <= answer["interval"]["low"] <= answer["interval"]["high"] <= high
    services.prediction_log_flush()
    assert PredictionLog.objects.filter(target="revenue").order_by("-id").first().output == high
    matrix = services.predict_matrix(target="revenue", programs=[program], starts=[SLOTS[3]])
    assert matrix.tolist() == [[high]]
