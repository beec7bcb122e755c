"""The accuracy-drift threshold is calibrated on the model's own holdout spread, so an untouched install
does not flag (issue 18: the fixed 0.25 fired on the demo's revenue at 0.30 every night)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from django.test import override_settings

from predictions import drift
from predictions.models import DriftReport
from predictions.predictor import reset_predictor
from predictions.services import drift_check
from programs.generator import generate
from programs.models import TARGETS
from registry.models import ModelVersion
from registry.services import model_version_promote, training_run_execute_inline, training_run_start
from tests.predictions.factories import TINY, clear_world


def test_the_threshold_is_a_quantile_of_whole_day_windows_drawn_from_the_holdout():
    rng = np.random.default_rng(3)
    days = np.repeat(np.arange(12), 30)
    # Heavy-tailed days: a few days carry most of the squared error, as revenue's do.
    residuals = rng.normal(0, 1, days.size) * np.where(np.isin(days, [2, 7]), 6.0, 1.0)
    got = drift.accuracy_threshold(residuals=residuals, days=days, window_days=4, floor=0.25, n_boot=500, seed=1)
    # The same thing written as a loop over the draws.
    holdout = np.sqrt(np.mean(residuals**2))
    draws = np.random.default_rng(1).integers(0, 12, size=(500, 4))
    ratios = [np.sqrt(np.mean(np.concatenate([residuals[days == d] for d in row]) ** 2)) / holdout - 1 for row in draws]
    assert got == pytest.approx(max(0.25, float(np.quantile(ratios, 0.99))), rel=1e-12)
    assert got > 0.25
    # Even errors over many days: chance alone stays under the floor, which then applies.
    even = rng.normal(0, 1, days.size)
    assert drift.accuracy_threshold(residuals=even, days=days, window_days=4, floor=0.25, n_boot=500) == 0.25
    # Fewer than two days to draw from: the floor.
    assert drift.accuracy_threshold(residuals=even[:30], days=days[:30], window_days=4, floor=0.3) == 0.3


@pytest.fixture(scope="module")
def untouched(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any) -> Iterator[None]:
    """A fresh install: generated data (long enough for a holdout before the drift window), one model per
    target trained by the pipeline and live, nothing changed since."""
    with override_settings(ARTIFACT_ROOT=tmp_path_factory.mktemp("artifacts"), PROMOTION_MIN_R2=1.5):
        with django_db_blocker.unblock():
            generate(seed=21, channels=2, programs=60, days=75)
            run = training_run_start(
                trigger="manual",
                algorithms=["random_forest"],
                options={"hyperparameters": {"random_forest": TINY["random_forest"]}, "cv_splits": 0},
                dispatch=False,
            )
            training_run_execute_inline(run=run)
            for version in ModelVersion.objects.filter(run=run):
                model_version_promote(version=version, actor=None, reason="install", force=True)
        reset_predictor()
        yield
        reset_predictor()
        with django_db_blocker.unblock():
            clear_world()


@pytest.mark.django_db
def test_an_untouched_install_is_not_flagged(untouched):
    reports = {r.target: r for r in drift_check()}
    summary = {t: (r.accuracy_drift, r.accuracy_threshold, r.flagged) for t, r in reports.items()}
    assert sorted(reports) == sorted(TARGETS)
    assert [t for t, r in reports.items() if r.flagged] == [], summary
    for report in reports.values():
        assert report.accuracy_threshold is not None
        assert report.accuracy_threshold >= 0.25
        assert report.accuracy_flagged is False
    assert DriftReport.objects.filter(flagged=True).count() == 0
