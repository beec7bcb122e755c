"""Writes to broadcast data that are shared by every writer (generation, import, edits)."""

from __future__ import annotations

from bms.events import BROADCAST_DATA_CHANGED, BroadcastDataChanged
from programs.models import DataVersion


def data_version_bump(*, source: str, description: str = "", rows_affected: int = 0) -> DataVersion:
    """Record a change to airings. Call inside the transaction that made the change.

    Sends ``BROADCAST_DATA_CHANGED`` (its subscribers are listed in ``bms/wiring.py``: the A/B
    tests are scored on imported actuals), so programs never imports the apps that react.
    """
    version = DataVersion.objects.create(source=source, description=description[:255], rows_affected=rows_affected)
    BROADCAST_DATA_CHANGED.send(BroadcastDataChanged(version_id=version.pk, source=version.source))
    return version
