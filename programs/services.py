"""Writes to broadcast data that are shared by every writer (generation, import, edits)."""

from __future__ import annotations

from collections.abc import Callable

from programs.models import DataVersion

# Called with each new DataVersion, inside the transaction that made the change. Apps that act on
# new broadcast data register here (predictions: score the A/B tests when imported actuals arrive),
# so programs never imports them.
DATA_CHANGE_HOOKS: list[Callable[[DataVersion], None]] = []


def data_version_bump(*, source: str, description: str = "", rows_affected: int = 0) -> DataVersion:
    """Record a change to airings. Call inside the transaction that made the change."""
    version = DataVersion.objects.create(source=source, description=description[:255], rows_affected=rows_affected)
    for hook in DATA_CHANGE_HOOKS:
        hook(version)
    return version
