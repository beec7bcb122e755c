"""bms.db.rows_insert writes exactly what the ORM would (COPY on PostgreSQL, executemany elsewhere)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from predictions.logbuffer import LOG_COLUMNS, LogEntry, get_buffer
from predictions.models import PredictionLog
from tests.programs.factories import channel, program

pytestmark = pytest.mark.django_db


def test_every_column_of_a_prediction_log_round_trips() -> None:
    show = program(channel_obj=channel(code="dbt"))
    base = datetime(2025, 3, 1, 1, 2, 3, 456789, tzinfo=UTC)
    entries = [
        LogEntry(
            created_at=base + timedelta(seconds=i), request_id=uuid.uuid4(), request_key=f"user:{i}",
            target="rating", model_version_id=None, algorithm="catboost", program_id=show.pk,
            channel_id=show.channel_id, slot_start=base + timedelta(days=i), inputs_digest=f"{i:016x}",
            output=1.25 * i, latency_ms=0.5, ab_test_id=None, arm="" if i else "champion", served=bool(i % 2),
        )
        for i in range(5)
    ]  # fmt: skip
    get_buffer().add(entries)
    assert get_buffer().flush() == 5
    stored = list(PredictionLog.objects.order_by("created_at").values_list(*LOG_COLUMNS))
    assert stored == [tuple(getattr(e, c) for c in LOG_COLUMNS) for e in entries]
