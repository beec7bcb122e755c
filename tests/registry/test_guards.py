"""Guards on hand promotion (API, command, admin): compared with production and the baselines on the same
test data, refused unless forced with a reason (in the ledger); automatic promotion never treats an
unloadable champion as beaten."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import CommandError, call_command

from registry import artifacts, guards, services
from registry.models import ModelVersion, PromotionEvent, TrainingRun
from tests.registry.factories import TINY_OPTIONS, run_factory, small_data, version_factory

P = ModelVersion.Status
pytestmark = pytest.mark.django_db


def _statuses() -> dict[int, str]:
    return dict(ModelVersion.objects.values_list("id", "status"))


@pytest.fixture
def trained(settings) -> dict[str, ModelVersion]:
    """Generated airings, a random forest trained on them (production, forced in) and a model fitted on
    other data (a synthetic frame): far worse on these airings than both production and the baselines."""
    settings.PROMOTION_MIN_R2 = 1.5  # nothing promotes itself
    small_data()
    run = services.training_run_start(
        trigger=TrainingRun.Trigger.MANUAL,
        targets=["audience"],
        algorithms=["random_forest"],
        options=TINY_OPTIONS,
        dispatch=False,
    )
    services.training_run_execute_inline(run=run)
    good = ModelVersion.objects.get(run=run)
    services.model_version_promote(version=good, actor=None, reason="setup", force=True)
    bad = version_factory(algorithm="mlp", r2=0.99)  # its stored R² claims much; the test data says otherwise
    return {"production": good, "bad": bad}


def test_comparison_refusals_name_production_and_the_best_baseline_with_their_figures():
    comparison = guards.PromotionComparison(
        target="audience",
        candidate="audience/mlp v2",
        n_test=40,
        test_start="2024-03-01T00:00:00+00:00",
        candidate_rmse=12.0,
        production="audience/xgboost v1",
        production_rmse=10.0,
        baselines={"program_mean": 15.0, "previous_airing": 11.5, "last_3_mean": 13.0},
    )
    assert comparison.best_baseline == ("previous_airing", 11.5)
    assert comparison.refusals() == [
        "audience/mlp v2 (test RMSE 12) does not beat production audience/xgboost v1 (test RMSE 10) "
        "on the same 40 test airings",
        "audience/mlp v2 (test RMSE 12) does not beat the baseline previous_airing (test RMSE 11.5) "
        "on the same 40 test airings",
    ]
    better = guards.PromotionComparison(**{**comparison.__dict__, "candidate_rmse": 9.0})
    assert better.refusals() == []
    # A production model that cannot be scored is not "beaten": the comparison says so and stays open.
    broken = guards.PromotionComparison(
        **{**comparison.__dict__, "candidate_rmse": 9.0, "production_rmse": None, "production_error": "gone"}
    )
    assert broken.refusals() == []
    assert "production audience/xgboost v1 not scored: gone" in broken.summary()


def test_a_worse_hand_promotion_through_the_api_is_refused_and_changes_nothing(trained, admin_client_api):
    bad, production = trained["bad"], trained["production"]
    expected = guards.promotion_comparison(version=bad)
    refusals = expected.refusals()
    assert expected.production_rmse is not None
    assert expected.candidate_rmse is not None
    assert expected.candidate_rmse > expected.production_rmse  # the model fitted on other data is worse
    assert len(refusals) == 2
    assert "does not beat production" in refusals[0]
    assert "does not beat the baseline" in refusals[1]
    before = (_statuses(), PromotionEvent.objects.count())

    response = admin_client_api.post(f"/api/v1/models/{bad.pk}/promote", {"reason": "trust me"}, format="json")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "promotion_refused"
    assert error["message"] == (
        "Promotion refused: " + "; ".join(refusals) + ". Promote with force and a reason to override."
    )
    assert error["details"]["refusals"] == refusals
    assert error["details"]["production_rmse"] == pytest.approx(expected.production_rmse, rel=1e-12)
    assert (_statuses(), PromotionEvent.objects.count()) == before
    assert _statuses()[production.pk] == P.PRODUCTION


def test_a_forced_hand_promotion_goes_through_and_the_ledger_records_what_it_was_forced_past(
    trained, admin_client_api, admin_user
):
    bad, production = trained["bad"], trained["production"]
    refusals = guards.promotion_comparison(version=bad).refusals()
    response = admin_client_api.post(
        f"/api/v1/models/{bad.pk}/promote", {"reason": "known issue upstream", "force": True}, format="json"
    )
    assert response.status_code == 200
    assert _statuses() == {production.pk: P.ARCHIVED, bad.pk: P.PRODUCTION}
    event = PromotionEvent.objects.filter(version=bad).get()
    assert (event.reason, event.forced, event.actor, event.kind) == (
        "known issue upstream",
        True,
        admin_user,
        "promotion",
    )
    assert event.details["forced_past"] == refusals
    assert event.details["comparison"]["candidate"] == bad.label


def test_the_command_refuses_a_worse_model_and_promotes_it_with_force(trained):
    bad, production = trained["bad"], trained["production"]
    with pytest.raises(CommandError, match=r"^Promotion refused: .* does not beat production"):
        call_command("promote_model", str(bad.pk), "--reason", "cli")
    assert _statuses() == {production.pk: P.PRODUCTION, bad.pk: P.CANDIDATE}
    call_command("promote_model", str(bad.pk), "--reason", "cli", "--force", stdout=StringIO())
    assert _statuses() == {production.pk: P.ARCHIVED, bad.pk: P.PRODUCTION}
    assert PromotionEvent.objects.get(version=bad, to_status=P.PRODUCTION).forced is True


def test_the_admin_action_refuses_a_worse_model_unless_force_is_ticked(trained, admin_user, client):
    bad, production = trained["bad"], trained["production"]
    client.force_login(admin_user)
    data = {"action": "promote", ACTION_CHECKBOX_NAME: [str(bad.pk)], "apply": "1", "reason": "admin"}
    refused = client.post("/admin/registry/modelversion/", data, follow=True)
    assert "Promotion refused: " in refused.content.decode()
    assert _statuses() == {production.pk: P.PRODUCTION, bad.pk: P.CANDIDATE}
    client.post("/admin/registry/modelversion/", {**data, "force": "on"}, follow=True)
    assert _statuses() == {production.pk: P.ARCHIVED, bad.pk: P.PRODUCTION}
    assert PromotionEvent.objects.get(version=bad, to_status=P.PRODUCTION).forced is True


def test_a_hand_promotion_without_test_data_is_allowed_and_says_so_in_the_ledger():
    version = version_factory(r2=0.8)
    services.model_version_promote(version=version, actor=None, reason="first model")
    event = PromotionEvent.objects.get()
    assert (event.forced, event.details["comparison"]["summary"]) == (False, "no test data for audience to compare on")


def test_automatic_promotion_does_not_read_an_unloadable_champion_as_beaten(settings):
    champion = version_factory(r2=0.95, status=P.PRODUCTION)
    (Path(settings.ARTIFACT_ROOT) / champion.artifact_path).unlink()
    run = run_factory(status=TrainingRun.Status.RUNNING)
    candidate = version_factory(algorithm="mlp", r2=0.9, run=run)
    selection = services.select_after_run(run=run)
    assert _statuses() == {champion.pk: P.PRODUCTION, candidate.pk: P.CANDIDATE}
    assert selection["audience"].promoted is None
    assert selection["audience"].production == services.ProductionScore(id=champion.pk, r2=None)
    assert selection["audience"].reason.startswith(
        f"production {champion.label} could not be scored (its artifact cannot be loaded: Artifact file cannot be read"
    )
    assert selection["audience"].reason.endswith(
        "not promoted automatically: restore its artifact or promote a version by hand"
    )
    assert PromotionEvent.objects.count() == 0
    assert artifacts.load_model(candidate) is not None
