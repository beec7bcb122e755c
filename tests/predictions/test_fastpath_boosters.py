"""The boosters' compiled walks (XGBoost, HistGradientBoosting) against the libraries' own predict, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from xgboost import XGBRegressor

from predictions.fastpath import _HIST_NATIVE_ROWS, _XGB_WALK_ROWS, _estimator


def _data(seed: int, rows: int, missing: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6))
    y = x[:, 0] * 3 + np.sin(x[:, 1]) + (x[:, 2] > 0) * 2 + rng.normal(scale=0.1, size=rows)
    x[rng.random(size=x.shape) < missing] = np.nan
    return x, y


@pytest.fixture(scope="module")
def booster() -> XGBRegressor:
    x, y = _data(7, 400)
    return XGBRegressor(n_estimators=60, max_depth=5, learning_rate=0.1, n_jobs=1, random_state=3).fit(x, y)


@pytest.fixture(scope="module")
def boosting() -> HistGradientBoostingRegressor:
    x, y = _data(8, 400)
    return HistGradientBoostingRegressor(max_iter=40, random_state=3).fit(x, y)


@pytest.mark.parametrize("rows", [1, 2, _XGB_WALK_ROWS - 1, _XGB_WALK_ROWS, 100])
@pytest.mark.parametrize("missing", [0.0, 0.15])
def test_the_xgboost_walk_equals_xgboost_exactly(booster: XGBRegressor, rows: int, missing: float) -> None:
    x, _ = _data(rows, rows, missing)
    got = _estimator(booster)(x)
    assert got.dtype == np.float64
    assert got.shape == (rows,)
    assert np.array_equal(got, booster.get_booster().inplace_predict(x).astype("float64"))


def test_xgboost_splits_are_compared_as_xgboost_does_in_float32(booster: XGBRegressor) -> None:
    # Values on and just around a split condition (float32), sent as float64.
    import json

    tree = json.loads(booster.get_booster().save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"][0]
    feature, condition = int(tree["split_indices"][0]), float(np.float32(tree["split_conditions"][0]))
    x = np.zeros((3, 6))
    x[:, feature] = [condition, np.nextafter(condition, np.inf), np.nextafter(condition, -np.inf)]
    predict = _estimator(booster)
    assert all(predict(x[i : i + 1])[0] == booster.get_booster().inplace_predict(x[i : i + 1])[0] for i in range(3))


@pytest.mark.parametrize("rows", [1, 2, 5, _HIST_NATIVE_ROWS - 1])
@pytest.mark.parametrize("missing", [0.0, 0.15])
def test_the_hist_boosting_walk_gives_a_row_the_same_bits_alone_or_in_a_batch(
    boosting: HistGradientBoostingRegressor, rows: int, missing: float
) -> None:
    x, _ = _data(rows + 50, rows, missing)
    predict = _estimator(boosting)
    batch = predict(x)
    np.testing.assert_allclose(batch, boosting.predict(x), rtol=1e-12, atol=1e-12)
    assert all(predict(x[i : i + 1])[0] == batch[i] for i in range(rows))
