"""The process-wide predictor: every target's production model in memory, reloaded on promotion.

Loading goes through ``registry.artifacts.load_model`` (sha256 verified). Whether the registry
changed is asked at most every ``PREDICTOR_GENERATION_CHECK_MS`` through
``registry.selectors.registry_generation()`` (a cache read), never once per request. Challenger
versions of A/B tests are loaded on first use and kept while the test is active.
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.cache import cache
from scipy import stats

from bms.errors import ApplicationError, ConflictError
from bms.metrics import MODEL_AVAILABLE
from predictions.fastpath import RawRows, compile_model
from programs.models import TARGETS

if TYPE_CHECKING:
    from registry.artifacts import LoadedModel
    from registry.models import ModelVersion

logger = logging.getLogger(__name__)

AB_GENERATION_KEY = "predictions:ab-generation"
# A/B tests start and end by the clock as well: re-read them at least this often.
_AB_MAX_AGE_SECONDS = 30.0
# A target whose production artifact could not be loaded is retried this often (a restored file).
_UNAVAILABLE_RETRY_SECONDS = 30.0


class ModelUnavailableError(ApplicationError):
    """The target's production model cannot be served (its artifact is missing or fails its checks)."""

    status_code = 503
    code = "model_unavailable"


@dataclass(slots=True)  # not frozen: cheaper to build (see predictions.predict)
class Interval:
    """A prediction interval at ``level`` (0.8 = 80%): ``low`` >= 0, ``high`` inside the sane range."""

    low: float
    high: float
    level: float


class ConformalCalibration(TypedDict):
    """``metrics["conformal"]`` of a version (registry.intervals.fit_conformal)."""

    edges: list[float]  # segment edges on the predicted value
    half_widths: dict[str, list[float]]  # level ("0.9") -> half-width per segment


@dataclass(frozen=True)
class ServingModel:
    """A loaded model version plus what an answer needs about it."""

    version_id: int
    target: str
    algorithm: str
    version: int
    model: LoadedModel
    interval_low: float  # offsets added to the prediction (residual quantiles)
    interval_high: float
    level: float
    fast: Callable[[RawRows], np.ndarray] | None = None  # predictions.fastpath, verified equal
    # The sane range of an answer (registry.guards.sane_range): 0 ... 3 x the largest training value.
    range_low: float = 0.0
    range_high: float = math.inf

    def clip(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values clipped to the sane range, which of them were outside it)."""
        outside = (values < self.range_low) | (values > self.range_high) | ~np.isfinite(values)
        if not outside.any():
            return values, outside
        clipped = np.clip(np.nan_to_num(values, nan=self.range_low), self.range_low, self.range_high)
        return clipped, outside

    # Split-conformal calibration stored by the registry (registry.intervals); None for older versions.
    conformal: ConformalCalibration | None = None

    def intervals(self, prediction: float) -> list[Interval]:
        """[the interval at PREDICT_INTERVAL_LEVEL, then one per calibrated level], low clipped at 0 and both
        ends at the top of the sane range.

        Conformal half-widths by segment of the prediction; versions without a calibration give their
        residual-quantile interval at ``level`` only.
        """
        top = self.range_high
        if self.conformal is None:
            low = max(0.0, prediction + self.interval_low)
            high = max(low, prediction + self.interval_high)
            one = Interval(low=min(low, top), high=min(high, top), level=self.level)
            return [one, one]
        segment = bisect_right(self.conformal.get("edges") or [], prediction)
        out = []
        for key, widths in self.conformal["half_widths"].items():
            half = float(widths[segment])
            low = max(0.0, prediction - half)
            high = max(low, prediction + half)
            out.append(Interval(low=min(low, top), high=min(high, top), level=float(key)))
        wanted = min(out, key=lambda i: abs(i.level - self.level))
        return [wanted, *out]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predictions for a raw frame (registry.features.RAW_COLUMNS)."""
        if self.fast is not None:
            return self.fast(RawRows.from_frame(frame))
        return np.asarray(self.model.predict(frame), dtype=float).reshape(-1)

    def predict_rows(self, rows: RawRows) -> np.ndarray:
        if self.fast is not None:
            return self.fast(rows)
        return np.asarray(self.model.predict(rows.to_frame()), dtype=float).reshape(-1)


@dataclass(frozen=True)
class ActiveABTest:
    id: int
    target: str
    champion_id: int
    challenger_id: int
    share: float
    shadow: bool


def residual_interval(metrics: dict[str, Any], level: float) -> tuple[float, float, float]:
    """(low offset, high offset, level) of the prediction interval for a version's stored metrics.

    Prefers holdout residual quantiles stored by the registry (``residual_quantiles`` mapping
    "0.05" -> value, or ``residual_q_low``/``residual_q_high`` with ``interval_level``); falls back to a
    normal interval of half-width z * holdout RMSE.
    """
    quantiles = metrics.get("residual_quantiles")
    if isinstance(quantiles, dict) and quantiles:
        alpha = (1.0 - level) / 2.0
        pairs = sorted((float(q), float(v)) for q, v in quantiles.items())
        qs = np.array([p[0] for p in pairs])
        vs = np.array([p[1] for p in pairs])
        if qs.min() <= alpha + 1e-9 and qs.max() >= 1 - alpha - 1e-9:
            return float(np.interp(alpha, qs, vs)), float(np.interp(1 - alpha, qs, vs)), level
    if "residual_q_low" in metrics and "residual_q_high" in metrics:
        return (
            float(metrics["residual_q_low"]),
            float(metrics["residual_q_high"]),
            float(metrics.get("interval_level", level)),
        )
    rmse = metrics.get("rmse")
    if rmse is None and metrics.get("mse") is not None:
        rmse = math.sqrt(float(metrics["mse"]))
    if rmse is None:
        return 0.0, 0.0, level
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    return -z * float(rmse), z * float(rmse), level


_RESIDUAL_ROWS = 5000


def holdout_residual_offsets(
    version: ModelVersion, predict: Callable[[pd.DataFrame], np.ndarray], level: float
) -> tuple[float, float] | None:
    """(low, high) residual quantiles of ``version`` on its holdout period (airings since
    ``metrics["holdout_start"]`` with an actual value, the latest ``_RESIDUAL_ROWS``), cached per version.

    Used when the registry did not store residual quantiles with the version.
    """
    from django.utils.dateparse import parse_datetime

    from programs.models import Airing
    from registry.features import airings_frame

    holdout_start = (version.metrics or {}).get("holdout_start")
    since = parse_datetime(str(holdout_start)) if holdout_start else None
    if since is None:
        return None
    key = f"predictions:residuals:{version.pk}:{level}"
    cached = cache.get(key)
    if cached is not None:
        return float(cached[0]), float(cached[1])
    target = str(version.target)
    ids = list(
        Airing.objects.filter(start__gte=since, **{f"{target}__isnull": False})
        .order_by("-start")
        .values_list("id", flat=True)[:_RESIDUAL_ROWS]
    )
    if len(ids) < 30:
        return None
    frame = airings_frame(Airing.objects.filter(pk__in=ids))
    residuals = frame[target].to_numpy(dtype=float) - predict(frame)
    alpha = (1.0 - level) / 2.0
    low, high = (float(v) for v in np.quantile(residuals, [alpha, 1.0 - alpha]))
    cache.set(key, [low, high], timeout=None)
    return low, high


def sample_frame(n: int = 64) -> pd.DataFrame:
    """The latest stored airings as a raw frame: checks each compiled fast path against sklearn."""
    from programs.models import Airing
    from registry.features import airings_frame

    ids = list(Airing.objects.order_by("-start").values_list("id", flat=True)[:n])
    return airings_frame(Airing.objects.filter(pk__in=ids))


def _serving_model(version: ModelVersion, sample: pd.DataFrame | None = None) -> ServingModel:
    from registry.artifacts import load_model
    from registry.features import with_history
    from registry.guards import sane_range

    loaded = load_model(version)  # sha256 checked; tree models set to one thread by the registry
    if settings.PREDICT_FAST_PATH:
        rows = sample if sample is not None else sample_frame()
        fast = compile_model(loaded, with_history(rows, str(version.target)))
    else:
        fast = None
    metrics = dict(version.metrics or {})
    low, high, level = residual_interval(metrics, settings.PREDICT_INTERVAL_LEVEL)
    conformal = metrics.get("conformal") if isinstance(metrics.get("conformal"), dict) else None
    stored = conformal is not None or "residual_quantiles" in metrics or "residual_q_low" in metrics
    if not stored:

        def predict(frame: pd.DataFrame) -> np.ndarray:
            return (
                fast(RawRows.from_frame(frame)) if fast is not None else np.asarray(loaded.predict(frame), dtype=float)
            )

        offsets = holdout_residual_offsets(version, predict, settings.PREDICT_INTERVAL_LEVEL)
        if offsets is not None:
            low, high = offsets
    range_low, range_high = sane_range(version=version)
    return ServingModel(
        version_id=int(version.pk),
        target=str(version.target),
        algorithm=str(version.algorithm),
        version=int(version.version),
        model=loaded,
        interval_low=low,
        interval_high=high,
        level=level,
        fast=fast,
        range_low=range_low,
        range_high=range_high,
        conformal=conformal,
    )


class Predictor:
    """Production models per target, refreshed when the registry generation changes."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._models: dict[str, ServingModel] = {}
        self._versions: dict[int, ServingModel] = {}
        self._generation: int | None = None
        self._checked_at = 0.0
        self._ab_tests: dict[str, ActiveABTest] = {}
        self._ab_generation: object = object()  # never equal to a cached generation: the first call loads
        self._ab_loaded_at = 0.0
        self._unavailable: dict[str, str] = {}  # target -> why its production model is not served
        self._loaded_at = 0.0

    # --- freshness -------------------------------------------------------------------------------
    def refresh(self, *, force: bool = False) -> None:
        """Reload when the registry (or the A/B tests) changed; cheap when nothing did.

        Until the first load finished every caller waits on the lock, so no request sees an empty
        predictor (a 409) while another thread is loading.
        """
        if not force and self._generation is not None and not self._due():
            return
        from registry.selectors import registry_generation

        with self._lock:
            if not force and self._generation is not None and not self._due():
                return  # another thread refreshed while this one waited
            generation = int(registry_generation())
            ab_generation = cache.get(AB_GENERATION_KEY, 0)
            now = time.monotonic()
            retry = bool(self._unavailable) and now - self._loaded_at > _UNAVAILABLE_RETRY_SECONDS
            if force or generation != self._generation or retry:
                self._load(generation)
            if force or ab_generation != self._ab_generation or now - self._ab_loaded_at > _AB_MAX_AGE_SECONDS:
                self._load_ab_tests(ab_generation, now)
            self._checked_at = time.monotonic()

    def _due(self) -> bool:
        return (time.monotonic() - self._checked_at) * 1000.0 >= settings.PREDICTOR_GENERATION_CHECK_MS

    def _load(self, generation: int) -> None:
        from registry.selectors import production_models

        started = time.perf_counter()
        production = production_models()
        models: dict[str, ServingModel] = {}
        unavailable: dict[str, str] = {}
        sample = sample_frame() if production else None
        for target, version in production.items():
            cached = self._versions.get(int(version.pk))
            if cached is not None:
                models[target] = cached
                continue
            try:
                models[target] = _serving_model(version, sample)
            except ApplicationError as exc:  # registry.artifacts.ArtifactError: missing, tampered, unparsable
                # Only this target stops answering; the others keep their models.
                unavailable[target] = f"{version.label}: {exc.message}"
                logger.error("production model of %s not loaded: %s", target, unavailable[target])
        self._models = models
        self._unavailable = unavailable
        self._loaded_at = time.monotonic()
        for target in TARGETS:
            MODEL_AVAILABLE.labels(target).set(1 if target in models else 0)
        if gc.get_freeze_count():
            # A serving process froze its heap at start (bms.startup); keep the new models out of the
            # collector's way too, or each full collection walks them (tens of ms on the p99).
            gc.freeze()
        self._versions = {m.version_id: m for m in models.values()}
        self._generation = generation
        logger.info(
            "predictor loaded %d production models (generation %s) in %.0f ms",
            len(models),
            generation,
            (time.perf_counter() - started) * 1000,
        )

    def _load_ab_tests(self, ab_generation: object, now: float) -> None:
        from predictions.selectors import ab_test_active_list

        tests = {}
        for t in ab_test_active_list():
            tests[t.target] = ActiveABTest(
                id=t.pk,
                target=t.target,
                champion_id=t.champion_id,
                challenger_id=t.challenger_id,
                share=float(t.traffic_share),
                shadow=t.mode == "shadow",
            )
        self._ab_tests = tests
        self._ab_generation = ab_generation
        self._ab_loaded_at = now

    def invalidate(self) -> None:
        """Make the next request re-check the registry (called after a promotion in this process)."""
        self._checked_at = 0.0
        self._ab_loaded_at = 0.0

    # --- lookups ---------------------------------------------------------------------------------
    def model_for(self, target: str) -> ServingModel:
        self.refresh()
        model = self._models.get(target)
        if model is None and target in self._unavailable:
            raise ModelUnavailableError(
                f"The production model for {target!r} is unavailable: {self._unavailable[target]}",
                details={"target": target, "reason": self._unavailable[target]},
            )
        if model is None:
            raise ConflictError(
                f"There is no production model for target {target!r}: train one and promote it first.",
                code="no_production_model",
                details={"target": target},
            )
        return model

    def version(self, version_id: int) -> ServingModel:
        """Any registry version (an A/B challenger), loaded once and cached."""
        model = self._versions.get(version_id)
        if model is not None:
            return model
        from registry.models import ModelVersion

        with self._lock:
            model = self._versions.get(version_id)
            if model is None:
                version = ModelVersion.objects.get(pk=version_id)
                try:
                    model = _serving_model(version)
                except ApplicationError as exc:
                    raise ModelUnavailableError(
                        f"Model {version.label} is unavailable: {exc.message}",
                        details={"target": version.target, "version": version_id, "reason": exc.message},
                    ) from exc
                self._versions[version_id] = model
        return model

    def ab_test_for(self, target: str) -> ActiveABTest | None:
        self.refresh()
        return self._ab_tests.get(target)

    @property
    def generation(self) -> int | None:
        return self._generation

    def loaded_targets(self) -> list[str]:
        self.refresh()
        return [t for t in TARGETS if t in self._models]

    def unavailable_targets(self) -> dict[str, str]:
        """Targets whose production model could not be loaded, with the reason (/health/deep)."""
        self.refresh()
        return dict(self._unavailable)


_predictor: Predictor | None = None
_predictor_lock = threading.Lock()


def get_predictor() -> Predictor:
    """The process-wide predictor (created on first use)."""
    global _predictor
    if _predictor is None:
        with _predictor_lock:
            if _predictor is None:
                _predictor = Predictor()
    return _predictor


def invalidate_predictor() -> None:
    """Registry change hook: the promotion happened in this process, so look at once."""
    if _predictor is not None:
        _predictor.invalidate()


def reset_predictor() -> None:
    """Forget every loaded model (tests; a process that changed ARTIFACT_ROOT)."""
    global _predictor
    with _predictor_lock:
        _predictor = None
