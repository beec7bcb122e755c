"""Prediction logs written in bulk, off the request path.

Requests append plain tuples to an in-process buffer (a lock and a list append); a daemon thread
writes them with one bulk insert (``bms.db.rows_insert``) when the buffer reaches ``PREDICTION_LOG_FLUSH_SIZE`` rows or
``PREDICTION_LOG_FLUSH_SECONDS`` passed. With ``PREDICTION_LOG_BACKGROUND`` off (tests) the flush
runs synchronously on the size threshold and whenever :func:`flush` is called. A process that dies
loses at most one buffer of logs: they are telemetry, not business data.
"""

from __future__ import annotations

import atexit
import logging
import operator
import threading
import time
import uuid
from dataclasses import dataclass, fields
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LogEntry:
    created_at: datetime
    request_id: uuid.UUID
    request_key: str
    target: str
    model_version_id: int | None
    algorithm: str
    program_id: int | None
    channel_id: int | None
    slot_start: datetime
    inputs_digest: str
    output: float
    latency_ms: float
    ab_test_id: int | None = None
    arm: str = ""
    served: bool = True


# A LogEntry's fields are PredictionLog's columns (attnames), in the order rows_insert takes them.
LOG_COLUMNS = tuple(f.name for f in fields(LogEntry))
_as_row = operator.attrgetter(*LOG_COLUMNS)


class PredictionLogBuffer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[LogEntry] = []
        self._oldest = 0.0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, entries: list[LogEntry]) -> None:
        if not entries:
            return
        with self._lock:
            if not self._rows:
                self._oldest = time.monotonic()
            self._rows.extend(entries)
            full = len(self._rows) >= settings.PREDICTION_LOG_FLUSH_SIZE
        if settings.PREDICTION_LOG_BACKGROUND:
            self._ensure_thread()
            if full:
                self._wake.set()
        elif full:
            self.flush()

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def _take(self) -> list[LogEntry]:
        with self._lock:
            rows, self._rows = self._rows, []
            return rows

    def flush(self) -> int:
        """Write everything buffered now; returns the number of rows written."""
        rows = self._take()
        if not rows:
            return 0
        from bms.db import rows_insert
        from predictions.models import PredictionLog

        # Plain tuples in multi-row statements (no model instances), so this thread beside the requests
        # holds and retakes the interpreter lock as little as possible.
        rows_insert(PredictionLog, LOG_COLUMNS, [_as_row(r) for r in rows])
        return len(rows)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="prediction-log-flusher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        period = settings.PREDICTION_LOG_FLUSH_SECONDS
        while True:
            self._wake.wait(timeout=period)
            self._wake.clear()
            with self._lock:
                due = bool(self._rows) and (
                    len(self._rows) >= settings.PREDICTION_LOG_FLUSH_SIZE or time.monotonic() - self._oldest >= period
                )
            if not due:
                continue
            try:
                close_old_connections()
                self.flush()
            except Exception:  # the flusher must survive a database hiccup; logs are best effort
                logger.exception("prediction log flush failed")
            finally:
                connection.close()


_buffer = PredictionLogBuffer()


def get_buffer() -> PredictionLogBuffer:
    return _buffer


def _flush_at_exit() -> None:
    try:
        _buffer.flush()
    except Exception:  # interpreter shutdown: the database may be gone already
        logger.warning("could not flush %d prediction logs at exit", _buffer.pending())


atexit.register(_flush_at_exit)
