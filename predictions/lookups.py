"""In-process caches of what building a feature row reads: programs and each channel-day's airings.

Both are valid for one broadcast data version (``programs.selectors.data_version_current``, bumped
by every import/generation/edit), which is re-read at most every ``PREDICTOR_GENERATION_CHECK_MS``;
programs are also dropped every ``_PROGRAM_TTL_SECONDS``. A steady stream of predictions therefore
runs without a database query, and a new import is seen within a second.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from django.conf import settings
from django.db.models import Q, QuerySet

from bms.events import AiringsImported
from predictions import history_store
from predictions.fastpath import RawRows
from programs.models import TARGETS, Airing, Program
from registry.features import HistoryState, batched

logger = logging.getLogger(__name__)

_PROGRAM_TTL_SECONDS = 60.0
_MAX_PROGRAMS = 50_000
_MAX_DAYS = 20_000

ProgramKey = tuple[str, int | str]  # ("pk", 12) or ("external_id", "ABC123")
DayKey = tuple[int, datetime]  # (channel id, first instant of the broadcast day, UTC)


def broadcast_day_start(start: datetime, tz: ZoneInfo) -> datetime:
    """First instant (UTC) of ``start``'s broadcast day, as registry.features computes it (start - 6 h)."""
    from registry.features import BROADCAST_DAY_START_HOUR

    shift = timedelta(hours=BROADCAST_DAY_START_HOUR)
    day = (start.astimezone(UTC) - shift).astimezone(tz).date()
    return datetime.combine(day, dt_time(0), tzinfo=tz).astimezone(UTC) + shift


class ServingLookups:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: int | None = None
        self._checked_at = 0.0
        self._programs_loaded_at = time.monotonic()
        self._programs: dict[ProgramKey, Program] = {}
        self._days: dict[DayKey, tuple[list[datetime], list[int]]] = {}
        self._history: dict[str, HistoryState] = {}
        self._history_lock = threading.Lock()

    def _fresh(self) -> None:
        now = time.monotonic()
        if (now - self._checked_at) * 1000.0 < settings.PREDICTOR_GENERATION_CHECK_MS:
            return
        from programs.selectors import data_version_current

        token = data_version_current()
        with self._lock:
            self._checked_at = now
            if token != self._token:
                self._token = token
                self._programs = {}
                self._days = {}
                self._history = {}
                self._programs_loaded_at = now
            elif now - self._programs_loaded_at > _PROGRAM_TTL_SECONDS:
                self._programs = {}
                self._programs_loaded_at = now

    def programs(self, keys: Iterable[ProgramKey]) -> dict[ProgramKey, Program]:
        """The programs (with their channel) for ``keys``; unknown keys are absent from the result."""
        self._fresh()
        wanted = set(keys)
        cache = self._programs
        missing = [k for k in wanted if k not in cache]
        if missing:
            from django.db.models import Q

            pks = [k[1] for k in missing if k[0] == "pk"]
            ext = [k[1] for k in missing if k[0] == "external_id"]
            found = Program.objects.select_related("channel").filter(Q(pk__in=pks) | Q(external_id__in=ext))
            with self._lock:
                if len(self._programs) > _MAX_PROGRAMS:
                    self._programs = {}
                for p in found:
                    self._programs[("pk", p.pk)] = p
                    self._programs[("external_id", p.external_id)] = p
                cache = self._programs
        return {k: cache[k] for k in wanted if k in cache}

    def lead_ins(self, *, channel_ids: Sequence[int], zones: Sequence[str], starts: Sequence[datetime]) -> np.ndarray:
        """Program id of the stored airing just before each start on its channel in the same broadcast day.

        The rule of ``registry.features.slot_frame`` (-1 = none); missing channel-days are read in one
        range query.
        """
        from registry.features import NO_LEAD_IN

        self._fresh()
        zone_of = {c: ZoneInfo(z) for c, z in zip(channel_ids, zones, strict=True)}  # channel id -> its zone
        keys: list[DayKey] = [(c, broadcast_day_start(s, zone_of[c])) for c, s in zip(channel_ids, starts, strict=True)]
        days = self._days
        missing = {k for k in keys if k not in days}
        if missing:
            loaded: dict[DayKey, tuple[list[datetime], list[int]]] = {k: ([], []) for k in missing}
            lo = min(k[1] for k in missing)
            hi = max(k[1] for k in missing) + timedelta(days=1, hours=2)
            rows = (
                Airing.objects.filter(channel_id__in={k[0] for k in missing}, start__gte=lo, start__lt=hi)
                .order_by("channel_id", "start", "id")
                .values_list("channel_id", "start", "program_id")
            )
            for channel_id, start, program_id in rows:
                key = (channel_id, broadcast_day_start(start, zone_of[channel_id]))
                bucket = loaded.get(key)
                if bucket is not None:
                    bucket[0].append(start)
                    bucket[1].append(program_id)
            with self._lock:
                if len(self._days) > _MAX_DAYS:
                    self._days = {}
                self._days.update(loaded)
                days = self._days
        out = np.full(len(keys), NO_LEAD_IN, dtype="int64")
        for i, (key, start) in enumerate(zip(keys, starts, strict=True)):
            day_starts, programs = days[key]
            j = bisect_left(day_starts, start) - 1  # the latest stored start strictly before ``start``
            if j >= 0:
                out[i] = programs[j]
        return out

    def history_warm(self) -> None:
        """Build every target's history state now (a serving process, before its first request)."""
        self.history(TARGETS[0])

    def history(self, target: str) -> HistoryState:
        """The history-feature state of ``target`` for the current data version (taken on first use after
        a generation/edit, or an import another process ran: mapped from ``predictions.history_store``
        when a process wrote it, else built from the airings with actuals and written there; an import in
        this process brings it up to date at once: ``history_after_import``)."""
        self._fresh()
        state = self._history.get(target)
        if state is not None:
            return state
        with self._history_lock:
            states = self._history
            if target not in states:
                states = dict(states)
                states.update(_history_states_current())
                self._history = states
            return states[target]

    def history_after_import(self, *, version_id: int, program_ids: Sequence[int]) -> None:
        """Bring this process's history states to a committed import now, not on the next request.

        When the states are those of the version just before the import's, the airings the import wrote
        are read (by program and version) and folded into each state (``HistoryState.appended``: an
        import of airings later than the actuals held); otherwise (an earlier airing edited, another
        change in between) every state is rebuilt here. Either way the result is written to the store
        for the other processes. A process that has built no state yet does nothing: its first request
        takes one, as before.
        """
        from programs.selectors import data_version_current, data_version_follows

        with self._history_lock:
            states, token = self._history, self._token
            if not states or token is None:
                return
            current = data_version_current()
            folded: dict[str, HistoryState] | None = None
            if current == version_id and data_version_follows(previous=token, version=version_id):
                folded = _history_states_appended(states, version_id=version_id, program_ids=program_ids)
            fresh = folded if folded is not None else _history_states()
            fresh = _history_states_kept(fresh, version_id=current)
            now = time.monotonic()
            with self._lock:
                self._token = current
                self._checked_at = now
                self._programs = {}
                self._days = {}
                self._programs_loaded_at = now
                self._history = fresh

    def history_drop(self) -> None:
        """Forget the history states: the next request reads the data version and builds them again."""
        with self._lock:
            self._history = {}
            self._checked_at = 0.0

    def history_features(self, *, target: str, rows: RawRows) -> tuple[dict[str, np.ndarray], list[datetime | None]]:
        """(history columns, the latest actual each row's features used) for serving ``rows``."""
        local = rows.local
        utc = np.array([s.astimezone(UTC).replace(tzinfo=None) for s in rows.start], dtype="datetime64[m]")
        columns, through = self.history(target).features(
            program_id=rows.program_id,
            channel=rows.channel,
            local_min=local.astype("int64"),
            utc_min=utc.astype("int64"),
            lead_in_program_id=rows.lead_in_program_id,
        )
        return columns, [None if t < 0 else datetime.fromtimestamp(int(t) * 60, tz=UTC) for t in through.tolist()]


# Rows fetched and turned into compact columns at a time when reading the actuals: memory holds the
# columns (about 40 bytes per airing) and one chunk of tuples, never a tuple per airing.
ACTUALS_CHUNK = 50_000


def _actuals_frame(airings: QuerySet[Airing]) -> pd.DataFrame:
    """program_id, channel (code), start and every target of ``airings``, read in chunks of
    ``ACTUALS_CHUNK`` rows (a server-side cursor on PostgreSQL)."""
    from programs.models import Channel

    rows = airings.order_by().values_list("program_id", "channel_id", "start", *TARGETS)
    programs: list[np.ndarray] = []
    channels: list[np.ndarray] = []
    starts: list[np.ndarray] = []
    values: list[np.ndarray] = []

    def take(batch: list[tuple[Any, ...]]) -> None:
        programs.append(np.fromiter((r[0] for r in batch), dtype="int64", count=len(batch)))
        channels.append(np.fromiter((r[1] for r in batch), dtype="int64", count=len(batch)))
        starts.append(pd.to_datetime([r[2] for r in batch], utc=True).tz_convert(None).to_numpy())
        values.append(np.array([r[3:] for r in batch], dtype="float64").reshape(len(batch), len(TARGETS)))

    for batch in batched(rows.iterator(chunk_size=ACTUALS_CHUNK), ACTUALS_CHUNK):
        take(batch)
    if not programs:
        frame = pd.DataFrame({"program_id": pd.Series(dtype="int64"), "channel": pd.Series(dtype=object)})
        frame["start"] = pd.Series(dtype="datetime64[ns, UTC]")
        for target in TARGETS:
            frame[target] = pd.Series(dtype="float64")
        return frame
    channel_ids = np.concatenate(channels)
    known = np.unique(channel_ids)
    codes = dict(Channel.objects.filter(pk__in=known.tolist()).values_list("pk", "code"))
    table = np.array([codes.get(int(c), "") for c in known], dtype=object)
    frame = pd.DataFrame(
        {
            "program_id": np.concatenate(programs),
            "channel": table[np.searchsorted(known, channel_ids)],
            "start": pd.DatetimeIndex(np.concatenate(starts)).tz_localize("UTC"),
        }
    )
    targets = np.concatenate(values)
    for i, target in enumerate(TARGETS):
        frame[target] = targets[:, i]
    return frame


def _history_states() -> dict[str, HistoryState]:
    """Every target's history state from one query over the airings with any actual value."""
    from registry.training import history_state

    has_any = Q()
    for target in TARGETS:
        has_any |= Q(**{f"{target}__isnull": False})
    frame = _actuals_frame(Airing.objects.filter(has_any))
    return {target: history_state(frame, target) for target in TARGETS}


def _history_states_current() -> dict[str, HistoryState]:
    """Every target's history state for the current data version: mapped from the store when a process
    wrote them (``predictions.history_store``), otherwise built here and written there for the others."""
    from programs.selectors import data_version_current, data_version_stamp

    version = data_version_current()
    stamp = data_version_stamp(version) if version else None
    if stamp is not None and history_store.store_root() is not None:
        stored = history_store.states_load(key=history_store.states_key(stamp))
        if stored is not None:
            return stored
    return _history_states_kept(_history_states(), version_id=version)


def _history_states_kept(states: dict[str, HistoryState], *, version_id: int) -> dict[str, HistoryState]:
    """``states`` (of data version ``version_id``) written to the store and mapped back from it, so this
    process holds file pages other processes share instead of its own copy; ``states`` as they are when
    there is no store, no such version or the write fails."""
    from programs.selectors import data_version_stamp

    stamp = data_version_stamp(version_id) if version_id else None
    if stamp is None or history_store.store_root() is None:
        return states
    key = history_store.states_key(stamp)
    try:
        history_store.states_save(states, key=key)
    except OSError:
        logger.exception("history states: could not write %s; this process keeps its own copy", key)
        return states
    return history_store.states_load(key=key) or states


# Above this many programs the import's airings are found by their version alone (a scan), not by an
# IN list over the (program, start) index.
_IMPORT_PROGRAMS_IN_LIST = 5_000


def _history_states_appended(
    states: dict[str, HistoryState], *, version_id: int, program_ids: Sequence[int]
) -> dict[str, HistoryState] | None:
    """``states`` with the airings of import ``version_id`` folded in; None when one cannot be folded."""
    from registry.training import history_state_appended

    written = Airing.objects.filter(data_version=version_id)
    if len(program_ids) <= _IMPORT_PROGRAMS_IN_LIST:
        written = written.filter(program_id__in=list(program_ids))
    frame = _actuals_frame(written)
    folded: dict[str, HistoryState] = {}
    for target in TARGETS:
        state = states.get(target)
        appended = None if state is None else history_state_appended(state, frame)
        if appended is None:
            return None
        folded[target] = appended
    return folded


def history_refresh_on_import(imported: AiringsImported) -> None:
    """``AIRINGS_IMPORTED`` subscriber: this process's history states follow the committed import.

    The import has committed: a failure here drops the states (the next request rebuilds them) and is
    logged, and never turns the import's answer into an error.
    """
    lookups = get_lookups()
    try:
        lookups.history_after_import(version_id=imported.version_id, program_ids=imported.program_ids)
    except Exception:
        logger.exception("history state: could not follow import %s; the next request rebuilds it", imported.version_id)
        lookups.history_drop()


_lookups = ServingLookups()


def get_lookups() -> ServingLookups:
    return _lookups


def reset_lookups() -> None:
    global _lookups
    _lookups = ServingLookups()
