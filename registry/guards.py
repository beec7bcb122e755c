"""Guards around the registry: hand promotion compared on the same test data, and the sane output range.

* ``promotion_comparison``: a hand promotion's candidate, the production model and naive baselines,
  all scored (RMSE) on the same test part of today's data (``registry.training.time_split``'s holdout).
  ``model_version_promote`` refuses the promotion when the candidate is measurably worse than either,
  unless forced with a reason (the ledger records it).
* ``sane_range``: predictions are kept within 0 ... 3 x the largest training value of the version's target
  (the training part ends at ``metrics["holdout_start"]``); the predictor clips and flags what leaves it.
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
from registry.training import regression_metrics, time_split, training_dataset

# A prediction above this multiple of the largest training value is clipped (issue 12: 0 ... 3 x max).
SANE_RANGE_FACTOR = 3.0


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


def baseline_predictions(train: pd.DataFrame, test: pd.DataFrame, *, target: str) -> dict[str, np.ndarray]:
    """Naive forecasts an analyst would use, for every test airing (vectorised, earlier airings only).

    ``program_mean``: the program's mean in the training part (the overall mean for a new program);
    ``previous_airing``: the program's last actual before the airing; ``last_3_mean``: the mean of its
    last three (both fall back to ``program_mean`` for a program's first airing).
    """
    overall = float(train[target].mean())
    means = train.groupby("program_id")[target].mean()
    program_mean = test["program_id"].map(means).fillna(overall).to_numpy(dtype="float64")
    both = pd.concat([train, test]).sort_values("start", kind="stable")
    by_program = both.groupby("program_id")[target]
    previous = by_program.shift(1).reindex(test.index).to_numpy(dtype="float64")
    last_3 = (
        by_program.transform(lambda s: s.shift(1).rolling(3, min_periods=1).mean())
        .reindex(test.index)
        .to_numpy(dtype="float64")
    )
    return {
        "program_mean": program_mean,
        "previous_airing": np.where(np.isnan(previous), program_mean, previous),
        "last_3_mean": np.where(np.isnan(last_3), program_mean, last_3),
    }


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
    test = split.holdout
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
    baselines = {name: _rmse(y, p) for name, p in baseline_predictions(split.train, test, target=target).items()}
    return PromotionComparison(
        target=target,
        candidate=version.label,
        n_test=len(test),
        test_start=None if split.holdout_start is None else split.holdout_start.isoformat(),
        candidate_rmse=candidate_rmse,
        production=None if production is None else production.label,
        production_rmse=production_rmse,
        production_error=production_error,
        baselines=baselines,
    )


def sane_range(*, version: Any) -> tuple[float, float]:
    """(0, 3 x the largest actual of the version's training part); (0, inf) when there is none.

    The training part is every airing before ``metrics["holdout_start"]`` (all airings when the
    version does not say), one aggregate query.
    """
    target = str(version.target)
    airings = Airing.objects.all()
    start = (version.metrics or {}).get("holdout_start")
    cut = parse_datetime(str(start)) if start else None
    if cut is not None:
        airings = airings.filter(start__lt=cut)
    largest = airings.aggregate(m=Max(target))["m"]
    if largest is None or not np.isfinite(float(largest)) or float(largest) <= 0:
        return 0.0, float("inf")
    return 0.0, SANE_RANGE_FACTOR * float(largest)
