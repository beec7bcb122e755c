"""Drift statistics: pure functions over arrays and frames (no Django, no database).

PSI for categoricals, Kolmogorov-Smirnov (with the Wasserstein distance reported alongside) for
numerics. The nightly task (``predictions.tasks.drift_check``) feeds them the training-period airings
and the recent airings and stores the result as a ``DriftReport``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

# A category unseen on one side gets this share instead of 0, so PSI stays finite.
_PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # "categorical" | "numeric"
    score: float  # PSI for categoricals, KS statistic for numerics
    flagged: bool
    details: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "score": self.score, "flagged": self.flagged, **self.details}


def psi(reference: Iterable[Any], recent: Iterable[Any]) -> float:
    """Population stability index of two samples of a categorical variable.

    sum((p_recent - p_ref) * ln(p_recent / p_ref)) over the union of categories; 0 when identical,
    > 0.2 is the usual "significant shift".
    """
    ref = pd.Series(list(reference), dtype=object).astype(str)
    new = pd.Series(list(recent), dtype=object).astype(str)
    if ref.empty or new.empty:
        return 0.0
    cats = sorted(set(ref.unique()) | set(new.unique()))
    p = ref.value_counts(normalize=True).reindex(cats, fill_value=0.0).to_numpy(dtype=float)
    q = new.value_counts(normalize=True).reindex(cats, fill_value=0.0).to_numpy(dtype=float)
    p = np.clip(p, _PSI_EPSILON, None)
    q = np.clip(q, _PSI_EPSILON, None)
    p /= p.sum()
    q /= q.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def ks(reference: Sequence[float] | np.ndarray, recent: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and p-value (NaNs dropped; (0, 1) when a side is empty)."""
    a = np.asarray(reference, dtype=float)
    b = np.asarray(recent, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return 0.0, 1.0
    result = stats.ks_2samp(a, b)
    return float(result.statistic), float(result.pvalue)


def wasserstein(reference: Sequence[float] | np.ndarray, recent: Sequence[float] | np.ndarray) -> float:
    """Earth mover's distance divided by the reference's std, so it is comparable across features."""
    a = np.asarray(reference, dtype=float)
    b = np.asarray(recent, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return 0.0
    scale = float(np.std(a)) or 1.0
    return float(stats.wasserstein_distance(a, b)) / scale


def feature_drift(
    reference: pd.DataFrame,
    recent: pd.DataFrame,
    *,
    categorical: Sequence[str],
    numeric: Sequence[str],
    psi_threshold: float,
    ks_threshold: float,
    ks_max_p_value: float = 0.01,
) -> list[FeatureDrift]:
    """Drift of every listed column between two frames.

    A numeric feature is flagged when its KS statistic exceeds ``ks_threshold`` *and* the difference
    is significant (p < ``ks_max_p_value``), so a small recent window does not flag noise.
    """
    out: list[FeatureDrift] = []
    for col in categorical:
        if col not in reference.columns or col not in recent.columns:
            continue
        score = psi(reference[col].tolist(), recent[col].tolist())
        out.append(FeatureDrift(col, "categorical", round(score, 6), score > psi_threshold))
    for col in numeric:
        if col not in reference.columns or col not in recent.columns:
            continue
        ref = pd.to_numeric(reference[col], errors="coerce").to_numpy(dtype=float)
        new = pd.to_numeric(recent[col], errors="coerce").to_numpy(dtype=float)
        stat, p_value = ks(ref, new)
        flagged = stat > ks_threshold and p_value < ks_max_p_value
        details = {"p_value": round(p_value, 8), "wasserstein": round(wasserstein(ref, new), 6)}
        out.append(FeatureDrift(col, "numeric", round(stat, 6), flagged, details))
    return out


def accuracy_drift_ratio(*, recent_rmse: float, holdout_rmse: float) -> float:
    """Relative increase of the recent error over the holdout error (0.1 = 10% worse; <0 = better)."""
    if holdout_rmse <= 0 or not np.isfinite(holdout_rmse) or not np.isfinite(recent_rmse):
        return 0.0
    return float(recent_rmse / holdout_rmse - 1.0)


def accuracy_threshold(
    *,
    residuals: np.ndarray,
    days: np.ndarray,
    window_days: int,
    floor: float,
    quantile: float = 0.99,
    n_boot: int = 2000,
    seed: int = 0,
) -> float:
    """:func:`accuracy_threshold_from_days` over the per-day sums of ``residuals`` grouped by ``days``."""
    r = np.asarray(residuals, dtype=float)
    keep = np.isfinite(r)
    r = r[keep]
    if r.size == 0:
        return floor
    _, day_index = np.unique(np.asarray(days)[keep], return_inverse=True)
    n_days = int(day_index.max()) + 1
    squares = np.bincount(day_index, weights=r**2, minlength=n_days)
    counts = np.bincount(day_index, minlength=n_days)
    return accuracy_threshold_from_days(
        squares=squares,
        counts=counts,
        window_days=window_days,
        floor=floor,
        quantile=quantile,
        n_boot=n_boot,
        seed=seed,
    )


def accuracy_threshold_from_days(
    *,
    squares: Sequence[float] | np.ndarray,
    counts: Sequence[int] | np.ndarray,
    window_days: int,
    floor: float,
    quantile: float = 0.99,
    n_boot: int = 2000,
    seed: int = 0,
) -> float:
    """The accuracy drift a model shows by chance alone, from its own per-day errors.

    ``squares[i]`` / ``counts[i]``: the squared-error sum and the number of airings of day ``i`` of the
    model's evaluation days (validation + test, stored at training time: ``metrics["daily_errors"]``).
    A drift window is ``window_days`` days of airings; how much worse than the whole evaluation period
    one such window looks without any drift depends on the model and the target (revenue's errors are
    heavy tailed: one evening can carry most of a month's squared error). Draw ``n_boot`` windows of
    whole days (with replacement, so the airings of one day stay together), take each window's RMSE over
    the pooled RMSE - 1, and return the ``quantile`` of those ratios, at least ``floor``
    (``DRIFT_ACCURACY_THRESHOLD``). Vectorised: one index matrix. Fewer than two days: ``floor``.
    """
    sq = np.asarray(squares, dtype=float)
    n = np.asarray(counts, dtype=float)
    keep = np.isfinite(sq) & (n > 0)
    sq, n = sq[keep], n[keep]
    if sq.size < 2 or window_days < 1:
        return floor
    pooled_rmse = float(np.sqrt(sq.sum() / n.sum()))
    if pooled_rmse <= 0:
        return floor
    draws = np.random.default_rng(seed).integers(0, sq.size, size=(n_boot, window_days))
    ratios = np.sqrt(sq[draws].sum(axis=1) / n[draws].sum(axis=1)) / pooled_rmse - 1.0
    return max(floor, float(np.quantile(ratios, quantile)))
