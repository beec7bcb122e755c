"""A/B tests in daily use: a promotion ends the target's test (recorded), tests end at ends_at and free
their target, counts say what they count, and the command / API read them."""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from bms.errors import ApplicationError
from predictions import ab_tests, predict
from predictions.models import ABTest
from predictions.predict import PredictItem
from predictions.predictor import get_predictor
from programs.models import Airing
from registry.models import PromotionEvent
from registry.services import model_version_promote, model_version_rollback

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")
FUTURE = datetime(2024, 3, 2, 19, 0, tzinfo=NY)


def _start(world, *, share=0.5, target="rating", ends_at=None):
    return ab_tests.ab_test_create(
        name=f"{target} xgb", challenger=world.challengers[target], traffic_share=share, ends_at=ends_at
    )


def _answers(world, n, target="rating"):
    program = world.programs[0]
    return [
        predict.predict(
            program=program, target=target, features={"start": FUTURE.isoformat()}, user_key=f"k{i}"
        ).predictions[0]
        for i in range(n)
    ]


def test_a_hand_promotion_during_a_test_ends_it_and_the_new_model_answers_everyone(
    world, settings, eager_tasks, django_capture_on_commit_callbacks
):
    settings.PREDICTOR_GENERATION_CHECK_MS = 0
    test = _start(world, share=0.5)
    arms = {a.ab_test.arm for a in _answers(world, 20)}
    assert arms == {"champion", "challenger"}
    new = world.challengers["rating"]  # promoted by hand while its test runs

    with django_capture_on_commit_callbacks(execute=True):
        model_version_promote(version=new, actor=None, reason="looks better", force=True)

    test.refresh_from_db()
    assert test.status == ABTest.Status.STOPPED
    assert test.end_reason == f"production changed to {new.label}"
    assert test.ended_at is not None
    assert test.scored_at is not None  # scored a last time
    assert test.result["n_predictions"] == 20
    event = PromotionEvent.objects.get(version=new, to_status="production")
    assert event.details["ab_tests_ended"] == [
        {"id": test.pk, "name": test.name, "reason": f"production changed to {new.label}"}
    ]
    answers = _answers(world, 40)
    assert [a.model.id for a in answers] == [new.pk] * 40
    assert not [a for a in answers if a.ab_test is not None]
    # The rollback that follows ends nothing more and restores the old champion for everyone.
    model_version_rollback(target="rating", actor=None, reason="back")
    assert {a.model.id for a in _answers(world, 10)} == {world.production["rating"].pk}


def test_an_automatic_promotion_after_a_drift_run_ends_the_test_too(world, settings):
    from registry.models import TrainingRun

    settings.PREDICTOR_GENERATION_CHECK_MS = 0
    test = _start(world, target="engagement")
    run = TrainingRun.objects.create(trigger="drift", targets=["engagement"], algorithms=["xgboost"], seed=1)
    new = world.challengers["engagement"]
    model_version_promote(version=new, actor=None, reason=f"run {run.pk}: beats production", run=run)
    test.refresh_from_db()
    assert (test.status, test.end_reason) == (ABTest.Status.STOPPED, f"production changed to {new.label}")
    event = PromotionEvent.objects.get(version=new, to_status="production")
    assert (event.run_id, event.details) == (
        run.pk,
        {"ab_tests_ended": [{"id": test.pk, "name": test.name, "reason": f"production changed to {new.label}"}]},
    )
    assert {a.model.id for a in _answers(world, 10, target="engagement")} == {new.pk}


def test_a_rollback_during_a_test_ends_it_too(world, settings):
    settings.PREDICTOR_GENERATION_CHECK_MS = 0
    model_version_promote(version=world.challengers["audience"], actor=None, reason="setup", force=True)
    test = ab_tests.ab_test_create(
        name="audience rf", challenger=world.production["audience"], traffic_share=0.5, ends_at=None
    )
    model_version_rollback(target="audience", actor=None, reason="xgboost misbehaves")
    test.refresh_from_db()
    assert (test.status, test.end_reason) == (
        ABTest.Status.STOPPED,
        f"production rolled back to {world.production['audience'].label}",
    )
    assert PromotionEvent.objects.latest("id").details["ab_tests_ended"][0]["id"] == test.pk


def test_ends_at_must_be_in_the_future_and_nothing_is_created(world):
    past = timezone.now() - timedelta(hours=1)
    with pytest.raises(ApplicationError, match=r"^ends_at \(.*\) must be in the future\.$"):
        _start(world, ends_at=past)
    assert ABTest.objects.count() == 0


def test_an_expired_test_ends_by_itself_is_scored_a_last_time_and_frees_its_target(
    world, settings, eager_tasks, django_capture_on_commit_callbacks
):
    settings.PREDICTOR_GENERATION_CHECK_MS = 0
    now = timezone.now()
    test = _start(world, ends_at=now + timedelta(hours=1))
    assert len([a for a in _answers(world, 6) if a.ab_test is not None]) == 6
    # The clock passes ends_at: serving stops at once, the expiry task ends and scores it.
    ABTest.objects.filter(pk=test.pk).update(ends_at=now - timedelta(minutes=1))
    get_predictor().invalidate()
    assert not [a for a in _answers(world, 3) if a.ab_test is not None]
    with django_capture_on_commit_callbacks(execute=True):
        ended = ab_tests.ab_tests_expire()
    assert [t.pk for t in ended] == [test.pk]
    test.refresh_from_db()
    assert test.status == ABTest.Status.STOPPED
    assert test.end_reason == f"ended at its ends_at ({(now - timedelta(minutes=1)).isoformat()})"
    assert test.scored_at is not None
    assert (test.result["n_requests"], test.result["n_predictions"]) == (6, 6)
    # The next test for the target is accepted.
    assert _start(world).status == ABTest.Status.ACTIVE


def test_an_expired_but_unswept_test_does_not_block_the_next_one(world):
    test = _start(world, ends_at=timezone.now() + timedelta(hours=1))
    ABTest.objects.filter(pk=test.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    following = _start(world)
    test.refresh_from_db()
    assert (test.status, following.status) == (ABTest.Status.STOPPED, ABTest.Status.ACTIVE)
    assert test.end_reason.startswith("ended at its ends_at")


def test_scoring_counts_requests_and_predictions_separately(world):
    test = _start(world, share=0.5)
    slots = [FUTURE + timedelta(hours=h) for h in range(5)]
    programs = world.programs[:7]
    for batch in range(2):  # two HTTP calls of 35 predictions each
        items = [
            PredictItem(program=p.pk, target="rating", features={"start": s.isoformat()}, request_key=f"u{i}")
            for i, p in enumerate(programs)
            for s in slots
        ]
        predict.predict_batch(items=items, user_key=f"batch-{batch}")
    for p in programs:
        for s in slots[:3]:
            Airing.objects.create(program=p, channel=p.channel, start=s, duration_minutes=60, rating=1.5)
    result = ab_tests.ab_test_score(test=test, n_boot=200)
    assert (result["n_requests"], result["n_predictions"], result["n_matched"]) == (2, 70, 42)


def test_the_ab_test_command_starts_shows_and_stops(world):
    out = StringIO()
    challenger = world.challengers["engagement"]
    call_command("ab_test", "start", str(challenger.pk), "--name", "cli", "--share", "0.25", stdout=out)
    test = ABTest.objects.get(name="cli")
    assert (test.target, test.traffic_share, test.status) == ("engagement", 0.25, "active")
    call_command("ab_test", "show", stdout=out)
    assert f"{test.pk}\tactive\tengagement\t" in out.getvalue()
    with pytest.raises(CommandError, match="active already"):
        call_command("ab_test", "start", str(challenger.pk), "--name", "again")
    with pytest.raises(CommandError, match="must be in the future"):
        call_command("ab_test", "start", str(challenger.pk), "--name", "x", "--ends-at", "2020-01-01T00:00:00Z")
    call_command("ab_test", "stop", str(test.pk), "--reason", "enough data", stdout=out)
    test.refresh_from_db()
    assert (test.status, test.end_reason) == ("stopped", "enough data")
    shown = StringIO()
    call_command("ab_test", "show", str(test.pk), stdout=shown)
    assert "status: stopped at " in shown.getvalue()
    assert shown.getvalue().rstrip().endswith("}")
    with pytest.raises(CommandError, match="not found"):
        call_command("ab_test", "show", "999999")


def test_the_api_lists_and_reads_tests_for_analysts(world, analyst_client, viewer_client):
    test = _start(world, share=0.3)
    listed = analyst_client.get("/api/v1/ab-tests", {"target": "rating", "status": "active"})
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [test.pk]
    detail = analyst_client.get(f"/api/v1/ab-tests/{test.pk}").json()
    assert detail["champion"]["id"] == world.production["rating"].pk
    assert (detail["challenger"]["id"], detail["traffic_share"], detail["end_reason"]) == (
        world.challengers["rating"].pk,
        0.3,
        "",
    )
    assert analyst_client.get("/api/v1/ab-tests", {"target": "likes"}).status_code == 400
    assert viewer_client.get("/api/v1/ab-tests").status_code == 403
