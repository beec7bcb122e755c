"""Dataset, time split, fitting and honest evaluation of one model. No database writes here.

``training_dataset`` loads airings that have the target, reports and drops bad values, fingerprints the
rows used and adds each airing's history features (from strictly earlier airings); ``time_split`` cuts
three time-ordered parts: train (70%), validation (10%) and test (the latest 20%). ``fit_and_evaluate``
cross-validates one algorithm by rolling origin over train + validation (which chooses the weight of its
learned correction to the anchor, ``registry.anchor``, and gives the validation rows out-of-fold
predictions), then fits it on train + validation; the run chooses among models on the CV error, the
conformal intervals are calibrated on the validation rows' out-of-fold predictions, and everything is
reported and gated on the untouched test part. ``score_baselines`` scores the analyst's naive forecasts
on the same test part.

What a model version's ``metrics`` hold (the registry, its API and the benches read these names):

- ``r2``, ``rmse``, ``mse``, ``mae``: on the TEST part (what promotion gates on and pages show);
  ``test_r2``/``test_rmse`` are the same two numbers under explicit names;
- ``val_r2``, ``val_rmse``, ``val_mae``: on the validation part (out-of-fold predictions);
- ``cv_r2_mean``, ``cv_r2_std``, ``cv_splits``, ``cv_rmse``, ``cv_anchor_rmse``, ``cv_relative_mse`` (the
  folds' mean MSE relative to the anchor's: what selection compares), ``cv_relative_mse_worst`` (the worst
  fold's, what chose the shrink), ``shrink``, ``scale``: rolling-origin folds over train + validation;
- ``anchor`` ``{"name", "weights"}``, ``fitted_on`` ("train+validation", or "train" without folds);
- ``sane_range`` ``{"low", "high"}`` (0 ... 3 x the largest training value), ``out_of_range``: how many
  validation/test predictions left it; ``rejected``: why the model may not be chosen ("" = eligible);
- ``conformal`` (``registry.intervals``) and ``interval_coverage`` ``{"0.8", "0.9", "0.95"}`` on test;
- ``baselines``: the run's baselines for the target on the same test part (see ``score_baselines``) and
  ``best_baseline`` ``{"name", "rmse", "r2"}``;
- ``n_train``, ``n_validation``, ``n_test``, ``validation_start``, ``test_start`` (``holdout_start`` =
  ``test_start``), ``importance_method``, ``fit_seconds``;
- ``daily_errors`` ``{"first_day", "last_day", "sse", "n"}``: the squared-error sum and the airing count of
  every local day of the validation and test parts, in day order (the accuracy-drift threshold is
  bootstrapped from them: ``predictions.drift.accuracy_threshold``, docs/predictions.md).
"""

from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypedDict

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
from registry.algorithms import TREE_ALGORITHMS, ModelSpec, build_model, set_serving_threads, unwrap
from registry.anchor import (
    SHRINK_GRID,
    AnchoredRegressor,
    choose_shrink,
    mean_scale,
    relative_error,
    worst_relative_error,
)
from registry.features import (
    HISTORY_COLUMNS,
    MODEL_INPUT_COLUMNS,
    RAW_COLUMNS,
    HistoryRows,
    HistoryState,
    airings_frame,
    source_feature,
    with_history,
)
from registry.intervals import coverage, fit_conformal

VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.2
SANE_RANGE_FACTOR = 3.0
CV_SPLITS = 3
# The two feature sets a model chooses between on its first CV fold: with the trend or without it.
FEATURE_SETS: tuple[str, str] = ("all", "no_trend")
PERMUTATION_REPEATS = 3
PERMUTATION_MAX_ROWS = 3000


@dataclass
class Dataset:
    target: str
    frame: pd.DataFrame  # raw columns + history columns + the target, sorted by start
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
    validation: pd.DataFrame
    test: pd.DataFrame
    validation_start: pd.Timestamp
    test_start: pd.Timestamp


def sane_range(train_values: np.ndarray) -> tuple[float, float]:
    """0 ... SANE_RANGE_FACTOR x the largest training value: a forecast outside it is not believable."""
    top = float(np.max(train_values)) if len(train_values) else 0.0
    return 0.0, SANE_RANGE_FACTOR * top


@dataclass
class TrainedModel:
    model: Any
    metrics: dict[str, Any]
    feature_importance: dict[str, float]
    training_seconds: float


def valid_values(values: np.ndarray, target: str) -> np.ndarray:
    """True where a target value is usable: finite, not negative, inside the target's range (setting)."""
    values = np.asarray(values, dtype="float64")
    low, high = settings.TARGET_RANGES[target]
    valid: np.ndarray = np.isfinite(values) & (values >= 0) & (values >= low) & (values <= high)
    return valid


def _clean_actuals(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    values = frame[target].to_numpy(dtype="float64")
    return frame.assign(**{target: np.where(valid_values(values, target), values, np.nan)})


def history_state(frame: pd.DataFrame, target: str) -> HistoryState:
    """The serving state of the history features from stored airings, using the same clean values as
    ``training_dataset`` (bad values never feed a feature)."""
    return HistoryState.build(_clean_actuals(frame, target), target)


def history_state_from_rows(rows: HistoryRows, values: np.ndarray, target: str) -> HistoryState:
    """``history_state`` from the integer columns of stored airings (``HistoryRows``) and their ``target``
    values: the serving build, with the same clean values."""
    values = np.asarray(values, dtype="float64")
    return HistoryState.from_rows(rows, np.where(valid_values(values, target), values, np.nan), target)


def history_state_appended(state: HistoryState, frame: pd.DataFrame) -> HistoryState | None:
    """``state`` with the airings an import wrote folded in (``HistoryState.appended``, the same clean
    values as ``history_state``); None when the import touched earlier airings: rebuild instead."""
    return state.appended(_clean_actuals(frame, state.target))


def clean_target(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop rows whose target is missing, not finite, negative or out of range; count each reason."""
    values = frame[target].to_numpy(dtype="float64")
    missing = np.isnan(values)
    infinite = np.isinf(values)
    finite = ~missing & ~infinite
    negative = finite & (values < 0)
    low, high = settings.TARGET_RANGES[target]  # the importer refuses these; older rows are dropped here
    out_of_range = finite & ~negative & ((values < low) | (values > high))
    keep = valid_values(values, target)  # the same rule decides what feeds the serving history state
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


# The window is for scale: it applies only when it still holds this many airings. A small dataset that
# spans decades (a weekly show's whole history) is trained on in full, not cut to its last few seasons.
WINDOW_MIN_AIRINGS = 20_000


def training_airings() -> QuerySet[Airing]:
    """The airings training reads: all, or those of the latest ``TRAINING_WINDOW_DAYS`` when older ones
    exist and the window still holds at least ``WINDOW_MIN_AIRINGS``; then at most the latest
    ``TRAINING_MAX_AIRINGS`` of those (0 = no cap).

    Days alone do not bound the work: three years of 50 channels are a million airings, and fitting
    time and memory grow with rows. The cap moves the window's start later until it holds that many
    (airings that start together stay together, so it may hold a few more).

    The window ends at the latest airing (not today), so a historical import trains like a live one; each
    cut is one indexed range on start.
    """
    airings = Airing.objects.all()
    window = settings.TRAINING_WINDOW_DAYS
    latest = airings.order_by("-start").values_list("start", flat=True).first()
    if latest is None:
        return airings
    if window > 0:
        windowed = airings.filter(start__gt=latest - timedelta(days=window))
        if windowed.count() >= WINDOW_MIN_AIRINGS:
            airings = windowed
    cap = settings.TRAINING_MAX_AIRINGS
    if cap > 0:
        # The start of the cap-th latest airing: an index scan of ``cap`` entries, no sort of the table.
        nth = airings.order_by("-start").values_list("start", flat=True)[cap - 1 : cap].first()
        if nth is not None:
            airings = airings.filter(start__gte=nth)
    return airings


def training_dataset(
    *, target: str, frame: pd.DataFrame | None = None, queryset: QuerySet[Airing] | None = None
) -> Dataset:
    """Airings that have ``target`` (bad values reported and dropped), sorted by start, fingerprinted,
    with each airing's history features (from the strictly earlier clean airings)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}")
    full = airings_frame(queryset) if frame is None else frame
    clean, dropped = clean_target(full, target)
    clean = clean.sort_values("start", kind="stable")
    fp = fingerprint(clean)
    featured = with_history(clean, target)[[*RAW_COLUMNS, *HISTORY_COLUMNS, target]]
    return Dataset(target=target, frame=featured, fingerprint=fp, dropped=dropped)


def time_split(
    frame: pd.DataFrame, validation_fraction: float = VALIDATION_FRACTION, test_fraction: float = TEST_FRACTION
) -> Split:
    """Three time-ordered parts: train, validation, test (the latest ``test_fraction``), cut at start times
    so airings that start together stay in one part."""
    ordered = frame.sort_values("start", kind="stable")
    n = len(ordered)
    if n < 10:
        raise ValueError(f"not enough rows to split ({n})")
    starts = ordered["start"]
    test_cut = starts.iloc[int(np.floor(n * (1 - test_fraction)))]
    validation_cut = starts.iloc[int(np.floor(n * (1 - test_fraction - validation_fraction)))]
    train = ordered[starts < validation_cut]
    validation = ordered[(starts >= validation_cut) & (starts < test_cut)]
    test = ordered[starts >= test_cut]
    return Split(train=train, validation=validation, test=test, validation_start=validation_cut, test_start=test_cut)


class DailyErrors(TypedDict):
    """Squared-error sums and counts per local day, from ``first_day`` to ``last_day`` (ISO dates)."""

    first_day: str | None
    last_day: str | None
    sse: list[float]
    n: list[int]


def daily_errors(starts: pd.Series, residuals: np.ndarray) -> DailyErrors:
    """Squared-error sum and count per local day (``TIME_ZONE``), days in order; non-finite errors left out.

    Stored with the version so a drift check can tell what one window of days shows by chance (the
    airings of one evening share their errors, so days stay whole) without re-predicting anything.
    """
    r = np.asarray(residuals, dtype="float64")
    days = pd.to_datetime(starts, utc=True).dt.tz_convert(settings.TIME_ZONE).dt.date.to_numpy()
    keep = np.isfinite(r)
    if not keep.any():
        return {"first_day": None, "last_day": None, "sse": [], "n": []}
    unique, index = np.unique(days[keep], return_inverse=True)
    sse = np.bincount(index, weights=r[keep] ** 2, minlength=len(unique))
    n = np.bincount(index, minlength=len(unique))
    return {
        "first_day": unique[0].isoformat(),
        "last_day": unique[-1].isoformat(),
        "sse": [float(f"{v:.6g}") for v in sse],
        "n": [int(v) for v in n],
    }


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
    model = unwrap(model)
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
    columns = [*MODEL_INPUT_COLUMNS, *(c for c in HISTORY_COLUMNS if c in frame_x.columns)]
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


@dataclass
class CrossValidation:
    metrics: dict[str, Any]
    shrink: float | None
    predicted: np.ndarray  # out-of-fold prediction per row of the frame (NaN: a row no fold predicts)
    scale: float = 1.0  # registry.anchor.mean_scale of the out-of-fold predictions (log-scale models)
    trend: bool = True  # the feature set: with the trend (registry.features.TREND_COLUMNS) or without


def _best_weight_mse(y: np.ndarray, anchor: np.ndarray, correction: np.ndarray, inverse: Any) -> float:
    """The least squared error of ``anchor + shrink * correction`` over ``SHRINK_GRID``."""
    return min(float(np.mean((inverse(anchor + s * correction) - y) ** 2)) for s in SHRINK_GRID)


def cross_validate(spec: ModelSpec, frame: pd.DataFrame, *, n_jobs: int, splits: int, last: int = 0) -> CrossValidation:
    """Rolling-origin cross-validation over ``frame`` (the training and validation parts, in time order).

    Each of ``splits`` expanding folds fits the model with its full correction and keeps, for the later
    rows, the anchor and the correction apart; the correction's weight (``shrink``, registry.anchor) is
    the one whose worst fold is best (``registry.anchor.choose_shrink``). Metrics: the folds' R² with that
    weight (``cv_r2_mean``/``cv_r2_std``), their mean squared error relative to the anchor's
    (``cv_relative_mse``, what selection compares; ``cv_relative_mse_worst`` the worst fold's), pooled RMSE (``cv_rmse``) and the anchor's alone
    (``cv_anchor_rmse``). Folds hold at least ``last`` rows, so the last fold covers the validation part.
    Never sees the test part.
    """
    predicted = np.full(len(frame), np.nan)
    if splits < 2:
        return CrossValidation({}, None, predicted)
    y = frame[spec.target].to_numpy(dtype="float64")
    size = max(len(frame) // (splits + 1), last)
    folds = list(TimeSeriesSplit(n_splits=splits, test_size=size).split(frame))

    def fold_parts(
        fit_idx: np.ndarray, test_idx: np.ndarray, trend: bool
    ) -> tuple[AnchoredRegressor, tuple[np.ndarray, np.ndarray]]:
        model = _fit(build_model(spec, n_jobs=n_jobs, shrink=1.0, trend=trend), frame.iloc[fit_idx], y[fit_idx], n_jobs)
        assert isinstance(model, AnchoredRegressor)
        return model, model.parts(frame.iloc[test_idx])

    # The feature set is chosen on the first fold (its rows predicted by a model fitted on the earlier
    # ones), each set at its best correction weight; a tie keeps the trend. The first fold is the
    # cheapest to fit twice (the last cost the 24-model run a third more time for the same choices).
    choice_fit, choice_test = folds[0]
    on_choice_fold = {trend: fold_parts(choice_fit, choice_test, trend) for trend in (True, False)}
    feature_mse = {
        trend: _best_weight_mse(y[choice_test], *parts, inverse=model._inverse)
        for trend, (model, parts) in on_choice_fold.items()
    }
    trend = feature_mse[True] <= feature_mse[False]
    truths: list[np.ndarray] = []
    anchors: list[np.ndarray] = []
    corrections: list[np.ndarray] = []
    positions: list[np.ndarray] = []
    fitted: AnchoredRegressor | None = None
    for fit_idx, test_idx in folds:
        fitted, (anchor, correction) = (
            on_choice_fold[trend] if test_idx is choice_test else fold_parts(fit_idx, test_idx, trend)
        )
        truths.append(y[test_idx])
        anchors.append(anchor)
        corrections.append(correction)
        positions.append(test_idx)
    assert fitted is not None
    inverse = fitted._inverse
    shrink = choose_shrink(y=truths, anchor=anchors, correction=corrections, inverse=inverse)
    preds = [inverse(a + shrink * c) for a, c in zip(anchors, corrections, strict=True)]
    truth = np.concatenate(truths)
    scale = mean_scale(y=truth, predicted=np.concatenate(preds)) if fitted.log else 1.0
    preds = [scale * p for p in preds]
    for idx, pred in zip(positions, preds, strict=True):
        predicted[idx] = pred
    scores = [float(r2_score(t, p)) for t, p in zip(truths, preds, strict=True)]
    metrics = {
        "cv_r2_mean": float(np.mean(scores)),
        "cv_r2_std": float(np.std(scores)),
        "cv_splits": splits,
        "cv_relative_mse": relative_error(
            y=truths, anchor=anchors, correction=corrections, inverse=inverse, shrink=shrink
        ),
        "cv_relative_mse_worst": worst_relative_error(
            y=truths, anchor=anchors, correction=corrections, inverse=inverse, shrink=shrink
        ),
        "cv_rmse": float(np.sqrt(np.mean((np.concatenate(preds) - truth) ** 2))),
        "cv_anchor_rmse": float(np.sqrt(np.mean((inverse(np.concatenate(anchors)) - truth) ** 2))),
        "scale": scale,
        "feature_set": FEATURE_SETS[0] if trend else FEATURE_SETS[1],
        "feature_set_mse": {FEATURE_SETS[0]: feature_mse[True], FEATURE_SETS[1]: feature_mse[False]},
    }
    return CrossValidation(metrics, shrink, predicted, scale, trend)


def rejection(metrics: dict[str, Any]) -> str:
    """Why a model may not be chosen: time-series CV R² below 0, or predictions outside the sane range."""
    cv = metrics.get("cv_r2_mean")
    if cv is not None and cv < 0:
        return f"time-series CV R² {cv:.3f} is below 0"
    if metrics.get("out_of_range"):
        low, high = metrics["sane_range"]["low"], metrics["sane_range"]["high"]
        return f"{metrics['out_of_range']} predictions outside the sane range {low:g} ... {high:g}"
    return ""


def fit_and_evaluate(spec: ModelSpec, split: Split, *, n_jobs: int, cv_splits: int = CV_SPLITS) -> TrainedModel:
    """Fit on the training part; score on validation and test; the model is set to 1 thread for serving after."""
    with threadpool_limits(limits=max(n_jobs, 1)):
        return _fit_and_evaluate(spec, split, n_jobs=n_jobs, cv_splits=cv_splits)


def _fit_and_evaluate(spec: ModelSpec, split: Split, *, n_jobs: int, cv_splits: int) -> TrainedModel:
    started = time.perf_counter()
    target = spec.target
    y_train = split.train[target].to_numpy(dtype="float64")
    y_val = split.validation[target].to_numpy(dtype="float64")
    y_test = split.test[target].to_numpy(dtype="float64")
    # Cross-validation over train + validation chooses the correction's weight and gives every validation
    # row an out-of-fold prediction (from a model fitted on earlier rows only); the model is then fitted
    # on train + validation, the latest data before the test part. Without folds: fitted on train only.
    learned = pd.concat([split.train, split.validation]) if len(split.validation) else split.train
    cv = cross_validate(spec, learned, n_jobs=n_jobs, splits=cv_splits, last=len(split.validation))
    oof_val = cv.predicted[len(split.train) :]
    refit = len(split.validation) > 0 and not np.isnan(oof_val).any()
    fit_frame = learned if refit else split.train
    fit_started = time.perf_counter()
    model = _fit(
        build_model(spec, n_jobs=n_jobs, shrink=cv.shrink, scale=cv.scale, trend=cv.trend),
        fit_frame,
        fit_frame[target].to_numpy(dtype="float64"),
        n_jobs,
    )
    fit_seconds = time.perf_counter() - fit_started
    set_serving_threads(model)
    pred_val = oof_val if refit else np.asarray(model.predict(split.validation), dtype="float64")
    pred_test = np.asarray(model.predict(split.test), dtype="float64")
    metrics: dict[str, Any] = regression_metrics(y_test, pred_test)
    metrics["test_r2"], metrics["test_rmse"] = metrics["r2"], metrics["rmse"]
    if len(y_val):
        val = regression_metrics(y_val, pred_val)
        metrics.update({"val_r2": val["r2"], "val_rmse": val["rmse"], "val_mae": val["mae"]})
    low, high = sane_range(y_train)
    both = np.concatenate([pred_val, pred_test])
    metrics["sane_range"] = {"low": low, "high": high}
    metrics["out_of_range"] = int(np.sum(~np.isfinite(both) | (both < low) | (both > high)))
    calibration = fit_conformal(predicted=pred_val, actual=y_val) if len(y_val) else None
    if calibration is not None:
        metrics["conformal"] = calibration
        metrics["interval_coverage"] = coverage(calibration, predicted=pred_test, actual=y_test)
    metrics.update(cv.metrics)
    metrics["fitted_on"] = "train+validation" if refit else "train"
    assert isinstance(model, AnchoredRegressor)
    metrics["anchor"] = {
        "name": model.anchor_name_,
        "weights": dict(zip(model.columns_, model.weights_.tolist(), strict=True)),
    }
    metrics["shrink"] = model.shrink_
    metrics["rejected"] = rejection(metrics)
    metrics["daily_errors"] = daily_errors(
        pd.concat([split.validation["start"], split.test["start"]]),
        np.concatenate([pred_val - y_val, pred_test - y_test]),
    )
    native = _native_importance(model) if spec.algorithm in TREE_ALGORITHMS else None
    if native is not None:
        importance, method = native, "native"
    else:
        part = split.validation if len(split.validation) else split.train
        y_part = y_val if len(split.validation) else y_train
        importance, method = _permutation_importance(model, part, y_part, spec.seed), "permutation"
    metrics.update(
        {
            "n_train": len(split.train),
            "n_validation": len(split.validation),
            "n_test": len(split.test),
            "validation_start": split.validation_start.isoformat(),
            "test_start": split.test_start.isoformat(),
            "holdout_start": split.test_start.isoformat(),
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


# --- Baselines: the naive forecasts an analyst would use instead ---------------------------------------

BASELINES: tuple[str, ...] = ("program_mean", "previous_airing", "mean_last_3", "same_slot_last_week")


def baseline_predictions(split: Split, target: str) -> dict[str, np.ndarray]:
    """Each baseline's forecast for the test part.

    ``program_mean``: the program's mean over the training part; ``previous_airing``: its last actual
    (``h_last``); ``mean_last_3``: the mean of its last 3 (``h_mean3``); ``same_slot_last_week``: the
    slot's value on its latest earlier day (``s_last``). Where one has no value yet (a new program or
    slot) it falls back to the program mean, then to the training mean, as an analyst would.
    """
    train_y = split.train[target].to_numpy(dtype="float64")
    overall = float(np.mean(train_y)) if len(train_y) else 0.0
    means = split.train.groupby("program_id")[target].mean()
    program_mean = split.test["program_id"].map(means).to_numpy(dtype="float64")
    program_mean = np.where(np.isnan(program_mean), overall, program_mean)

    def filled(column: str) -> np.ndarray:
        values = split.test[column].to_numpy(dtype="float64")
        return np.where(np.isnan(values), program_mean, values)

    return {
        "program_mean": program_mean,
        "previous_airing": filled("h_last"),
        "mean_last_3": filled("h_mean3"),
        "same_slot_last_week": filled("s_last"),
    }


def score_baselines(split: Split, target: str) -> dict[str, Any]:
    """The baselines' test metrics, stored per target with the run: ``{"program_mean": {"r2", "rmse",
    "mse", "mae"}, ..., "best": name}`` (best = lowest test RMSE)."""
    y = split.test[target].to_numpy(dtype="float64")
    if not len(y):
        return {}
    scores: dict[str, Any] = {
        name: regression_metrics(y, pred) for name, pred in baseline_predictions(split, target).items()
    }
    scores["best"] = min(BASELINES, key=lambda name: scores[name]["rmse"])
    return scores
