"""A failed prediction-log flush keeps its rows for the next one, a bounded number of times."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import OperationalError

from bms.metrics import PREDICTION_LOGS_DROPPED
from predictions.logbuffer import LogEntry, PredictionLogBuffer
from predictions.models import PredictionLog

pytestmark = pytest.mark.django_db
BASE = datetime(2025, 3, 1, 20, 0, tzinfo=UTC)


def _entries(n: int, *, first: int = 0) -> list[LogEntry]:
    return [
        LogEntry(
            created_at=BASE + timedelta(seconds=i), request_id=uuid.uuid4(), request_key=f"user:{i}", target="rating",
            model_version_id=None, algorithm="catboost", program_id=None, channel_id=None, slot_start=BASE,
            inputs_digest=f"{i:016x}", output=float(i), latency_ms=0.5,
        )
        for i in range(first, first + n)
    ]  # fmt: skip


@pytest.fixture
def failing_inserts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The next ``failures[0]`` inserts fail as a PoolTimeout would (Django's OperationalError)."""
    from bms import db

    failures = [0]
    real = db.rows_insert

    def rows_insert(*args: Any, **kwargs: Any) -> None:
        if failures[0] > 0:
            failures[0] -= 1
            raise OperationalError("couldn't get a connection after 5.00 sec")
        real(*args, **kwargs)

    monkeypatch.setattr(db, "rows_insert", rows_insert)
    return failures


def test_a_failed_flush_keeps_its_rows_and_the_next_one_writes_them_once(
    settings: Any, failing_inserts: list[int]
) -> None:
    settings.PREDICTION_LOG_FLUSH_SIZE = 1000
    buffer = PredictionLogBuffer()
    buffer.add(_entries(3))
    failing_inserts[0] = 1
    with pytest.raises(OperationalError):
        buffer.flush()
    assert (buffer.pending(), PredictionLog.objects.count()) == (3, 0)
    buffer.add(_entries(2, first=3))  # arrived meanwhile: written after the kept rows
    assert buffer.flush() == 5
    assert buffer.pending() == 0
    assert list(PredictionLog.objects.order_by("created_at").values_list("output", flat=True)) == [0, 1, 2, 3, 4]


def test_rows_are_dropped_after_the_last_attempt_and_counted(settings: Any, failing_inserts: list[int]) -> None:
    settings.PREDICTION_LOG_FLUSH_ATTEMPTS = 2
    settings.PREDICTION_LOG_FLUSH_SIZE = 1000
    dropped_before = PREDICTION_LOGS_DROPPED._value.get()
    buffer = PredictionLogBuffer()
    buffer.add(_entries(4))
    failing_inserts[0] = 2
    for _ in range(2):
        with pytest.raises(OperationalError):
            buffer.flush()
    assert (buffer.pending(), PredictionLog.objects.count()) == (0, 0)
    assert PREDICTION_LOGS_DROPPED._value.get() - dropped_before == 4


def test_the_buffer_keeps_only_the_newest_rows_at_its_cap(settings: Any) -> None:
    settings.PREDICTION_LOG_MAX_PENDING = 3
    settings.PREDICTION_LOG_FLUSH_SIZE = 1000
    buffer = PredictionLogBuffer()
    buffer.add(_entries(5))
    assert buffer.pending() == 3
    assert buffer.flush() == 3
    assert list(PredictionLog.objects.order_by("created_at").values_list("output", flat=True)) == [2, 3, 4]


def test_a_request_never_fails_for_its_log(settings: Any, failing_inserts: list[int]) -> None:
    settings.PREDICTION_LOG_FLUSH_SIZE = 2
    settings.PREDICTION_LOG_BACKGROUND = False
    buffer = PredictionLogBuffer()
    failing_inserts[0] = 1
    buffer.add(_entries(2))  # reaches the size: flushes inline, fails, keeps the rows
    assert buffer.pending() == 2
    buffer.add(_entries(1, first=2))
    assert (buffer.pending(), PredictionLog.objects.count()) == (0, 3)
