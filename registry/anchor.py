"""Anchored forecasts: every algorithm learns a correction on top of a naive forecast built from history.

Why: a real series drifts (a show loses viewers season after season). A tree model predicting the level
cannot go below the lowest level it saw in training, and a linear trend extrapolates wildly; the
analyst's naive forecasts (previous airing, mean of the last 3, the slot a week before) follow the
drift by construction. So the prediction is

    working(prediction) = anchor(history) + shrink * f(x)

on the working scale (``log1p`` for the multiplicative targets, so the correction is a ratio; the raw
value otherwise). ``anchor`` is a convex blend of the history levels (``ANCHOR_COLUMNS``; non-negative
weights summing to 1, no intercept, so it follows any level) chosen on the training rows only: the
best of each single level and the blend, scored on the latest part of the training rows after fitting
the blend on the earlier part. ``f`` is the algorithm's own pipeline fitted on the residual
``working(y) - anchor``; ``shrink`` in [0, 1] pulls the correction toward 0 and is chosen by
time-series cross-validation (``registry.training.cross_validate``): 0 means no learner beat the anchor,
and the model is the anchor.

Everything here reads the history columns as a mapping name -> array, so the registry's frames and the
serving fast path's ``RawRows.history`` go through the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import nnls
from sklearn.base import BaseEstimator, RegressorMixin, clone

HISTORY_LEVELS: tuple[str, ...] = (
    "h_last",
    "h_mean3",
    "h_ewm",
    "h_mean8",
    "h_mean_all",
    "s_last",
    "s_mean4",
    "ps_last",
    "ps_mean4",
)
# The levels the anchor blends: the history levels and the program's mean over the rows ``fit`` saw
# (the analyst's "program mean"; the long-run level of a noisy, stable series).
ANCHOR_COLUMNS: tuple[str, ...] = (*HISTORY_LEVELS, "p_mean")
# What models fitted before ``h_mean_all`` existed blend (their weights are in this order).
_LEGACY_ANCHOR_COLUMNS: tuple[str, ...] = ("h_last", "h_mean3", "h_ewm", "h_mean8", "s_last", "s_mean4", "p_mean")
# Where a level is unknown (a new program or slot), the row's first known of these stands in for it.
_FALLBACK: tuple[str, ...] = ("h_ewm", "h_last", "s_mean4", "s_last")
SHRINK_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
ANCHOR_HOLDOUT = 0.15  # the latest share of the training rows that chooses the anchor (drift: recent counts)
_SUM_TO_ONE_WEIGHT = 1e3  # NNLS with this heavy extra row: the weights sum to 1
_MAX_LOG = 50.0


def history_of(frame: pd.DataFrame | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The anchor's history columns of a frame (or a RawRows.history mapping); missing ones are absent."""
    if isinstance(frame, pd.DataFrame):
        return {c: frame[c].to_numpy(dtype="float64") for c in HISTORY_LEVELS if c in frame.columns}
    return {c: np.asarray(frame[c], dtype="float64") for c in HISTORY_LEVELS if c in frame}


def _programs(frame: pd.DataFrame) -> np.ndarray:
    return frame["program_id"].to_numpy(dtype="int64")


class AnchoredRegressor(RegressorMixin, BaseEstimator):
    """``regressor`` (any scikit-learn regressor taking the raw frame) fitted on the residual from the anchor.

    ``log``: work on ``log1p`` of the target (multiplicative targets). ``shrink``: the weight of the
    learned correction; None chooses it on the latest ``ANCHOR_HOLDOUT`` of the rows given to ``fit``
    (the training pipeline passes the one cross-validation chose instead). ``scale`` (log scale only):
    a factor on the prediction, because the back-transformed mean of logs is below the mean (the
    training pipeline sets it from the cross-validation's out-of-fold predictions, ``mean_scale``).
    """

    def __init__(
        self,
        regressor: Any = None,
        log: bool = False,
        shrink: float | None = None,
        scale: float = 1.0,
    ) -> None:
        self.regressor = regressor
        self.log = log
        self.shrink = shrink
        self.scale = scale

    # --- scales -----------------------------------------------------------------------------------
    def _forward(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype="float64")
        return np.log1p(np.clip(y, 0.0, None)) if self.log else y

    def _inverse(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype="float64")
        return np.expm1(np.minimum(z, _MAX_LOG)) if self.log else z

    # --- the anchor ---------------------------------------------------------------------------------
    def _levels(
        self, history: Mapping[str, np.ndarray], program_id: np.ndarray, columns: Sequence[str] | None = None
    ) -> np.ndarray:
        """(n, len(columns)) levels on the working scale, unknowns filled (fallback, then the prior); ``columns``:
        default every anchor column of the model (``columns_``)."""
        n = len(program_id)
        if columns is None:
            columns = getattr(self, "columns_", _LEGACY_ANCHOR_COLUMNS)
        needed = {*columns, *_FALLBACK}  # each level is computed on its own: the others change nothing
        work = {c: self._forward(history.get(c, np.full(n, np.nan))) for c in HISTORY_LEVELS if c in needed}
        if "p_mean" in needed:
            work["p_mean"] = self._program_mean(program_id)
        stand_in = np.full(n, np.nan)
        for c in _FALLBACK:
            stand_in = np.where(np.isnan(stand_in), work[c], stand_in)
        stand_in = np.where(np.isnan(stand_in), self.prior_, stand_in)
        return np.column_stack([np.where(np.isnan(work[c]), stand_in, work[c]) for c in columns])

    def _program_mean(self, program_id: np.ndarray) -> np.ndarray:
        """Each row's program mean on the working scale (NaN for a program the model never saw)."""
        n = len(program_id)
        known = np.searchsorted(self.programs_, program_id) if len(self.programs_) else np.zeros(n, dtype="int64")
        known = np.minimum(known, max(len(self.programs_) - 1, 0))
        hit = (self.programs_[known] == program_id) if len(self.programs_) else np.zeros(n, dtype=bool)
        return np.where(hit, self.program_means_[known] if len(self.programs_) else 0.0, np.nan)

    def anchor(self, history: Mapping[str, np.ndarray], program_id: np.ndarray) -> np.ndarray:
        """The anchor on the working scale for rows of these programs with these history columns."""
        columns = getattr(self, "columns_", _LEGACY_ANCHOR_COLUMNS)
        used = [(column, weight) for column, weight in zip(columns, self.weights_, strict=False) if weight]
        # Only the weighted levels (and their fallbacks) are computed: serving one row, the others cost
        # more than the rest of the anchor.
        levels = self._levels(history, np.asarray(program_id, dtype="int64"), [c for c, _ in used])
        # Column by column, not a matrix product: BLAS sums differently with the row count, and a row's
        # forecast must not depend on the batch it comes in (to the last bit).
        out = np.zeros(len(levels))
        for j, (_, weight) in enumerate(used):
            out = out + weight * levels[:, j]
        return out

    def _program_means(self, program_id: np.ndarray, z: np.ndarray) -> None:
        self.programs_, inverse = np.unique(program_id, return_inverse=True)
        counts = np.bincount(inverse, minlength=len(self.programs_))
        self.program_means_ = np.bincount(inverse, weights=z, minlength=len(self.programs_)) / np.maximum(counts, 1)

    def _fit_anchor(self, history: Mapping[str, np.ndarray], program_id: np.ndarray, z: np.ndarray) -> None:
        n = len(z)
        self.prior_ = float(np.mean(z)) if n else 0.0
        self.columns_ = ANCHOR_COLUMNS
        k = len(ANCHOR_COLUMNS)
        candidates: dict[str, np.ndarray] = {c: np.eye(k)[i] for i, c in enumerate(ANCHOR_COLUMNS)}
        cut = int(n * (1 - ANCHOR_HOLDOUT))
        held = slice(cut, n) if cut >= 10 and n - cut >= 5 else slice(0, n)
        # The candidates are judged on the latest rows from what the earlier rows give (program means too).
        self._program_means(program_id[:cut] if held.start else program_id, z[:cut] if held.start else z)
        levels = self._levels(history, program_id)
        if held.start:
            candidates["blend"] = _blend_weights(levels[:cut], z[:cut])
        y_held = self._inverse(z[held])

        def error(weights: np.ndarray) -> float:
            return float(np.mean((self._inverse(levels[held] @ weights) - y_held) ** 2)) if len(y_held) else 0.0

        scores = {name: error(w) for name, w in candidates.items()}
        best = min(scores, key=lambda name: (scores[name], name != "blend"))
        # Then everything is refitted on every row given (the singles have nothing to fit).
        self._program_means(program_id, z)
        self.weights_ = _blend_weights(self._levels(history, program_id), z) if best == "blend" else candidates[best]
        self.anchor_name_ = best

    # --- scikit-learn API ---------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: Any) -> AnchoredRegressor:  # noqa: N803 - scikit-learn's signature
        z = self._forward(np.asarray(y, dtype="float64"))
        history, programs = history_of(X), _programs(X)
        self._fit_anchor(history, programs, z)
        residual = z - self.anchor(history, programs)
        shrink = self.shrink
        if shrink is None:
            cut = int(len(z) * (1 - ANCHOR_HOLDOUT))
            if cut >= 10 and len(z) - cut >= 5:
                early = clone(self.regressor).fit(X.iloc[:cut], residual[:cut])
                base = self.anchor(history, programs)[cut:]
                shrink = choose_shrink(
                    y=[self._inverse(z[cut:])],
                    anchor=[base],
                    correction=[np.asarray(early.predict(X.iloc[cut:]), dtype="float64")],
                    inverse=self._inverse,
                )
            else:
                shrink = 1.0
        self.shrink_ = float(shrink)
        self.regressor_ = clone(self.regressor).fit(X, residual)
        return self

    def parts(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        """(anchor, unshrunk correction) on the working scale."""
        return self.anchor(history_of(X), _programs(X)), np.asarray(self.regressor_.predict(X), dtype="float64")

    def combine(self, anchor: np.ndarray, correction: np.ndarray) -> np.ndarray:
        """The prediction on the target's scale from the anchor and the (unshrunk) correction."""
        back = self._inverse(anchor + self.shrink_ * np.asarray(correction, dtype="float64").reshape(-1))
        return back * self.scale if self.log else back

    def predict(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        return self.combine(*self.parts(X))


def _blend_weights(levels: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Convex weights over the history levels only: the program mean is computed on the very rows the
    blend is fitted on, so it would look better there than it is (it stays a candidate of its own)."""
    k = len(HISTORY_LEVELS)
    return np.concatenate([_convex_weights(levels[:, :k], z), np.zeros(levels.shape[1] - k)])


def _convex_weights(levels: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to 1 that best fit ``z`` from the levels (least squares)."""
    k = levels.shape[1]
    a = np.vstack([levels, np.full((1, k), _SUM_TO_ONE_WEIGHT)])
    b = np.concatenate([z, [_SUM_TO_ONE_WEIGHT]])
    weights, _ = nnls(a, b)
    total = weights.sum()
    return weights / total if total > 0 else np.full(k, 1.0 / k)


def choose_shrink(
    *, y: list[np.ndarray], anchor: list[np.ndarray], correction: list[np.ndarray], inverse: Any
) -> float:
    """The ``SHRINK_GRID`` value with the least ``worst_relative_error`` over the given (time-later) parts.

    Minimax, not the mean: a correction must help in every later period, not on average, since the next
    period may be like the worst one (on the real datasets, a correction that helped a lot in the latest
    fold and hurt in an earlier one hurt on the test part too). Ties go to the smaller correction (the
    anchor needs no learning)."""
    if not y or not sum(len(part) for part in y):
        return 1.0
    errors = [
        worst_relative_error(y=y, anchor=anchor, correction=correction, inverse=inverse, shrink=s) for s in SHRINK_GRID
    ]
    best = min(errors)
    return next(s for s, e in zip(SHRINK_GRID, errors, strict=True) if e <= best * (1 + 1e-12))


def relative_error(
    *, y: list[np.ndarray], anchor: list[np.ndarray], correction: list[np.ndarray], inverse: Any, shrink: float
) -> float:
    """Mean over the parts of (squared error of anchor + shrink x correction) / (squared error of the anchor).

    Scale-free per part, so a drifting series' early high-level folds do not outweigh the recent ones;
    1.0 = as good as the anchor alone, below = the correction helps."""
    ratios = []
    for truth, base, fix in zip(y, anchor, correction, strict=True):
        if not len(truth):
            continue
        anchor_error = float(np.mean((inverse(base) - truth) ** 2))
        model_error = float(np.mean((inverse(base + shrink * fix) - truth) ** 2))
        ratios.append(model_error / anchor_error if anchor_error > 0 else (1.0 if model_error == 0 else np.inf))
    return float(np.mean(ratios)) if ratios else 1.0


def worst_relative_error(
    *, y: list[np.ndarray], anchor: list[np.ndarray], correction: list[np.ndarray], inverse: Any, shrink: float
) -> float:
    """The largest per-part ``relative_error``: 1.0 = the correction does nothing in its worst part."""
    ratios = [
        relative_error(y=[truth], anchor=[base], correction=[fix], inverse=inverse, shrink=shrink)
        for truth, base, fix in zip(y, anchor, correction, strict=True)
        if len(truth)
    ]
    return max(ratios) if ratios else 1.0


MAX_SCALE_CHANGE = 0.1


def mean_scale(*, y: np.ndarray, predicted: np.ndarray) -> float:
    """The least-squares factor ``c`` minimising ``sum((y - c * predicted)^2)``, within 1 +- MAX_SCALE_CHANGE.

    For the log-scale models: ``expm1`` of a mean of logs forecasts the median, below the mean for a
    skewed target; this puts the forecast back on the mean, measured out of fold."""
    denominator = float(np.dot(predicted, predicted))
    if not len(y) or denominator <= 0:
        return 1.0
    return float(np.clip(np.dot(y, predicted) / denominator, 1 - MAX_SCALE_CHANGE, 1 + MAX_SCALE_CHANGE))
