"""The six algorithms, their documented hyperparameters and how each is assembled into a pipeline.

Sizes are chosen so that the whole 24-model run (fit + 3-fold time-series CV + importance) on the ~50k-row
demo data takes well under 5 minutes on 2 cores, and so that one production model loads in a few ms.

| algorithm | estimator | features | key hyperparameters (why) |
|---|---|---|---|
| random_forest | sklearn RandomForestRegressor | tree | 60 trees, depth 12, leaf 5, 33% features, 50% rows per tree: bounded size -> fast load; the continuous history features made full-sample trees 3x slower to fit |
| xgboost | xgboost XGBRegressor (hist) | tree | 400 rounds, eta 0.05, depth 6, subsample 0.8 |
| catboost | catboost CatBoostRegressor | tree | 500 iterations, lr 0.08, depth 6 (symmetric trees) |
| gradient_boosting | sklearn HistGradientBoostingRegressor | tree | 200 iterations, lr 0.1, 31 leaves, l2 1.0 (skops stores every tree: fewer = faster load) |
| mlp | sklearn MLPRegressor | linear (one-hot, scaled) | 32-16 ReLU, adam lr 3e-3, batch 512, <= 60 epochs (~4,700 steps), early stopping on a 10% validation fraction (patience 5); standardised correction (log scale for skewed targets) |
| elasticnet | sklearn ElasticNet | linear (one-hot, scaled) | alpha 1e-3, l1_ratio 0.5, Gram matrix precomputed (n >> p); correction on log scale for skewed targets |

"tree" features: target encoding (program, lead-in program, genre x daypart, channel x hour), ordinal
codes, raw numbers. "linear" features: the same target encodings, one-hot categoricals and genre x
daypart, standard scaling. Every algorithm is wrapped in ``registry.anchor.AnchoredRegressor``: it learns
a correction to a naive forecast from the airing's history, on the log scale for rating, revenue and
audience (multiplicative quantities); the MLP's correction is also standardised. Every algorithm also
gets the history features (registry.features.HISTORY_COLUMNS; the linear ones their levels on log scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from catboost import CatBoostRegressor
from sklearn.base import BaseEstimator
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import ElasticNet
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBRegressor

from registry.anchor import AnchoredRegressor
from registry.features import build_preprocessor
from registry.models import Algorithm

ALGORITHMS: tuple[str, ...] = tuple(Algorithm.values)
LOG_TARGETS = frozenset({"rating", "revenue", "audience"})
TREE_ALGORITHMS = frozenset({"random_forest", "xgboost", "catboost", "gradient_boosting"})

DEFAULT_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "random_forest": {
        "n_estimators": 60,
        "max_depth": 12,
        "min_samples_leaf": 5,
        "max_features": 0.33,
        "max_samples": 0.5,
    },
    "xgboost": {
        "n_estimators": 400,
        "learning_rate": 0.05,
        "max_depth": 6,
        "min_child_weight": 3,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "tree_method": "hist",
    },
    "catboost": {"iterations": 500, "learning_rate": 0.08, "depth": 6, "l2_leaf_reg": 3.0},
    "gradient_boosting": {
        "max_iter": 200,
        "learning_rate": 0.1,
        "max_leaf_nodes": 31,
        "min_samples_leaf": 20,
        "l2_regularization": 1.0,
        "early_stopping": False,
    },
    "mlp": {
        "hidden_layer_sizes": [32, 16],
        "alpha": 1e-3,
        "learning_rate_init": 3e-3,
        "batch_size": 512,
        "max_iter": 60,
        "early_stopping": True,
        "validation_fraction": 0.1,
        "n_iter_no_change": 5,
    },
    "elasticnet": {"alpha": 1e-3, "l1_ratio": 0.5, "max_iter": 2000, "precompute": True},
}


def log_target(y: np.ndarray) -> np.ndarray:
    """Forward target transform of the non-tree models (module-level so skops can name it)."""
    logged: np.ndarray = np.log1p(np.clip(y, 0.0, None))
    return logged


# log1p of any plausible target is far below this; a diverged model's output stays finite (and is then
# rejected for leaving the sane range) instead of overflowing the metrics.
_MAX_LOG_TARGET = 50.0


def exp_target(y: np.ndarray) -> np.ndarray:
    values: np.ndarray = np.expm1(np.minimum(y, _MAX_LOG_TARGET))
    return values


@dataclass(frozen=True)
class ModelSpec:
    algorithm: str
    target: str
    hyperparameters: dict[str, Any]
    seed: int


def hyperparameters_for(algorithm: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    params = dict(DEFAULT_HYPERPARAMETERS[algorithm])
    params.update((overrides or {}).get(algorithm, {}))
    return params


def _estimator(spec: ModelSpec, n_jobs: int) -> BaseEstimator:
    p = dict(spec.hyperparameters)
    seed = spec.seed
    if spec.algorithm == "random_forest":
        return RandomForestRegressor(**p, n_jobs=n_jobs, random_state=seed)
    if spec.algorithm == "xgboost":
        return XGBRegressor(**p, n_jobs=n_jobs, random_state=seed)
    if spec.algorithm == "catboost":
        return CatBoostRegressor(**p, random_seed=seed, thread_count=n_jobs, verbose=False, allow_writing_files=False)
    if spec.algorithm == "gradient_boosting":
        return HistGradientBoostingRegressor(**p, random_state=seed)
    if spec.algorithm == "mlp":
        p["hidden_layer_sizes"] = tuple(p["hidden_layer_sizes"])
        return MLPRegressor(**p, random_state=seed)
    if spec.algorithm == "elasticnet":
        return ElasticNet(**p, random_state=seed)
    raise ValueError(f"unknown algorithm {spec.algorithm!r}")


def build_model(
    spec: ModelSpec, *, n_jobs: int, shrink: float | None = None, scale: float = 1.0, trend: bool = True
) -> BaseEstimator:
    """An unfitted estimator that takes the RAW frame (features.RAW_COLUMNS) and predicts the target.

    Every algorithm is an ``AnchoredRegressor`` (``registry.anchor``): its pipeline learns a correction
    to a naive forecast from the airing's history, on the log scale for the multiplicative targets.
    Tree algorithms: ``Pipeline([("prep", ...), ("model", estimator)])`` (the two halves are stored
    separately for XGBoost/CatBoost). The MLP's pipeline is wrapped in a standardised-target transform.
    ``shrink``: the correction's weight (None: chosen inside ``fit`` on the latest training rows);
    ``scale``: the log-scale models' factor back to the mean (registry.anchor.mean_scale); ``trend``: whether
    the features include the trend (``registry.features.TREND_COLUMNS``).
    """
    estimator = _estimator(spec, n_jobs)
    log = spec.target in LOG_TARGETS
    inner: BaseEstimator
    if spec.algorithm in TREE_ALGORITHMS:
        inner = Pipeline([("prep", build_preprocessor(kind="tree", seed=spec.seed, trend=trend)), ("model", estimator)])
    else:
        inner = Pipeline(
            [("prep", build_preprocessor(kind="linear", seed=spec.seed, trend=trend)), ("model", estimator)]
        )
        if spec.algorithm == "mlp":
            inner = TransformedTargetRegressor(regressor=inner, transformer=StandardScaler(), check_inverse=False)
    return AnchoredRegressor(regressor=inner, log=log, shrink=shrink, scale=scale)


def unwrap(model: Any) -> Any:
    """The fitted pipeline inside a model (through the anchor and a target transform)."""
    if isinstance(model, AnchoredRegressor):
        model = model.regressor_
    if isinstance(model, TransformedTargetRegressor):
        model = model.regressor_
    return model


def set_serving_threads(model: Any) -> None:
    """After fitting: one thread per prediction, so serving one row does not start a thread pool."""
    inner = unwrap(model)
    estimator = inner.named_steps["model"] if isinstance(inner, Pipeline) else inner
    # CatBoost refuses set_params once fitted; LoadedModel passes thread_count=1 to its predict instead.
    if isinstance(estimator, (RandomForestRegressor, XGBRegressor)):
        estimator.set_params(n_jobs=1)
