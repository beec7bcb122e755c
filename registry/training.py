"""Dataset, time split, fitting and honest evaluation of one model. No database writes here.

``training_dataset`` loads airings that have the target, reports and drops bad values, and
fingerprints the rows used; ``time_split`` holds out the latest ~20% by start time; ``fit_and_evaluate``
fits one algorithm on the past and scores it on the holdout (R², MSE, RMSE, MAE), with time-series CV on
the training split and feature importance.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db.models import QuerySet
from sklearn.exceptions import ConvergenceWarning
from sklearn.inspection import permutation_importance
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from programs.models import TARGETS, Airing
from registry.algorithms import TREE_ALGORITHMS, ModelSpec, build_model, set_serving_threads
from registry.features import MODEL_INPUT_COLUMNS, RAW_COLUMNS, airings_frame, source_feature

HOLDOUT_FRACTION = 0.2
CV_SPLITS = 3
PERMUTATION_REPEATS = 3
PERMUTATION_MAX_ROWS = 3000
RESIDUAL_QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


@dataclass
class Dataset:
    target: str
    frame: pd.DataFrame  # raw columns + the target, sorted by start
    fingerprint: str
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.frame)

    def summary(self) -> dict[str, Any]:
        return {"rows": self.rows, "fingerprint": self.fingerprint, "dropped": dict(self.dropped)}


@dataclass
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame
    holdout_start: pd.Timestamp | None


@dataclass
class TrainedModel:
    model: Any
    metrics: dict[str, Any]
    feature_importance: dict[str, float]
    training_seconds: float


def clean_target(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop rows whose target is missing, not finite, negative or out of range; count each reason."""
    values = frame[target].to_numpy(dtype="float64")
    missing = np.isnan(values)
    infinite = np.isinf(values)
    finite = ~missing & ~infinite
    negative = finite & (values < 0)
    low, high = settings.TARGET_RANGES[target]  # the importer refuses these; older rows are dropped here
    out_of_range = finite & ~negative & ((values < low) | (values > high))
    keep = finite & ~negative & ~out_of_range
    dropped = {
        "missing": int(missing.sum()),
        "infinite": int(infinite.sum()),
        "negative": int(negative.sum()),
        "out_of_range": int(out_of_range.sum()),
    }
    return frame.loc[keep, [*RAW_COLUMNS, target]], dropped


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 over the rows used (index = airing id, raw columns, target), order-independent of storage."""
    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    digest = hashlib.sha256(np.sort(hashed).tobytes())
    digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()


def training_dataset(
    *, target: str, frame: pd.DataFrame | None = None, queryset: QuerySet[Airing] | None = None
) -> Dataset:
    """Airings that have ``target`` (bad values reported and dropped), sorted by start, fingerprinted."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}")
    full = airings_frame(queryset) if frame is None else frame
    clean, dropped = clean_target(full, target)
    clean = clean.sort_values("start", kind="stable")
    return Dataset(target=target, frame=clean, fingerprint=fingerprint(clean), dropped=dropped)


def time_split(frame: pd.DataFrame, holdout_fraction: float = HOLDOUT_FRACTION) -> Split:
    """Train on the past, hold out the latest ``holdout_fraction`` of rows (cut at a start time, no ties split)."""
    ordered = frame.sort_values("start", kind="stable")
    n = len(ordered)
    if n < 10:
        raise ValueError(f"not enough rows to split ({n})")
    cut = ordered["start"].iloc[int(np.floor(n * (1 - holdout_fraction)))]
    train = ordered[ordered["start"] < cut]
    holdout = ordered[ordered["start"] >= cut]
    return Split(train=train, holdout=holdout, holdout_start=cut)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    mse = float(mean_squared_error(y_true, y_pred))
    return {
        "r2": float(r2_score(y_true, y_pred)),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
    }


def _fit(model: Any, frame_x: pd.DataFrame, y: np.ndarray, n_jobs: int) -> Any:
    # OpenMP users (HistGradientBoosting) otherwise take every core regardless of TRAINING_N_JOBS.
    with warnings.catch_warnings(), threadpool_limits(limits=max(n_jobs, 1)):
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        model.fit(frame_x, y)
    return model


def _native_importance(model: Any) -> dict[str, float] | None:
    if not isinstance(model, Pipeline):
        return None
    estimator = model.steps[-1][1]
    values = getattr(estimator, "feature_importances_", None)
    if values is None:
        return None
    names = model.named_steps["prep"].get_feature_names_out()
    grouped: dict[str, float] = {}
    for name, value in zip(names, np.asarray(values, dtype="float64"), strict=True):
        key = source_feature(str(name))
        grouped[key] = grouped.get(key, 0.0) + float(value)
    return grouped


def _permutation_importance(model: Any, frame_x: pd.DataFrame, y: np.ndarray, seed: int) -> dict[str, float]:
    columns = list(MODEL_INPUT_COLUMNS)
    sample = (
        frame_x if len(frame_x) <= PERMUTATION_MAX_ROWS else frame_x.sample(PERMUTATION_MAX_ROWS, random_state=seed)
    )
    y_sample = y if len(frame_x) <= PERMUTATION_MAX_ROWS else y[frame_x.index.get_indexer(sample.index)]
    result = permutation_importance(
        model, sample[columns], y_sample, n_repeats=PERMUTATION_REPEATS, random_state=seed, n_jobs=1, scoring="r2"
    )
    return {col: max(float(v), 0.0) for col, v in zip(columns, result.importances_mean, strict=True)}


def _normalised(values: dict[str, float]) -> dict[str, float]:
    total = sum(max(v, 0.0) for v in values.values())
    if total <= 0:
        return dict.fromkeys(values, 0.0)
    pairs = sorted(((k, max(v, 0.0) / total) for k, v in values.items()), key=lambda kv: -kv[1])
    return {k: round(v, 6) for k, v in pairs}


def cross_validate(spec: ModelSpec, train: pd.DataFrame, *, n_jobs: int, splits: int) -> dict[str, float]:
    """R² over expanding-window time-series folds of the training split (never touches the holdout)."""
    if splits < 2:
        return {}
    scores = []
    y = train[spec.target].to_numpy(dtype="float64")
    for fit_idx, test_idx in TimeSeriesSplit(n_splits=splits).split(train):
        model = _fit(build_model(spec, n_jobs=n_jobs), train.iloc[fit_idx], y[fit_idx], n_jobs)
        scores.append(float(r2_score(y[test_idx], model.predict(train.iloc[test_idx]))))
    return {"cv_r2_mean": float(np.mean(scores)), "cv_r2_std": float(np.std(scores)), "cv_splits": splits}


def fit_and_evaluate(spec: ModelSpec, split: Split, *, n_jobs: int, cv_splits: int = CV_SPLITS) -> TrainedModel:
    """Fit on the training split, score on the holdout; the model is set to 1 thread for serving after."""
    with threadpool_limits(limits=max(n_jobs, 1)):
        return _fit_and_evaluate(spec, split, n_jobs=n_jobs, cv_splits=cv_splits)


def _fit_and_evaluate(spec: ModelSpec, split: Split, *, n_jobs: int, cv_splits: int) -> TrainedModel:
    started = time.perf_counter()
    y_train = split.train[spec.target].to_numpy(dtype="float64")
    y_holdout = split.holdout[spec.target].to_numpy(dtype="float64")
    model = _fit(build_model(spec, n_jobs=n_jobs), split.train, y_train, n_jobs)
    fit_seconds = time.perf_counter() - started
    set_serving_threads(model)
    predictions = model.predict(split.holdout)
    metrics: dict[str, Any] = regression_metrics(y_holdout, predictions)
    # Holdout residual quantiles (actual - predicted): prediction intervals for the predictions app.
    residuals = y_holdout - predictions
    metrics["residual_quantiles"] = {str(q): float(np.quantile(residuals, q)) for q in RESIDUAL_QUANTILES}
    metrics.update(cross_validate(spec, split.train, n_jobs=n_jobs, splits=cv_splits))
    native = _native_importance(model) if spec.algorithm in TREE_ALGORITHMS else None
    if native is not None:
        importance, method = native, "native"
    else:
        importance, method = _permutation_importance(model, split.holdout, y_holdout, spec.seed), "permutation"
    metrics.update(
        {
            "n_train": len(split.train),
            "n_holdout": len(split.holdout),
            "holdout_start": split.holdout_start.isoformat() if split.holdout_start is not None else None,
            "importance_method": method,
            "fit_seconds": round(fit_seconds, 3),
        }
    )
    return TrainedModel(
        model=model,
        metrics=metrics,
        feature_importance=_normalised(importance),
        training_seconds=round(time.perf_counter() - started, 3),
    )
