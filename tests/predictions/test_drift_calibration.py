"""The accuracy-drift threshold is calibrated on the model's own holdout spread, so an untouched install
does not flag (issue 18: the fixed 0.25 fired on the demo's revenue at 0.30 every night)."""

from __future__ import annotations

import numpy as np
import pytest

from predictions import drift


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
