"""A whole run in-process on small generated data: jobs, versions, metrics, selection."""

from __future__ import annotations

import pytest

from registry import services
from registry.models import ModelVersion, TrainingJob, TrainingRun
from tests.registry.factories import TINY_OPTIONS, small_data


@pytest.mark.django_db
def test_inline_run_trains_every_model_and_promotes_the_best(settings):
    settings.PROMOTION_MIN_R2 = 0.0
    small_data()
    run = services.training_run_start(trigger=TrainingRun.Trigger.MANUAL, options=TINY_OPTIONS, dispatch=False)
    run = services.training_run_execute_inline(run=run)

    assert run.status == TrainingRun.Status.SUCCEEDED
    assert (run.models_total, run.models_done, run.models_failed) == (24, 24, 0)
    assert TrainingJob.objects.filter(run=run, status=TrainingJob.Status.SUCCEEDED).count() == 24
    assert ModelVersion.objects.filter(run=run).count() == 24
    production = ModelVersion.objects.filter(status=ModelVersion.Status.PRODUCTION)
    assert production.count() == 4
    for version in production:
        best = max(ModelVersion.objects.filter(run=run, target=version.target), key=lambda v: v.r2)
        assert version.pk == best.pk
        assert run.selection[version.target]["promoted"] == version.pk
    sample = ModelVersion.objects.filter(run=run).first()
    assert set(sample.metrics) >= {
        "r2",
        "mse",
        "rmse",
        "mae",
        "cv_r2_mean",
        "cv_r2_std",
        "n_train",
        "n_holdout",
        "residual_quantiles",
    }
    assert run.dataset["audience"]["rows"] > 0
