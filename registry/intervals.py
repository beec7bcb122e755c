"""Split-conformal prediction intervals: calibrated on the validation part, measured on the test part.

A model is fitted on the training part only, so its residuals on the validation part are honest
out-of-sample errors. For each level (80/90/95%) the interval half-width is the conformal quantile of the
absolute validation residuals (rank ``ceil((n + 1) * level)`` of n), which covers a new exchangeable
row with probability >= level. Errors of multiplicative targets grow with the level of the forecast, so
when every segment keeps at least ``MIN_SEGMENT_ROWS`` validation rows the residuals are split into
``SEGMENTS`` bins of the predicted value, each with its own half-width ("by segment where data allows").

The calibration is stored with the model version (``metrics["conformal"]``)::

    {"edges": [e1, e2, e3],                      # bin edges on the prediction (empty: one segment)
     "half_widths": {"0.8": [w0, w1, w2, w3], "0.9": [...], "0.95": [...]},
     "n": 1234}                                  # validation rows used

and the coverage measured on the test part as ``metrics["interval_coverage"]`` (``{"0.8": 0.81, ...}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

import numpy as np

LEVELS: tuple[float, ...] = (0.8, 0.9, 0.95)
SEGMENTS = 4
MIN_SEGMENT_ROWS = 200


def _key(level: float) -> str:
    return f"{level:g}"


def _conformal_quantile(abs_residuals: np.ndarray, level: float) -> float:
    n = len(abs_residuals)
    if n == 0:
        return float("inf")
    rank = int(np.ceil((n + 1) * level))
    if rank > n:
        return float(np.max(abs_residuals))  # too few rows for this level: the widest seen
    return float(np.sort(abs_residuals)[rank - 1])


class Calibration(TypedDict):
    """What ``fit_conformal`` stores as ``metrics["conformal"]``."""

    edges: list[float]  # predicted-value cut points of the segments
    half_widths: dict[str, list[float]]  # level ("0.9") -> half width per segment
    n: int  # validation rows it was fitted on


def fit_conformal(*, predicted: np.ndarray, actual: np.ndarray, levels: tuple[float, ...] = LEVELS) -> Calibration:
    """The calibration (see the module docstring) from validation predictions and actuals."""
    predicted = np.asarray(predicted, dtype="float64")
    abs_res = np.abs(np.asarray(actual, dtype="float64") - predicted)
    segments = SEGMENTS if len(predicted) >= SEGMENTS * MIN_SEGMENT_ROWS else 1
    edges = np.unique(np.quantile(predicted, np.arange(1, segments) / segments)) if segments > 1 else np.array([])
    bins = np.searchsorted(edges, predicted, side="right")
    half_widths = {
        _key(level): [_conformal_quantile(abs_res[bins == b], level) for b in range(len(edges) + 1)] for level in levels
    }
    return {"edges": [float(e) for e in edges], "half_widths": half_widths, "n": len(predicted)}


def interval_bounds(
    calibration: Mapping[str, Any], predicted: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per prediction at ``level`` (one of the calibrated levels)."""
    predicted = np.asarray(predicted, dtype="float64")
    edges = np.asarray(calibration.get("edges") or [], dtype="float64")
    widths = np.asarray(calibration["half_widths"][_key(level)], dtype="float64")
    half = widths[np.searchsorted(edges, predicted, side="right")]
    return predicted - half, predicted + half


def coverage(calibration: Mapping[str, Any], *, predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Share of ``actual`` inside the interval, per calibrated level (measured on the test part)."""
    actual = np.asarray(actual, dtype="float64")
    out: dict[str, float] = {}
    for key in calibration["half_widths"]:
        low, high = interval_bounds(calibration, predicted, float(key))
        out[key] = float(np.mean((actual >= low) & (actual <= high))) if len(actual) else float("nan")
    return out
