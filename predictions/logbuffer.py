"""Prediction logs written in bulk, off the request path.

Requests append plain tuples to an in-process buffer (a lock and a list append); a daemon thread
writes them with one bulk insert (``bms.db.rows_insert``) when the buffer reaches ``PREDICTION_LOG_FLUSH_SIZE`` rows or
``PREDICTION_LOG_FLUSH_SECONDS`` passed. With ``PREDICTION_LOG_BACKGROUND`` off (tests) the flush
runs synchronously on the size threshold and whenever :func:`flush` is called. A flush that fails
(the database restarting, no pooled connection in time) puts its rows back in front of the buffer and
the next flush retries them, up to ``PREDICTION_LOG_FLUSH_ATTEMPTS`` attempts per row; the buffer keeps at
most ``PREDICTION_LOG_MAX_PENDING`` rows (the oldest go first). Both drops are logged and counted
(``bms_prediction_logs_dropped_total``). A process that dies loses at most one buffer of logs: they are
telemetry, not business data.
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
from django.db import close_old_connections, connection, transaction

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
        self._failures = 0  # consecutive failed flushes of the rows at the front of the buffer
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
            self._drop_over_limit()
            full = len(self._rows) >= settings.PREDICTION_LOG_FLUSH_SIZE
        if settings.PREDICTION_LOG_BACKGROUND:
            self._ensure_thread()
            if full:
                self._wake.set()
        elif full:
            try:
                self.flush()
            except Exception:  # never fail the prediction for its log; the rows wait for the next flush
                logger.exception("prediction log flush failed; %d rows kept for the next one", self.pending())

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def _take(self) -> list[LogEntry]:
        with self._lock:
            rows, self._rows = self._rows, []
            return rows

    def _drop_over_limit(self) -> None:
        """With the lock held: keep the newest ``PREDICTION_LOG_MAX_PENDING`` rows."""
        excess = len(self._rows) - settings.PREDICTION_LOG_MAX_PENDING
        if excess > 0:
            del self._rows[:excess]
            _dropped(excess, "buffer full")

    def _give_back(self, rows: list[LogEntry]) -> None:
        """A failed flush: its rows go back in front of what arrived meanwhile, or are dropped at the limit."""
        with self._lock:
            self._failures += 1
            if self._failures >= settings.PREDICTION_LOG_FLUSH_ATTEMPTS:
                self._failures = 0
                _dropped(len(rows), f"{settings.PREDICTION_LOG_FLUSH_ATTEMPTS} failed flushes")
                return
            self._rows[:0] = rows
            self._oldest = time.monotonic()
            self._drop_over_limit()

    def flush(self) -> int:
        """Write everything buffered now; returns the number of rows written.

        On failure the rows are kept for the next flush (bounded, see the module docstring) and the
        error propagates.
        """
        rows = self._take()
        if not rows:
            return 0
        from bms.db import rows_insert
        from predictions.models import PredictionLog

        try:
            # Plain tuples in multi-row statements (no model instances), so this thread beside the
            # requests holds and retakes the interpreter lock as little as possible.
            # One transaction: a batch is written whole or not at all, so a retry never doubles rows.
            with transaction.atomic():
                rows_insert(PredictionLog, LOG_COLUMNS, [_as_row(r) for r in rows])
        except BaseException:
            self._give_back(rows)
            raise
        with self._lock:
            self._failures = 0
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
            except Exception:  # the flusher survives a database hiccup; the rows wait for the next flush
                logger.exception("prediction log flush failed; %d rows kept for the next one", self.pending())
            finally:
                connection.close()


def _dropped(count: int, why: str) -> None:
    from bms.metrics import PREDICTION_LOGS_DROPPED

    PREDICTION_LOGS_DROPPED.inc(count)
    logger.error("dropped %d prediction logs: %s", count, why)


_buffer = PredictionLogBuffer()


def get_buffer() -> PredictionLogBuffer:
    return _buffer


def _flush_at_exit() -> None:
    try:
        _buffer.flush()
    except Exception:  # interpreter shutdown: the database may be gone already
        logger.warning("could not flush %d prediction logs at exit", _buffer.pending())


atexit.register(_flush_at_exit)
