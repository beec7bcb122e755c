"""Predictions against the registry's own artifacts: equality, promotion, batch, matrix, logs."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from predictions import predict
from predictions.fastpath import RawRows
from predictions.lookups import get_lookups
from predictions.models import PredictionLog
from predictions.predict import Interval, ModelRef, PredictItem, SaneRange, TargetPrediction
from predictions.predictor import get_predictor, reset_predictor, residual_interval
from programs.models import TARGETS, Airing
from registry.artifacts import load_model
from registry.features import HISTORY_COLUMNS, airings_frame, slot_frame, with_history
from registry.intervals import interval_bounds
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


def _one(**kwargs) -> TargetPrediction:
    """The prediction of a single-target answer."""
    answer = predict.predict(**kwargs)
    assert len(answer.predictions) == 1
    return answer.predictions[0]


def _featured(frame, target: str):
    """The registry's own path: the training history implementation over every stored airing."""
    return with_history(frame, target, source=airings_frame())


def test_prediction_equals_the_registry_artifact_for_the_same_row(world):
    for target in TARGETS:
        version = world.production[target]
        artifact = load_model(version)
        for program in world.programs[:3]:
            for start in SLOTS:
                answer = _one(program=program, target=target, features={"start": start.isoformat()})
                frame = _featured(slot_frame(programs=[program], starts=[start]), target)
                expected = float(artifact.predict(frame)[0])
                assert answer.prediction == pytest.approx(expected, rel=1e-9, abs=1e-9)
                assert answer.model == ModelRef(id=version.pk, algorithm="random_forest", version=version.version)
                assert answer.target == target
                assert answer.program_id == program.pk


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
        featured = _featured(frame, version.target)
        np.testing.assert_allclose(
            serving.predict(featured), load_model(version).predict(featured), rtol=1e-9, atol=1e-9
        )


def test_feature_rows_equal_the_registry_slot_frame(world):
    program, other = world.programs[0], world.programs[5]
    channel = world.channels[1]
    items = [
        PredictItem(program=program.pk, target="rating", features={"start": SLOTS[0].isoformat()}),
        PredictItem(program=other.pk, target="rating", features={"start": SLOTS[1].isoformat(), "is_premiere": True}),
        PredictItem(
            program=program.pk,
            target="rating",
            features={"start": SLOTS[2].isoformat(), "channel": channel.code, "duration_minutes": 90},
        ),
    ]
    rows = predict._resolve(items, user_key=None)
    ours = predict._raw_rows(rows).to_frame()
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
    answer = predict.predict(program=program, target="all", features={"start": SLOTS[0].isoformat()})
    assert answer.target == "all"
    assert answer.program_id == program.pk
    assert [a.target for a in answer.predictions] == list(TARGETS)
    for a in answer.predictions:
        single = _one(program=program, target=a.target, features={"start": SLOTS[0].isoformat()})
        assert a.prediction == single.prediction
        assert a.interval.low <= a.prediction <= a.interval.high
        assert a.interval.level == 0.9


def test_promotion_is_picked_up_without_a_restart(world, settings):
    program = world.programs[2]
    features = {"start": SLOTS[0].isoformat()}
    settings.PREDICTOR_GENERATION_CHECK_MS = 60_000
    before = _one(program=program, target="revenue", features=features)
    assert before.model.algorithm == "random_forest"
    challenger = world.challengers["revenue"]
    # Promotion commits inside the test transaction: no on-commit hook fires, only the generation changes.
    model_version_promote(version=challenger, actor=None, reason="test", force=True)
    still = _one(program=program, target="revenue", features=features)
    assert still.model.id == before.model.id  # not re-checked within the interval
    settings.PREDICTOR_GENERATION_CHECK_MS = 0
    after = _one(program=program, target="revenue", features=features)
    assert after.model == ModelRef(id=challenger.pk, algorithm="xgboost", version=challenger.version)
    frame = _featured(slot_frame(programs=[program], starts=[SLOTS[0]]), challenger.target)
    expected = float(load_model(challenger).predict(frame)[0])
    assert after.prediction == pytest.approx(expected, rel=1e-9)
    model_version_rollback(target="revenue", actor=None, reason="test")
    back = _one(program=program, target="revenue", features=features)
    assert back.model.id == before.model.id
    assert back.prediction == before.prediction


def test_a_warm_prediction_runs_no_query(world, django_assert_num_queries, settings):
    settings.PREDICTOR_GENERATION_CHECK_MS = 60_000  # the registry/data version checks are due once a minute
    program = world.programs[3]
    _one(program=program, target="rating", features={"start": SLOTS[0].isoformat()})
    with django_assert_num_queries(0):
        _one(program=program, target="rating", features={"start": SLOTS[0].isoformat()})


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
    batch = predict.predict_batch(
        items=[PredictItem(program=i["program_id"], target=i["target"], features=i["features"]) for i in items]
    )
    assert len(batch) == len(items)
    for item, result in zip(items, batch, strict=True):
        single = predict.predict(program=item["program_id"], target=item["target"], features=item["features"])
        assert result == single


def test_predict_matrix_is_programs_by_slots(world):
    programs = world.programs[:5]
    matrix = predict.predict_matrix(target="audience", programs=programs, starts=SLOTS, channel=world.channels[0])
    assert matrix.shape == (5, 4)
    frame = _featured(slot_frame(programs=programs, starts=SLOTS, channel=world.channels[0]), "audience")
    expected = load_model(world.production["audience"]).predict(frame).reshape(5, 4)
    np.testing.assert_allclose(matrix, expected, rtol=1e-9)
    assert predict.predict_matrix(target="audience", programs=[], starts=SLOTS).shape == (0, 4)


def test_predictions_are_logged_in_bulk(world, settings):
    settings.PREDICTION_LOG_FLUSH_SIZE = 1000
    program = world.programs[0]
    answer = _one(program=program, target="rating", features={"start": SLOTS[3].isoformat()})
    assert PredictionLog.objects.count() == 0  # buffered, not written on the request path
    assert predict.prediction_log_flush() == 1
    log = PredictionLog.objects.get()
    assert log.output == answer.prediction
    assert log.model_version_id == answer.model.id
    assert (log.target, log.algorithm, log.arm, log.served) == ("rating", "random_forest", "", True)
    assert log.program_id == program.pk
    assert log.channel_id == program.channel_id
    assert log.slot_start == SLOTS[3]
    assert len(log.inputs_digest) == 16
    assert log.latency_ms > 0


def test_log_buffer_flushes_by_size(world, settings):
    settings.PREDICTION_LOG_FLUSH_SIZE = 3
    for start in SLOTS[:2]:
        _one(program=world.programs[0], target="rating", features={"start": start.isoformat()})
    assert PredictionLog.objects.count() == 0
    _one(program=world.programs[0], target="rating", features={"start": SLOTS[2].isoformat()})
    assert PredictionLog.objects.count() == 3


def test_raw_rows_round_trip(world):
    frame = slot_frame(programs=world.programs[:2], starts=SLOTS[:2])
    rows = RawRows.from_frame(frame)
    back = rows.to_frame().drop(columns=["external_id"])
    assert back.to_dict("records") == frame.drop(columns=["external_id"]).to_dict("records")
    assert len(set(rows.digests())) == 4


def test_intervals_are_the_versions_split_conformal_half_widths(world):
    version = world.production["rating"]
    program = world.programs[2]
    answer = _one(program=program, target="rating", features={"start": SLOTS[0].isoformat()})
    calibration = version.metrics["conformal"]
    assert [i.level for i in answer.intervals] == [0.8, 0.9, 0.95]
    for interval in answer.intervals:
        low, high = interval_bounds(calibration, np.array([answer.prediction]), interval.level)
        assert interval == Interval(low=max(0.0, float(low[0])), high=float(high[0]), level=interval.level)
    assert answer.interval == answer.intervals[1]


def _after_the_data(world) -> list[datetime]:
    last = Airing.objects.order_by("-start").values_list("start", flat=True).first()
    assert last is not None
    return [last + timedelta(hours=3), last + timedelta(days=2, hours=5), last + timedelta(days=25)]


def test_serving_history_features_equal_the_training_implementation(world):
    frame = slot_frame(programs=world.programs[:12], starts=[*_after_the_data(world), SLOTS[3]])
    rows = RawRows.from_frame(frame)
    stored = airings_frame()
    for target in TARGETS:
        served, through = get_lookups().history_features(target=target, rows=rows)
        trained = with_history(frame, target, source=stored)
        for column in HISTORY_COLUMNS:
            np.testing.assert_array_equal(served[column], trained[column].to_numpy(), err_msg=column)
        assert np.isfinite(served["h_last"]).sum() > 0
        # history_through: the start of the program's latest airing with an actual before the slot.
        latest = stored[stored[target].notna()].groupby("program_id")["start"].max()
        for pid, when in zip(rows.program_id.tolist(), through, strict=True):
            assert when == (latest[pid].to_pydatetime() if pid in latest.index else None)


def test_a_slot_further_ahead_rolls_forward_from_the_last_known_actuals(world):
    program = world.programs[0]
    near, _, far = _after_the_data(world)
    answers = [_one(program=program, target="audience", features={"start": s.isoformat()}) for s in (near, far)]
    assert answers[0].history_through == answers[1].history_through is not None
    rows = RawRows.from_frame(slot_frame(programs=[program, program], starts=[near, far]))
    served, _ = get_lookups().history_features(target="audience", rows=rows)
    assert served["h_last"][0] == served["h_last"][1]
    assert served["h_count"][0] == served["h_count"][1]
    assert served["h_days_since"][1] - served["h_days_since"][0] == pytest.approx((far - near).total_seconds() / 86400)


def test_residual_interval_prefers_quantiles_stored_with_the_version():
    stored = {"residual_quantiles": {"0.05": -2.0, "0.5": 0.1, "0.95": 3.0}, "rmse": 1.0}
    assert residual_interval(stored, 0.9) == (-2.0, 3.0, 0.9)
    low, high, level = residual_interval({"rmse": 2.0}, 0.9)
    assert (low, high, level) == pytest.approx((-2.0 * 1.644854, 2.0 * 1.644854, 0.9))
    assert residual_interval({}, 0.9) == (0.0, 0.0, 0.9)


def test_a_prediction_outside_the_sane_range_is_clipped_and_flagged(world):
    program = world.programs[1]
    features = {"start": SLOTS[3].isoformat()}
    version = world.production["revenue"]
    stored = version.metrics["sane_range"]  # 0 ... 3 x the largest training value, stored by training
    plain = _one(program=program, target="revenue", features=features)
    assert plain.clipped is False
    assert plain.raw_prediction is None
    assert plain.sane_range is None
    assert stored["low"] <= plain.prediction <= stored["high"]
    # A tiny range (as if the training values had been tiny): the same model's value now lies above it.
    high = plain.prediction / 10.0
    ModelVersion.objects.filter(pk=version.pk).update(
        metrics={**version.metrics, "sane_range": {"low": 0.0, "high": high}}
    )
    reset_predictor()  # the range is read when a model loads
    answer = _one(program=program, target="revenue", features=features)
    assert answer.prediction == high
    assert answer.clipped is True
    assert answer.raw_prediction == plain.prediction
    assert answer.sane_range == SaneRange(low=0.0, high=high)
    for interval in (answer.interval, *answer.intervals):
        assert 0.0 <= interval.low <= interval.high <= high
    predict.prediction_log_flush()
    assert PredictionLog.objects.filter(target="revenue").latest("id").output == high
    matrix = predict.predict_matrix(target="revenue", programs=[program], starts=[SLOTS[3]])
    assert matrix.tolist() == [[high]]
