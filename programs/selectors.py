"""Reads of broadcast data."""

from __future__ import annotations

from programs.models import DataVersion


def data_version_current() -> int:
    """The latest data version number (0 when nothing was ever loaded)."""
    latest = DataVersion.objects.order_by("-id").values_list("id", flat=True).first()
    return int(latest or 0)
