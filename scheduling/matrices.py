"""The one seam between the optimiser and the models: revenue and audience for programs x slots.

Tests replace :func:`value_matrices` (``monkeypatch.setattr("scheduling.matrices.value_matrices", ...)``);
everything else calls it through this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np

from programs.models import Channel, Program


def value_matrices(
    *, programs: Sequence[Program], starts: Sequence[datetime], channel: Channel
) -> tuple[np.ndarray, np.ndarray]:
    """(revenue, audience), each programs x slots, from the production models in one batch call each."""
    from predictions.predict import predict_matrix

    revenue = predict_matrix(target="revenue", programs=list(programs), starts=list(starts), channel=channel)
    audience = predict_matrix(target="audience", programs=list(programs), starts=list(starts), channel=channel)
    return np.asarray(revenue, dtype=np.float64), np.asarray(audience, dtype=np.float64)
