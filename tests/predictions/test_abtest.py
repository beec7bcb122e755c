"""A/B tests: deterministic split, shadow mode, creation rules, scoring on imported actual values."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from bms.errors import ApplicationError, ConflictError
from predictions import ab_tests, predict
from predictions.ab import CHALLENGER, CHAMPION, ab_arm
from predictions.models import ABTest, PredictionLog
from predictions.predict import ABAssignment, TargetPrediction
from predictions.tasks import ab_tests_score_task
from programs.models import Airing

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")
FUTURE = datetime(2024, 3, 2, 19, 0, tzinfo=NY)


def _one(**kwargs) -> TargetPrediction:
    return predict.predict(**kwargs).predictions[0]


def _start(world, mode="split", share=0.5, target="rating"):
    return ab_tests.ab_test_create(
        name=f"{target} xgb", challenger=world.challengers[target], traffic_share=share, mode=mode
    )


def test_split_serves_each_key_its_arm_and_logs_both(world):
    test = _start(world, share=0.5)
    program = world.programs[0]
    served = {}
    for i in range(20):
        key = f"user-{i}"
        answer = _one(program=program, target="rating", features={"start": FUTURE.isoformat()}, user_key=key)
        arm = ab_arm(key=key, test_id=test.pk, share=0.5)
        assert answer.ab_test == ABAssignment(test_id=test.pk, arm=arm)
        expected = world.challengers["rating"] if arm == CHALLENGER else world.production["rating"]
        assert answer.model.id == expected.pk
        served[key] = answer
    assert {a.ab_test.arm for a in served.values() if a.ab_test is not None} == {CHAMPION, CHALLENGER}
    again = _one(program=program, target="rating", features={"start": FUTURE.isoformat()}, user_key="user-3")
    assert again.model == served["user-3"].model
    predict.prediction_log_flush()
    logs = PredictionLog.objects.filter(ab_test=test)
    assert logs.count() == 42
    assert logs.filter(served=True).count() == 21
    assert set(logs.values_list("arm", flat=True)) == {CHAMPION, CHALLENGER}


def test_shadow_mode_never_returns_the_challenger(world):
    test = _start(world, mode="shadow", share=1.0)
    for i in range(10):
        answer = _one(program=world.programs[1], target="rating", user_key=f"k{i}")
        assert answer.model.id == world.production["rating"].pk
        assert answer.ab_test == ABAssignment(test_id=test.pk, arm=CHAMPION)
    predict.prediction_log_flush()
    challenger_logs = PredictionLog.objects.filter(ab_test=test, arm=CHALLENGER)
    assert challenger_logs.count() == 10
    assert not challenger_logs.filter(served=True).exists()


def test_other_targets_are_not_in_the_test(world):
    _start(world, target="rating")
    answer = _one(program=world.programs[0], target="revenue", user_key="x")
    assert answer.ab_test is None


def test_a_stopped_test_no_longer_splits(world, settings):
    settings.PREDICTOR_GENERATION_CHECK_MS = 0
    test = _start(world, share=1.0)
    assert _one(program=world.programs[0], target="rating", user_key="a").ab_test == ABAssignment(
        test_id=test.pk, arm=CHALLENGER
    )
    ab_tests.ab_test_stop(test=test)
    answer = _one(program=world.programs[0], target="rating", user_key="a")
    assert answer.ab_test is None
    assert answer.model.id == world.production["rating"].pk
    with pytest.raises(ConflictError):
        ab_tests.ab_test_stop(test=test)


def test_creation_rules(world):
    with pytest.raises(ApplicationError, match="already"):
        ab_tests.ab_test_create(name="same", challenger=world.production["rating"], traffic_share=0.5)
    with pytest.raises(ApplicationError, match="between 0 and 1"):
        ab_tests.ab_test_create(name="x", challenger=world.challengers["rating"], traffic_share=1.5)
    later = timezone.now() + timedelta(days=2)
    with pytest.raises(ApplicationError, match="after"):
        ab_tests.ab_test_create(
            name="x", challenger=world.challengers["rating"], traffic_share=0.5, starts_at=later, ends_at=later
        )
    assert ABTest.objects.count() == 0
    _start(world)
    with pytest.raises(ConflictError, match="active already"):
        _start(world)
    assert ABTest.objects.count() == 1


def _predict_each(programs, slots):
    """One rating prediction per program and slot, each program under its own A/B key."""
    for i, program in enumerate(programs):
        for slot in slots:
            predict.predict(program=program, target="rating", features={"start": slot.isoformat()}, user_key=f"u{i}")


def test_scoring_on_imported_actuals(world):
    test = _start(world, share=0.5)
    programs = world.programs[:6]
    slots = [FUTURE + timedelta(hours=h) for h in range(3)]
    _predict_each(programs, slots)
    pending = ab_tests.ab_test_score(test=test)
    assert pending["status"] == "no_actuals"
    assert (pending["n_requests"], pending["n_predictions"]) == (18, 18)
    # The airings happen and are imported with their ratings (the last slot of each program has none yet).
    rng = np.random.default_rng(0)
    actual = {}
    for program in programs:
        for slot in slots:
            value = None if slot == slots[-1] else float(rng.uniform(0.5, 3.0))
            Airing.objects.create(
                program=program, channel=program.channel, start=slot, duration_minutes=60, rating=value
            )
            actual[(program.pk, slot)] = value
    result = ab_tests.ab_test_score(test=test, n_boot=500)
    assert result["status"] == "scored"
    assert result["n_matched"] == 12
    logs = list(
        PredictionLog.objects.filter(ab_test=test).values("program_id", "slot_start", "arm", "output", "served")
    )
    by_arm: dict[str, list[float]] = {CHAMPION: [], CHALLENGER: []}
    for row in logs:
        y = actual[(row["program_id"], row["slot_start"])]
        if y is not None:
            by_arm[row["arm"]].append(row["output"] - y)
    for arm in (CHAMPION, CHALLENGER):
        err = np.array(by_arm[arm])
        assert result[arm]["n"] == 12
        assert result[arm]["rmse"] == pytest.approx(float(np.sqrt(np.mean(err**2))))
        assert result[arm]["mae"] == pytest.approx(float(np.mean(np.abs(err))))
    diff = np.abs(by_arm[CHALLENGER]) - np.abs(by_arm[CHAMPION])
    assert result["diff_mean"] == pytest.approx(float(np.mean(diff)))
    assert result["diff_low"] <= result["diff_mean"] <= result["diff_high"]
    assert result["winner"] in {CHAMPION, CHALLENGER, "inconclusive"}
    assert result["served"][CHAMPION]["n"] + result["served"][CHALLENGER]["n"] == 12
    test.refresh_from_db()
    assert test.result == result
    assert test.scored_at is not None
    assert ab_tests_score_task() == {str(test.pk): "scored"}


def test_an_import_with_actual_values_scores_the_running_test(
    world, tmp_path, django_capture_on_commit_callbacks, eager_tasks
):
    """No one calls ab_test_score here: importing the airings' actual values is what scores the test."""
    from programs.importer import airings_import
    from tests.programs.factories import canonical_row, write_csv

    test = _start(world, share=0.5)
    programs = world.programs[:5]
    slots = [FUTURE + timedelta(days=d) for d in range(3)]
    _predict_each(programs, slots)
    rows = [
        canonical_row(
            external_id=p.external_id, title=p.title, channel=p.channel.code, genre=p.genre,
            content_rating=p.content_rating, start=slot.isoformat(), duration_minutes=str(p.duration_minutes),
            rating=f"{1.0 + 0.1 * k:.2f}",
        )
        for k, (p, slot) in enumerate((p, s) for p in programs for s in slots)
    ]  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        result = airings_import(path=write_csv(tmp_path / "actuals.csv", rows))
    assert result.created == 15
    test.refresh_from_db()
    assert test.scored_at is not None
    assert test.result["status"] == "scored"
    assert test.result["n_matched"] == 15
    assert test.result[CHAMPION]["n"] == test.result[CHALLENGER]["n"] == 15


def test_an_import_without_a_running_test_schedules_nothing(world, tmp_path, django_capture_on_commit_callbacks):
    from programs.importer import airings_import
    from tests.programs.factories import canonical_row, write_csv

    p = world.programs[0]
    row = canonical_row(external_id=p.external_id, title=p.title, channel=p.channel.code, start=FUTURE.isoformat())
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        airings_import(path=write_csv(tmp_path / "one.csv", [row]))
    assert not [c for c in callbacks if getattr(c, "__self__", None) is ab_tests_score_task]


def test_admin_shows_the_scoring(world, client):
    test = _start(world, share=0.5)
    test.result = {
        "status": "scored",
        "champion": {"n": 12, "rmse": 0.5, "mae": 0.4},
        "challenger": {"n": 12, "rmse": 0.3, "mae": 0.2},
        "diff_mean": -0.2,
        "diff_low": -0.3,
        "diff_high": -0.1,
        "level": 0.95,
        "winner": "challenger",
    }
    test.save(update_fields=["result"])
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    page = client.get(f"/admin/predictions/abtest/{test.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Paired |error| difference" in html
    assert "winner: <b>challenger</b>" in html
    listing = client.get("/admin/predictions/abtest/")
    assert listing.status_code == 200
    add = client.post(
        "/admin/predictions/abtest/add/",
        {
            "name": "dup",
            "challenger": world.challengers["rating"].pk,
            "traffic_share": "0.5",
            "mode": "split",
            "starts_at_0": "2024-03-01",
            "starts_at_1": "00:00:00",
        },
    )
    assert add.status_code == 200  # the form shows the error: a test is active already
    assert "active already" in add.content.decode()
    assert ABTest.objects.count() == 1
