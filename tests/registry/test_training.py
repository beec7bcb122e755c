"""A whole run in-process on small generated data: jobs, versions, metrics, selection."""

from __future__ import annotations

import pytest

from programs.models import TARGETS
from registry import services
from registry.models import ModelVersion, TrainingJob, TrainingRun
from registry.training import BASELINES
from tests.registry.factories import TINY_OPTIONS, small_data


@pytest.mark.django_db
def test_inline_run_trains_every_model_chooses_on_cross_validation_and_gates_on_test_and_baselines(settings):
    settings.PROMOTION_MIN_R2 = 0.0
    small_data()
    run = services.training_run_start(trigger=TrainingRun.Trigger.MANUAL, options=TINY_OPTIONS, dispatch=False)
    run = services.training_run_execute_inline(run=run)

    assert run.status == TrainingRun.Status.SUCCEEDED
    assert (run.models_total, run.models_done, run.models_failed) == (24, 24, 0)
    assert TrainingJob.objects.filter(run=run, status=TrainingJob.Status.SUCCEEDED).count() == 24
    assert ModelVersion.objects.filter(run=run).count() == 24
    for target in TARGETS:
        versions = list(ModelVersion.objects.filter(run=run, target=target))
        eligible = [v for v in versions if not v.metrics["rejected"]]
        # chosen on the rolling-origin folds of train + validation (error relative to the anchor), never on test
        best = min(eligible, key=lambda v: (v.metrics["cv_relative_mse"], -v.metrics["val_r2"], v.pk))
        entry = run.selection[target]
        assert entry["best"] == best.pk
        baselines = run.baselines[target]
        assert set(baselines) == {"program_mean", "previous_airing", "mean_last_3", "same_slot_last_week", "best"}
        baseline_rmse = baselines[baselines["best"]]["rmse"]
        assert baseline_rmse == min(baselines[name]["rmse"] for name in BASELINES)
        assert best.metrics["best_baseline"] == {
            "name": baselines["best"],
            "rmse": baseline_rmse,
            "r2": baselines[baselines["best"]]["r2"],
        }
        if best.metrics["rmse"] < baseline_rmse:
            assert entry["promoted"] == best.pk
            assert ModelVersion.objects.get(pk=best.pk).status == ModelVersion.Status.PRODUCTION
        else:
            assert entry["promoted"] is None
            assert "does not beat the best baseline" in entry["reason"]
    sample = ModelVersion.objects.filter(run=run).first()
    assert sample is not None
    assert set(sample.metrics) >= {
        "r2",
        "mse",
        "rmse",
        "mae",
        "test_r2",
        "test_rmse",
        "val_r2",
        "val_rmse",
        "cv_r2_mean",
        "cv_r2_std",
        "cv_relative_mse",
        "shrink",
        "anchor",
        "fitted_on",
        "n_train",
        "n_validation",
        "n_test",
        "sane_range",
        "out_of_range",
        "rejected",
        "conformal",
        "interval_coverage",
        "baselines",
        "best_baseline",
    }
    assert set(sample.metrics["interval_coverage"]) == {"0.8", "0.9", "0.95"}
    assert run.dataset["audience"]["rows"] > 0
    assert (
        run.dataset["audience"]["n_train"] + run.dataset["audience"]["n_validation"] + run.dataset["audience"]["n_test"]
        == run.dataset["audience"]["rows"]
    )
