"""The anchor every algorithm corrects: follows a drifting level, falls back to it when learning does not help."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor

from registry.anchor import (
    ANCHOR_COLUMNS,
    AnchoredRegressor,
    choose_shrink,
    mean_scale,
    relative_error,
    worst_relative_error,
)


def _declining(n: int = 400, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """One program whose level falls 0.5% an airing (a show losing viewers), small noise."""
    rng = np.random.default_rng(seed)
    y = 1000.0 * 0.995 ** np.arange(n) * rng.lognormal(0.0, 0.02, n)
    previous = np.concatenate([[np.nan], y[:-1]])
    frame = pd.DataFrame({"program_id": np.ones(n, dtype="int64"), "h_last": previous})
    return frame, y


def test_it_follows_a_level_below_anything_seen_in_training():
    frame, y = _declining()
    model = AnchoredRegressor(regressor=DummyRegressor(), log=True, shrink=1.0).fit(frame.iloc[:300], y[:300])
    predicted = model.predict(frame.iloc[300:])
    # Later rows: below every training value, where a level model (or a tree) cannot go.
    assert predicted[50:].max() < y[:300].min()
    rmse = float(np.sqrt(np.mean((predicted - y[300:]) ** 2)))
    naive = float(np.sqrt(np.mean((frame["h_last"].to_numpy()[300:] - y[300:]) ** 2)))
    assert rmse <= 1.05 * naive


def test_the_anchor_weights_are_convex_and_unknown_levels_fall_back():
    frame, y = _declining()
    model = AnchoredRegressor(regressor=DummyRegressor(), log=True, shrink=0.0).fit(frame, y)
    assert model.weights_.min() >= 0
    assert model.weights_.sum() == pytest.approx(1.0)
    assert len(model.weights_) == len(ANCHOR_COLUMNS)
    # A program never seen and no history: the prior (mean of log1p y over the fitted rows).
    unseen = pd.DataFrame({"program_id": [99], "h_last": [np.nan]})
    assert model.predict(unseen)[0] == pytest.approx(np.expm1(np.mean(np.log1p(y))))


def test_shrink_is_zero_for_a_noise_correction_and_one_for_the_true_residual():
    rng = np.random.default_rng(0)
    truth = [rng.normal(10.0, 1.0, 200) for _ in range(3)]
    anchor = [np.full(200, 10.0) for _ in range(3)]

    def identity(z: np.ndarray) -> np.ndarray:
        return z

    noise = [rng.normal(0.0, 3.0, 200) for _ in range(3)]
    assert choose_shrink(y=truth, anchor=anchor, correction=noise, inverse=identity) == 0.0
    exact = [t - a for t, a in zip(truth, anchor, strict=True)]
    assert choose_shrink(y=truth, anchor=anchor, correction=exact, inverse=identity) == 1.0
    assert relative_error(y=truth, anchor=anchor, correction=exact, inverse=identity, shrink=1.0) == 0.0
    assert relative_error(y=truth, anchor=anchor, correction=noise, inverse=identity, shrink=0.0) == 1.0


def test_a_correction_that_helps_on_average_but_hurts_in_one_period_is_not_used():
    """Minimax over the periods: exact in the first, orthogonal noise in the second (hurts at any weight)."""

    def identity(z: np.ndarray) -> np.ndarray:
        return z

    anchor = [np.zeros(4), np.zeros(4)]
    residual = np.array([1.0, 2.0, -1.0, 0.5])
    truth = [residual, np.array([1.0, -1.0, 1.0, -1.0])]
    correction = [residual, np.sqrt(0.5) * np.array([1.0, 1.0, -1.0, -1.0])]
    mean = relative_error(y=truth, anchor=anchor, correction=correction, inverse=identity, shrink=0.75)
    worst = worst_relative_error(y=truth, anchor=anchor, correction=correction, inverse=identity, shrink=0.75)
    assert mean < 1.0  # the mean over the periods would use it ...
    assert worst > 1.0  # ... but it hurts in the second period
    assert choose_shrink(y=truth, anchor=anchor, correction=correction, inverse=identity) == 0.0


def test_mean_scale_is_the_least_squares_factor_within_its_bounds():
    predicted = np.array([1.0, 2.0, 3.0])
    assert mean_scale(y=1.05 * predicted, predicted=predicted) == pytest.approx(1.05)
    assert mean_scale(y=2.0 * predicted, predicted=predicted) == pytest.approx(1.1)
    assert mean_scale(y=np.zeros(0), predicted=np.zeros(0)) == 1.0


def test_a_stable_noisy_program_is_anchored_on_its_mean_so_far():
    """Noise around a fixed level: the mean of all earlier airings beats the recent ones as the anchor."""
    rng = np.random.default_rng(5)
    n = 400
    y = 500.0 + rng.normal(0.0, 50.0, n)
    before = np.concatenate([[np.nan], y[:-1]])
    mean_so_far = np.concatenate([[np.nan], np.cumsum(y)[:-1] / np.arange(1, n)])
    frame = pd.DataFrame({"program_id": np.ones(n, dtype="int64"), "h_last": before, "h_mean_all": mean_so_far})
    model = AnchoredRegressor(regressor=DummyRegressor(), log=False, shrink=0.0).fit(frame, y)
    weights = dict(zip(model.columns_, model.weights_, strict=True))
    assert weights["h_mean_all"] > 0.8


def test_a_model_fitted_before_h_mean_all_reads_its_weights_in_their_old_order():
    frame, y = _declining()
    model = AnchoredRegressor(regressor=DummyRegressor(), log=True, shrink=0.0).fit(frame, y)
    # All the weight on the program mean (the last column, whose position moved).
    model.weights_ = np.array([1.0 if c == "p_mean" else 0.0 for c in model.columns_])
    expected = model.predict(frame.iloc[-20:])
    assert expected != pytest.approx(frame["h_last"].to_numpy()[-20:], rel=1e-3)
    # What an artifact of the previous code holds: no ``columns_``, one weight per old column.
    legacy = ("h_last", "h_mean3", "h_ewm", "h_mean8", "s_last", "s_mean4", "p_mean")
    del model.columns_
    model.weights_ = np.array([1.0 if c == "p_mean" else 0.0 for c in legacy])
    np.testing.assert_allclose(model.predict(frame.iloc[-20:]), expected)
