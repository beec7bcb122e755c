"""Deterministic stand-in for the prediction models (no model imports, so a worker can load it early)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np


def fake_value_matrices(
    *, programs: Sequence[Any], starts: Sequence[datetime], channel: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Revenue grows with the program id and the evening, audience the other way."""
    ids = np.array([p.pk for p in programs], dtype=float)
    hours = np.array([s.hour + s.minute / 60 for s in starts], dtype=float)
    revenue = 1000.0 + 37.0 * (ids[:, None] % 11) * (1 + hours[None, :] / 24)
    audience = 100.0 + 13.0 * ((ids[:, None] * 7) % 5) * (2 - hours[None, :] / 24)
    return revenue, audience
