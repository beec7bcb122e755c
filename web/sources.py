"""Left for web/views/dashboard.py only (issue 17): every other page imports the apps' selectors and
services directly. The dashboard is being rewritten on the maintained aggregates at the same time; it
moves to plain imports next and this module goes. Do not add new uses.
"""

from __future__ import annotations

import importlib
from typing import Any


def optional(module: str, name: str) -> Any | None:
    """``module.name`` if that module imports and defines it, else None."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    return getattr(mod, name, None)


def optional_model(app_module: str, name: str) -> Any | None:
    return optional(f"{app_module}.models", name)


def metric(version: Any, *names: str) -> float | None:
    """A metric of a model version, whichever spelling the registry stored (``r2`` / ``R2``)."""
    metrics: dict[str, Any] = getattr(version, "metrics", None) or {}
    nested = metrics.get("holdout")
    holdout: dict[str, Any] = nested if isinstance(nested, dict) else {}
    for name in names:
        for source in (metrics, holdout):
            value = source.get(name)
            if isinstance(value, int | float):
                return float(value)
    return None
