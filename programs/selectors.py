"""Reads of broadcast data: program lists and details, top programs, trends.

Pages, the API, the chat tools and exports all call these, so each number has one definition.
"""

from __future__ import annotations

import threading
import time as clock
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from django.db.models import Avg, Count, DateField, F, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, NullIf, Trunc
from django.utils import timezone

from bms.errors import ApplicationError, NotFoundError
from bms.versions import newest, versions_read
from programs.models import (
    SUMMARY_ORDERINGS,
    TARGETS,
    Airing,
    Channel,
    ChannelPeriodStats,
    DataVersion,
    Genre,
    GenrePeriodStats,
    Period,
    Program,
    ProgramPeriodStats,
    ProgramStats,
    SegmentPeriodStats,
    summary_order,
)

# Ordering keys the list accepts (a leading "-" reverses). Values are the queryset expressions.
PROGRAM_ORDERINGS: dict[str, str] = {
    "title": "title",
    "external_id": "external_id",
    "genre": "genre",
    "channel": "channel__code",
    "duration": "duration_minutes",
    "airing_count": "airing_count",  # the summary's (SUMMARY_ORDERINGS)
    "last_airing": "last_airing",
    **{f"avg_{t}": f"avg_{t}" for t in TARGETS},
}
# A relative change smaller than this (in percent) is reported as "flat".
TREND_FLAT_THRESHOLD_PCT = 1.0
RECENT_AIRINGS = 20


# The version of the broadcast data: the newest DataVersion id (every import, generator run and edit adds one).
DATA_VERSION = newest(DataVersion)


def data_version_current() -> int:
    """The latest data version number (0 when nothing was ever loaded)."""
    return versions_read(DATA_VERSION)[0]


def data_version_stamp(version_id: int) -> str | None:
    """``version_id`` and the instant it was recorded ("12-1733212800123456"): names one state of the data
    even across databases and recreated ones (where ids start again); None when the version does not exist."""
    created = DataVersion.objects.filter(pk=version_id).values_list("created_at", flat=True).first()
    return None if created is None else f"{version_id}-{int(created.timestamp() * 1_000_000)}"


def data_version_follows(*, previous: int, version: int) -> bool:
    """Whether ``version`` is the next data version after ``previous`` (no change recorded in between)."""
    return previous < version and not DataVersion.objects.filter(pk__gt=previous, pk__lt=version).exists()


def airings_total() -> int:
    """How many airings there are: the sum of the per-program summaries (no count over airings)."""
    return int(ProgramStats.objects.aggregate(total=Sum("airing_count"))["total"] or 0)


# Channel time zones change only when a channel is created or edited: each process keeps the map for
# CHANNEL_ZONES_TTL_SECONDS and reloads it at once when asked for a channel it does not know.
CHANNEL_ZONES_TTL_SECONDS = 60.0
_zones_lock = threading.Lock()
_zones: tuple[float, dict[str, str]] = (float("-inf"), {})


def channel_time_zones(*, codes: Iterable[str] = ()) -> dict[str, str]:
    """``{channel code: IANA time zone}`` of every channel (the features' local time reads it per row)."""
    global _zones
    loaded_at, zones = _zones
    now = clock.monotonic()
    if now - loaded_at > CHANNEL_ZONES_TTL_SECONDS or any(c not in zones for c in codes):
        zones = dict(Channel.objects.values_list("code", "time_zone"))
        with _zones_lock:
            _zones = (now, zones)
    return zones


def channel_time_zones_forget() -> None:
    """Drop this process's map (after channels were created or edited here)."""
    global _zones
    with _zones_lock:
        _zones = (float("-inf"), {})


def _check_target(target: str) -> str:
    if target not in TARGETS:
        raise ApplicationError(
            f"Unknown target {target!r}; use one of {', '.join(TARGETS)}.",
            details={"target": list(TARGETS)},
            code="invalid_target",
        )
    return target


def _check_genre(genre: str) -> str:
    if genre not in Genre.values:
        raise ApplicationError(f"Unknown genre {genre!r}.", details={"genre": list(Genre.values)}, code="invalid_genre")
    return genre


def _start_of(day: date | datetime) -> datetime:
    """A date means local midnight; an aware datetime is taken as is."""
    if isinstance(day, datetime):
        return day if timezone.is_aware(day) else timezone.make_aware(day)
    return timezone.make_aware(datetime.combine(day, time.min))


def _end_of(day: date | datetime) -> datetime:
    """Exclusive upper bound: a date ``end`` includes that whole local day."""
    if isinstance(day, datetime):
        return day if timezone.is_aware(day) else timezone.make_aware(day)
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def program_list(
    *,
    search: str | None = None,
    channel: str | None = None,
    genre: str | None = None,
    ordering: str | None = None,
) -> QuerySet[Program]:
    """Programs with their channel and per-program aggregates, in one query (no N+1, no airing read).

    Each row carries ``airing_count``, ``last_airing`` and ``avg_<target>`` (None without data).
    ``channel`` is a channel code; ``search`` matches title or external id (case-insensitive).
    """
    qs = Program.objects.select_related("channel")
    if channel:
        qs = qs.filter(channel__code=channel)
    if genre:
        qs = qs.filter(genre=_check_genre(genre))
    if search:
        qs = qs.filter(Q(title__icontains=search) | Q(external_id__icontains=search))
    # The maintained per-program summary (programs.aggregates), one LEFT JOIN: no airing is read.
    qs = qs.annotate(
        airing_count=Coalesce(F("stats__airing_count"), 0),
        last_airing=F("stats__last_airing"),
        **{f"avg_{t}": F(f"stats__{t}_sum") / NullIf(F(f"stats__{t}_count"), 0) for t in TARGETS},
    )
    key = ordering or "title"
    name = key.removeprefix("-")
    if name not in PROGRAM_ORDERINGS:
        raise ApplicationError(
            f"Unknown ordering {key!r}.",
            details={"ordering": sorted(PROGRAM_ORDERINGS)},
            code="invalid_ordering",
        )
    descending = key.startswith("-")
    if name in SUMMARY_ORDERINGS and not (search or channel or genre) and _every_program_summarised():
        # Every program has its summary row, so the LEFT JOIN is an inner join: said so, PostgreSQL walks
        # the summary's index for this ordering (``ProgramStats.Meta.indexes``) and joins one page of
        # programs, instead of joining and sorting all of them. A filter leaves few programs to sort (a
        # genre is about a tenth, a channel a fiftieth): there the check and the inner join's count cost more.
        return qs.filter(stats__isnull=False).order_by(summary_order(name, descending=descending, via="stats__"), "pk")
    expr = F(PROGRAM_ORDERINGS[name])
    if name in SUMMARY_ORDERINGS:
        # Nulls last either way so programs without airings never crowd the top of a ranking.
        order = expr.desc(nulls_last=True) if descending else expr.asc(nulls_last=True)
    else:
        # Never null: a plain order, which an index on the column serves in either direction.
        order = expr.desc() if descending else expr.asc()
    return qs.order_by(order, "pk")


def _every_program_summarised() -> bool:
    """Whether every program has a ``ProgramStats`` row (a program gets one with its first airing): one
    anti-join of the two primary keys, about a millisecond at 5,000 programs."""
    return not Program.objects.filter(stats__isnull=True).exists()


def program_get(*, key: int | str) -> Program:
    """A program by primary key or external id (an all-digit key is tried as a pk first)."""
    text = str(key).strip()
    qs = Program.objects.select_related("channel")
    program = None
    if text.isdigit():
        program = qs.filter(pk=int(text)).first()
    if program is None:
        program = qs.filter(external_id=text).first()
    if program is None:
        raise NotFoundError(f"No program with id or external id {text!r}.", details={"key": text})
    return program


@dataclass(frozen=True)
class TargetStats:
    mean: float | None
    min: float | None
    max: float | None
    count: int


@dataclass(frozen=True)
class ProgramDetail:
    program: Program
    airing_count: int
    first_airing: datetime | None
    last_airing: datetime | None
    targets: dict[str, TargetStats]
    recent_airings: list[Airing] = field(default_factory=list)


def program_detail(
    *,
    program: Program,
    recent: int = RECENT_AIRINGS,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
) -> ProgramDetail:
    """Aggregates per target over a program's airings and its latest airings: 2 queries, whatever the
    number of airings. The whole history reads its maintained summary; a period (from ``start``, up to
    and including the date ``end``) aggregates that program's airings in it (an index range on program
    and start)."""
    airings = Airing.objects.filter(program=program)
    if start is None and end is None:
        stats = ProgramStats.objects.filter(program=program).first() or ProgramStats(program=program)
        targets = {
            t: TargetStats(
                mean=_mean(getattr(stats, f"{t}_sum"), getattr(stats, f"{t}_count")),
                min=getattr(stats, f"{t}_min"),
                max=getattr(stats, f"{t}_max"),
                count=getattr(stats, f"{t}_count"),
            )
            for t in TARGETS
        }
        count, first, last = stats.airing_count, stats.first_airing, stats.last_airing
    else:
        airings = _in_period(airings, start, end)
        aggregates: dict[str, Count | Min | Max | Avg] = {
            "airing_count": Count("id"),
            "first_airing": Min("start"),
            "last_airing": Max("start"),
        }
        for t in TARGETS:
            aggregates[f"{t}__mean"] = Avg(t)
            aggregates[f"{t}__min"] = Min(t)
            aggregates[f"{t}__max"] = Max(t)
            aggregates[f"{t}__count"] = Count(t)
        row = airings.aggregate(**aggregates)
        targets = {
            t: TargetStats(mean=row[f"{t}__mean"], min=row[f"{t}__min"], max=row[f"{t}__max"], count=row[f"{t}__count"])
            for t in TARGETS
        }
        count, first, last = row["airing_count"], row["first_airing"], row["last_airing"]
    recent_airings = list(airings.select_related("channel").order_by("-start")[:recent])
    return ProgramDetail(
        program=program,
        airing_count=count,
        first_airing=first,
        last_airing=last,
        targets=targets,
        recent_airings=recent_airings,
    )


def _mean(total: float, count: int) -> float | None:
    return total / count if count else None


def _month_sources(
    target: str,
    channel: str | None,
    genre: str | None,
    since: date | datetime | None,
    until: date | datetime | None,
) -> tuple[QuerySet[ProgramPeriodStats], QuerySet[Airing], RangeSplit]:
    """The per-program month summaries of the period's whole months and the airings (for its partial first
    and last months), both filtered by channel and genre, with the period split into months."""
    months = ProgramPeriodStats.objects.filter(period=Period.MONTH, **{f"{target}_count__gt": 0})
    airings = Airing.objects.filter(**{f"{target}__isnull": False})
    if channel:
        months, airings = months.filter(channel__code=channel), airings.filter(channel__code=channel)
    if genre:
        months, airings = months.filter(program__genre=genre), airings.filter(program__genre=genre)
    split = _split_range(
        Period.MONTH,
        _start_of(since) if since is not None else None,
        _end_of(until) if until is not None else None,
    )
    if split.first is not None:
        months = months.filter(period_start__gte=split.first)
    if split.end is not None:
        months = months.filter(period_start__lt=split.end)
    return months, airings, split


def top_programs(
    *,
    target: str,
    n: int = 5,
    channel: str | None = None,
    genre: str | None = None,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    ascending: bool = False,
) -> list[dict[str, object]]:
    """The ``n`` programs with the highest (``ascending``: lowest) mean ``target`` over their airings
    from ``since`` up to and including the date ``until``.

    Reads the maintained summaries: program totals, or per-month rows when a channel or a period narrows
    the airings (partial first and last months are read from the airings themselves, an index range on
    start).
    """
    _check_target(target)
    if not 1 <= n <= 100:
        raise ApplicationError("n must be between 1 and 100.", details={"n": n}, code="invalid_n")
    if genre:
        _check_genre(genre)
    totals: dict[int, tuple[float, int]] = {}
    if channel is None and since is None and until is None:
        stats = ProgramStats.objects.filter(**{f"{target}_count__gt": 0})
        if genre:
            stats = stats.filter(program__genre=genre)
        mean = F(f"{target}_sum") / F(f"{target}_count")
        ranked = stats.annotate(mean=mean).order_by("mean" if ascending else "-mean", "program_id")[:n]
        totals = {r.program_id: (getattr(r, f"{target}_sum"), getattr(r, f"{target}_count")) for r in ranked}
    else:
        months, airings, split = _month_sources(target, channel, genre, since, until)
        parts: list[Iterable[Any]] = [
            months.values("program_id").annotate(total=Sum(f"{target}_sum"), count=Sum(f"{target}_count"))
        ]
        for lo, hi in split.edges:
            parts.append(
                _in_range(airings, lo, hi).values("program_id").annotate(total=Sum(target), count=Count(target))
            )
        for part in parts:
            for r in part:
                total, count = totals.get(r["program_id"], (0.0, 0))
                totals[r["program_id"]] = (total + r["total"], count + r["count"])
    sign = 1.0 if ascending else -1.0
    top = sorted(totals.items(), key=lambda kv: (sign * kv[1][0] / kv[1][1], kv[0]))[:n]
    programs = Program.objects.select_related("channel").in_bulk([pk for pk, _ in top])
    return [
        {
            "program_id": pk,
            "external_id": programs[pk].external_id,
            "title": programs[pk].title,
            "genre": programs[pk].genre,
            "channel": programs[pk].channel.code,
            "target": target,
            "mean": total / count,
            "airings": count,
        }
        for pk, (total, count) in top
    ]


def _in_period(
    airings: QuerySet[Airing], since: date | datetime | None, until: date | datetime | None
) -> QuerySet[Airing]:
    if since is not None:
        airings = airings.filter(start__gte=_start_of(since))
    if until is not None:
        airings = airings.filter(start__lt=_end_of(until))
    return airings


GROUPS = {"channel": ("channel__code", "channel__name"), "genre": ("program__genre", "program__genre")}


def top_groups(
    *,
    target: str,
    group_by: str,
    n: int = 20,
    channel: str | None = None,
    genre: str | None = None,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    ascending: bool = False,
) -> list[dict[str, object]]:
    """Channels or genres ranked by the mean ``target`` over their airings (same filters as ``top_programs``).

    Reads the per-program monthly summaries (whole months of the period) and the airings of the partial
    first and last months (an index range on start), summed per group and program.
    """
    _check_target(target)
    if group_by not in GROUPS:
        raise ApplicationError(
            f"Unknown grouping {group_by!r}; use channel or genre.",
            details={"group_by": list(GROUPS)},
            code="invalid_group_by",
        )
    key, name = GROUPS[group_by]
    if genre:
        _check_genre(genre)
    months, airings, split = _month_sources(target, channel, genre, since, until)
    parts: list[Iterable[Any]] = [
        months.values(key, name, "program_id").annotate(total=Sum(f"{target}_sum"), count=Sum(f"{target}_count"))
    ]
    for lo, hi in split.edges:
        parts.append(
            _in_range(airings, lo, hi).values(key, name, "program_id").annotate(total=Sum(target), count=Count(target))
        )
    groups: dict[str, tuple[str, float, int, set[int]]] = {}
    for part in parts:
        for r in part:
            if not r["count"]:
                continue
            label, total, count, programs = groups.get(r[key], (r[name], 0.0, 0, set()))
            programs.add(r["program_id"])
            groups[r[key]] = (label, total + r["total"], count + r["count"], programs)
    sign = 1.0 if ascending else -1.0
    ranked = sorted(groups.items(), key=lambda kv: (sign * kv[1][1] / kv[1][2], kv[0]))[:n]
    return [
        {
            "key": group,
            "name": label,
            "target": target,
            "mean": total / count,
            "airings": count,
            "programs": len(programs),
        }
        for group, (label, total, count, programs) in ranked
    ]


def data_last_airing() -> datetime | None:
    """Start of the latest airing with a measured target: where the data ends."""
    return Airing.objects.filter(rating__isnull=False).order_by("-start").values_list("start", flat=True).first()


def program_last_airing(*, program_id: int) -> datetime | None:
    """Start of a program's latest airing (its usual slot, for a prediction that names only a day)."""
    return Airing.objects.filter(program_id=program_id).order_by("-start").values_list("start", flat=True).first()


@dataclass(frozen=True)
class RangeSplit:
    """A time range as whole periods (``period_start`` in [first, end), None = unbounded) read from the
    summaries, and the partial periods at its ends (``edges``) read from the airings."""

    first: date | None
    end: date | None
    edges: list[tuple[datetime | None, datetime | None]]


def _period_floor(period: str, moment: datetime) -> date:
    day = timezone.localtime(moment).date()
    return day - timedelta(days=day.weekday()) if period == Period.WEEK else day.replace(day=1)


def _period_next(period: str, start: date) -> date:
    return (
        start + timedelta(days=7)
        if period == Period.WEEK
        else (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    )


def _split_range(period: str, lo: datetime | None, hi: datetime | None) -> RangeSplit:
    first: date | None = None
    end: date | None = None
    edges: list[tuple[datetime | None, datetime | None]] = []
    if lo is not None:
        floor = _period_floor(period, lo)
        first = floor if _start_of(floor) == lo else _period_next(period, floor)
    if hi is not None:
        end = _period_floor(period, hi)
    if first is not None and end is not None and first >= end:
        return RangeSplit(first=first, end=first, edges=[(lo, hi)])  # within two periods: all from airings
    if lo is not None and first is not None and _start_of(first) != lo:
        edges.append((lo, _start_of(first)))
    if hi is not None and end is not None and _start_of(end) != hi:
        edges.append((_start_of(end), hi))
    return RangeSplit(first=first, end=end, edges=edges)


def _in_range(airings: QuerySet[Airing], lo: datetime | None, hi: datetime | None) -> QuerySet[Airing]:
    if lo is not None:
        airings = airings.filter(start__gte=lo)
    if hi is not None:
        airings = airings.filter(start__lt=hi)
    return airings


@dataclass(frozen=True)
class TrendPoint:
    period_start: date
    mean: float
    count: int


@dataclass(frozen=True)
class TrendSeries:
    target: str
    period: str
    points: list[TrendPoint]
    change_pct: float | None
    direction: Literal["up", "down", "flat"]


def trend_series(
    *,
    target: str,
    period: str = "week",
    program: Program | None = None,
    genre: str | None = None,
    channel: str | None = None,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
) -> TrendSeries:
    """Mean ``target`` per local week (Monday) or month, with the change from first to last point.

    Trunc functions bucket in the current time zone on SQLite and PostgreSQL alike. ``end`` as a
    date includes that day. ``change_pct`` is None with fewer than two points or a zero first mean.
    """
    _check_target(target)
    if period not in Period.values:
        raise ApplicationError(
            f"Unknown period {period!r}; use week or month.", details={"period": Period.values}, code="invalid_period"
        )
    airings = Airing.objects.filter(**{f"{target}__isnull": False})
    if genre:
        airings = airings.filter(program__genre=_check_genre(genre))
    if channel:
        airings = airings.filter(channel__code=channel)
    lo = _start_of(start) if start is not None else None
    hi = _end_of(end) if end is not None else None
    sums: dict[date, tuple[float, int]] = {}

    def add(rows: Iterable[Any]) -> None:
        for r in rows:
            key = _as_date(r["bucket"])
            total, count = sums.get(key, (0.0, 0))
            sums[key] = (total + r["total"], count + r["count"])

    def from_airings(qs: QuerySet[Airing]) -> None:
        add(
            # Truncated to the local date in SQL: a week series of a long-running program is hundreds of
            # buckets, and no aware datetime is built (and converted back) per bucket in Python.
            qs.annotate(bucket=Trunc("start", period, output_field=DateField(), tzinfo=timezone.get_current_timezone()))
            .values("bucket")
            .annotate(total=Sum(target), count=Count(target))
        )

    if program is not None and period == Period.WEEK:
        # One program's weeks (no weekly program summary): a range of the covering (program, start)
        # index that carries the targets, so PostgreSQL reads neither the heap nor another program's rows.
        from_airings(_in_range(airings.filter(program=program), lo, hi))
    else:
        # Whole periods from the maintained summaries (a program's months, or a channel's and genre's
        # weeks and months), the partial periods at the ends of the range from the airings.
        split = _split_range(period, lo, hi)
        summaries: (
            QuerySet[ProgramPeriodStats]
            | QuerySet[SegmentPeriodStats]
            | QuerySet[ChannelPeriodStats]
            | QuerySet[GenrePeriodStats]
        )
        if program is not None:
            airings = airings.filter(program=program)
            summaries = ProgramPeriodStats.objects.filter(program=program)
            if genre:
                summaries = summaries.filter(program__genre=genre)
            if channel:
                summaries = summaries.filter(channel__code=channel)
        elif period == Period.MONTH and genre and not channel:
            # A genre's or a channel's months (or all): the month rollups, a row per genre or channel and
            # month rather than a row per channel, genre and month (12x as many at 12 genres).
            summaries = GenrePeriodStats.objects.filter(genre=genre)
        elif period == Period.MONTH and not genre:
            summaries = ChannelPeriodStats.objects.all()
            if channel:
                summaries = summaries.filter(channel__code=channel)
        else:
            summaries = SegmentPeriodStats.objects.all()
            if genre:
                summaries = summaries.filter(genre=genre)
            if channel:
                summaries = summaries.filter(channel__code=channel)
        summaries = summaries.filter(period=period, **{f"{target}_count__gt": 0})
        if split.first is not None:
            summaries = summaries.filter(period_start__gte=split.first)
        if split.end is not None:
            summaries = summaries.filter(period_start__lt=split.end)
        add(
            summaries.annotate(bucket=F("period_start"))
            .values("bucket")
            .annotate(total=Sum(f"{target}_sum"), count=Sum(f"{target}_count"))
        )
        for edge_lo, edge_hi in split.edges:
            from_airings(_in_range(airings, edge_lo, edge_hi))
    points = [TrendPoint(period_start=k, mean=total / count, count=count) for k, (total, count) in sorted(sums.items())]
    change_pct: float | None = None
    direction: Literal["up", "down", "flat"] = "flat"
    if len(points) >= 2 and points[0].mean != 0:
        change_pct = (points[-1].mean - points[0].mean) / abs(points[0].mean) * 100.0
        if change_pct > TREND_FLAT_THRESHOLD_PCT:
            direction = "up"
        elif change_pct < -TREND_FLAT_THRESHOLD_PCT:
            direction = "down"
    return TrendSeries(target=target, period=period, points=points, change_pct=change_pct, direction=direction)


def _as_date(bucket: date | datetime) -> date:
    if isinstance(bucket, datetime):
        return timezone.localtime(bucket).date() if timezone.is_aware(bucket) else bucket.date()
    return bucket
