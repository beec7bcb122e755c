"""The pages' one seam to the other apps.

Every app publishes its selectors/services under the names in docs/architecture.md. The pages call
exactly those; this module only looks them up so that a page whose backend is not installed says
"not available yet" instead of failing. Only a *missing* module or name counts as unavailable — any
error raised by a function that exists propagates like everywhere else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
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


def call_optional(module: str, name: str, /, **kwargs: Any) -> Any | None:
    func: Callable[..., Any] | None = optional(module, name)
    return None if func is None else func(**kwargs)


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
