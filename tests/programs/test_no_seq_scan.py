"""No request path scans the airings: every query the main endpoints run is planned by PostgreSQL.

The table is seeded with the default demo data (~57k airings) and ANALYZEd, so the planner's choice is
the one it makes on real data: a selective predicate with a usable index gets an index or bitmap
scan, and a query that needs every airing (an aggregate over all of them) gets a sequential scan or
a full index scan. Disabling ``enable_seqscan`` instead would hide exactly those: PostgreSQL then
answers ``COUNT(*)`` with a full index-only scan. So the check fails on a sequential scan of airings
and on an index scan of airings without an index condition.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from programs import selectors
from programs.generator import generate
from programs.models import Airing, Program
from tests.programs.factories import SMALL_CONFIG

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
AIRINGS = Airing._meta.db_table


@pytest.fixture
def seeded(db: Any) -> Program:
    generate()  # the demo data: 4 channels, 300 programs, ~57k airings
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {AIRINGS}")
    program = Program.objects.filter(stats__airing_count__gt=0).order_by("-stats__airing_count").first()
    assert program is not None
    return program


def _airing_scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    if plan.get("Relation Name") == AIRINGS:
        found.append(plan)
    for child in plan.get("Plans", []):
        found += _airing_scans(child)
    return found


def _full_scans(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    bad = []
    for node in _airing_scans(plan):
        kind = node["Node Type"]
        if kind == "Seq Scan" or (kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node):
            bad.append(f"{kind} on {AIRINGS}")
    return bad


def _check(run: Any) -> int:
    """Run ``run``, EXPLAIN every query it sent that reads airings; return how many were checked."""
    with CaptureQueriesContext(connection) as queries:
        run()
    checked = 0
    for query in queries.captured_queries:
        sql = query["sql"]
        if AIRINGS not in sql or not sql.lstrip().upper().startswith("SELECT"):
            continue
        checked += 1
        assert _full_scans(sql) == [], sql
    return checked


def test_main_endpoints_never_scan_all_airings_and_the_check_catches_one(
    seeded: Program, viewer_client: APIClient, viewer: Any
) -> None:
    web = Client()
    web.force_login(viewer)
    key = seeded.external_id
    api_urls = [
        "/api/v1/programs",
        "/api/v1/programs?ordering=-avg_audience",
        "/api/v1/programs?ordering=last_airing",
        "/api/v1/programs?ordering=-airing_count&genre=drama",
        "/api/v1/programs?channel=northstar-one&search=news&ordering=avg_rating",
        f"/api/v1/programs/{key}",
        f"/api/v1/programs/{key}/trends",
        f"/api/v1/programs/{key}/trends?period=month&target=revenue&start=2024-03-10&end=2025-02-14",
    ]
    for url in api_urls:
        response = viewer_client.get(url)
        assert response.status_code == 200, url
    for url in ["/", "/programs/", "/programs/?ordering=-avg_audience&genre=drama", f"/programs/{key}/"]:
        assert web.get(url).status_code == 200, url

    checked = 0
    for url in api_urls:
        checked += _check(lambda url=url: viewer_client.get(url))
    for url in ["/", "/programs/?ordering=-avg_revenue", f"/programs/{key}/"]:
        checked += _check(lambda url=url: web.get(url))
    # What the chat tools call: rankings over a time range and genre / channel trends.
    checked += _check(lambda: selectors.top_programs(target="audience", n=5, since=date(2025, 6, 17)))
    checked += _check(lambda: selectors.top_programs(target="rating", n=5, channel="northstar-one", genre="drama"))
    checked += _check(
        lambda: selectors.trend_series(
            target="audience", period="week", genre="news", start=date(2024, 2, 7), end=date(2025, 9, 3)
        )
    )
    checked += _check(lambda: selectors.trend_series(target="rating", period="month", channel="metro-seven"))
    # The latest airings (API detail, program page), a program's weekly trend and the partial edges of
    # ranges do read airings (the program page's monthly trends read its month summaries).
    assert checked >= 8
    # And the check does catch what the pages did before the summaries (one seeding for both: it is slow).
    assert _full_scans(f"SELECT program_id, AVG(rating) FROM {AIRINGS} GROUP BY program_id") != []
    assert _full_scans(f"SELECT COUNT(*) FROM {AIRINGS}") != []


def _airing_nodes_analyzed(sql: str, params: Any) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        raw = cursor.fetchone()[0]
    return _airing_scans((json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"])


@pytest.mark.django_db(transaction=True)  # VACUUM cannot run in the test's transaction
def test_a_programs_weekly_trend_reads_only_the_covering_index() -> None:
    """A program's weekly trend is the one series read from airings over the program's whole history: the
    (program, start) index carries the targets, so once the table is vacuumed (autovacuum does it after a
    bulk write) PostgreSQL answers from the index alone, without a heap page per airing."""
    generate(SMALL_CONFIG)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {AIRINGS}")
    program = Program.objects.order_by("-stats__airing_count").first()
    assert program is not None
    assert program.stats.airing_count > 30
    for target in ("rating", "engagement"):
        with CaptureQueriesContext(connection) as queries:
            series = selectors.trend_series(target=target, period="week", program=program)
        assert (
            sum(p.count for p in series.points)
            == Airing.objects.filter(program=program, **{f"{target}__isnull": False}).count()
        )
        reads = [q["sql"] for q in queries.captured_queries if AIRINGS in q["sql"]]
        assert len(reads) == 1
        # The captured text has its parameters inlined; EXPLAIN it as sent.
        nodes = _airing_nodes_analyzed(reads[0], None)
        assert [(n["Node Type"], n["Index Name"], n["Heap Fetches"]) for n in nodes] == [
            ("Index Only Scan", "airing_program_start_targets", 0)
        ]
    # A column the index does not carry needs the heap: the check tells the two apart.
    nodes = _airing_nodes_analyzed(f"SELECT SUM(duration_minutes) FROM {AIRINGS} WHERE program_id = %s", [program.pk])
    assert nodes
    assert all(n["Node Type"] != "Index Only Scan" for n in nodes)
