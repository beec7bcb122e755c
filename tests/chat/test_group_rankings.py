"""Channel and genre rankings (``get_programs`` with ``group_by``) read the maintained summaries and
equal the same means computed over the airings themselves."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.db import connection
from django.db.models import Avg, Count
from django.test.utils import CaptureQueriesContext

from chat.tools import run_tool
from programs import selectors
from programs.generator import generate
from programs.models import Airing


@pytest.fixture
def generated(db: Any) -> None:
    # about three months on 3 channels: whole months in the middle, partial months at a period's ends
    generate(seed=11, channels=2, programs=48, days=95, start_date=date(2025, 1, 1))


def _from_airings(
    *, target: str, group_by: str, channel: str | None = None, genre: str | None = None, **period: Any
) -> list[dict[str, Any]]:
    """The ranking as the airings say it (what the summaries must reproduce)."""
    key, name = selectors.GROUPS[group_by]
    airings = Airing.objects.filter(**{f"{target}__isnull": False})
    if channel:
        airings = airings.filter(channel__code=channel)
    if genre:
        airings = airings.filter(program__genre=genre)
    if period.get("since"):
        airings = airings.filter(start__gte=selectors._start_of(period["since"]))
    if period.get("until"):
        airings = airings.filter(start__lt=selectors._end_of(period["until"]))
    rows = airings.values(key, name).annotate(
        mean=Avg(target), airings=Count("id"), programs=Count("program_id", distinct=True)
    )
    return [
        {"key": r[key], "name": r[name], "mean": r["mean"], "airings": r["airings"], "programs": r["programs"]}
        for r in rows
    ]


def _same(got: list[dict[str, Any]], expected: list[dict[str, Any]], *, ascending: bool) -> None:
    order = sorted(expected, key=lambda r: ((1 if ascending else -1) * r["mean"], r["key"]))
    assert [g["key"] for g in got] == [e["key"] for e in order]
    for g, e in zip(got, order, strict=True):
        assert g["name"] == e["name"]
        assert g["airings"] == e["airings"]
        assert g["programs"] == e["programs"]
        assert g["mean"] == pytest.approx(e["mean"], rel=1e-9)


@pytest.mark.parametrize("group_by", ["channel", "genre"])
@pytest.mark.parametrize(
    "period",
    [
        {},
        {"since": date(2025, 1, 17), "until": date(2025, 3, 9)},  # partial months at both ends
        {"since": date(2025, 2, 1)},  # from a month's first day
        {"until": date(2025, 2, 14)},
        {"since": date(2025, 2, 3), "until": date(2025, 2, 20)},  # inside one month: airings only
    ],
)
def test_group_rankings_equal_the_airings(generated: None, group_by: str, period: dict[str, Any]) -> None:
    for target, ascending in (("rating", False), ("revenue", True)):
        got = selectors.top_groups(target=target, group_by=group_by, n=50, ascending=ascending, **period)
        _same(got, _from_airings(target=target, group_by=group_by, **period), ascending=ascending)


def test_group_rankings_filter_by_channel_and_genre(generated: None) -> None:
    channel = selectors.top_groups(target="audience", group_by="channel", n=1)[0]["key"]
    genre = selectors.top_groups(target="audience", group_by="genre", n=1)[0]["key"]
    assert isinstance(channel, str)
    assert isinstance(genre, str)
    got = selectors.top_groups(target="audience", group_by="genre", channel=channel, n=50)
    _same(got, _from_airings(target="audience", group_by="genre", channel=channel), ascending=False)
    got = selectors.top_groups(target="engagement", group_by="channel", genre=genre, n=2)
    assert len(got) == 2
    expected = sorted(
        _from_airings(target="engagement", group_by="channel", genre=genre), key=lambda r: (-r["mean"], r["key"])
    )[:2]
    _same(got, expected, ascending=False)


def test_a_group_ranking_over_whole_months_reads_no_airing(generated: None, analyst: Any) -> None:
    with CaptureQueriesContext(connection) as queries:
        call = run_tool(
            user=analyst,
            name="get_programs",
            arguments={"target": "rating", "group_by": "genre", "since": "2025-02-01", "until": "2025-02-28"},
        )
    assert call.ok
    assert call.result is not None
    assert call.result["groups"]
    ranking = [q["sql"] for q in queries.captured_queries if "programs_programperiodstats" in q["sql"]]
    assert len(ranking) == 1
    assert not [q for q in queries.captured_queries if "GROUP BY" in q["sql"] and '"programs_airing"' in q["sql"]]
