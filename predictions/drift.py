"""Drift: the nightly report per target (services) and the statistics it uses (pure functions).

``drift_check`` -> ``drift_report_create`` per target: the recent airings against the reference period
before them. Feature drift: PSI for categoricals, Kolmogorov-Smirnov (with the Wasserstein distance
reported alongside) for numerics. Accuracy drift: the production model's recent RMSE over its holdout
RMSE, flagged above a threshold calibrated on the model's own per-day errors. The statistics below
the services take arrays and frames only (no database).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from scipy import stats

from predictions.models import DriftReport
from predictions.predict import targets_of
from predictions.predictor import ServingModel, get_predictor
from programs.models import TARGETS, Airing
from registry.models import ModelVersion

if TYPE_CHECKING:  # registry.training (scikit-learn) is imported only when a threshold needs re-predicting
    from registry.training import DailyErrors

# --- services ------------------------------------------------------------------------------------

# Premieres are seasonal by design (a scheduling decision, not population drift): not compared.
DRIFT_CATEGORICAL = ("channel", "genre", "content_rating", "daypart", "is_live")
DRIFT_NUMERIC = ("duration_minutes", "hour", "weekday")


def _drift_columns(frame: pd.DataFrame) -> pd.DataFrame:
    from programs.calendar import daypart_for_hour

    out = frame.copy()
    start = pd.to_datetime(out["start"], utc=True).dt.tz_convert(settings.TIME_ZONE)
    hours = start.dt.hour.to_numpy()
    out["hour"] = hours + start.dt.minute.to_numpy() / 60.0
    out["weekday"] = start.dt.day_of_week.to_numpy(dtype=float)
    table = np.array([daypart_for_hour(h) for h in range(24)], dtype=object)
    out["daypart"] = table[hours] if len(out) else pd.Series(dtype=object)
    return out


def drift_report_create(*, target: str, now: datetime | None = None) -> DriftReport:
    """Compare the last DRIFT_WINDOW_DAYS of airings with the DRIFT_REFERENCE_DAYS before them.

    The window ends at the latest airing with an actual value (not after ``now``), so the check also
    works on historic data. Feature drift (PSI / KS) on the raw columns; accuracy drift = RMSE of the
    production model on the window's actuals over its holdout RMSE. Sets the Prometheus gauges.
    """
    from registry.features import airings_frame, with_history
    from registry.selectors import production_models

    targets_of(target)
    now = now or timezone.now()
    has_actual = Airing.objects.exclude(**{f"{target}__isnull": True}).filter(start__lte=now)
    latest = has_actual.order_by("-start").values_list("start", flat=True).first()
    window_end = latest or now
    window_start = window_end - timedelta(days=settings.DRIFT_WINDOW_DAYS)
    reference_start = window_start - timedelta(days=settings.DRIFT_REFERENCE_DAYS)
    recent_raw = airings_frame(has_actual.filter(start__gt=window_start, start__lte=window_end))
    reference_raw = airings_frame(has_actual.filter(start__gte=reference_start, start__lte=window_start))
    # The recent airings' history features, from the reference period and the window itself.
    featured = with_history(pd.concat([reference_raw, recent_raw]), target)
    recent = _drift_columns(featured.loc[recent_raw.index])
    reference = _drift_columns(reference_raw)
    features = feature_drift(
        reference,
        recent,
        categorical=DRIFT_CATEGORICAL,
        numeric=DRIFT_NUMERIC,
        psi_threshold=settings.DRIFT_PSI_THRESHOLD,
        ks_threshold=settings.DRIFT_KS_THRESHOLD,
    )
    version = production_models().get(target)
    recent_rmse = holdout_rmse = ratio = threshold = None
    if version is not None and len(recent):
        model = get_predictor().version(int(version.pk))
        pred = model.predict(recent)
        recent_rmse = float(np.sqrt(np.mean((pred - recent[target].to_numpy(dtype=float)) ** 2)))
        metrics = version.metrics or {}
        holdout = metrics.get("rmse")
        if holdout is None and metrics.get("mse") is not None:
            holdout = float(np.sqrt(float(metrics["mse"])))
        if holdout is not None:
            holdout_rmse = float(holdout)
            ratio = accuracy_drift_ratio(recent_rmse=recent_rmse, holdout_rmse=holdout_rmse)
            threshold = _accuracy_threshold(version=version, model=model, target=target, before=window_start)
    accuracy_flagged = ratio is not None and threshold is not None and ratio > threshold
    flagged = any(f.flagged for f in features) or accuracy_flagged
    report = DriftReport.objects.create(
        target=target,
        model_version=version,
        window_start=window_start,
        window_end=window_end,
        reference_start=reference_start,
        reference_end=window_start,
        n_reference=len(reference),
        n_recent=len(recent),
        features={f.feature: f.as_dict() for f in features},
        recent_rmse=recent_rmse,
        holdout_rmse=holdout_rmse,
        accuracy_drift=ratio,
        accuracy_threshold=threshold,
        accuracy_flagged=accuracy_flagged,
        flagged=flagged,
    )
    return report


def _accuracy_threshold(*, version: ModelVersion, model: ServingModel, target: str, before: datetime) -> float:
    """DRIFT_ACCURACY_THRESHOLD raised to what the model's own evaluation days show by chance.

    The per-day errors of the version's validation and test parts, stored at training time
    (``metrics["daily_errors"]``), are bootstrapped into windows of DRIFT_WINDOW_DAYS
    (``accuracy_threshold_from_days``). They were fixed when the model was trained, so a shift in
    a later window cannot widen its own threshold; on an untouched install the checked week lies in the
    test part, and its days count as the spread the model was evaluated with.

    Versions trained before that was stored: the same from the holdout airings since
    ``metrics["holdout_start"]`` and before the window being checked (``before``), re-predicted now, the
    latest ``_THRESHOLD_ROWS``. Without two such days the setting alone applies.
    """
    metrics = version.metrics or {}
    days = metrics.get("daily_errors")
    if not (isinstance(days, dict) and days.get("sse")):
        days = _holdout_daily_errors(metrics=metrics, model=model, target=target, before=before)
    floor = float(settings.DRIFT_ACCURACY_THRESHOLD)
    if days is None:
        return floor
    return accuracy_threshold_from_days(
        squares=days["sse"],
        counts=days["n"],
        window_days=settings.DRIFT_WINDOW_DAYS,
        floor=floor,
        quantile=settings.DRIFT_ACCURACY_QUANTILE,
    )


def _holdout_daily_errors(
    *, metrics: Mapping[str, object], model: ServingModel, target: str, before: datetime
) -> DailyErrors | None:
    """What training stores as ``metrics["daily_errors"]`` (``registry.training.daily_errors``), for a
    version trained before it was stored: its holdout airings before ``before``, re-predicted now."""
    from registry.features import airings_frame, with_history
    from registry.training import daily_errors

    start = metrics.get("holdout_start")
    since = parse_datetime(str(start)) if start else None
    if since is None:
        return None
    has_actual = Airing.objects.filter(start__lte=before, **{f"{target}__isnull": False})
    ids = list(has_actual.filter(start__gte=since).order_by("-start").values_list("id", flat=True)[:_THRESHOLD_ROWS])
    if not ids:
        return None
    # History features of the holdout airings come from the airings before them too.
    lookback = since - timedelta(days=settings.DRIFT_REFERENCE_DAYS)
    featured = with_history(airings_frame(has_actual.filter(start__gte=lookback)), target)
    frame = featured.loc[featured.index.isin(ids)]
    return daily_errors(frame["start"], frame[target].to_numpy(dtype=float) - model.predict(frame))


_THRESHOLD_ROWS = 50_000


def drift_check(*, now: datetime | None = None) -> list[DriftReport]:
    """One report per target; flagged targets start one retraining run when DRIFT_RETRAIN_ENABLED."""
    reports = [drift_report_create(target=t, now=now) for t in TARGETS]
    flagged = [r for r in reports if r.flagged]
    if flagged and settings.DRIFT_RETRAIN_ENABLED:
        from registry.services import training_run_start

        run = training_run_start(trigger="drift", targets=[r.target for r in flagged])
        DriftReport.objects.filter(pk__in=[r.pk for r in flagged]).update(retrain_run_id=run.pk)
        for r in flagged:
            r.retrain_run_id = run.pk
    return reports


# --- statistics ----------------------------------------------------------------------------------

# A category unseen on one side gets this share instead of 0, so PSI stays finite.
_PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # "categorical" | "numeric"
    score: float  # PSI for categoricals, KS statistic for numerics
    flagged: bool
    details: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, str | float | bool]:
        return {"kind": self.kind, "score": self.score, "flagged": self.flagged, **self.details}


def psi(reference: Iterable[object], recent: Iterable[object]) -> float:
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
