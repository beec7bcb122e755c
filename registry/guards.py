"""Guards around the registry: hand promotion compared on the same test data, and the sane output range.

* ``promotion_comparison``: a hand promotion's candidate, the production model and the naive baselines
  (``registry.training.score_baselines``), all scored (RMSE) on the same test part of today's data
  (``registry.training.time_split``).
  ``model_version_promote`` refuses the promotion when the candidate is measurably worse than either,
  unless forced with a reason (the ledger records it).
* ``sane_range``: predictions are kept within 0 ... 3 x the largest training value of the version's target
  (``metrics["sane_range"]``); the predictor clips and flags what leaves it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from django.db.models import Max
from django.utils.dateparse import parse_datetime

from bms.errors import ApplicationError
from programs.models import Airing
from registry import artifacts
from registry.features import airings_frame
from registry.models import ModelVersion
from registry.training import (
    BASELINES,
    SANE_RANGE_FACTOR,
    regression_metrics,
    score_baselines,
    time_split,
    training_dataset,
)


@dataclass(frozen=True)
class PromotionComparison:
    """RMSE of a candidate, the production model and the naive baselines on one test part."""

    target: str
    candidate: str
    n_test: int
    test_start: str | None
    candidate_rmse: float | None = None
    production: str | None = None
    production_rmse: float | None = None
    production_error: str = ""  # why production could not be scored (its artifact cannot be loaded)
    baselines: dict[str, float] = field(default_factory=dict)

    @property
    def best_baseline(self) -> tuple[str, float] | None:
        if not self.baselines:
            return None
        name = min(self.baselines, key=lambda k: self.baselines[k])
        return name, self.baselines[name]

    def refusals(self) -> list[str]:
        """Why the candidate must not replace production (empty: it may)."""
        if self.candidate_rmse is None:
            return []
        out = []
        if self.production_rmse is not None and self.candidate_rmse >= self.production_rmse:
            out.append(
                f"{self.candidate} (test RMSE {self.candidate_rmse:.4g}) does not beat production {self.production} "
                f"(test RMSE {self.production_rmse:.4g}) on the same {self.n_test} test airings"
            )
        best = self.best_baseline
        if best is not None and self.candidate_rmse >= best[1]:
            out.append(
                f"{self.candidate} (test RMSE {self.candidate_rmse:.4g}) does not beat the baseline {best[0]} "
                f"(test RMSE {best[1]:.4g}) on the same {self.n_test} test airings"
            )
        return out

    def summary(self) -> str:
        """One line for the ledger: what was compared."""
        if self.candidate_rmse is None:
            return f"no test data for {self.target} to compare on"
        parts = [f"test RMSE {self.candidate_rmse:.4g} on {self.n_test} airings since {self.test_start}"]
        if self.production is not None:
            parts.append(
                f"production {self.production} "
                + (
                    f"{self.production_rmse:.4g}"
                    if self.production_rmse is not None
                    else f"not scored: {self.production_error}"
                )
            )
        best = self.best_baseline
        if best is not None:
            parts.append(f"best baseline {best[0]} {best[1]:.4g}")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "refusals": self.refusals(), "summary": self.summary()}


def _rmse(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(regression_metrics(y, predicted)["rmse"])


def promotion_comparison(*, version: ModelVersion, frame: pd.DataFrame | None = None) -> PromotionComparison:
    """Score ``version``, its target's production model and the baselines on today's test part."""
    target = version.target
    full = airings_frame() if frame is None else frame
    data = training_dataset(target=target, frame=full).frame
    if len(data) < 10:
        return PromotionComparison(target=target, candidate=version.label, n_test=0, test_start=None)
    split = time_split(data)
    test = split.test
    y = test[target].to_numpy(dtype="float64")
    candidate_rmse = _rmse(y, artifacts.load_model(version).predict(test))
    production = ModelVersion.objects.filter(target=target, status=ModelVersion.Status.PRODUCTION).first()
    production_rmse = None
    production_error = ""
    if production is not None:
        try:
            production_rmse = _rmse(y, artifacts.load_model(production).predict(test))
        except ApplicationError as exc:
            production_error = f"its artifact cannot be loaded: {exc.message}"
    scores = score_baselines(split, target)
    baselines = {name: float(scores[name]["rmse"]) for name in BASELINES if name in scores}
    return PromotionComparison(
        target=target,
        candidate=version.label,
        n_test=len(test),
        test_start=split.test_start.isoformat(),
        candidate_rmse=candidate_rmse,
        production=None if production is None else production.label,
        production_rmse=production_rmse,
        production_error=production_error,
        baselines=baselines,
    )


def sane_range(*, version: ModelVersion) -> tuple[float, float]:
    """The version's ``metrics["sane_range"]`` (0 ... 3 x the largest training value, stored by training);
    for versions trained before it was stored: the same from the airings before ``metrics["holdout_start"]``
    (all airings when that is missing too), one aggregate query. (0, inf) when nothing is known.
    """
    metrics = version.metrics or {}
    stored = metrics.get("sane_range")
    if isinstance(stored, dict) and stored.get("high") is not None and float(stored["high"]) > 0:
        return float(stored.get("low") or 0.0), float(stored["high"])
    target = str(version.target)
    airings = Airing.objects.all()
    start = metrics.get("holdout_start")
    cut = parse_datetime(str(start)) if start else None
    if cut is not None:
        airings = airings.filter(start__lt=cut)
    largest = airings.aggregate(m=Max(target))["m"]
    if largest is None or not np.isfinite(float(largest)) or float(largest) <= 0:
        return 0.0, float("inf")
    return 0.0, SANE_RANGE_FACTOR * float(largest)
