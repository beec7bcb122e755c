"""Selection rules, promotion, one production per target, rollback and "live at time T"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from bms.errors import InvalidStateError
from registry import selectors, services
from registry.artifacts import ArtifactError
from registry.models import ModelVersion, PromotionEvent, TrainingRun
from tests.registry.factories import run_factory, version_factory

P = ModelVersion.Status


def _statuses() -> dict[int, str]:
    return dict(ModelVersion.objects.values_list("id", "status"))


@pytest.mark.django_db
def test_the_best_candidate_above_the_threshold_is_promoted_when_there_is_no_production():
    run = run_factory(status=TrainingRun.Status.RUNNING, algorithms=["elasticnet", "mlp"])
    low = version_factory(r2=0.71, run=run)
    best = version_factory(algorithm="mlp", r2=0.74, run=run)
    selection = services.select_after_run(run=run)
    assert _statuses() == {low.pk: P.CANDIDATE, best.pk: P.PRODUCTION}
    assert selection["audience"].promoted == best.pk
    assert "no production model yet" in selection["audience"].reason
    event = PromotionEvent.objects.get()
    assert (event.version_id, event.from_status, event.to_status, event.actor_name) == (
        best.pk,
        P.CANDIDATE,
        P.PRODUCTION,
        "system",
    )


@pytest.mark.django_db
def test_a_candidate_at_or_below_the_threshold_stays_candidate_and_the_run_says_why(settings):
    settings.PROMOTION_MIN_R2 = 0.7
    run = run_factory(status=TrainingRun.Status.RUNNING)
    version = version_factory(r2=0.7, run=run)
    selection = services.select_after_run(run=run)
    assert _statuses() == {version.pk: P.CANDIDATE}
    assert selection["audience"].promoted is None
    assert selection["audience"].reason == "best model's test R² 0.7000 is not above the threshold 0.70"
    assert PromotionEvent.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("champion_r2", "promoted"), [(0.85, False), (0.80, False), (0.79, True)])
def test_a_candidate_must_beat_production_on_the_same_test_part(monkeypatch, champion_r2, promoted):
    champion = version_factory(r2=0.9, status=P.PRODUCTION)
    run = run_factory(status=TrainingRun.Status.RUNNING)
    challenger = version_factory(r2=0.80, run=run)
    # The champion is re-scored on this run's test part (its stored R² came from an older one).
    scored = []

    def score_on_test(v, **kw):
        scored.append(v.pk)
        return champion_r2, ""

    monkeypatch.setattr(services, "_score_on_test", score_on_test)
    selection = services.select_after_run(run=run)
    assert scored == [champion.pk]
    assert selection["audience"].production == services.ProductionScore(id=champion.pk, r2=champion_r2)
    if promoted:
        assert _statuses() == {champion.pk: P.ARCHIVED, challenger.pk: P.PRODUCTION}
    else:
        assert _statuses() == {champion.pk: P.PRODUCTION, challenger.pk: P.CANDIDATE}
        assert "does not beat production" in selection["audience"].reason


@pytest.mark.django_db
def test_the_choice_is_made_on_validation_and_the_gate_on_test():
    run = run_factory(status=TrainingRun.Status.RUNNING, algorithms=["elasticnet", "mlp"])
    # mlp is better on test but worse on validation: the run must not peek at test to choose.
    chosen = version_factory(r2=0.75, val_r2=0.80, run=run)
    peeking = version_factory(algorithm="mlp", r2=0.90, val_r2=0.70, run=run)
    selection = services.select_after_run(run=run)
    assert _statuses() == {chosen.pk: P.PRODUCTION, peeking.pk: P.CANDIDATE}
    best = selection["audience"].best
    assert best is not None
    assert (best.id, best.r2) == (chosen.pk, 0.75)


@pytest.mark.django_db
def test_a_rejected_model_is_never_chosen_and_the_run_says_why():
    run = run_factory(status=TrainingRun.Status.RUNNING, algorithms=["elasticnet", "mlp"])
    ok = version_factory(r2=0.75, run=run)
    wild = version_factory(
        algorithm="mlp", r2=0.95, run=run, metrics={"rejected": "3 predictions outside the sane range 0 ... 30"}
    )
    selection = services.select_after_run(run=run)
    assert _statuses() == {ok.pk: P.PRODUCTION, wild.pk: P.CANDIDATE}
    assert selection["audience"].rejected == {"mlp": "3 predictions outside the sane range 0 ... 30"}


@pytest.mark.django_db
def test_every_model_rejected_promotes_nothing():
    run = run_factory(status=TrainingRun.Status.RUNNING)
    version = version_factory(r2=0.9, run=run, metrics={"rejected": "time-series CV R² -0.500 is below 0"})
    selection = services.select_after_run(run=run)
    assert _statuses() == {version.pk: P.CANDIDATE}
    assert selection["audience"] == services.TargetSelection(
        promoted=None,
        rejected={"elasticnet": "time-series CV R² -0.500 is below 0"},
        reason="every model was rejected (elasticnet: time-series CV R² -0.500 is below 0)",
    )
    assert selection["audience"].as_json() == {
        "promoted": None,
        "rejected": {"elasticnet": "time-series CV R² -0.500 is below 0"},
        "reason": "every model was rejected (elasticnet: time-series CV R² -0.500 is below 0)",
    }
    assert PromotionEvent.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("baseline_rmse", "promoted"), [(0.9, False), (1.0, False), (1.1, True)])
def test_a_candidate_must_beat_the_best_baseline_test_rmse(baseline_rmse, promoted):
    baselines = {
        "program_mean": {"r2": 0.1, "rmse": 5.0},
        "previous_airing": {"r2": 0.6, "rmse": baseline_rmse},
        "best": "previous_airing",
    }
    run = run_factory(status=TrainingRun.Status.RUNNING, baselines={"audience": baselines})
    version = version_factory(r2=0.8, run=run)  # test RMSE 1.0
    selection = services.select_after_run(run=run)
    assert _statuses() == {version.pk: P.PRODUCTION if promoted else P.CANDIDATE}
    assert selection["audience"].best_baseline == services.BaselineScore(name="previous_airing", rmse=baseline_rmse)
    if not promoted:
        assert selection["audience"].reason == (
            f"best model's test RMSE 1 does not beat the best baseline previous_airing ({baseline_rmse:.4g})"
        )


@pytest.mark.django_db
def test_the_database_allows_one_production_version_per_target():
    version_factory(r2=0.8, status=P.PRODUCTION)
    other = version_factory(algorithm="mlp", r2=0.8)
    version_factory(target="revenue", r2=0.8, status=P.PRODUCTION)  # another target is fine
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=other.pk).update(status=P.PRODUCTION)
    assert ModelVersion.objects.filter(target="audience", status=P.PRODUCTION).count() == 1


@pytest.mark.django_db
def test_promote_archives_the_previous_production_and_records_events(admin_user):
    first = version_factory(r2=0.8)
    second = version_factory(algorithm="mlp", r2=0.82)
    services.model_version_promote(version=first, actor=admin_user, reason="first")
    generation = selectors.registry_generation()
    services.model_version_promote(version=second, actor=admin_user, reason="better")
    assert selectors.registry_generation() > generation
    assert _statuses() == {first.pk: P.ARCHIVED, second.pk: P.PRODUCTION}
    events = list(PromotionEvent.objects.order_by("id").values_list("version_id", "from_status", "to_status"))
    assert events == [
        (first.pk, P.CANDIDATE, P.PRODUCTION),
        (first.pk, P.PRODUCTION, P.ARCHIVED),
        (second.pk, P.CANDIDATE, P.PRODUCTION),
    ]
    assert PromotionEvent.objects.filter(actor=admin_user).count() == 3
    assert selectors.production_models() == {"audience": second}


@pytest.mark.django_db
def test_promoting_the_production_version_again_is_refused_and_changes_nothing(admin_user):
    version = version_factory(r2=0.8, status=P.PRODUCTION)
    with pytest.raises(InvalidStateError):
        services.model_version_promote(version=version, actor=admin_user, reason="again")
    assert _statuses() == {version.pk: P.PRODUCTION}
    assert PromotionEvent.objects.count() == 0


@pytest.mark.django_db
def test_rollback_restores_the_previous_production_and_live_at_answers_for_any_time(admin_user):
    v1 = version_factory(r2=0.8)
    v2 = version_factory(algorithm="mlp", r2=0.85)
    before = timezone.now()
    services.model_version_promote(version=v1, actor=admin_user, reason="v1")
    t1 = timezone.now()
    services.model_version_promote(version=v2, actor=admin_user, reason="v2")
    t2 = timezone.now()
    restored = services.model_version_rollback(target="audience", actor=admin_user, reason="v2 misbehaves")
    t3 = timezone.now()

    assert restored.pk == v1.pk
    assert _statuses() == {v1.pk: P.PRODUCTION, v2.pk: P.ARCHIVED}
    assert selectors.live_at(target="audience", when=before - timedelta(seconds=1)) is None
    assert selectors.live_at(target="audience", when=t1) == v1
    assert selectors.live_at(target="audience", when=t2) == v2
    assert selectors.live_at(target="audience", when=t3) == v1
    assert selectors.live_at(target="revenue", when=t3) is None
    last = PromotionEvent.objects.order_by("-id").first()
    assert last is not None
    assert last.reason == "rollback from audience/mlp v1: v2 misbehaves"


@pytest.mark.django_db
def test_rollback_walks_back_the_ledger_one_production_version_per_call(admin_user):
    v1 = version_factory(r2=0.8)
    v2 = version_factory(algorithm="mlp", r2=0.85)
    v3 = version_factory(algorithm="random_forest", r2=0.9)
    for version in (v1, v2, v3):
        services.model_version_promote(version=version, actor=admin_user, reason=version.label)
    assert services.production_stack(target="audience") == [v1.pk, v2.pk, v3.pk]

    assert services.model_version_rollback(target="audience", actor=admin_user, reason="r1").pk == v2.pk
    assert services.production_stack(target="audience") == [v1.pk, v2.pk]
    # Not back to v3 (the last two), but one further back.
    assert services.model_version_rollback(target="audience", actor=admin_user, reason="r2").pk == v1.pk
    assert _statuses() == {v1.pk: P.PRODUCTION, v2.pk: P.ARCHIVED, v3.pk: P.ARCHIVED}
    events = PromotionEvent.objects.count()
    with pytest.raises(InvalidStateError, match="no previous production version"):
        services.model_version_rollback(target="audience", actor=admin_user, reason="r3")
    assert PromotionEvent.objects.count() == events
    assert _statuses() == {v1.pk: P.PRODUCTION, v2.pk: P.ARCHIVED, v3.pk: P.ARCHIVED}
    kinds = list(PromotionEvent.objects.order_by("id").values_list("version_id", "to_status", "kind"))
    assert kinds[-4:] == [
        (v3.pk, P.ARCHIVED, "rollback"),
        (v2.pk, P.PRODUCTION, "rollback"),
        (v2.pk, P.ARCHIVED, "rollback"),
        (v1.pk, P.PRODUCTION, "rollback"),
    ]


@pytest.mark.django_db
def test_a_promotion_after_a_rollback_is_pushed_on_top_of_what_is_left(admin_user):
    v1 = version_factory(r2=0.8)
    v2 = version_factory(algorithm="mlp", r2=0.85)
    v3 = version_factory(algorithm="random_forest", r2=0.9)
    services.model_version_promote(version=v1, actor=admin_user, reason="v1")
    services.model_version_promote(version=v2, actor=admin_user, reason="v2")
    services.model_version_rollback(target="audience", actor=admin_user, reason="back to v1")
    services.model_version_promote(version=v3, actor=admin_user, reason="v3")
    assert services.production_stack(target="audience") == [v1.pk, v3.pk]
    assert services.model_version_rollback(target="audience", actor=admin_user, reason="v3 bad").pk == v1.pk


@pytest.mark.django_db
def test_rollback_without_a_previous_version_is_refused_and_changes_nothing(admin_user):
    with pytest.raises(InvalidStateError, match="no production model"):
        services.model_version_rollback(target="audience", actor=admin_user, reason="x")
    only = version_factory(r2=0.8)
    services.model_version_promote(version=only, actor=admin_user, reason="only")
    events = PromotionEvent.objects.count()
    with pytest.raises(InvalidStateError, match="no previous production version"):
        services.model_version_rollback(target="audience", actor=admin_user, reason="x")
    assert _statuses() == {only.pk: P.PRODUCTION}
    assert PromotionEvent.objects.count() == events


@pytest.mark.django_db
def test_a_version_whose_artifact_was_tampered_with_cannot_be_promoted(admin_user, settings):
    version = version_factory(r2=0.9)
    path = settings.ARTIFACT_ROOT / version.artifact_path
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ArtifactError):
        services.model_version_promote(version=version, actor=admin_user, reason="x")
    assert _statuses() == {version.pk: P.CANDIDATE}
    assert PromotionEvent.objects.count() == 0


@pytest.mark.django_db
def test_best_model_is_production_else_the_best_candidate():
    assert selectors.best_model(target="audience") is None
    low = version_factory(r2=0.5)
    high = version_factory(algorithm="mlp", r2=0.6)
    assert selectors.best_model(target="audience") == high
    services.model_version_promote(version=low, actor=None, reason="manual")
    assert selectors.best_model(target="audience") == low


def test_a_selection_is_stored_with_best_figures_flat_and_absent_parts_left_out():
    chosen = services.TargetSelection(
        reason="test R² 0.8000 > 0.70, beats the baselines and production audience/xgboost v1 (0.7500)",
        promoted=12,
        best=services.SelectedCandidate(id=12, algorithm="mlp", val_r2=0.81, r2=0.8, rmse=1.25),
        rejected={},
        best_baseline=services.BaselineScore(name="previous_airing", rmse=1.5),
        production=services.ProductionScore(id=3, r2=0.75),
    )
    stored = chosen.as_json()
    assert list(stored) == [
        "best", "algorithm", "val_r2", "r2", "rmse", "promoted", "rejected", "best_baseline", "production",
        "production_r2", "reason",
    ]  # fmt: skip
    assert stored["best_baseline"] == {"name": "previous_airing", "rmse": 1.5}
    assert (stored["best"], stored["promoted"], stored["production"], stored["production_r2"]) == (12, 12, 3, 0.75)
    nothing = services.TargetSelection(reason="no model was trained for this target").as_json()
    assert nothing == {"promoted": None, "reason": "no model was trained for this target"}


def test_training_options_store_only_what_was_set_and_read_back_equal():
    assert services.TrainingOptions().as_json() == {}
    options = services.TrainingOptions(hyperparameters={"mlp": {"max_iter": 40}}, cv_splits=0)
    stored = options.as_json()
    assert stored == {"hyperparameters": {"mlp": {"max_iter": 40}}, "cv_splits": 0}
    assert services.TrainingOptions.from_json(stored) == options
    assert services.TrainingOptions.from_json(None) == services.TrainingOptions()
