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
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import BigIntegerField, Func, Q, QuerySet

from bms.events import AiringsImported, BroadcastDataChanged
from bms.metrics import HISTORY_STATE_BUILD_SECONDS, HISTORY_STATE_BUILDS
from predictions import history_store
from predictions.fastpath import RawRows
from programs.models import TARGETS, Airing, DataVersion, Program
from registry.features import HistoryRows, HistoryState, batched

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
        """The history-feature state of ``target`` for the current data version (prepared right after an
        import or a generation by ``history_prebuild``; otherwise taken on first use: mapped from
        ``predictions.history_store`` when a process wrote it, else built from the airings with actuals and
        written there; an import in this process brings it up to date at once: ``history_after_import``)."""
        self._fresh()
        state = self._history.get(target)
        if state is not None:
            return state
        with self._history_lock:
            states = self._history
            if target in states:
                return states[target]
            from programs.selectors import data_version_current

            version = data_version_current()
            built, current = _history_states_of(version)
            if current:
                self._history_install(version, built)
            # else the data changed during the build: these serve this request, the next one builds again
            return built[target]

    def _history_install(self, version: int, states: dict[str, HistoryState]) -> bool:
        """Serve ``states`` (of data version ``version``, current when built) from now on, unless this process
        already knows a later version (a build that a data change overtook is never served as current)."""
        now = time.monotonic()
        with self._lock:
            if self._token is not None and self._token > version:
                return False
            if self._token != version:
                self._token = version
                self._programs = {}
                self._days = {}
                self._programs_loaded_at = now
            self._checked_at = now
            self._history = states
            return True

    def history_prepare(self, *, version_id: int) -> str:
        """Have the states of data version ``version_id`` ready in this process and in the store (the job
        after a data change): "stale" when the data changed since, "ready" when they already were, "built"."""
        from programs.selectors import data_version_current

        with self._history_lock:
            if data_version_current() != version_id:
                return "stale"
            if self._token == version_id and set(TARGETS) <= set(self._history):
                return "ready"
            stored = _history_states_stored(version_id)
            if stored is not None:
                self._history_install(version_id, stored)
                return "ready"
            started = time.perf_counter()
            built, current = _history_states_of(version_id)
            HISTORY_STATE_BUILD_SECONDS.observe(time.perf_counter() - started)
            if not current or not self._history_install(version_id, built):
                return "stale"
            return "built"

    def history_after_import(self, *, version_id: int, program_ids: Sequence[int]) -> bool:
        """Bring this process's history states to a committed import now, not on the next request.

        When the states are those of the version just before the import's, the airings the import wrote
        are read (by program and version) and folded into each state (``HistoryState.appended``: an
        import of airings later than the actuals held), written to the store for the other processes and
        served here; True then, or when this process already serves the import's version. False
        otherwise (an earlier airing edited, another change in between, no state built yet): the
        states are dropped and ``history_prebuild`` (a background job) builds them.
        """
        from programs.selectors import data_version_current, data_version_follows

        with self._history_lock:
            states, token = self._history, self._token
            if token == version_id and set(TARGETS) <= set(states):
                return True
            if not states or token is None:
                return False
            if data_version_current() != version_id or not data_version_follows(previous=token, version=version_id):
                self.history_drop()
                return False
            folded = _history_states_appended(states, version_id=version_id, program_ids=program_ids)
            if folded is None:
                self.history_drop()
                return False
            kept, current = _history_states_kept(lambda: folded.items(), version_id=version_id)
            if not current or not self._history_install(version_id, kept):
                self.history_drop()
                return False
            return True

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


class _UtcMinutes(Func):
    """A datetime column as whole minutes since 1970 (UTC), computed by the database: the read then carries
    integers, not a datetime object per row (parsing them was most of a full read's time)."""

    output_field = BigIntegerField()
    template = "CAST(FLOOR(EXTRACT(EPOCH FROM %(expressions)s) / 60) AS BIGINT)"

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django stores UTC text ("2024-01-01 10:00:00[.ffffff]"); the airings are after 1970, so the
        # integer division floors.
        return self.as_sql(compiler, connection, template="(CAST(strftime('%%%%s', %(expressions)s) AS INTEGER) / 60)")


def _actuals_rows(airings: QuerySet[Airing]) -> tuple[HistoryRows, np.ndarray]:
    """The integer columns of ``airings`` (``HistoryRows``) and their targets' values ((n, TARGETS) floats),
    read in chunks of ``ACTUALS_CHUNK`` rows (a server-side cursor on PostgreSQL) into numpy arrays: about
    70 bytes per airing, never a Python object per airing."""
    from programs.models import Channel

    rows = (
        airings.order_by()
        .annotate(utc_min=_UtcMinutes("start"))
        .values_list("program_id", "channel_id", "utc_min", *TARGETS)
    )
    programs: list[np.ndarray] = []
    channels: list[np.ndarray] = []
    starts: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for batch in batched(rows.iterator(chunk_size=ACTUALS_CHUNK), ACTUALS_CHUNK):
        programs.append(np.fromiter((r[0] for r in batch), dtype="int64", count=len(batch)))
        channels.append(np.fromiter((r[1] for r in batch), dtype="int64", count=len(batch)))
        starts.append(np.fromiter((r[2] for r in batch), dtype="int64", count=len(batch)))
        values.append(np.array([r[3:] for r in batch], dtype="float64").reshape(len(batch), len(TARGETS)))

    def joined(parts: list[np.ndarray], dtype: str) -> np.ndarray:
        out = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
        parts.clear()  # one column's chunks and its joined copy at a time, not all of them
        return out

    program_id, channel_ids, utc_min = joined(programs, "int64"), joined(channels, "int64"), joined(starts, "int64")
    targets = np.concatenate(values) if values else np.zeros((0, len(TARGETS)))
    values.clear()
    known, channel_at = np.unique(channel_ids, return_inverse=True)
    del channel_ids
    codes = dict(Channel.objects.filter(pk__in=known.tolist()).values_list("pk", "code"))
    table = np.array([codes.get(int(c), "") for c in known.tolist()], dtype=str)
    history_rows = HistoryRows.from_arrays(
        program_id=program_id, channel_at=channel_at.reshape(-1), channels=table, utc_min=utc_min
    )
    return history_rows, targets


def _history_states_each() -> Iterator[tuple[str, HistoryState]]:
    """Every target's history state from one read of the airings with any actual value, one target at a
    time (the caller can write one away before the next is built)."""
    from registry.training import history_state_from_rows

    has_any = Q()
    for target in TARGETS:
        has_any |= Q(**{f"{target}__isnull": False})
    rows, values = _actuals_rows(Airing.objects.filter(has_any))
    for i, target in enumerate(TARGETS):
        yield target, history_state_from_rows(rows, values[:, i], target)


def _history_states() -> dict[str, HistoryState]:
    """Every target's history state, built in memory from the airings."""
    return dict(_history_states_each())


def _store_key(version_id: int) -> str | None:
    from programs.selectors import data_version_stamp

    if history_store.store_root() is None or not version_id:
        return None
    stamp = data_version_stamp(version_id)
    return None if stamp is None else history_store.states_key(stamp)


def _history_states_stored(version_id: int) -> dict[str, HistoryState] | None:
    """The states of data version ``version_id`` a process wrote to the store, mapped; None when there are none."""
    key = _store_key(version_id)
    return None if key is None else history_store.states_load(key=key)


def _history_states_of(version_id: int) -> tuple[dict[str, HistoryState], bool]:
    """Every target's history state of data version ``version_id`` (read as the current one just before):
    mapped from the store when a process wrote them, otherwise built from the airings and written there for
    the others; and whether they are that version's. False: the data changed while they were built, so
    they may hold a later change's airings, and they are neither written under the version nor kept as
    its states (``ServingLookups.history`` serves them to the one request that asked)."""
    stored = _history_states_stored(version_id)
    if stored is not None:
        return stored, True
    return _history_states_kept(_history_states_each, version_id=version_id)


def _history_states_kept(
    build: Callable[[], Iterable[tuple[str, HistoryState]]], *, version_id: int
) -> tuple[dict[str, HistoryState], bool]:
    """The states ``build`` yields (of data version ``version_id``), each written to the store as soon as it
    is built and all mapped back from it, so the builder holds one target's arrays at a time and every
    process the same file pages; kept in memory when there is no store, no such version or the write
    fails. The version is read again at the end: (states, whether it is still ``version_id``); a
    directory is renamed into place only then."""
    from programs.selectors import data_version_current

    key = _store_key(version_id)
    if key is not None:
        try:
            return _history_states_written(build, key=key, version_id=version_id)
        except OSError:
            logger.exception("history states: could not write %s; this process keeps its own copy", key)
    states = dict(build())
    return states, data_version_current() == version_id


def _history_states_written(
    build: Callable[[], Iterable[tuple[str, HistoryState]]], *, key: str, version_id: int
) -> tuple[dict[str, HistoryState], bool]:
    from programs.selectors import data_version_current

    existing = history_store.states_load(key=key)
    if existing is not None:
        return existing, True
    # a later change's airings may be in states built while the data changed: not this version's directory
    states, kept = history_store.states_write(build(), key=key, keep=lambda: data_version_current() == version_id)
    if not kept:
        return states, False
    return history_store.states_load(key=key) or states, True


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
    """``AIRINGS_IMPORTED`` subscriber: this process's history states follow the committed import, and the
    import's version gets its states right away.

    An import of later airings is folded into the states this process serves (a fraction of a second);
    otherwise (an earlier airing edited, no state built yet) the states are built by a background job
    (``history_prebuild_later``). The import has committed: a failure here drops the states (the job,
    or else the next request, rebuilds them) and is logged, and never turns the import's answer into an
    error.
    """
    lookups = get_lookups()
    try:
        if lookups.history_after_import(version_id=imported.version_id, program_ids=imported.program_ids):
            return
    except Exception:
        logger.exception("history state: could not follow import %s; building it again", imported.version_id)
        lookups.history_drop()
    history_prebuild_later(imported.version_id)


def history_prebuild_on_generation(change: BroadcastDataChanged) -> None:
    """``BROADCAST_DATA_CHANGED`` subscriber: a generation's states are built right after its commit (a
    background job), so the first prediction after it finds them. Imports start theirs from
    ``history_refresh_on_import`` (after the fold it tries first); edits leave it to the next request."""
    if change.source == DataVersion.Source.GENERATE:
        version_id = change.version_id
        transaction.on_commit(lambda: history_prebuild_later(version_id))


def history_prebuild_later(version_id: int) -> None:
    """Start ``history_prebuild`` for ``version_id`` as a job (``predictions.history_prebuild``: a Celery
    worker, or a background thread of this process in the embedded mode). A broker outage only logs: the
    first request builds the states then."""
    if not settings.HISTORY_PREBUILD:
        return
    from predictions.tasks import history_prebuild_task

    try:
        history_prebuild_task.delay(version_id)
    except Exception:
        logger.exception("history state: could not start the build of data version %s", version_id)
        HISTORY_STATE_BUILDS.labels(outcome="failed").inc()


def history_prebuild(*, version_id: int) -> str:
    """Have the serving history states of data version ``version_id`` ready: in the store for every process
    and in this one (``ServingLookups.history_prepare``). Never raises: a failure is logged and counted
    (``bms_history_state_builds_total{outcome="failed"}``), and the first request builds them instead.
    Returns the outcome: built, ready, stale (the data changed again: that change's job builds) or failed."""
    try:
        outcome = get_lookups().history_prepare(version_id=version_id)
    except Exception:
        logger.exception("history state: the build of data version %s failed; the next request builds it", version_id)
        outcome = "failed"
    HISTORY_STATE_BUILDS.labels(outcome=outcome).inc()
    logger.info("history state of data version %s: %s", version_id, outcome)
    return outcome


_lookups = ServingLookups()


def get_lookups() -> ServingLookups:
    return _lookups


def reset_lookups() -> None:
    global _lookups
    _lookups = ServingLookups()
