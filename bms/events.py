"""The cross-app events: a change in a lower app that an app above it reacts to.

``predictions`` imports ``programs`` and ``registry`` (it serves their models on their data), so those two
cannot call ``predictions`` without an import cycle. They send an event defined here instead, and every
subscriber is listed in one place, ``bms/wiring.py`` (project wiring, connected once from
``bms.apps``). This module is kernel: it imports no app.

Subscribers run inside the sender's transaction, in the order listed, and defer their after-commit work
with ``transaction.on_commit``; an exception in one propagates to the sender (its transaction rolls back).
``AIRINGS_IMPORTED`` is the exception: it is sent after the import's commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from bms.jsontypes import JSONObject

E = TypeVar("E")
R = TypeVar("R")


@dataclass(frozen=True)
class BroadcastDataChanged:
    """Airings changed and a ``DataVersion`` records it (``programs.services.data_version_bump``)."""

    version_id: int
    source: str  # a programs.models.DataVersion.Source value: generate, import, edit


@dataclass(frozen=True)
class ProductionModelChanged:
    """A target's production model is being replaced (``registry.services``: promotion or rollback).

    Sent inside the change's transaction before the versions move. Subscribers return notes for the
    ledger event (merged into ``PromotionEvent.details``).
    """

    target: str
    reason: str  # e.g. "production changed to audience v3"


@dataclass(frozen=True)
class AiringsImported:
    """An import that created or updated airings has committed (``programs.importer``).

    Sent AFTER the commit (from ``airings_import_committed``), unlike the other two: its subscribers see
    the committed rows, which carry ``version_id``; ``program_ids`` are the programs whose airings changed.
    """

    version_id: int
    program_ids: tuple[int, ...]


class Event(Generic[E, R]):
    """One documented event: ``send`` calls each subscriber with the event and returns their answers."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._subscribers: list[Callable[[E], R]] = []

    def subscribe(self, subscriber: Callable[[E], R]) -> None:
        if subscriber not in self._subscribers:  # connecting twice (a second ready()) is harmless
            self._subscribers.append(subscriber)

    def subscribers(self) -> list[Callable[[E], R]]:
        return list(self._subscribers)

    def send(self, event: E) -> list[R]:
        return [subscriber(event) for subscriber in self._subscribers]


BROADCAST_DATA_CHANGED: Event[BroadcastDataChanged, None] = Event("broadcast_data_changed")
PRODUCTION_MODEL_CHANGED: Event[ProductionModelChanged, JSONObject] = Event("production_model_changed")
AIRINGS_IMPORTED: Event[AiringsImported, None] = Event("airings_imported")
