"""Raw frames of airings and the scikit-learn preprocessing that derives every feature from them.

Training and serving share one code path: ``airings_frame`` (stored airings) and ``slot_frame``
(hypothetical airings) produce the same RAW columns, and the fitted pipeline derives hour, daypart,
weekday, month, holiday, trend, the genre x daypart cell and the encodings of program identity and
lead-in program itself. Encoders and scalers are fitted on the training split only (they are steps of
the pipeline that is fitted on it), so the holdout never leaks into them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from django.conf import settings
from django.db.models import QuerySet
from pandas.api.types import union_categoricals
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from programs.calendar import daypart_for_hour, holidays
from programs.models import TARGETS, Airing, Channel, Program

# The raw columns every frame has, in this order (targets follow in airings_frame).
RAW_COLUMNS: tuple[str, ...] = (
    "program_id",
    "external_id",
    "channel",
    "genre",
    "content_rating",
    "duration_minutes",
    "is_live",
    "is_premiere",
    "is_finale",
    "start",
    "lead_in_program_id",
)
# Raw columns the pipelines read (external_id is a label, equivalent to program_id).
MODEL_INPUT_COLUMNS: tuple[str, ...] = tuple(c for c in RAW_COLUMNS if c != "external_id")
NO_LEAD_IN = -1
# The broadcast day runs 06:00-02:00 local; an airing at 01:00 belongs to the previous day.
BROADCAST_DAY_START_HOUR = 6
TREND_EPOCH = pd.Timestamp("2020-01-01")

FRAME_CHUNK = 50_000  # rows per fetch while building a frame of stored airings
_TEXT_COLUMNS = ("external_id", "channel", "genre", "content_rating")
# The raw columns read from the database (the lead-in is computed from the rows), and their ORM paths
# (id, then one per stored column in this order, then the targets).
_STORED_COLUMNS: tuple[str, ...] = tuple(c for c in RAW_COLUMNS if c != "lead_in_program_id")
_AIRING_FIELDS = (
    "id",
    "program_id",
    "program__external_id",
    "channel__code",
    "program__genre",
    "program__content_rating",
    "duration_minutes",
    "program__is_live",
    "is_premiere",
    "is_finale",
    "start",
    *TARGETS,
)


def _local(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True).dt.tz_convert(settings.TIME_ZONE)


def local_wall_clock(start: pd.Series | Sequence[datetime], channel: Sequence[str] | np.ndarray) -> np.ndarray:
    """Each start as naive wall-clock time (``datetime64[m]``) in its channel's time zone.

    The one place features read local time (hour, weekday, daypart, month, holiday, broadcast day):
    ``Channel.time_zone`` per row (``programs.selectors.channel_time_zones``), ``TIME_ZONE`` for a
    channel code that is not stored. A Series (training) is converted per zone, vectorised; a list of
    aware datetimes (serving a few rows) row by row, which is faster below ~50 rows and gives the same
    wall clock (both read the IANA database).
    """
    zone_of = channel_zone_names(channel)
    if not isinstance(start, pd.Series):
        return wall_clock_in(start, zone_of)
    utc = pd.to_datetime(start, utc=True)
    out = np.empty(len(zone_of), dtype="datetime64[m]")
    zone_array = np.array(zone_of, dtype=object)
    for zone in set(zone_of):
        rows = np.flatnonzero(zone_array == zone)
        out[rows] = utc.iloc[rows].dt.tz_convert(zone).dt.tz_localize(None).to_numpy(dtype="datetime64[m]")
    return out


def wall_clock_in(start: Sequence[datetime], zones: Sequence[str]) -> np.ndarray:
    """``local_wall_clock`` of aware datetimes whose channels' zones (``channel_zone_names``) are known."""
    return np.array(
        [s.astimezone(_zone(z)).replace(tzinfo=None) for s, z in zip(start, zones, strict=True)],
        dtype="datetime64[m]",
    )


def channel_zone_names(channel: Sequence[str] | np.ndarray) -> list[str]:
    """The time zone of each channel code (``TIME_ZONE`` for a code that is not stored)."""
    from programs.selectors import channel_time_zones

    codes = [str(c) for c in channel]
    zones = channel_time_zones(codes=set(codes))
    return [zones.get(c, settings.TIME_ZONE) for c in codes]


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _broadcast_day(local: np.ndarray) -> np.ndarray:
    """The broadcast day (06:00-06:00 local) of naive local starts from ``local_wall_clock``."""
    return (local - np.timedelta64(BROADCAST_DAY_START_HOUR, "h")).astype("datetime64[D]")


def _empty_frame(with_targets: bool) -> pd.DataFrame:
    columns = list(RAW_COLUMNS) + (list(TARGETS) if with_targets else [])
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    frame["start"] = pd.Series(dtype=f"datetime64[ns, {settings.TIME_ZONE}]")
    return _typed(frame)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame["program_id"] = frame["program_id"].astype("int64")
    frame["lead_in_program_id"] = frame["lead_in_program_id"].astype("int64")
    frame["duration_minutes"] = frame["duration_minutes"].astype("float64")
    for col in ("is_live", "is_premiere", "is_finale"):
        frame[col] = frame[col].astype(bool)
    for col in ("external_id", "channel", "genre", "content_rating"):
        frame[col] = frame[col].astype(object)
    return frame


def airings_frame(queryset: QuerySet[Airing] | None = None) -> pd.DataFrame:
    """One row per airing of ``queryset`` (default: all), sorted by start, with the raw columns and targets.

    One query, read in chunks of ``FRAME_CHUNK`` rows: each chunk's Python tuples become compact columns
    (text as categories) before the next is fetched, so memory holds the frame plus one chunk, not a
    tuple per airing. The lead-in (previous airing's program on the same channel and broadcast day) is
    computed over the rows of the queryset, vectorised.
    """
    qs = Airing.objects.all() if queryset is None else queryset
    rows = qs.order_by().values_list(*_AIRING_FIELDS).iterator(chunk_size=FRAME_CHUNK)
    names = ["airing_id", *_STORED_COLUMNS, *TARGETS]
    chunks = [_compact(pd.DataFrame.from_records(chunk, columns=names)) for chunk in batched(rows, FRAME_CHUNK)]
    if not chunks:
        return _empty_frame(with_targets=True)
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    for col in _TEXT_COLUMNS:
        frame[col] = (
            union_categoricals([c[col] for c in chunks]).astype(object)
            if len(chunks) > 1
            else frame[col].astype(object)
        )
    frame["start"] = _local(frame["start"])
    frame = frame.sort_values(["start", "airing_id"], kind="stable").reset_index(drop=True)
    day = _broadcast_day(local_wall_clock(frame["start"], frame["channel"].to_numpy()))
    previous = frame.groupby([frame["channel"], day], sort=False)["program_id"].shift(1)
    frame["lead_in_program_id"] = previous.fillna(NO_LEAD_IN).astype("int64")
    for target in TARGETS:
        frame[target] = pd.to_numeric(frame[target], errors="coerce").astype("float64")
    frame.index = pd.Index(frame.pop("airing_id").to_numpy(), name="airing_id")
    return _typed(frame[[*RAW_COLUMNS, *TARGETS]])


def batched(rows: Iterable[tuple[Any, ...]], size: int) -> Iterable[list[tuple[Any, ...]]]:
    """``rows`` in lists of ``size`` (the last one shorter): a chunked read's unit of work."""
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _compact(chunk: pd.DataFrame) -> pd.DataFrame:
    """Text columns as categories (one string object per distinct value, not per row), targets as floats."""
    for col in _TEXT_COLUMNS:
        chunk[col] = chunk[col].astype("category")
    for target in TARGETS:
        chunk[target] = pd.to_numeric(chunk[target], errors="coerce").astype("float64")
    return chunk


def _program_rows(programs: Iterable[Program | int]) -> pd.DataFrame:
    items = list(programs)
    ids = [p.pk if isinstance(p, Program) else int(p) for p in items]
    found = {
        row[0]: row
        for row in Program.objects.filter(pk__in=set(ids)).values_list(
            "id", "external_id", "channel__code", "genre", "content_rating", "duration_minutes", "is_live"
        )
    }
    missing = [i for i in ids if i not in found]
    if missing:
        from bms.errors import NotFoundError

        raise NotFoundError("Unknown program.", details={"program_ids": missing[:20]})
    return pd.DataFrame.from_records(
        [found[i] for i in ids],
        columns=["program_id", "external_id", "channel", "genre", "content_rating", "duration_minutes", "is_live"],
    )


def slot_frame(
    *,
    programs: Sequence[Program | int],
    starts: Sequence[datetime],
    channel: Channel | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    paired: bool = False,
) -> pd.DataFrame:
    """Raw columns (no targets) for hypothetical airings of ``programs`` at ``starts``.

    By default every program x every start, program-major (row ``i * len(starts) + j`` is program i at
    start j), so predictions reshape to ``(len(programs), len(starts))``. With ``paired=True`` the two
    lists are zipped. ``channel`` (a Channel or its code) replaces each program's own channel. The lead-in
    is the program of the stored airing scheduled just before ``start`` on that channel in the same
    broadcast day, if any. ``overrides`` sets columns: a scalar for every row or a sequence per row.
    """
    starts_list = list(starts)
    if paired and len(programs) != len(starts_list):
        from bms.errors import ApplicationError

        raise ApplicationError("programs and starts must have the same length when paired.")
    base = _program_rows(programs)
    if paired:
        frame = base.copy()
        start_values = starts_list
    else:
        frame = base.loc[base.index.repeat(len(starts_list))].reset_index(drop=True)
        start_values = starts_list * len(base)
    frame["start"] = _local(pd.Series(start_values, dtype=object))
    if channel is not None:
        frame["channel"] = channel.code if isinstance(channel, Channel) else str(channel)
    frame["is_premiere"] = False
    frame["is_finale"] = False
    n = len(frame)
    for column, value in (overrides or {}).items():
        if column not in RAW_COLUMNS:
            from bms.errors import ApplicationError

            raise ApplicationError(f"Unknown feature {column!r}.", details={"allowed": list(RAW_COLUMNS)})
        per_row = isinstance(value, (list, tuple, np.ndarray, pd.Series))
        if per_row and len(value) != n:
            from bms.errors import ApplicationError

            raise ApplicationError(f"Override {column!r} needs {n} values.")
        if column == "start":
            frame["start"] = _local(pd.Series(list(value) if per_row else [value] * n, dtype=object))
        else:
            frame[column] = list(value) if per_row else value
    if "lead_in_program_id" not in (overrides or {}):
        frame["lead_in_program_id"] = _lead_ins(frame)
    if not len(frame):
        return _empty_frame(with_targets=False)
    return _typed(frame[list(RAW_COLUMNS)].reset_index(drop=True))


def _lead_ins(frame: pd.DataFrame) -> np.ndarray:
    """Program id of the stored airing just before each row's start on its channel (same broadcast day)."""
    n = len(frame)
    if n == 0:
        return np.zeros(0, dtype="int64")
    lo = frame["start"].min() - pd.Timedelta(days=1)
    hi = frame["start"].max()
    stored = pd.DataFrame.from_records(
        list(
            Airing.objects.filter(channel__code__in=set(frame["channel"]), start__gte=lo, start__lt=hi)
            .order_by()
            .values_list("channel__code", "start", "program_id")
        ),
        columns=["channel", "prev_start", "prev_program"],
    )
    if stored.empty:
        return np.full(n, NO_LEAD_IN, dtype="int64")
    stored["prev_start"] = _local(stored["prev_start"])
    stored = stored.sort_values("prev_start")
    left = pd.DataFrame(
        {"channel": frame["channel"].to_numpy(), "start": frame["start"].to_numpy(), "row": np.arange(n)}
    )
    left["start"] = _local(left["start"])
    left = left.sort_values("start")
    merged = pd.merge_asof(
        left,
        stored,
        left_on="start",
        right_on="prev_start",
        by="channel",
        allow_exact_matches=False,
        direction="backward",
    ).sort_values("row")
    channels = merged["channel"].to_numpy()
    same_day = _broadcast_day(local_wall_clock(merged["start"], channels)) == _broadcast_day(
        local_wall_clock(merged["prev_start"].fillna(merged["start"] - pd.Timedelta(days=2)), channels)
    )
    prev = merged["prev_program"].fillna(NO_LEAD_IN).to_numpy(dtype="int64")
    return np.where(same_day, prev, NO_LEAD_IN)


# --- History features: an airing's recent past, from STRICTLY earlier airings only ---------------------
#
# One formula (``history_from_windows``) turns "windows" of earlier actual values into the feature
# columns. Training fills the windows with vectorised group shifts over the dataset
# (``history_columns``); serving fills them from a compact per-program / per-slot state built from the
# stored airings (``HistoryState``), so the two can only differ in which earlier airings they see.

HISTORY_COLUMNS: tuple[str, ...] = (
    "h_last",  # the program's last actual
    "h_mean3",  # mean of its last 3 actuals
    "h_mean8",  # mean of its last 8 actuals
    "h_mean_all",  # mean of all its earlier actuals (the program's level so far: the least noisy one)
    "h_ewm",  # exponentially weighted mean of its last 8 actuals (most recent weighs most)
    "h_count",  # airings (with an actual) so far
    "h_days_since",  # days since its previous airing
    "h_episode",  # index of this airing in its run (a gap of more than RUN_GAP_DAYS starts a new run)
    "h_slope",  # least-squares slope of its last 8 actuals per airing
    "s_last",  # the slot's (channel x local weekday x hour) value on its latest earlier day: a week before
    "s_mean4",  # mean of the slot's last 4 earlier days
    "li_last",  # the lead-in program's last actual
    "ps_last",  # the program's last actual in this slot (program x channel x local weekday x hour)
    "ps_mean4",  # mean of its last 4 actuals in this slot
)
# Level features that linear models also get on the log scale (the multiplicative targets).
HISTORY_LEVELS: tuple[str, ...] = (
    "h_last",
    "h_mean3",
    "h_mean8",
    "h_mean_all",
    "h_ewm",
    "s_last",
    "s_mean4",
    "li_last",
    "ps_last",
    "ps_mean4",
)
HISTORY_WINDOW = 8
SLOT_WINDOW = 4
RUN_GAP_DAYS = 21.0
EWM_ALPHA = 0.5
_MINUTES_PER_DAY = 1440


def _masked_mean(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return _masked_mean_of(values, ~np.isnan(values))


def _masked_mean_of(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Mean of the known entries of each row (NaN for none); the caller silences 0/0."""
    count = known.sum(axis=1)
    total = np.where(known, values, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _mean_of(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


_EWM_WEIGHTS = (1.0 - EWM_ALPHA) ** np.arange(HISTORY_WINDOW, dtype="float64")
_SLOPE_X = -np.arange(HISTORY_WINDOW, dtype="float64")  # airing position, older = smaller


def history_from_windows(
    *,
    values: np.ndarray,
    count: np.ndarray,
    total: np.ndarray,
    days_since: np.ndarray,
    episode: np.ndarray,
    slot_values: np.ndarray,
    lead_in_last: np.ndarray,
    pair_values: np.ndarray,
) -> dict[str, np.ndarray]:
    """The history columns from windows of earlier actuals (most recent first, NaN = none).

    ``values``: (n, HISTORY_WINDOW) the program's last actuals; ``slot_values``: (n, SLOT_WINDOW) the
    slot's means on its latest earlier days; ``pair_values``: (n, SLOT_WINDOW) the program's last actuals
    in the row's slot; ``count`` / ``total``: how many actuals the program had
    before and their sum. The one formula behind training and serving.

    Serving calls it for a row or a few, where the number of numpy calls is the cost: the arrays the
    columns share (known entries, the zero-filled window, its sums) are made once, under one errstate.
    """
    values = np.asarray(values, dtype="float64").reshape(-1, HISTORY_WINDOW)
    pairs = np.asarray(pair_values, dtype="float64").reshape(-1, SLOT_WINDOW)
    slots = np.asarray(slot_values, dtype="float64").reshape(-1, SLOT_WINDOW)
    known = ~np.isnan(values)
    filled = np.where(known, values, 0.0)
    w = np.where(known, _EWM_WEIGHTS, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        w_sum = w.sum(axis=1)
        ewm = np.where(w_sum > 0, (w * filled).sum(axis=1) / w_sum, np.nan)
        # Slope of value on airing position (older = smaller x), over the known entries.
        n = known.sum(axis=1)
        n1 = np.maximum(n, 1)
        filled_sum = filled.sum(axis=1)
        xm = np.where(known, _SLOPE_X, 0.0).sum(axis=1) / n1
        ym = filled_sum / n1
        dx = np.where(known, _SLOPE_X - xm[:, None], 0.0)
        dy = np.where(known, values - ym[:, None], 0.0)
        sxx = (dx * dx).sum(axis=1)
        slope = np.where((n >= 2) & (sxx > 0), (dx * dy).sum(axis=1) / np.where(sxx > 0, sxx, 1.0), 0.0)
        count = np.asarray(count, dtype="float64")
        return {
            "h_last": values[:, 0].copy(),
            "h_mean3": _masked_mean_of(values[:, :3], known[:, :3]),
            "h_mean8": np.where(n > 0, filled_sum / n1, np.nan),
            "h_mean_all": np.where(count > 0, np.asarray(total, dtype="float64") / np.maximum(count, 1), np.nan),
            "h_ewm": ewm,
            "h_count": count,
            "h_days_since": np.asarray(days_since, dtype="float64"),
            "h_episode": np.asarray(episode, dtype="float64"),
            "h_slope": slope,
            "s_last": slots[:, 0].copy(),
            "s_mean4": _masked_mean_of(slots, ~np.isnan(slots)),
            "li_last": np.asarray(lead_in_last, dtype="float64"),
            "ps_last": pairs[:, 0].copy(),
            "ps_mean4": _masked_mean_of(pairs, ~np.isnan(pairs)),
        }


def local_minutes(start: pd.Series, channel: np.ndarray) -> np.ndarray:
    """Wall-clock minutes since 1970 (int64) in each row's channel time zone (``local_wall_clock``)."""
    return local_wall_clock(start, channel).astype("int64")


def utc_minutes(start: pd.Series) -> np.ndarray:
    return pd.to_datetime(start, utc=True).dt.tz_localize(None).to_numpy(dtype="datetime64[m]").astype("int64")


def slot_keys(channel: np.ndarray, local_min: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slot key "channel|weekday|hour", local day number) of each row."""
    day = local_min // _MINUTES_PER_DAY
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    hour = (local_min % _MINUTES_PER_DAY) // 60
    keys = np.char.add(
        np.char.add(np.char.add(np.asarray(channel).astype(str), "|"), weekday.astype(str)),
        np.char.add("|", hour.astype(str)),
    )
    return keys, day


def pair_keys(program_id: np.ndarray, slot: np.ndarray) -> np.ndarray:
    """The program x slot key "program@channel|weekday|hour" of each row (``slot_keys``' slot)."""
    return np.char.add(np.char.add(np.asarray(program_id, dtype="int64").astype(str), "@"), np.asarray(slot, dtype=str))


@dataclass
class _Observed:
    """The airings with an actual ``target``, sorted by (start, airing), in plain arrays."""

    program_id: np.ndarray
    utc_min: np.ndarray
    y: np.ndarray
    slot: np.ndarray
    day: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame, target: str) -> _Observed:
        y = frame[target].to_numpy(dtype="float64")
        keep = ~np.isnan(y)
        part = frame.loc[keep]
        utc = utc_minutes(part["start"])
        order = np.lexsort((np.arange(len(part)), utc))
        slot, day = slot_keys(part["channel"].to_numpy(), local_minutes(part["start"], part["channel"].to_numpy()))
        return cls(
            program_id=part["program_id"].to_numpy(dtype="int64")[order],
            utc_min=utc[order],
            y=y[keep][order],
            slot=slot[order],
            day=day[order],
        )


def _runs(pid: pd.Series, days_since: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(run number, episode index in the run) of each airing from the days since its program's previous one
    (NaN = none): a gap of more than ``RUN_GAP_DAYS`` starts a new run."""
    new_run = np.isnan(days_since) | (days_since > RUN_GAP_DAYS)
    run = pd.Series(new_run.astype("int64")).groupby(pid, sort=False).cumsum()
    episode = pd.Series(np.zeros(len(pid))).groupby([pid, run], sort=False).cumcount().to_numpy(dtype="float64")
    return run.to_numpy(dtype="int64"), episode


def _program_runs(obs: _Observed) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """Per observed airing: the group-by of values, its count so far, days since previous, episode index."""
    pid = pd.Series(obs.program_id)
    g = pd.Series(obs.y).groupby(pid, sort=False)
    count = g.cumcount().to_numpy(dtype="float64")
    previous = pd.Series(obs.utc_min).groupby(pid, sort=False).shift(1).to_numpy(dtype="float64")
    days_since = (obs.utc_min - previous) / _MINUTES_PER_DAY
    _, episode = _runs(pid, days_since)
    return g, count, days_since, episode


def _slot_days(obs: _Observed) -> pd.DataFrame:
    """One row per (slot, local day) with the mean actual of that slot on that day, sorted by day."""
    table = pd.DataFrame({"slot": obs.slot, "day": obs.day, "y": obs.y})
    return table.groupby(["slot", "day"], sort=True)["y"].mean().reset_index().sort_values(["day", "slot"])


def history_columns(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """The history columns of every row of ``frame`` from its earlier rows with an actual ``target``.

    ``frame``: raw columns and the target (e.g. ``airings_frame``); rows without an actual get features
    but give none. Vectorised group shifts; a row sees only rows of strictly earlier starts (slot
    features: strictly earlier local days; the lead-in: its program's latest actual before the start).
    """
    n = len(frame)
    if n == 0:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in HISTORY_COLUMNS}, index=frame.index)
    obs = _Observed.of(frame, target)
    rows_utc = utc_minutes(frame["start"])
    rows_slot, rows_day = slot_keys(
        frame["channel"].to_numpy(), local_minutes(frame["start"], frame["channel"].to_numpy())
    )
    rows_pid = frame["program_id"].to_numpy(dtype="int64")
    # The program windows: per observed airing, from the observed airings before it.
    g, count, _days_since, episode = _program_runs(obs)
    lags = np.column_stack([g.shift(k).to_numpy(dtype="float64") for k in range(1, HISTORY_WINDOW + 1)])
    # Each row takes the window of the latest observed airing of its program strictly before it ...
    table = pd.DataFrame({"pid": obs.program_id, "t": obs.utc_min, "pos": np.arange(len(obs.y))})
    left = pd.DataFrame({"pid": rows_pid, "t": rows_utc, "row": np.arange(n)}).sort_values("t", kind="stable")
    matched = pd.merge_asof(left, table, on="t", by="pid", allow_exact_matches=False, direction="backward")
    prev = matched.sort_values("row")["pos"].to_numpy(dtype="float64")
    has = ~np.isnan(prev)
    at = np.where(has, prev, 0).astype("int64")
    values = np.full((n, HISTORY_WINDOW), np.nan)
    row_count = np.zeros(n)
    row_total = np.zeros(n)
    row_days = np.full(n, np.nan)
    row_episode = np.zeros(n)
    if len(obs.y):
        # ... which is that airing's own value followed by its lags.
        window = np.column_stack([obs.y, lags[:, : HISTORY_WINDOW - 1]])
        values[has] = window[at[has]]
        row_count[has] = count[at[has]] + 1
        row_total[has] = g.cumsum().to_numpy(dtype="float64")[at[has]]
        row_days[has] = (rows_utc[has] - obs.utc_min[at[has]]) / _MINUTES_PER_DAY
        continues = has & (row_days <= RUN_GAP_DAYS)
        row_episode[continues] = episode[at[continues]] + 1
    # The slot windows: the slot's means on its latest days strictly before the row's local day.
    days = _slot_days(obs)
    sg = days.groupby("slot", sort=False)["y"]
    slot_lags = np.column_stack([days["y"].to_numpy()] + [sg.shift(k).to_numpy() for k in range(1, SLOT_WINDOW)])
    slot_left = pd.DataFrame({"slot": rows_slot, "day": rows_day, "row": np.arange(n)}).sort_values("day")
    slot_table = pd.DataFrame(
        {"slot": days["slot"].to_numpy(), "day": days["day"].to_numpy(), "pos": np.arange(len(days))}
    )
    slot_prev = (
        pd.merge_asof(slot_left, slot_table, on="day", by="slot", allow_exact_matches=False, direction="backward")
        .sort_values("row")["pos"]
        .to_numpy(dtype="float64")
    )
    slot_values = np.full((n, SLOT_WINDOW), np.nan)
    slot_has = ~np.isnan(slot_prev)
    if len(days):
        slot_values[slot_has] = slot_lags[slot_prev[slot_has].astype("int64")]
    # The lead-in program's latest actual before the row's start.
    lead = pd.DataFrame(
        {"pid": frame["lead_in_program_id"].to_numpy(dtype="int64"), "t": rows_utc, "row": np.arange(n)}
    ).sort_values("t", kind="stable")
    lead_prev = pd.merge_asof(lead, table, on="t", by="pid", allow_exact_matches=False, direction="backward")
    lead_pos = lead_prev.sort_values("row")["pos"].to_numpy(dtype="float64")
    lead_has = ~np.isnan(lead_pos)
    lead_last = np.full(n, np.nan)
    lead_last[lead_has] = obs.y[lead_pos[lead_has].astype("int64")]
    pair_values = _pair_windows(obs, pair_keys(rows_pid, rows_slot), rows_utc)
    cols = history_from_windows(
        values=values,
        count=row_count,
        total=row_total,
        days_since=row_days,
        episode=row_episode,
        slot_values=slot_values,
        lead_in_last=lead_last,
        pair_values=pair_values,
    )
    return pd.DataFrame(cols, index=frame.index)[list(HISTORY_COLUMNS)]


def _pair_windows(obs: _Observed, row_keys: np.ndarray, row_utc: np.ndarray) -> np.ndarray:
    """(n, SLOT_WINDOW) each row's program's last actuals in its slot from airings strictly before it."""
    n = len(row_keys)
    out = np.full((n, SLOT_WINDOW), np.nan)
    if not len(obs.y) or not n:
        return out
    keys = pair_keys(obs.program_id, obs.slot)
    g = pd.Series(obs.y).groupby(keys, sort=False)
    window = np.column_stack([obs.y] + [g.shift(k).to_numpy(dtype="float64") for k in range(1, SLOT_WINDOW)])
    table = pd.DataFrame({"key": keys, "t": obs.utc_min, "pos": np.arange(len(obs.y))})
    left = pd.DataFrame({"key": row_keys, "t": row_utc, "row": np.arange(n)}).sort_values("t", kind="stable")
    matched = pd.merge_asof(left, table, on="t", by="key", allow_exact_matches=False, direction="backward")
    prev = matched.sort_values("row")["pos"].to_numpy(dtype="float64")
    has = ~np.isnan(prev)
    out[has] = window[prev[has].astype("int64")]
    return out


def with_history(frame: pd.DataFrame, target: str, *, source: pd.DataFrame | None = None) -> pd.DataFrame:
    """``frame`` plus its history columns for ``target``, computed from ``source`` (default: ``frame``).

    With a ``source``, the rows of ``frame`` are placed among the source's airings (rows of ``frame``
    give no history themselves unless they are in ``source`` too).
    """
    if source is None:
        return pd.concat([frame, history_columns(frame, target)], axis=1)
    extra = frame.drop(columns=[c for c in frame.columns if c in TARGETS or c in HISTORY_COLUMNS])
    extra = extra.assign(**{target: np.nan})
    both = pd.concat([source[[*RAW_COLUMNS, target]], extra[[*RAW_COLUMNS, target]]], ignore_index=True)
    cols = history_columns(both, target).iloc[len(source) :]
    cols.index = frame.index
    return pd.concat([frame.drop(columns=[c for c in HISTORY_COLUMNS if c in frame.columns]), cols], axis=1)


def _older_sums(values: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Per entry of newest-first segments: its value plus every older one of its segment, summed oldest
    first (the order of training's cumulative sum, so both give the same bits)."""
    if not len(values):
        return np.zeros(0)
    oldest_first = pd.Series(values[::-1]).groupby(segment[::-1], sort=False).cumsum()
    return oldest_first.to_numpy(dtype="float64")[::-1].copy()


# Flat keys: segment * 2**36 + a newest-first rank of the time (2**36 minutes is ~130,000 years).
_KEY_SHIFT = np.int64(1) << np.int64(36)


def _splice(
    names: np.ndarray,
    ends: np.ndarray,
    times: np.ndarray,
    flats: list[np.ndarray],
    new_names: np.ndarray,
    new_times: np.ndarray,
    new_flats: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Flat segments (sorted by name, newest first) with new entries, each newer than every old entry of
    its segment, put at the front of it: (names, keys, segment ends, flat arrays). New entries keep their
    given order among equal times, as ``HistoryState.build``'s stable sort does."""
    merged = np.union1d(names, new_names)
    old_segment = np.searchsorted(merged, names)[np.repeat(np.arange(len(names)), np.diff(ends, prepend=0))]
    new_segment = np.searchsorted(merged, new_names)
    order = np.lexsort((-new_times, new_segment))
    at = np.searchsorted(old_segment, new_segment[order], side="left")
    segment = np.insert(old_segment.astype("int64"), at, new_segment[order])
    time = np.insert(np.asarray(times, dtype="int64"), at, np.asarray(new_times, dtype="int64")[order])
    keys = segment * _KEY_SHIFT + (_KEY_SHIFT - 1 - time)
    out = [np.insert(flat, at, extra[order]) for flat, extra in zip(flats, new_flats, strict=True)]
    return merged, keys, np.searchsorted(segment, np.arange(len(merged)), side="right"), out


_SLOTS_PER_CHANNEL = 7 * 24  # slot code: channel position * 168 + local weekday * 24 + local hour


@dataclass
class HistoryRows:
    """Stored airings as the integer columns ``HistoryState.from_rows`` builds from (no string per row).

    Slots and program x slot pairs are integer codes here; only their distinct names (a few per channel
    and program) are ever written out as the ``slot_keys`` / ``pair_keys`` strings the state is indexed by.
    """

    program_id: np.ndarray  # int64
    utc_min: np.ndarray  # int64, utc minutes since 1970
    slot: np.ndarray  # int32 slot code (``_SLOTS_PER_CHANNEL``) into ``channels``
    day: np.ndarray  # int32 local day number (``slot_keys``' day)
    channels: np.ndarray  # str: the channel codes the slot codes refer to

    @classmethod
    def of(cls, frame: pd.DataFrame) -> HistoryRows:
        """From a frame with program_id, channel (code) and start."""
        channels, channel_at = np.unique(frame["channel"].to_numpy().astype(str), return_inverse=True)
        return cls.from_arrays(
            program_id=frame["program_id"].to_numpy(dtype="int64"),
            channel_at=channel_at.reshape(-1),
            channels=channels,
            utc_min=utc_minutes(frame["start"]),
        )

    @classmethod
    def from_arrays(
        cls, *, program_id: np.ndarray, channel_at: np.ndarray, channels: np.ndarray, utc_min: np.ndarray
    ) -> HistoryRows:
        """``channel_at``: each row's position in ``channels`` (codes); local time per channel time zone."""
        channel_at = np.asarray(channel_at, dtype="int64")
        utc_min = np.asarray(utc_min, dtype="int64")
        local = np.empty(len(utc_min), dtype="int64")
        zones = np.array(channel_zone_names(channels), dtype=object)
        for zone in sorted(set(zones.tolist())):
            rows = np.flatnonzero(np.isin(channel_at, np.flatnonzero(zones == zone)))
            utc = pd.DatetimeIndex(utc_min[rows].astype("datetime64[m]")).tz_localize("UTC")
            local[rows] = utc.tz_convert(zone).tz_localize(None).to_numpy(dtype="datetime64[m]").astype("int64")
        day = local // _MINUTES_PER_DAY
        weekday = (day + 3) % 7  # as ``slot_keys``
        hour = (local % _MINUTES_PER_DAY) // 60
        del local
        return cls(
            program_id=np.asarray(program_id, dtype="int64"),
            utc_min=utc_min,
            slot=(channel_at * _SLOTS_PER_CHANNEL + weekday * 24 + hour).astype("int32"),
            day=day.astype("int32"),
            channels=np.asarray(channels, dtype=str),
        )

    def slot_name(self, code: int) -> str:
        """The ``slot_keys`` string of a slot code ("channel|weekday|hour")."""
        channel, rest = divmod(int(code), _SLOTS_PER_CHANNEL)
        weekday, hour = divmod(rest, 24)
        return f"{self.channels[channel]}|{weekday}|{hour}"


def _ranked(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(the names sorted, each given name's position among them)."""
    ordered = np.array(names, dtype=str) if names else np.array([], dtype=str)
    order = np.argsort(ordered, kind="stable")
    rank = np.empty(len(order), dtype="int64")
    rank[order] = np.arange(len(order))
    return ordered[order], rank


def _episodes(p_at: np.ndarray, utc_min: np.ndarray) -> np.ndarray:
    """Each airing's episode index in its program's run (rows in time order; ``_runs``' rule, vectorised)."""
    n = len(p_at)
    episode = np.zeros(n, dtype="float64")
    if not n:
        return episode
    asc = np.argsort(p_at, kind="stable")  # each program's airings in time order
    seg, t = p_at[asc], utc_min[asc]
    days_since = np.full(n, np.nan)
    days_since[1:] = (t[1:] - t[:-1]).astype("float64") / _MINUTES_PER_DAY
    first = np.ones(n, dtype=bool)
    first[1:] = seg[1:] != seg[:-1]
    new_run = first | np.isnan(days_since) | (days_since > RUN_GAP_DAYS)
    position = np.arange(n)
    episode[asc] = position - np.maximum.accumulate(np.where(new_run, position, 0))
    return episode


@dataclass
class HistoryState:
    """The serving side of the history features for one target: every actual of every program and every
    slot-day mean, in flat arrays sorted by (program, newest first) / (slot, newest first).

    A query finds, with one ``searchsorted``, the entries strictly before its start (local day for
    slots) and takes the next ``HISTORY_WINDOW`` of them: exactly the windows training builds, for a
    slot at any time. A slot further ahead than the next airing rolls forward from the last known
    actuals. Built once per data version; a lookup is a few numpy gathers.
    """

    target: str
    program_index: dict[int, int]
    program_keys: np.ndarray  # program position * 2**36 + (newest-first) time rank, sorted
    program_end: np.ndarray  # (P,) end of each program's segment in the flat arrays
    values: np.ndarray  # actuals, flat
    older_sum: np.ndarray  # per entry: the sum of it and its program's older actuals (added oldest first)
    utc_min: np.ndarray  # their starts (utc minutes)
    episode: np.ndarray  # their episode index in their run
    slot_index: dict[str, int]
    slot_keys: np.ndarray
    slot_end: np.ndarray
    slot_values: np.ndarray  # slot-day means, flat
    through: np.datetime64 | None  # the latest start with an actual
    # program x slot (``pair_keys``): every actual, flat, sorted by (pair, newest first) like the programs
    pair_index: dict[str, int]
    pair_keys: np.ndarray
    pair_end: np.ndarray
    pair_values: np.ndarray

    @classmethod
    def build(cls, frame: pd.DataFrame, target: str) -> HistoryState:
        """From stored airings (at least program_id, channel, start and ``target``)."""
        return cls.from_rows(HistoryRows.of(frame), frame[target].to_numpy(dtype="float64"), target)

    @classmethod
    def from_rows(cls, rows: HistoryRows, y: np.ndarray, target: str) -> HistoryState:
        """From stored airings' integer columns and their actuals ``y`` (NaN = none).

        Sorted once by start (ties in the given order), then each index (program, slot, program x
        slot) is one stable sort of an integer key; names are formatted only for the distinct slots
        and pairs. Memory is a few int64 columns of the rows with an actual.
        """
        y = np.asarray(y, dtype="float64")
        keep = np.flatnonzero(~np.isnan(y))
        sel = keep[np.argsort(rows.utc_min[keep], kind="stable")]
        del keep
        utc, values = rows.utc_min[sel], y[sel]
        pids, p_at = np.unique(rows.program_id[sel], return_inverse=True)
        p_at = p_at.reshape(-1)
        slot, day = rows.slot[sel], rows.day[sel]
        del sel
        # Each stage keeps its outputs and lets go of its intermediates before the next (peak memory).
        episode = _episodes(p_at, utc)
        program_keys = p_at * _KEY_SHIFT + (_KEY_SHIFT - 1 - utc)
        order = np.argsort(program_keys, kind="stable")
        program_keys = program_keys[order]
        program_values = values[order]
        older_sum = _older_sums(program_values, p_at[order])
        program_utc, episode = utc[order], episode[order]
        del order
        # The slot-day means (a mean per slot and local day, the rows summed in time order).
        first_day = int(day.min()) if len(day) else 0
        span = int(day.max()) - first_day + 1 if len(day) else 1
        means = pd.Series(values).groupby(slot.astype("int64") * span + (day - first_day), sort=True).mean()
        del day
        slot_day = np.asarray(means.index.to_numpy(), dtype="int64")
        s_code, s_day = slot_day // span, slot_day % span + first_day
        slot_codes, s_code_at = np.unique(s_code, return_inverse=True)
        name_of = {c: rows.slot_name(c) for c in slot_codes.tolist()}
        slots, slot_rank = _ranked([name_of[c] for c in slot_codes.tolist()])
        s_at = slot_rank[s_code_at.reshape(-1)]
        s_order = np.lexsort((-s_day, s_at))
        # The program x slot pairs: a code per (program, slot), named once per distinct pair.
        n_codes = max(len(rows.channels), 1) * _SLOTS_PER_CHANNEL
        pair_codes, q_code_at = np.unique(p_at * n_codes + slot, return_inverse=True)
        del slot, p_at
        pid_list = pids.tolist()
        names = [f"{pid_list[c // n_codes]}@{name_of[c % n_codes]}" for c in pair_codes.tolist()]
        pairs, pair_rank = _ranked(names)
        del names, pair_codes
        q_keys = pair_rank[q_code_at.reshape(-1)] * _KEY_SHIFT + (_KEY_SHIFT - 1 - utc)
        del q_code_at
        q_order = np.argsort(q_keys, kind="stable")
        q_keys = q_keys[q_order]
        pair_values = values[q_order]
        del q_order
        # A segment's entries have keys in [i * 2**36, (i + 1) * 2**36): its end is the first key past that.
        return cls(
            target=target,
            program_index={int(p): i for i, p in enumerate(pid_list)},
            program_keys=program_keys,
            program_end=np.searchsorted(program_keys, (np.arange(len(pids)) + 1) * _KEY_SHIFT, side="left"),
            values=program_values,
            older_sum=older_sum,
            utc_min=program_utc,
            episode=episode,
            slot_index={str(v): i for i, v in enumerate(slots.tolist())},
            slot_keys=s_at[s_order] * _KEY_SHIFT + (_KEY_SHIFT - 1 - s_day[s_order]),
            slot_end=np.searchsorted(s_at[s_order], np.arange(len(slots)), side="right"),
            slot_values=means.to_numpy(dtype="float64")[s_order],
            through=np.datetime64(int(utc.max()), "m") if len(values) else None,
            pair_index={str(v): i for i, v in enumerate(pairs.tolist())},
            pair_keys=q_keys,
            pair_end=np.searchsorted(q_keys, (np.arange(len(pairs)) + 1) * _KEY_SHIFT, side="left"),
            pair_values=pair_values,
        )

    def appended(self, frame: pd.DataFrame) -> HistoryState | None:
        """This state with ``frame``'s actuals folded in, or None when they cannot be (rebuild instead).

        ``frame``: every airing an import created or updated (program_id, channel, start, the target;
        rows without an actual too). They fold in when all start after ``through`` and no slot-day
        they fall on is already held (the usual daily import of later airings): each program's and
        slot's new entries go at the front of its segment, the new entries' episode continues the
        program's run, and the running sums of the programs touched are summed again as ``build``
        sums them, so the state is the one ``build`` makes from old + new airings.
        """
        if not len(frame):
            return self
        if self.through is not None and int(utc_minutes(frame["start"]).min()) <= int(self.through.astype("int64")):
            return None  # an earlier airing was written (an edit): its windows are not at the front
        new = _Observed.of(frame, self.target)
        if not len(new.y):
            return self
        slots = self._slots_appended(new)
        if slots is None:
            return None
        return self._programs_appended(new, {**slots, **self._pairs_appended(new)})

    def _pairs_appended(self, new: _Observed) -> dict[str, Any]:
        """The program x slot entries with ``new``'s actuals at the front of their segments (all newer)."""
        old_names = np.array(list(self.pair_index), dtype=str)
        old_times = _KEY_SHIFT - 1 - self.pair_keys % _KEY_SHIFT
        merged, keys, ends, (values,) = _splice(
            old_names,
            self.pair_end,
            old_times,
            [self.pair_values],
            pair_keys(new.program_id, new.slot),
            new.utc_min,
            [new.y],
        )
        return {
            "pair_index": {str(v): i for i, v in enumerate(merged.tolist())},
            "pair_keys": keys,
            "pair_end": ends,
            "pair_values": values,
        }

    @staticmethod
    def _newest(index: dict[Any, int], ends: np.ndarray, names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(has an old segment, flat position of its newest entry) of each name."""
        at = np.array([index.get(n, -1) for n in names.tolist()], dtype="int64")
        has = at >= 0
        newest = np.where(has & (at > 0), ends[np.maximum(at - 1, 0)], 0) if len(ends) else np.zeros(len(at), "int64")
        return has, newest

    def _slots_appended(self, new: _Observed) -> dict[str, Any] | None:
        days = _slot_days(new)
        names = days["slot"].to_numpy().astype(str)
        day = days["day"].to_numpy(dtype="int64")
        has, newest = self._newest(self.slot_index, self.slot_end, names)
        if len(self.slot_keys):
            old_day = _KEY_SHIFT - 1 - self.slot_keys % _KEY_SHIFT
            if bool((has & (day <= old_day[newest])).any()):
                return None  # a slot-day the state holds: its mean would change
        old_names = np.array(list(self.slot_index), dtype=str)
        old_days = _KEY_SHIFT - 1 - self.slot_keys % _KEY_SHIFT
        merged, keys, ends, (values,) = _splice(
            old_names, self.slot_end, old_days, [self.slot_values], names, day, [days["y"].to_numpy(dtype="float64")]
        )
        return {
            "slot_index": {str(v): i for i, v in enumerate(merged.tolist())},
            "slot_keys": keys,
            "slot_end": ends,
            "slot_values": values,
        }

    def _programs_appended(self, new: _Observed, slots: dict[str, Any]) -> HistoryState:
        has, newest = self._newest(self.program_index, self.program_end, new.program_id)
        seed_utc = np.where(has, self.utc_min[newest] if len(self.utc_min) else 0, 0).astype("float64")
        seed_episode = np.where(has, self.episode[newest] if len(self.episode) else 0.0, 0.0)
        pid = pd.Series(new.program_id)
        previous = pd.Series(new.utc_min).groupby(pid, sort=False).shift(1).to_numpy(dtype="float64")
        previous = np.where(np.isnan(previous) & has, seed_utc, previous)
        run, episode = _runs(pid, (new.utc_min - previous) / _MINUTES_PER_DAY)
        episode = episode + np.where(has & (run == 0), seed_episode + 1.0, 0.0)  # the old run goes on
        old_names = np.fromiter(self.program_index, dtype="int64", count=len(self.program_index))
        merged, keys, ends, (values, utc, episodes, older) = _splice(
            old_names,
            self.program_end,
            self.utc_min,
            [self.values, self.utc_min, self.episode, self.older_sum],
            new.program_id,
            new.utc_min,
            [new.y, new.utc_min, episode, np.zeros(len(new.y))],
        )
        segment = keys // _KEY_SHIFT
        touched = np.isin(segment, np.searchsorted(merged, np.unique(new.program_id)))
        older[touched] = _older_sums(values[touched], segment[touched])
        return HistoryState(
            target=self.target,
            program_index={int(p): i for i, p in enumerate(merged.tolist())},
            program_keys=keys,
            program_end=ends,
            values=values,
            older_sum=older,
            utc_min=utc,
            episode=episodes,
            through=np.datetime64(int(utc.max()), "m"),
            **slots,
        )

    @staticmethod
    def _windows(
        keys: np.ndarray, ends: np.ndarray, flat: np.ndarray, at: np.ndarray, when: np.ndarray, width: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(window of ``width`` entries strictly before ``when``, newest first; first position; segment end)."""
        n = len(at)
        known = at >= 0
        if not len(flat):
            return np.full((n, width), np.nan), np.zeros(n, dtype="int64"), np.zeros(n, dtype="int64")
        safe = np.where(known, at, 0)
        # Entries at or after ``when`` have a rank key <= (2**36 - 1 - when): skip past them.
        pos = np.searchsorted(keys, safe * _KEY_SHIFT + (_KEY_SHIFT - 1 - when), side="right")
        end = np.where(known, ends[safe], 0)
        cols = pos[:, None] + np.arange(width)
        inside = known[:, None] & (cols < end[:, None])
        window = np.where(inside, flat[np.minimum(cols, len(flat) - 1)], np.nan)
        return window, pos, end

    def features(
        self,
        *,
        program_id: np.ndarray,
        channel: np.ndarray,
        local_min: np.ndarray,
        utc_min: np.ndarray,
        lead_in_program_id: np.ndarray,
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(history columns, the start (utc minutes) of the latest actual each row's features used, -1 = none)."""
        utc_min = np.asarray(utc_min, dtype="int64")
        # Plain ndarray views of the (possibly memory-mapped) arrays: indexing a np.memmap builds a memmap
        # per result, several times the cost of the gather itself for a few rows. Same data, no copy.
        flat = np.asarray
        p_keys, p_end, p_values = flat(self.program_keys), flat(self.program_end), flat(self.values)
        at = np.array([self.program_index.get(int(p), -1) for p in program_id], dtype="int64")
        values, pos, end = self._windows(p_keys, p_end, p_values, at, utc_min, HISTORY_WINDOW)
        has = ~np.isnan(values[:, 0])
        first = np.minimum(pos, max(len(p_values) - 1, 0))
        prev_time = np.where(has, flat(self.utc_min)[first] if len(p_values) else 0, 0)
        days_since = np.where(has, (utc_min - prev_time) / _MINUTES_PER_DAY, np.nan)
        prev_episode = flat(self.episode)[first] if len(p_values) else np.zeros(len(at))
        episode = np.where(has & (days_since <= RUN_GAP_DAYS), prev_episode + 1, 0.0)
        keys, day = slot_keys(np.asarray(channel), np.asarray(local_min, dtype="int64"))
        s_at = np.array([self.slot_index.get(str(k), -1) for k in keys], dtype="int64")
        slot_values, _, _ = self._windows(
            flat(self.slot_keys), flat(self.slot_end), flat(self.slot_values), s_at, day, SLOT_WINDOW
        )
        lead_at = np.array([self.program_index.get(int(p), -1) for p in lead_in_program_id], dtype="int64")
        lead, _, _ = self._windows(p_keys, p_end, p_values, lead_at, utc_min, 1)
        # The keys ``pair_keys`` makes, built in Python: a few rows per request, where np.char costs more.
        pair_index = self.pair_index
        q_at = np.array(
            [
                pair_index.get(f"{p}@{k}", -1)
                for p, k in zip(np.asarray(program_id, dtype="int64").tolist(), keys.tolist(), strict=True)
            ],
            dtype="int64",
        )
        pairs, _, _ = self._windows(
            flat(self.pair_keys), flat(self.pair_end), flat(self.pair_values), q_at, utc_min, SLOT_WINDOW
        )
        total = np.where(has, flat(self.older_sum)[first] if len(p_values) else 0.0, 0.0)
        columns = history_from_windows(
            values=values,
            count=np.where(has, end - pos, 0).astype("float64"),
            total=total,
            days_since=days_since,
            episode=episode,
            slot_values=slot_values,
            lead_in_last=lead[:, 0],
            pair_values=pairs,
        )
        return columns, np.where(has, prev_time, -1)


# --- The fitted feature encoder (one step, numpy only, so serving one row costs well under a ms) --------

# Identity-like columns: target-encoded with smoothing, cross-fitted on the training split only.
TARGET_ENCODED = ("program_id", "lead_in_program_id", "genre_daypart", "channel_hour")
CATEGORICAL = ("channel", "genre", "content_rating", "daypart")
ONE_HOT_EXTRA = ("genre_daypart",)  # linear models also get the genre x daypart cell as indicators
NUMERIC = (
    "hour",
    "hour_sin",
    "hour_cos",
    "weekday",
    "is_weekend",
    "month",
    "day_of_year",
    "is_holiday",
    "trend_days",
    "duration_minutes",
    "is_live",
    "is_premiere",
    "is_finale",
    "has_lead_in",
)
# The feature set without these is the other one a model may choose on its validation folds
# (registry.training.FEATURE_SETS): a trend lets a correction fit one period, which may not carry on.
TREND_COLUMNS = ("trend_days",)
DERIVED_COLUMNS: tuple[str, ...] = (*TARGET_ENCODED, *CATEGORICAL, *NUMERIC)
_DAYPART_OF_HOUR = np.array([daypart_for_hour(h) for h in range(24)], dtype=str)
_EPOCH_DAYS_OF_TREND = int(np.datetime64("2020-01-01", "D").astype("int64"))
_HOLIDAY_YEARS = range(2000, 2051)


def _holiday_days() -> np.ndarray:
    return np.array(sorted(d for y in _HOLIDAY_YEARS for d in holidays(y)), dtype="datetime64[D]")


_HOLIDAYS = _holiday_days()  # sorted


def _is_holiday(days: np.ndarray) -> np.ndarray:
    """``np.isin(days, _HOLIDAYS)`` by binary search: same answer, ~10x faster for the one-row case."""
    at = np.minimum(np.searchsorted(_HOLIDAYS, days), len(_HOLIDAYS) - 1)
    holiday: np.ndarray = _HOLIDAYS[at] == days
    return holiday


def derive(raw: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every derived column of the raw frame as numpy arrays (calendar from ``start`` in local time)."""
    return derive_arrays(
        local=local_wall_clock(raw["start"], raw["channel"].to_numpy()),
        program_id=raw["program_id"].to_numpy(),
        lead_in_program_id=raw["lead_in_program_id"].to_numpy(),
        channel=raw["channel"].to_numpy(),
        genre=raw["genre"].to_numpy(),
        content_rating=raw["content_rating"].fillna("").to_numpy(),
        duration_minutes=pd.to_numeric(raw["duration_minutes"], errors="coerce").to_numpy(dtype="float64"),
        is_live=raw["is_live"].to_numpy(),
        is_premiere=raw["is_premiere"].to_numpy(),
        is_finale=raw["is_finale"].to_numpy(),
        history={c: raw[c].to_numpy(dtype="float64") for c in HISTORY_COLUMNS if c in raw.columns},
    )


def derive_arrays(
    *,
    local: np.ndarray,
    program_id: np.ndarray,
    lead_in_program_id: np.ndarray,
    channel: np.ndarray,
    genre: np.ndarray,
    content_rating: np.ndarray,
    duration_minutes: np.ndarray,
    is_live: np.ndarray,
    is_premiere: np.ndarray,
    is_finale: np.ndarray,
    history: Mapping[str, np.ndarray] | None = None,
    log_levels: bool = True,
) -> dict[str, np.ndarray]:
    """The derived columns from raw column arrays; ``local`` is the start as naive local datetime64[m].

    ``history``: the history columns (``HISTORY_COLUMNS``), when the model uses them; they pass through,
    and their levels also come as ``log_<name>`` (log1p, for the linear models; ``log_levels=False``
    leaves them out for an encoder that reads none: serving a tree model, they were half the cost).

    The one implementation behind ``derive`` (pandas frames, training) and the serving fast path
    (plain rows), so the two can never compute a feature differently.
    """
    days = local.astype("datetime64[D]")
    minutes = (local - days).astype("int64")
    hour_int = minutes // 60
    hour = minutes / 60.0
    day_number = days.astype("int64")
    weekday = ((day_number + 3) % 7).astype("float64")  # 1970-01-01 was a Thursday (Monday = 0)
    month = (days.astype("datetime64[M]").astype("int64") % 12 + 1).astype("float64")
    day_of_year = (days - days.astype("datetime64[Y]")).astype("int64") + 1.0
    genre = genre.astype(str)
    channel = channel.astype(str)
    daypart = _DAYPART_OF_HOUR[hour_int]
    lead_in = lead_in_program_id.astype("int64")
    out = {
        "program_id": program_id.astype("int64").astype(str),
        "lead_in_program_id": lead_in.astype(str),
        "genre_daypart": np.char.add(np.char.add(genre, "|"), daypart),
        "channel_hour": np.char.add(np.char.add(channel, "|"), hour_int.astype(str)),
        "channel": channel,
        "genre": genre,
        "content_rating": content_rating.astype(str),
        "daypart": daypart,
        "hour": hour,
        "hour_sin": np.sin(2 * np.pi * hour / 24.0),
        "hour_cos": np.cos(2 * np.pi * hour / 24.0),
        "weekday": weekday,
        "is_weekend": (weekday >= 5).astype("float64"),
        "month": month,
        "day_of_year": day_of_year,
        "is_holiday": _is_holiday(days).astype("float64"),
        "trend_days": (day_number - _EPOCH_DAYS_OF_TREND) + minutes / 1440.0,
        "duration_minutes": duration_minutes.astype("float64"),
        "is_live": is_live.astype("float64"),
        "is_premiere": is_premiere.astype("float64"),
        "is_finale": is_finale.astype("float64"),
        "has_lead_in": (lead_in != NO_LEAD_IN).astype("float64"),
    }
    for name, values in (history or {}).items():
        out[name] = np.asarray(values, dtype="float64")
        if log_levels and name in HISTORY_LEVELS:
            out[f"log_{name}"] = np.log1p(np.clip(out[name], 0.0, None))
    return out


def _lookup(categories: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in the sorted ``categories``; -1 when unknown."""
    if len(categories) == 0:
        return np.full(len(values), -1, dtype="int64")
    pos = np.searchsorted(categories, values)
    pos = np.minimum(pos, len(categories) - 1)
    return np.where(categories[pos] == values, pos, -1)


def _smoothed_means(keys: np.ndarray, y: np.ndarray, smoothing: float, prior: float) -> tuple[np.ndarray, np.ndarray]:
    categories, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=y, minlength=len(categories))
    counts = np.bincount(inverse, minlength=len(categories))
    return categories, (sums + smoothing * prior) / (counts + smoothing)


def _earlier_means(keys: np.ndarray, y: np.ndarray, smoothing: float, prior: float) -> np.ndarray:
    """Per row (rows in time order): the smoothed mean of ``y`` over the earlier rows with its key."""
    n = len(y)
    _, inverse = np.unique(keys, return_inverse=True)
    by_key = np.argsort(inverse, kind="stable")  # grouped by key, time order kept inside each group
    group = inverse[by_key]
    values = y[by_key]
    before = np.cumsum(values) - values  # sum of all earlier positions
    first = np.r_[0, np.flatnonzero(np.diff(group)) + 1]  # where each key's rows begin
    start = first[np.searchsorted(first, np.arange(n), side="right") - 1]
    sums = before - before[start]
    counts = np.arange(n) - start
    out = np.empty(n)
    out[by_key] = (sums + smoothing * prior) / (counts + smoothing)
    return out


class RawEncoder(TransformerMixin, BaseEstimator):
    """Raw frame -> float matrix. ``kind="tree"``: target encodings, ordinal codes, numbers.
    ``kind="linear"``: target encodings, one-hot indicators (incl. genre x daypart), numbers.

    Target encodings are smoothed means (``smoothing`` pseudo-rows of the prior). ``fit_transform`` returns
    time-ordered encodings: each training row's is the smoothed mean of the rows of its category that
    start before it (``_earlier_means``), so a model never sees a row's own target, nor a later one,
    through its encoding: the same as serving, where a row's encoding comes from the (earlier) training
    rows only. ``transform`` uses the encodings fitted on all rows given to ``fit``, i.e. the training split.
    (``cv`` and ``seed`` are kept for stored artifacts and no longer change anything.)
    """

    def __init__(
        self, kind: str = "tree", smoothing: float = 10.0, cv: int = 5, seed: int = 0, trend: bool = True
    ) -> None:
        self.kind = kind
        self.smoothing = smoothing
        self.cv = cv
        self.seed = seed
        self.trend = trend

    def fit(self, X: pd.DataFrame, y: Any = None) -> RawEncoder:  # noqa: N803 - scikit-learn's signature
        self._fit(derive(X), np.asarray(y, dtype="float64"))
        return self

    def _fit(self, cols: dict[str, np.ndarray], y: np.ndarray) -> None:
        if self.kind not in ("tree", "linear"):
            raise ValueError(f"unknown encoder kind {self.kind!r}")
        self.prior_ = float(np.mean(y)) if len(y) else 0.0
        self.te_categories_: dict[str, np.ndarray] = {}
        self.te_values_: dict[str, np.ndarray] = {}
        for name in TARGET_ENCODED:
            cats, values = _smoothed_means(cols[name], y, self.smoothing, self.prior_)
            self.te_categories_[name], self.te_values_[name] = cats, values
        indicator_columns = CATEGORICAL if self.kind == "tree" else (*CATEGORICAL, *ONE_HOT_EXTRA)
        self.categories_: dict[str, np.ndarray] = {name: np.unique(cols[name]) for name in indicator_columns}
        history = [name for name in HISTORY_COLUMNS if name in cols]
        if self.kind == "linear":
            history += [f"log_{name}" for name in HISTORY_LEVELS if name in cols]
        plain = NUMERIC if self.trend else tuple(c for c in NUMERIC if c not in TREND_COLUMNS)
        self.numeric_ = (*plain, *history)
        numeric = np.column_stack([cols[name] for name in self.numeric_])
        with warnings.catch_warnings():  # a history column may have no value yet in a tiny split
            warnings.simplefilter("ignore", category=RuntimeWarning)
            medians = np.nanmedian(numeric, axis=0) if len(numeric) else np.zeros(len(self.numeric_))
        self.medians_ = np.where(np.isnan(medians), 0.0, medians)
        names = [f"te:{n}" for n in TARGET_ENCODED]
        if self.kind == "tree":
            names += [f"code:{n}" for n in CATEGORICAL]
        else:
            names += [f"onehot:{n}={c}" for n in indicator_columns for c in self.categories_[n]]
        names += [f"num:{n}" for n in self.numeric_]
        self.feature_names_out_ = np.array(names, dtype=str)

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **fit_params: Any) -> np.ndarray:  # noqa: N803
        cols = derive(X)
        target = np.asarray(y, dtype="float64")
        self._fit(cols, target)
        out = self._transform(cols)
        # Random folds would give an early row an encoding from later rows of its program: a level the
        # model can never have when it forecasts, so it learned to trust the encoding too much.
        order = np.argsort(pd.to_datetime(X["start"], utc=True).to_numpy(), kind="stable")
        for i, name in enumerate(TARGET_ENCODED):
            out[order, i] = _earlier_means(cols[name][order], target[order], self.smoothing, self.prior_)
        return out

    def transform(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        return self._transform(derive(X))

    def _transform(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        n = len(cols["hour"])
        blocks: list[np.ndarray] = []
        te = np.empty((n, len(TARGET_ENCODED)))
        for i, name in enumerate(TARGET_ENCODED):
            pos = _lookup(self.te_categories_[name], cols[name])
            te[:, i] = np.where(pos >= 0, self.te_values_[name][np.maximum(pos, 0)], self.prior_)
        blocks.append(te)
        if self.kind == "tree":
            codes = np.column_stack([_lookup(self.categories_[name], cols[name]) for name in CATEGORICAL])
            blocks.append(codes.astype("float64"))
        else:
            for name, cats in self.categories_.items():
                pos = _lookup(cats, cols[name])
                onehot = np.zeros((n, len(cats)))
                known = pos >= 0
                onehot[np.flatnonzero(known), pos[known]] = 1.0
                blocks.append(onehot)
        numeric = np.column_stack([cols[name] for name in self.numeric_])
        blocks.append(np.where(np.isnan(numeric), self.medians_, numeric))
        return np.hstack(blocks)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.feature_names_out_


def build_preprocessor(*, kind: str, seed: int, trend: bool = True) -> Pipeline:
    """The feature pipeline: ``kind="tree"`` (codes, raw scale) or ``"linear"`` (one-hot, standardised);
    ``trend=False`` leaves out ``TREND_COLUMNS``."""
    encoder = RawEncoder(kind=kind, seed=seed, trend=trend)
    if kind == "tree":
        return Pipeline([("encode", encoder)])
    if kind == "linear":
        return Pipeline([("encode", encoder), ("scale", StandardScaler())])
    raise ValueError(f"unknown preprocessor kind {kind!r}")


def source_feature(name: str) -> str:
    """Map an encoder output column (``onehot:genre=drama``, ``te:program_id``) to its derived feature."""
    _, _, rest = name.partition(":")
    feature = rest.split("=", 1)[0] if rest else name
    return feature.removeprefix("log_")
