"""The maintained summaries equal a full recomputation from the airings after every kind of write."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from io import StringIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.admin.sites import site
from django.core.management import call_command
from django.db.models import Count, Max, Min, Sum
from django.db.models.functions import TruncMonth, TruncWeek

from programs.admin import AiringAdmin
from programs.generator import generate
from programs.importer import airings_import
from programs.models import (
    TARGETS,
    Airing,
    ChannelPeriodStats,
    GenrePeriodStats,
    Program,
    ProgramPeriodStats,
    ProgramStats,
    SegmentPeriodStats,
)
from programs.selectors import top_programs, trend_series
from tests.programs.factories import SMALL_CONFIG, canonical_row, canonical_row_of, write_csv

pytestmark = pytest.mark.django_db
TZ = ZoneInfo(settings.TIME_ZONE)
APPROX: dict[str, Any] = {"rel": 1e-9, "abs": 1e-6}


def _recomputed_programs() -> dict[int, dict[str, Any]]:
    per_target: dict[str, Any] = {}
    for t in TARGETS:
        per_target |= {f"{t}_count": Count(t), f"{t}_sum": Sum(t), f"{t}_min": Min(t), f"{t}_max": Max(t)}
    rows = Airing.objects.values("program_id").annotate(
        airing_count=Count("id"), first_airing=Min("start"), last_airing=Max("start"), **per_target
    )
    return {
        r["program_id"]: {
            k: (v if v is not None or not k.endswith("_sum") else 0.0) for k, v in r.items() if k != "program_id"
        }
        for r in rows
    }


def _recomputed_periods(keys: tuple[str, ...], trunc: Any) -> dict[tuple[Any, ...], dict[str, Any]]:
    sums: dict[str, Any] = {"airing_count": Count("id")}
    for t in TARGETS:
        sums |= {f"{t}_count": Count(t), f"{t}_sum": Sum(t)}
    rows = Airing.objects.annotate(bucket=trunc("start", tzinfo=TZ)).values(*keys, "bucket").annotate(**sums)
    out = {}
    for r in rows:
        bucket = r.pop("bucket")
        day = bucket.astimezone(TZ).date() if hasattr(bucket, "astimezone") else bucket
        key = (*(r.pop(k) for k in keys), day)
        out[key] = {k: (v if v is not None else 0.0) for k, v in r.items()}
    return out


def _stored(model: Any, keys: tuple[str, ...], period: str | None) -> dict[tuple[Any, ...], dict[str, Any]]:
    qs = model.objects.all() if period is None else model.objects.filter(period=period)
    names = ["airing_count", *(f"{t}_{k}" for t in TARGETS for k in ("count", "sum"))]
    return {
        (*(r[k] for k in keys), r["period_start"]): {n: r[n] for n in names}
        for r in qs.values(*keys, "period_start", *names)
    }


def _without_program_id(rows: Iterable[Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
    return {r["program_id"]: {k: v for k, v in r.items() if k != "program_id"} for r in rows}


def _assert_equal(stored: Mapping[Any, Mapping[str, Any]], expected: Mapping[Any, Mapping[str, Any]]) -> None:
    assert sorted(stored) == sorted(expected)
    for key, want in expected.items():
        got = stored[key]
        for name, value in want.items():
            assert got[name] == (pytest.approx(value, **APPROX) if isinstance(value, float) else value), (key, name)


def assert_summaries_exact() -> None:
    """Every summary row equals the same figure computed from all airings (and there is no other row)."""
    programs = {s["program_id"]: s for s in ProgramStats.objects.values()}
    expected = _recomputed_programs()
    assert sorted(pid for pid, s in programs.items() if s["airing_count"]) == sorted(expected)
    for pid, want in expected.items():
        got = {k: v for k, v in programs[pid].items() if k != "program_id"}
        assert set(got) == set(want)
        for name, value in want.items():
            assert got[name] == (pytest.approx(value, **APPROX) if isinstance(value, float) else value), (pid, name)
    _assert_equal(
        _stored(ProgramPeriodStats, ("program_id", "channel_id"), "month"),
        _recomputed_periods(("program_id", "channel_id"), TruncMonth),
    )
    segment_keys = ("channel_id", "program__genre")
    for period, trunc in (("month", TruncMonth), ("week", TruncWeek)):
        expected_segments = _recomputed_periods(segment_keys, trunc)
        stored = {
            (r["channel_id"], r["genre"], r["period_start"]): r
            for r in SegmentPeriodStats.objects.filter(period=period).values()
        }
        _assert_equal(stored, expected_segments)
    _assert_equal(
        _stored(ChannelPeriodStats, ("channel_id",), "month"), _recomputed_periods(("channel_id",), TruncMonth)
    )
    stored_genres = {
        (r["genre"], r["period_start"]): r for r in GenrePeriodStats.objects.filter(period="month").values()
    }
    _assert_equal(stored_genres, _recomputed_periods(("program__genre",), TruncMonth))
    assert not ChannelPeriodStats.objects.exclude(period="month").exists()


def test_generation_then_imports_that_create_update_and_leave_rows_unchanged_keep_summaries_exact(
    tmp_path: Path,
) -> None:
    generate(SMALL_CONFIG)
    assert_summaries_exact()
    # A file that changes some existing airings (new targets, a target cleared), leaves others as they
    # are, adds airings to an existing program and creates a program with its airings.
    existing = list(Airing.objects.select_related("program", "channel").order_by("start")[:6])
    rows = []
    for i, a in enumerate(existing):
        row = canonical_row_of(a, TZ)
        if i % 3 == 0:
            row["rating"] = "99.5"  # above the program's maximum: the max must move
        elif i % 3 == 1:
            row["audience"] = ""  # the value is removed: count, sum, min and max must follow
        rows.append(row)
    first = existing[0]
    rows.append(
        canonical_row(
            external_id=first.program.external_id,
            title=first.program.title,
            channel=first.channel.name,
            genre=first.program.genre,
            start="2031-01-05T20:00:00-05:00",
            rating="0.001",
        )
    )
    rows.append(
        canonical_row(
            external_id="NEW001", title="New Show", channel=first.channel.name, start="2025-07-01T21:00:00-04:00"
        )
    )
    result = airings_import(path=write_csv(tmp_path / "mixed.csv", rows))
    assert (result.created, result.updated, result.unchanged) == (2, 4, 2)
    assert_summaries_exact()
    stats = ProgramStats.objects.get(program=first.program)
    assert stats.rating_max == 99.5
    assert stats.rating_min == 0.001

    # Lowering the maximum back: the stored maximum must come from the remaining airings.
    rows[0]["rating"] = "0.5"
    result = airings_import(path=write_csv(tmp_path / "lower.csv", rows))
    assert (result.created, result.updated, result.unchanged) == (0, 1, 7)
    assert_summaries_exact()
    assert ProgramStats.objects.get(program=first.program).rating_max != 99.5


def test_rebuild_command_recreates_the_same_summaries() -> None:
    generate(SMALL_CONFIG)
    before = _without_program_id(ProgramStats.objects.values())
    ProgramStats.objects.all().delete()
    SegmentPeriodStats.objects.all().delete()
    GenrePeriodStats.objects.all().delete()
    out = StringIO()
    call_command("rebuild_aggregates", stdout=out)
    assert f"Rebuilt the summaries of {Airing.objects.count()} airings" in out.getvalue()
    after = _without_program_id(ProgramStats.objects.values())
    assert sorted(after) == sorted(before)
    for pid, row in before.items():
        assert after[pid] == {k: pytest.approx(v, **APPROX) if isinstance(v, float) else v for k, v in row.items()}
    assert_summaries_exact()


def test_admin_edit_and_delete_keep_summaries_exact() -> None:
    generate(SMALL_CONFIG.__class__(seed=3, channels=1, programs=40, days=21))
    airing = Airing.objects.order_by("-rating").first()
    assert airing is not None
    program_max = ProgramStats.objects.get(program_id=airing.program_id).rating_max
    assert program_max == airing.rating
    airing.rating = 0.01
    request = type("R", (), {"user": "admin-test"})()
    admin = AiringAdmin(Airing, site)
    admin.save_model(request, airing, form=None, change=True)  # type: ignore[arg-type]
    assert_summaries_exact()
    admin.delete_queryset(request, Airing.objects.filter(program_id=airing.program_id))
    assert_summaries_exact()
    stats = ProgramStats.objects.get(program_id=airing.program_id)
    assert (stats.airing_count, stats.first_airing, stats.rating_max) == (0, None, None)


def _airing_means(airings: Any, trunc: Any, target: str) -> list[tuple[Any, float, int]]:
    rows = (
        airings.filter(**{f"{target}__isnull": False})
        .annotate(bucket=trunc("start", tzinfo=TZ))
        .values("bucket")
        .annotate(total=Sum(target), n=Count(target))
        .order_by("bucket")
    )
    return [(r["bucket"].astimezone(TZ).date(), r["total"] / r["n"], r["n"]) for r in rows]


@pytest.mark.parametrize(
    ("period", "trunc", "start", "end"),
    [
        ("month", TruncMonth, date(2024, 2, 10), date(2024, 5, 17)),  # partial months at both ends
        ("week", TruncWeek, date(2024, 1, 17), date(2024, 4, 2)),
        ("month", TruncMonth, date(2024, 3, 1), date(2024, 4, 30)),  # whole months only
        ("week", TruncWeek, date(2024, 2, 7), date(2024, 2, 9)),  # inside one week
        ("month", TruncMonth, None, None),
    ],
)
def test_trends_from_summaries_equal_trends_from_airings(period: str, trunc: Any, start: Any, end: Any) -> None:
    generate(SMALL_CONFIG)
    series = trend_series(target="audience", period=period, genre="drama", start=start, end=end)
    airings = Airing.objects.filter(program__genre="drama")
    if start is not None:
        airings = airings.filter(start__gte=datetime.combine(start, time.min, tzinfo=TZ))
    if end is not None:
        airings = airings.filter(start__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=TZ))
    expected = _airing_means(airings, trunc, "audience")
    assert [(p.period_start, p.count) for p in series.points] == [(d, n) for d, _, n in expected]
    assert [p.mean for p in series.points] == [pytest.approx(m, rel=1e-12) for _, m, _ in expected]


@pytest.mark.parametrize("genre", [None, "drama"])
@pytest.mark.parametrize("on_channel", [False, True])
@pytest.mark.parametrize(("start", "end"), [(None, None), (date(2024, 2, 10), date(2024, 5, 17))])
def test_month_trends_of_all_a_channel_a_genre_or_both_equal_trends_from_airings(
    genre: str | None, on_channel: bool, start: date | None, end: date | None
) -> None:
    """Each combination reads its own summary (the channel or genre month rollups, or the segments)."""
    generate(SMALL_CONFIG)
    channel = Airing.objects.order_by("pk").values_list("channel__code", flat=True).first() if on_channel else None
    series = trend_series(target="revenue", period="month", genre=genre, channel=channel, start=start, end=end)
    airings = Airing.objects.all()
    if genre is not None:
        airings = airings.filter(program__genre=genre)
    if channel is not None:
        airings = airings.filter(channel__code=channel)
    if start is not None and end is not None:
        airings = airings.filter(
            start__gte=datetime.combine(start, time.min, tzinfo=TZ),
            start__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=TZ),
        )
    expected = _airing_means(airings, TruncMonth, "revenue")
    assert len(expected) >= 4
    assert [(p.period_start, p.count) for p in series.points] == [(d, n) for d, _, n in expected]
    assert [p.mean for p in series.points] == [pytest.approx(m, rel=1e-12) for _, m, _ in expected]


@pytest.mark.parametrize(
    ("period", "trunc", "start", "end"),
    [
        ("month", TruncMonth, None, None),  # the program page's series: summaries only
        ("month", TruncMonth, date(2024, 2, 10), date(2024, 5, 17)),  # partial months from the airings
        ("week", TruncWeek, date(2024, 1, 17), date(2024, 4, 2)),
    ],
)
def test_program_trends_equal_trends_from_its_airings(period: str, trunc: Any, start: Any, end: Any) -> None:
    generate(SMALL_CONFIG)
    program = Program.objects.order_by("pk").first()
    assert program is not None
    series = trend_series(target="rating", period=period, program=program, start=start, end=end)
    airings = Airing.objects.filter(program=program)
    if start is not None:
        airings = airings.filter(start__gte=datetime.combine(start, time.min, tzinfo=TZ))
    if end is not None:
        airings = airings.filter(start__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=TZ))
    expected = _airing_means(airings, trunc, "rating")
    assert len(expected) >= 3
    assert [(p.period_start, p.count) for p in series.points] == [(d, n) for d, _, n in expected]
    assert [p.mean for p in series.points] == [pytest.approx(m, rel=1e-12) for _, m, _ in expected]


def test_rankings_since_a_mid_month_day_on_a_channel_equal_rankings_from_airings() -> None:
    generate(SMALL_CONFIG)
    channel = Airing.objects.values_list("channel__code", flat=True).first()
    since = date(2024, 4, 11)
    top = top_programs(target="rating", n=10, channel=channel, since=since)
    rows = (
        Airing.objects.filter(
            channel__code=channel, rating__isnull=False, start__gte=datetime.combine(since, time.min, tzinfo=TZ)
        )
        .values("program_id")
        .annotate(total=Sum("rating"), n=Count("rating"))
    )
    expected = sorted(((r["total"] / r["n"], r["program_id"], r["n"]) for r in rows), key=lambda x: (-x[0], x[1]))[:10]
    assert [(t["program_id"], t["airings"]) for t in top] == [(pid, n) for _, pid, n in expected]
    assert [t["mean"] for t in top] == [pytest.approx(m, rel=1e-12) for m, _, _ in expected]
