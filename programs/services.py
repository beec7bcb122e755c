"""Writes to broadcast data that are shared by every writer (generation, import, edits)."""

from __future__ import annotations

from programs.models import DataVersion


def data_version_bump(*, source: str, description: str = "", rows_affected: int = 0) -> DataVersion:
    """Record a change to airings. Call inside the transaction that made the change."""
    return DataVersion.objects.create(source=source, description=description[:255], rows_affected=rows_affected)
