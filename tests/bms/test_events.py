"""The cross-app events (bms/events.py): who subscribes, and how a send runs them."""

from __future__ import annotations

from bms import wiring
from bms.events import (
    AIRINGS_IMPORTED,
    BROADCAST_DATA_CHANGED,
    PRODUCTION_MODEL_CHANGED,
    Event,
    ProductionModelChanged,
)
from predictions.ab_tests import ab_tests_end_on_production_change, ab_tests_score_on_import
from predictions.lookups import history_prebuild_on_generation, history_refresh_on_import


def test_the_subscribers_at_start_up_are_the_ones_bms_wiring_lists_in_order() -> None:
    assert BROADCAST_DATA_CHANGED.subscribers() == [ab_tests_score_on_import, history_prebuild_on_generation]
    assert PRODUCTION_MODEL_CHANGED.subscribers() == [
        ab_tests_end_on_production_change,
        wiring.predictor_reload_after_commit,
    ]
    assert AIRINGS_IMPORTED.subscribers() == [history_refresh_on_import]


def test_connecting_again_adds_no_second_subscription() -> None:
    wiring.connect()
    assert len(BROADCAST_DATA_CHANGED.subscribers()) == 2
    assert len(PRODUCTION_MODEL_CHANGED.subscribers()) == 2
    assert len(AIRINGS_IMPORTED.subscribers()) == 1


def test_send_calls_each_subscriber_in_order_with_the_event_and_returns_their_answers() -> None:
    event: Event[ProductionModelChanged, str] = Event("test")
    calls: list[str] = []

    def first(change: ProductionModelChanged) -> str:
        calls.append(f"a:{change.target}")
        return "first"

    def second(change: ProductionModelChanged) -> str:
        calls.append(f"b:{change.reason}")
        return "second"

    event.subscribe(first)
    event.subscribe(second)
    answers = event.send(ProductionModelChanged(target="rating", reason="why"))
    assert calls == ["a:rating", "b:why"]
    assert answers == ["first", "second"]
