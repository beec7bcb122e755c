"""Reads of broadcast data: program lists and details, top programs, trends.

Pages, the API, the chat tools and exports all call these, so each number has one definition.
"""

from __future__ import annotations

import threading
import time as clock
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal

from django.db.models import Avg, Count, F, Max, Min, Q, QuerySet
from django.db.models.functions import TruncMonth, TruncWeek
from django.utils import timezone

from bms.errors import ApplicationError, NotFoundError
from programs.models import TARGETS, Airing, Channel, DataVersion, Genre, Program

# Ordering keys the list accepts (a leading "-" reverses). Values are the queryset expressions.
PROGRAM_ORDERINGS: dict[str, str] = {
    "title": "title",
    "external_id": "external_id",
    "genre": "genre",
    "channel": "channel__code",
    "duration": "duration_minutes",
    "airing_count": "airing_count",
    "last_airing": "last_airing",
    **{f"avg_{t}": f"avg_{t}" for t in TARGETS},
}
# A relative change smaller than this (in percent) is reported as "flat".
TREND_FLAT_THRESHOLD_PCT = 1.0
RECENT_AIRINGS = 20


def data_version_current() -> int:
    """The latest data version number (0 when nothing was ever loaded)."""
    latest = DataVersion.objects.order_by("-id").values_list("id", flat=True).first()
    return int(latest or 0)


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
    """Programs with their channel and per-program aggregates, in one query (no N+1).

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
    qs = qs.annotate(
        airing_count=Count("airings"),
        last_airing=Max("airings__start"),
        **{f"avg_{t}": Avg(f"airings__{t}") for t in TARGETS},
    )
    key = ordering or "title"
    name = key.removeprefix("-")
    if name not in PROGRAM_ORDERINGS:
        raise ApplicationError(
            f"Unknown ordering {key!r}.",
            details={"ordering": sorted(PROGRAM_ORDERINGS)},
            code="invalid_ordering",
        )
    expr = F(PROGRAM_ORDERINGS[name])
    # Nulls last either way so programs without airings never crowd the top of a ranking.
    order = expr.desc(nulls_last=True) if key.startswith("-") else expr.asc(nulls_last=True)
    return qs.order_by(order, "pk")


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
    """Aggregates per target over a program's airings (from ``start``, up to and including the date
    ``end``), and its latest airings in that period (2 queries)."""
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
    airings = Airing.objects.filter(program=program)
    if start is not None:
        airings = airings.filter(start__gte=_start_of(start))
    if end is not None:
        airings = airings.filter(start__lt=_end_of(end))
    row = airings.aggregate(**aggregates)
    targets = {
        t: TargetStats(mean=row[f"{t}__mean"], min=row[f"{t}__min"], max=row[f"{t}__max"], count=row[f"{t}__count"])
        for t in TARGETS
    }
    recent_airings = list(airings.select_related("channel").order_by("-start")[:recent])
    return ProgramDetail(
        program=program,
        airing_count=row["airing_count"],
        first_airing=row["first_airing"],
        last_airing=row["last_airing"],
        targets=targets,
        recent_airings=recent_airings,
    )


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
    from ``since`` up to and including the date ``until``."""
    _check_target(target)
    if not 1 <= n <= 100:
        raise ApplicationError("n must be between 1 and 100.", details={"n": n}, code="invalid_n")
    airings = Airing.objects.filter(**{f"{target}__isnull": False})
    if channel:
        airings = airings.filter(channel__code=channel)
    if genre:
        airings = airings.filter(program__genre=_check_genre(genre))
    airings = _in_period(airings, since, until)
    rows = (
        airings.values(
            "program_id", "program__external_id", "program__title", "program__genre", "program__channel__code"
        )
        .annotate(mean=Avg(target), airings=Count("id"))
        .order_by("mean" if ascending else "-mean", "program_id")[:n]
    )
    return [
        {
            "program_id": r["program_id"],
            "external_id": r["program__external_id"],
            "title": r["program__title"],
            "genre": r["program__genre"],
            "channel": r["program__channel__code"],
            "target": target,
            "mean": r["mean"],
            "airings": r["airings"],
        }
        for r in rows
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
    """Channels or genres ranked by the mean ``target`` over their airings (same filters as ``top_programs``)."""
    _check_target(target)
    if group_by not in GROUPS:
        raise ApplicationError(
            f"Unknown grouping {group_by!r}; use channel or genre.",
            details={"group_by": list(GROUPS)},
            code="invalid_group_by",
        )
    key, name = GROUPS[group_by]
    airings = Airing.objects.filter(**{f"{target}__isnull": False})
    if channel:
        airings = airings.filter(channel__code=channel)
    if genre:
        airings = airings.filter(program__genre=_check_genre(genre))
    airings = _in_period(airings, since, until)
    rows = (
        airings.values(key, name)
        .annotate(mean=Avg(target), airings=Count("id"), programs=Count("program_id", distinct=True))
        .order_by("mean" if ascending else "-mean", key)[:n]
    )
    return [
        {
            "key": r[key],
            "name": r[name],
            "target": target,
            "mean": r["mean"],
            "airings": r["airings"],
            "programs": r["programs"],
        }
        for r in rows
    ]


def data_last_airing() -> datetime | None:
    """Start of the latest airing with a measured target: where the data ends."""
    return Airing.objects.filter(rating__isnull=False).order_by("-start").values_list("start", flat=True).first()


def program_last_airing(*, program_id: int) -> datetime | None:
    """Start of a program's latest airing (its usual slot, for a prediction that names only a day)."""
    return Airing.objects.filter(program_id=program_id).order_by("-start").values_list("start", flat=True).first()


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
    truncs = {"week": TruncWeek, "month": TruncMonth}
    if period not in truncs:
        raise ApplicationError(
            f"Unknown period {period!r}; use week or month.", details={"period": list(truncs)}, code="invalid_period"
        )
    airings = Airing.objects.filter(**{f"{target}__isnull": False})
    if program is not None:
        airings = airings.filter(program=program)
    if genre:
        airings = airings.filter(program__genre=_check_genre(genre))
    if channel:
        airings = airings.filter(channel__code=channel)
    if start is not None:
        airings = airings.filter(start__gte=_start_of(start))
    if end is not None:
        airings = airings.filter(start__lt=_end_of(end))
    rows = (
        airings.annotate(bucket=truncs[period]("start", tzinfo=timezone.get_current_timezone()))
        .values("bucket")
        .annotate(mean=Avg(target), count=Count("id"))
        .order_by("bucket")
    )
    points = [
        TrendPoint(period_start=_as_date(r["bucket"]), mean=float(r["mean"]), count=int(r["count"])) for r in rows
    ]
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
