"""A/B testing maths: deterministic assignment and paired scoring (pure functions, no Django)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

CHAMPION = "champion"
CHALLENGER = "challenger"


def ab_bucket(*, key: str, test_id: int) -> float:
    """A uniform number in [0, 1) fixed by (key, test): the same caller always lands in the same arm.

    The test id is part of the hash so that a caller's arm in one test says nothing about the next.
    """
    digest = hashlib.blake2b(f"{test_id}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def ab_arm(*, key: str, test_id: int, share: float) -> str:
    """``challenger`` when the key's bucket is below the challenger's traffic share, else ``champion``."""
    return CHALLENGER if ab_bucket(key=key, test_id=test_id) < share else CHAMPION


@dataclass(frozen=True)
class ArmScore:
    n: int
    rmse: float
    mae: float


@dataclass(frozen=True)
class ABScore:
    """Both arms scored on the same airings; ``diff_*`` is challenger minus champion absolute error."""

    n: int
    champion: ArmScore
    challenger: ArmScore
    diff_mean: float
    diff_low: float
    diff_high: float
    level: float
    winner: str  # "challenger" | "champion" | "inconclusive"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _arm(y: np.ndarray, pred: np.ndarray) -> ArmScore:
    err = pred - y
    return ArmScore(n=int(y.size), rmse=float(np.sqrt(np.mean(err**2))), mae=float(np.mean(np.abs(err))))


def ab_score(
    *,
    actual: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> ABScore:
    """RMSE and MAE per arm and the paired difference of absolute errors with a bootstrap interval.

    The bootstrap resamples airings (pairs), vectorised: one (n_boot x n) index matrix.
    """
    y = np.asarray(actual, dtype=float)
    a = np.asarray(champion, dtype=float)
    b = np.asarray(challenger, dtype=float)
    if not (y.shape == a.shape == b.shape) or y.ndim != 1 or y.size == 0:
        raise ValueError("actual, champion and challenger must be equal-length non-empty 1-d arrays")
    d = np.abs(b - y) - np.abs(a - y)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))
    means = d[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = (float(v) for v in np.quantile(means, [alpha, 1.0 - alpha]))
    winner = CHALLENGER if high < 0 else CHAMPION if low > 0 else "inconclusive"
    return ABScore(
        n=int(y.size),
        champion=_arm(y, a),
        challenger=_arm(y, b),
        diff_mean=float(d.mean()),
        diff_low=low,
        diff_high=high,
        level=level,
        winner=winner,
    )
