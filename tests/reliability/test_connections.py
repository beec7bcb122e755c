"""Streamed exports return their connection; killed PostgreSQL connections are survived."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from tests.reliability.conftest import NORMAL, Reliability

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.live_server, pytest.mark.slow]


def test_twenty_streamed_exports_then_normal_traffic_have_no_errors(reliability: Reliability) -> None:
    # 20 > the pools of all web workers (2 each, 2 x cores + 1 workers): a stream that kept its connection
    # would leave a worker without one within a few exports, and its next request would wait, then fail.
    with reliability.client() as client:
        sizes = []
        for n in range(20):
            response = client.post("/api/v1/export", json={"format": "csv", "dataset": "airings"})
            assert response.status_code == 200, (n, response.text[:300])
            sizes.append(response.text.count("\r\n"))
    with psycopg.connect(reliability.stack.env["DATABASE_URL"]) as conn:
        row = conn.execute("SELECT count(*) FROM programs_airing").fetchone()
    assert row is not None
    assert sizes == [row[0] + 1] * 20  # every export whole: header + every airing
    traffic = reliability.traffic(NORMAL * 20, users=8)
    assert traffic.server_errors() == 0, traffic.errors[:5]
    assert sum(traffic.statuses.values()) == 100
    pool = reliability.deep_health()["checks"]["database"]["pool"]
    assert (pool["max"], pool["waiting"]) == (2, 0)


def test_postgres_connections_killed_mid_traffic_are_survived(reliability: Reliability) -> None:
    database = reliability.stack.pg_db
    admin_url = reliability.stack.env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as background:
        during = background.submit(reliability.traffic, NORMAL * 1000, users=6, until=stop.is_set)
        kills = []
        with psycopg.connect(admin_url, autocommit=True) as admin:
            for _ in range(5):
                time.sleep(1)  # spaced out, so each kill lands among requests in flight
                row = admin.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                ).fetchone()
                kills.append(row[0] if row else 0)
        stop.set()
        traffic = during.result()
    assert sum(kills) > 0, "no connection was killed: the test proved nothing"
    after = reliability.traffic(NORMAL * 20, users=6)
    assert after.server_errors() == 0, after.errors[:5]
    assert set(after.statuses) == {200}
    print(
        f"pg_terminate_backend x5 ({sum(kills)} connections): during {dict(traffic.statuses)}, after {dict(after.statuses)}"
    )
