"""Programs API and selectors: list (filters, search, ordering, pagination, query count), detail, trends."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers
from rest_framework.test import APIClient

from bms.errors import ApplicationError, NotFoundError
from programs import selectors
from programs.apis import ProgramListApi
from programs.models import Program
from tests.programs.factories_api import airing_factory, channel_factory, program_factory

NY = ZoneInfo("America/New_York")
pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog() -> dict[str, Any]:
    abc = channel_factory(code="abc", name="ABC")
    nbc = channel_factory(code="nbc", name="NBC")
    news = program_factory(external_id="NEWS01", title="Evening News", channel=abc, genre="news")
    drama = program_factory(external_id="DRAMA1", title="Harbor Lights", channel=abc, genre="drama")
    comedy = program_factory(external_id="COM001", title="Laugh Track", channel=nbc, genre="comedy")
    empty = program_factory(external_id="EMPTY1", title="Zebra Pilot", channel=nbc, genre="drama")
    for i, rating in enumerate((2.0, 4.0)):
        airing_factory(program=news, start=datetime(2025, 1, 6 + i, 18, tzinfo=NY), rating=rating, audience=100 + i)
    for i, rating in enumerate((5.0, 7.0, 9.0)):
        airing_factory(program=drama, start=datetime(2025, 1, 6 + i, 21, tzinfo=NY), rating=rating, audience=300)
    airing_factory(program=comedy, start=datetime(2025, 1, 6, 20, tzinfo=NY), rating=3.5, audience=None)
    return {"abc": abc, "nbc": nbc, "news": news, "drama": drama, "comedy": comedy, "empty": empty}


def _ids(response: Any) -> list[str]:
    return [p["external_id"] for p in response.json()["results"]]


def test_list_is_paginated_and_ordered_by_title_with_aggregates(viewer_client: APIClient, catalog: Any) -> None:
    response = viewer_client.get("/api/v1/programs", {"page_size": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert body["next"].endswith("page=2&page_size=2")
    assert _ids(response) == ["NEWS01", "DRAMA1"]
    news = body["results"][0]
    assert news["channel"] == "abc"
    assert news["channel_name"] == "ABC"
    assert news["airing_count"] == 2
    assert news["avg_rating"] == pytest.approx(3.0)
    assert news["avg_audience"] == pytest.approx(100.5)
    assert news["last_airing"] == "2025-01-07T18:00:00-05:00"
    page2 = viewer_client.get("/api/v1/programs", {"page_size": 2, "page": 2})
    assert _ids(page2) == ["COM001", "EMPTY1"]
    assert page2.json()["results"][1]["avg_rating"] is None
    assert page2.json()["results"][1]["airing_count"] == 0


def test_list_filters_by_channel_genre_and_search(viewer_client: APIClient, catalog: Any) -> None:
    assert _ids(viewer_client.get("/api/v1/programs", {"channel": "nbc"})) == ["COM001", "EMPTY1"]
    assert _ids(viewer_client.get("/api/v1/programs", {"genre": "drama"})) == ["DRAMA1", "EMPTY1"]
    assert _ids(viewer_client.get("/api/v1/programs", {"genre": "drama", "channel": "abc"})) == ["DRAMA1"]
    assert _ids(viewer_client.get("/api/v1/programs", {"search": "harbor"})) == ["DRAMA1"]
    assert _ids(viewer_client.get("/api/v1/programs", {"search": "com0"})) == ["COM001"]
    assert _ids(viewer_client.get("/api/v1/programs", {"channel": "zzz"})) == []


def test_list_orders_by_aggregates_with_nulls_last(viewer_client: APIClient, catalog: Any) -> None:
    assert _ids(viewer_client.get("/api/v1/programs", {"ordering": "-avg_rating"})) == [
        "DRAMA1",
        "COM001",
        "NEWS01",
        "EMPTY1",
    ]
    assert _ids(viewer_client.get("/api/v1/programs", {"ordering": "avg_rating"})) == [
        "NEWS01",
        "COM001",
        "DRAMA1",
        "EMPTY1",
    ]
    assert _ids(viewer_client.get("/api/v1/programs", {"ordering": "-airing_count"}))[:2] == ["DRAMA1", "NEWS01"]
    assert _ids(viewer_client.get("/api/v1/programs", {"ordering": "external_id"})) == [
        "COM001",
        "DRAMA1",
        "EMPTY1",
        "NEWS01",
    ]


def test_list_rows_render_as_their_declared_fields_do(catalog: Any) -> None:
    rows = list(selectors.program_list())
    assert rows[-1].external_id == "EMPTY1"  # no airings: nulls and a zero count
    serializer: Any = ProgramListApi.OutputSerializer(rows, many=True)  # type: ignore[arg-type]  # many=True takes a list
    generic = [serializers.Serializer.to_representation(serializer.child, row) for row in rows]
    assert serializer.data == generic
    assert [list(row) for row in serializer.data] == [list(row) for row in generic]  # the same keys in the same order


def _expected_order(ordering: str) -> list[str]:
    """The list's order, worked out here: nulls last either way, ties by id."""
    rows = list(selectors.program_list())
    name, descending = ordering.removeprefix("-"), ordering.startswith("-")
    present = sorted((r for r in rows if getattr(r, name) is not None), key=lambda r: r.pk)
    present.sort(key=lambda r: getattr(r, name), reverse=descending)  # stable: ties keep the id order
    absent = sorted((r for r in rows if getattr(r, name) is None), key=lambda r: r.pk)
    return [r.external_id for r in present + absent]


def test_the_orderings_on_the_summary_are_the_same_once_every_program_has_one(catalog: Any) -> None:
    """With a summary row for every program the list orders through an inner join (PostgreSQL walks the
    summary's index): the order must be the one the outer join gave, nulls last, ties by id."""
    drama2 = program_factory(external_id="DRAMA2", title="Harbor Lights II", channel=catalog["nbc"], genre="drama")
    for program in (catalog["empty"], drama2):  # now every program has airings, with ties on every key
        airing_factory(program=program, start=datetime(2025, 2, 3, 18, tzinfo=NY), rating=3.0, audience=None)
    airing_factory(program=catalog["comedy"], start=datetime(2025, 2, 4, 18, tzinfo=NY), rating=2.5, audience=None)
    assert not Program.objects.filter(stats__isnull=True).exists()
    for name in ("airing_count", "last_airing", "avg_rating", "avg_revenue", "avg_audience", "avg_engagement"):
        for ordering in (name, f"-{name}"):
            expected = _expected_order(ordering)
            assert [p.external_id for p in selectors.program_list(ordering=ordering)] == expected, ordering
            assert [p.external_id for p in selectors.program_list(ordering=ordering, genre="drama")] == [
                key for key in expected if key.startswith(("DRAMA", "EMPTY"))
            ], ordering
    # No audience measured for three of them: last, by id.
    assert [p.external_id for p in selectors.program_list(ordering="-avg_audience")] == [
        "DRAMA1",
        "NEWS01",
        "COM001",
        "EMPTY1",
        "DRAMA2",
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"ordering": "password"}, "ordering"), ({"genre": "opera"}, "genre"), ({"page_size": "x", "page": "z"}, None)],
)
def test_list_rejects_bad_query_parameters(viewer_client: APIClient, catalog: Any, params: Any, field: Any) -> None:
    response = viewer_client.get("/api/v1/programs", params)
    if field is None:  # a bad page is 404 in the error format, like DRF's paginator says
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        return
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"]


def test_list_query_count_does_not_grow_with_programs(viewer_client: APIClient, catalog: Any, settings: Any) -> None:
    settings.RESPONSE_CACHE_SECONDS = 0  # the queries of a built list (factories bump no data version)
    viewer_client.get("/api/v1/programs")  # warm the role cache path once
    with CaptureQueriesContext(connection) as small:
        assert viewer_client.get("/api/v1/programs").status_code == 200
    channel = channel_factory(code="big")
    for i in range(25):
        program = program_factory(external_id=f"BIG{i:03d}", channel=channel)
        airing_factory(program=program)
    with CaptureQueriesContext(connection) as large:
        response = viewer_client.get("/api/v1/programs")
    assert response.json()["count"] == 29
    # count + one page query, whatever the number of programs (the forced user's role is cached on it)
    assert len(small.captured_queries) == len(large.captured_queries) == 2


def test_detail_by_external_id_and_by_pk(viewer_client: APIClient, catalog: Any) -> None:
    drama = catalog["drama"]
    by_key = viewer_client.get("/api/v1/programs/DRAMA1")
    by_pk = viewer_client.get(f"/api/v1/programs/{drama.pk}")
    assert by_key.status_code == by_pk.status_code == 200
    assert by_key.json() == by_pk.json()
    body = by_key.json()
    assert body["id"] == drama.pk
    assert body["title"] == "Harbor Lights"
    assert body["airing_count"] == 3
    assert body["first_airing"] == "2025-01-06T21:00:00-05:00"
    assert body["last_airing"] == "2025-01-08T21:00:00-05:00"
    assert body["targets"]["rating"] == {"mean": 7.0, "min": 5.0, "max": 9.0, "count": 3}
    assert body["targets"]["audience"] == {"mean": 300.0, "min": 300.0, "max": 300.0, "count": 3}
    assert [a["rating"] for a in body["recent_airings"]] == [9.0, 7.0, 5.0]
    assert body["recent_airings"][0]["channel"] == "abc"


def test_detail_of_a_program_without_airings(viewer_client: APIClient, catalog: Any) -> None:
    body = viewer_client.get("/api/v1/programs/EMPTY1").json()
    assert body["airing_count"] == 0
    assert body["first_airing"] is None
    assert body["targets"]["rating"] == {"mean": None, "min": None, "max": None, "count": 0}
    assert body["recent_airings"] == []


def test_detail_keeps_only_the_latest_20_airings(viewer_client: APIClient, catalog: Any) -> None:
    program = program_factory(external_id="LONG01")
    for day in range(1, 26):
        airing_factory(program=program, start=datetime(2025, 3, day, 20, tzinfo=NY), rating=float(day))
    body = viewer_client.get("/api/v1/programs/LONG01").json()
    assert body["airing_count"] == 25
    assert [a["rating"] for a in body["recent_airings"]] == [float(d) for d in range(25, 5, -1)]


def test_detail_unknown_key_is_404_in_the_error_format(viewer_client: APIClient, catalog: Any) -> None:
    response = viewer_client.get("/api/v1/programs/NOPE")
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": "No program with id or external id 'NOPE'.",
            "details": {"key": "NOPE"},
        }
    }


def test_program_get_falls_back_to_external_id_for_digit_keys(catalog: Any) -> None:
    numeric = program_factory(external_id="987654")
    assert selectors.program_get(key="987654") == numeric
    assert selectors.program_get(key=catalog["news"].pk) == catalog["news"]
    with pytest.raises(NotFoundError):
        selectors.program_get(key="123456789")


def test_trends_weekly_for_a_program(viewer_client: APIClient, catalog: Any) -> None:
    program = program_factory(external_id="TREND1")
    # Two airings in the week of Mon 2025-01-06, one in the week of Mon 2025-01-13.
    airing_factory(program=program, start=datetime(2025, 1, 6, 20, tzinfo=NY), rating=2.0)
    airing_factory(program=program, start=datetime(2025, 1, 12, 23, 30, tzinfo=NY), rating=4.0)
    airing_factory(program=program, start=datetime(2025, 1, 13, 0, 30, tzinfo=NY), rating=6.0)
    response = viewer_client.get("/api/v1/programs/TREND1/trends", {"target": "rating", "period": "week"})
    assert response.status_code == 200
    assert response.json() == {
        "program": "TREND1",
        "target": "rating",
        "period": "week",
        "points": [
            {"period_start": "2025-01-06", "mean": 3.0, "count": 2},
            {"period_start": "2025-01-13", "mean": 6.0, "count": 1},
        ],
        "change_pct": 100.0,
        "direction": "up",
    }


def test_trends_reject_bad_parameters(viewer_client: APIClient, catalog: Any) -> None:
    response = viewer_client.get("/api/v1/programs/DRAMA1/trends", {"target": "likes"})
    assert response.status_code == 400
    assert "target" in response.json()["error"]["details"]
    response = viewer_client.get("/api/v1/programs/DRAMA1/trends", {"start": "2025-02-01", "end": "2025-01-01"})
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"end": ["end is before start."]}


def test_trend_series_by_month_genre_and_window(catalog: Any) -> None:
    program = program_factory(external_id="MONTH1", genre="sports", channel=catalog["nbc"])
    airing_factory(program=program, start=datetime(2025, 1, 31, 23, tzinfo=NY), audience=100.0)
    airing_factory(program=program, start=datetime(2025, 2, 1, 1, tzinfo=NY), audience=80.0)
    airing_factory(program=program, start=datetime(2025, 3, 15, 20, tzinfo=NY), audience=79.5)
    series = selectors.trend_series(target="audience", period="month", genre="sports")
    assert [(p.period_start, p.mean, p.count) for p in series.points] == [
        (date(2025, 1, 1), 100.0, 1),
        (date(2025, 2, 1), 80.0, 1),
        (date(2025, 3, 1), 79.5, 1),
    ]
    assert series.change_pct == pytest.approx(-20.5)
    assert series.direction == "down"
    window = selectors.trend_series(target="audience", period="month", channel="nbc", start=date(2025, 2, 1))
    assert [p.mean for p in window.points] == [80.0, 79.5]
    assert window.direction == "flat"  # -0.625 % is within the flat band
    only_feb = selectors.trend_series(target="audience", genre="sports", start=date(2025, 2, 1), end=date(2025, 2, 1))
    assert [p.count for p in only_feb.points] == [1]
    assert only_feb.change_pct is None


def test_top_programs(catalog: Any) -> None:
    top = selectors.top_programs(target="rating", n=2)
    assert [(t["external_id"], t["mean"], t["airings"]) for t in top] == [("DRAMA1", 7.0, 3), ("COM001", 3.5, 1)]
    assert top[0]["channel"] == "abc"
    assert [t["external_id"] for t in selectors.top_programs(target="rating", channel="nbc")] == ["COM001"]
    assert [t["external_id"] for t in selectors.top_programs(target="audience", genre="comedy")] == []
    since = selectors.top_programs(target="rating", since=date(2025, 1, 8))
    assert [(t["external_id"], t["mean"]) for t in since] == [("DRAMA1", 9.0)]
    with pytest.raises(ApplicationError):
        selectors.top_programs(target="likes")
    with pytest.raises(ApplicationError):
        selectors.top_programs(target="rating", n=0)


def test_session_authenticated_user_can_read_the_api(client: Any, viewer: Any, catalog: Any) -> None:
    client.force_login(viewer)
    response = client.get("/api/v1/programs")
    assert response.status_code == 200
    assert response.json()["count"] == 4
