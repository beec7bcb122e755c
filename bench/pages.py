"""Benchmark: server time and query count of every page on the demo data (target: < 300 ms each).

Runs in-process through Django's test client against the configured database, which must hold the demo
data (``make demo-data``; or point ``BMS_VAR_DIR`` / ``DATABASE_URL`` at another prepared database).
Everything the requests write (sessions, a chat session) is rolled back at the end. Server time = the
whole request through middleware, view, selectors and template rendering; median and max of 10 warm
requests. Writes the ``web`` section of docs/benchmarks.md (not with ``--no-write``).
Usage: ``.venv/bin/python bench/pages.py [--no-write]``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")

import django  # noqa: E402

django.setup()

from _report import write_section  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from programs.models import Airing, Program  # noqa: E402

RUNS = 10
TARGET_MS = 300.0


def user(role: str) -> User:
    account = User.objects.create_user(username=f"bench-{role}", password="x", is_staff=role == "admin")
    account.groups.add(Group.objects.get_or_create(name=role)[0])
    return account


@dataclass
class Measure:
    cold: float
    cold_cpu: float
    median: float
    median_cpu: float
    worst: float
    queries: int
    status: int


def measure(client: Client, url: str) -> Measure:
    """Wall and CPU ms (this process: the database's own time only shows in wall time with PostgreSQL)."""
    cache.clear()  # cold: the page's cached aggregates are computed by this request
    started, cpu = time.perf_counter(), time.process_time()
    client.get(url)
    cold, cold_cpu = (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000
    times, cpus = [], []
    queries = 0
    status = 0
    for _ in range(RUNS):
        with CaptureQueriesContext(connection) as ctx:
            started, cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
        queries = len(ctx.captured_queries)
        status = response.status_code
    return Measure(cold, cold_cpu, statistics.median(times), statistics.median(cpus), max(times), queries, status)


def main() -> int:
    airings = Airing.objects.count()
    if airings == 0:
        print("No broadcast data in the configured database: run `make demo-data` first.")
        return 1
    program = Program.objects.order_by("pk").first()
    assert program is not None
    rows = []
    with transaction.atomic():
        analyst, admin = Client(), Client()
        analyst.force_login(user("analyst"))
        admin.force_login(user("admin"))
        session_page = analyst.post("/chat/new")["Location"] if analyst.get("/chat/").status_code == 200 else None
        pages = [
            ("dashboard", analyst, "/"),
            ("programs list", analyst, "/programs/"),
            ("programs search + filter", analyst, f"/programs/?q={program.title.split()[0]}&ordering=-avg_audience"),
            ("program page (trends)", analyst, f"/programs/{program.external_id}/"),
            ("models", admin, "/models/"),
            ("schedule form", analyst, "/schedule/"),
            ("chat index", analyst, "/chat/"),
            ("monitoring", admin, "/monitoring/"),
        ]
        if session_page:
            pages.append(("chat session", analyst, session_page))
        for name, client, url in pages:
            m = measure(client, url)
            rows.append((name, url, m))
            print(
                f"{name:26s} {m.status} cold {m.cold:7.1f} ms (CPU {m.cold_cpu:6.1f})  median {m.median:7.1f} ms "
                f"(CPU {m.median_cpu:6.1f})  max {m.worst:7.1f} ms  {m.queries:3d} queries",
                flush=True,
            )
        transaction.set_rollback(True)
    ok = all(m.status == 200 and m.median < TARGET_MS for _, _, m in rows)
    table = "\n".join(
        f"| {name} | `{url}` | {m.status} | {m.cold:.1f} ({m.cold_cpu:.1f}) | {m.median:.1f} ({m.median_cpu:.1f}) | "
        f"{m.worst:.1f} | {m.queries} | {'yes' if m.median < TARGET_MS else 'NO'} |"
        for name, url, m in rows
    )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    body = (
        "## Web pages (server time)\n\n"
        f"`bench/pages.py`: every page on the demo data ({airings:,} airings, "
        f"{Program.objects.count():,} programs, {connection.vendor}), in-process through the test client "
        f"(middleware + view + selectors + template), {RUNS} warm requests each. Target: median < {TARGET_MS:.0f} ms.\n\n"
        "Cold = the first request after a cache clear (computes the cached chart series / ordered ids). In "
        "parentheses: CPU ms of the bench process (steadier than wall time on a loaded machine).\n\n"
        "| page | url | status | cold ms (CPU) | median ms (CPU) | max ms | queries | < 300 ms |\n"
        "|---|---|---|---|---|---|---|---|\n"
        f"{table}\n\nLoad average at the end: {load}.\n"
    )
    if "--no-write" not in sys.argv:
        write_section("web", body)
    print("all pages within target" if ok else "some pages miss the target")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
