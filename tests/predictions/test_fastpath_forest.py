"""The random forest's compiled walk against sklearn's own predict, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from predictions.fastpath import _FOREST_NATIVE_ROWS, _estimator


@pytest.fixture(scope="module")
def forest() -> RandomForestRegressor:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, 6))
    y = x[:, 0] * 3 + np.sin(x[:, 1]) + (x[:, 2] > 0) * 2 + rng.normal(scale=0.1, size=400)
    x[rng.random(size=x.shape) < 0.1] = np.nan  # sklearn >= 1.4 trees learn where missing values go
    return RandomForestRegressor(n_estimators=25, max_depth=9, random_state=3).fit(x, y)


@pytest.mark.parametrize("rows", [1, 2, 17, _FOREST_NATIVE_ROWS - 1, _FOREST_NATIVE_ROWS, 300])
def test_the_walk_equals_sklearn_exactly(forest: RandomForestRegressor, rows: int) -> None:
    rng = np.random.default_rng(rows)
    x = rng.normal(scale=1.5, size=(rows, 6))
    x[rng.random(size=x.shape) < 0.15] = np.nan
    got = _estimator(forest)(x)
    assert got.dtype == np.float64
    assert got.shape == (rows,)
    assert np.array_equal(got, forest.predict(x))


def test_a_row_alone_or_in_a_batch_gets_the_same_bits(forest: RandomForestRegressor) -> None:
    x = np.random.default_rng(1).normal(size=(40, 6))
    predict = _estimator(forest)
    batch = predict(x)
    assert all(predict(x[i : i + 1])[0] == batch[i] for i in range(len(x)))


def test_thresholds_are_compared_as_sklearn_does_in_float32(forest: RandomForestRegressor) -> None:
    # A value just on either side of a split threshold, once rounded to float32, goes the same way.
    tree = forest.estimators_[0].tree_
    feature, threshold = int(tree.feature[0]), float(tree.threshold[0])
    x = np.zeros((3, 6))
    x[:, feature] = [threshold, np.nextafter(threshold, np.inf), np.nextafter(threshold, -np.inf)]
    assert np.array_equal(_estimator(forest)(x), forest.predict(x))
