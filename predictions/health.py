"""The predictions deep health check (registered by bms/wiring.py): the models this process serves."""

from __future__ import annotations

from bms.health import Details
from predictions.predictor import get_predictor


def models_check() -> Details:
    """The targets this process serves, and each one whose production artifact did not load, with why.

    An unavailable target makes the status "degraded" but not a 503: the readiness probe reads this
    page, and one broken artifact must not take the pod (and the other targets) out of service.
    """
    predictor = get_predictor()
    return {"serving": predictor.loaded_targets(), "unavailable": predictor.unavailable_targets()}
