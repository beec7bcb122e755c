"""Mixed load against the production stack (section ``load`` of docs/benchmarks.md).

Starts gunicorn as docker/Dockerfile starts it (``bms/gunicorn_conf.py``: sync workers on ``bms.wsgi``, metrics
in multiprocess mode, PostgreSQL pool, Redis) with ``--web-workers`` sync workers (2 x cores + 1), and one
Celery worker, then:
1. 100 streamed exports in a row, then 20 concurrent users for ``--users-seconds``: errors (the
   "exports keep a connection" check).
2. An open-loop load: ``--rate`` requests per second for ``--seconds``, arrivals on a fixed schedule
   (a slow answer does not slow the arrivals; at most ``--max-in-flight`` requests are open, beyond
   that an arrival counts as an error), mixing lists (programs, models), predictions, chat (offline
   agent) and exports (a filtered CSV). Throughput, p50/p99 per kind and overall (timed from when each
   request was due, so a client that falls behind cannot hide server latency), errors (5xx, no answer,
   timeouts) and, apart, requests never sent (counted as errors, never as 0 ms answers).
Before 2., ``--profile-requests`` of each kind two at a time: the CPU each kind costs in the web
processes, the PostgreSQL backends of this database, the worker and this client (process CPU times).
Short development run: ``--seconds 60``.

Needs ``DATABASE_URL`` (a database of its own: migrated, filled with generated data and four small
production models on the first run; their artifacts stay under ``--var``) and ``REDIS_URL``. The server
listens on a port the OS hands out. The load generator shares the machine with the server: on a small or busy machine it takes
CPU from the server it measures.
Usage: ``DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/load.py [--rate 100] [--seconds 600]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._http import HttpError, RawClient, RawRequest, encode_request  # noqa: E402

BIN = Path(sys.executable).parent
P99_TARGET_MS = 250.0


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second (open loop)")
    parser.add_argument("--seconds", type=float, default=600.0, help="length of the mixed load")
    parser.add_argument("--max-in-flight", type=int, default=200)
    parser.add_argument(
        "--web-workers", type=int, default=2 * (os.cpu_count() or 1) + 1, help="gunicorn sync workers (2 x cores + 1)"
    )
    parser.add_argument(
        "--profile-requests", type=int, default=60, help="requests per kind for the CPU profile (0: skip it)"
    )
    parser.add_argument("--exports", type=int, default=100, help="exports in a row before the users")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--users-seconds", type=float, default=30.0)
    parser.add_argument("--var", default="/tmp/bms-bench-load", help="artifacts and logs (kept between runs)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    return parser.parse_args()


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(var: Path) -> dict[str, str]:
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        # bench/run_all.py runs every script: without the services this one has nothing to measure.
        print("bench/load.py skipped: set DATABASE_URL and REDIS_URL (it measures the production stack)")
        raise SystemExit(0)
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bms.settings",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-load-not-secret-0123456789",
            "BMS_VAR_DIR": str(var),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "THROTTLE_USER": "100000000/minute",
            "THROTTLE_CHAT": "100000000/minute",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


# --- setup (in this process, on the same database) ----------------------------------------------------


def _prepare() -> dict[str, Any]:
    """Migrate; data, a production model per target and an analyst API key (reused on later runs)."""
    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    from bench._setup import ServingData, serving_data_prepare
    from programs.models import TARGETS, Airing, Program
    from registry.selectors import production_models

    raw_key = serving_data_prepare(
        ServingData(channels=2, programs=80, days=90, algorithms=["elasticnet"]), username="bench-load"
    )
    programs = list(Program.objects.order_by("id").values_list("id", flat=True)[:50])
    last = Airing.objects.order_by("-start").values_list("start", flat=True).first()
    channel = Program.objects.values_list("channel__code", flat=True).first()
    assert last is not None
    rng = random.Random(7)
    predict_bodies = [
        {
            "program_id": rng.choice(programs),
            "target": rng.choice(list(production_models()) or list(TARGETS)),
            "features": {
                "start": (last.replace(minute=0, second=0, microsecond=0) - timedelta(days=rng.randint(0, 20)))
                .replace(hour=rng.choice([7, 12, 19, 20, 21]))
                .isoformat()
            },
        }
        for _ in range(200)
    ]
    week_start = (last - timedelta(days=7)).date().isoformat()
    return {"api_key": raw_key, "predict": predict_bodies, "channel": channel, "week_start": week_start}


# --- the stack -------------------------------------------------------------------------------------------


@dataclass
class Stack:
    env: dict[str, str]
    var: Path
    workers: int = 2
    port: int = field(default_factory=_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        web = ["gunicorn", "-c", str(ROOT / "bms" / "gunicorn_conf.py"), "--bind", f"127.0.0.1:{self.port}"]
        web += ["--workers", str(self.workers)]
        web_env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(self.var / "prometheus-multiproc")}
        worker = ["celery", "-A", "bms", "worker", "-l", "warning", "--concurrency", "1", "--without-gossip"]
        for name, argv, env in (("web", web, web_env), ("worker", worker, self.env)):
            with (self.var / f"{name}.log").open("wb") as log:
                argv[0] = str(BIN / argv[0])
                self.procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise SystemExit(f"gunicorn did not start; see {self.var / 'web.log'}")

    def cpu_seconds(self) -> dict[str, float]:
        """User + system CPU of the web processes (gunicorn's master and workers) and of the Celery worker."""
        from bench._report import process_tree_cpu

        return {name: process_tree_cpu(proc.pid) for name, proc in zip(("web", "worker"), self.procs, strict=True)}

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


# --- load ------------------------------------------------------------------------------------------------


@dataclass
class Results:
    """Latency of each answered request from the moment it was *due* (open loop: a client that falls
    behind shows up as latency, not as a faster server); requests never sent are counted apart."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unsent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    send_lag_ms: list[float] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    def record(self, kind: str, started: float, status: int, text: str = "") -> None:
        self.latencies[kind].append((time.perf_counter() - started) * 1000.0)
        if status >= 500 or status == 0:
            self.errors[kind] += 1
            if len(self.samples) < 5:
                self.samples.append(f"{kind}: {status} {text[:200]}")

    def record_unsent(self, kind: str, why: str) -> None:
        """Never sent (too many in flight, or the run ended first): an error with no latency at all."""
        self.unsent[kind] += 1
        if len(self.samples) < 5:
            self.samples.append(f"{kind}: unsent ({why})")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def _mix(setup: dict[str, Any], session: str) -> list[tuple[str, str, str, Any]]:
    """(kind, method, path, body), a cycle of 20: lists 50 %, predictions 30 %, chat 10 %, exports 10 %."""
    export = {
        "format": "csv",
        "dataset": "airings",
        "filters": {"channel": setup["channel"], "start": setup["week_start"]},
    }
    chat = {"session_id": session, "message": "top 5 programs by rating"}
    lists = [("list", "GET", "/api/v1/programs", None), ("list", "GET", "/api/v1/models", None)] * 5
    predicts = [("predict", "POST", "/api/v1/predict", body) for body in setup["predict"][:6]]
    others = [("chat", "POST", "/api/v1/chat", chat), ("export", "POST", "/api/v1/export", export)] * 2
    cycle = lists + predicts + others
    random.Random(3).shuffle(cycle)
    return cycle


def _encoded(url: str, headers: dict[str, str], mix: list[tuple[str, str, str, Any]]) -> list[tuple[str, RawRequest]]:
    """Each request of the mix encoded once (bench._http sends the same bytes every time)."""
    host = url.removeprefix("http://")
    return [(kind, encode_request(method, path, host, headers, body)) for kind, method, path, body in mix]


def _client(url: str, timeout: float) -> RawClient:
    host, _, port = url.removeprefix("http://").partition(":")
    return RawClient(host, int(port), timeout=timeout)


async def _send(client: RawClient, results: Results, kind: str, request: RawRequest, due: float | None = None) -> None:
    started = time.perf_counter() if due is None else due
    try:
        status, content = await client.request(request)
        results.record(kind, started, status, content.decode(errors="replace") if status >= 500 else "")
    except HttpError as exc:
        results.record(kind, started, 0, f"{type(exc).__name__}: {exc}")


async def _open_loop(
    url: str, headers: dict[str, str], mix: list[Any], rate: float, seconds: float, cap: int
) -> Results:
    """Arrivals every 1/rate s on a fixed schedule. A request is timed from when it was due; one that
    cannot be sent (``cap`` already in flight) is *unsent*, never a 0 ms answer. At most ``cap``
    connections (one per request in flight)."""
    results = Results()
    encoded = _encoded(url, headers, mix)
    async with _client(url, timeout=30) as client:
        in_flight: set[asyncio.Task[None]] = set()
        started = time.perf_counter()
        n = 0
        while (offset := n / rate) < seconds:
            due = started + offset
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                results.send_lag_ms.append(-delay * 1000.0)
            kind, request = encoded[n % len(encoded)]
            n += 1
            if len(in_flight) >= cap:
                results.record_unsent(kind, f"{cap} requests in flight")
                continue
            task = asyncio.create_task(_send(client, results, kind, request, due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
    return results


async def _profile(
    url: str, headers: dict[str, str], mix: list[Any], stack: Stack, per_kind: int, db_cpu: Any
) -> list[str]:
    """CPU per request of each kind: web processes, the Celery worker, PostgreSQL backends of this
    database, and this client, over ``per_kind`` requests sent two at a time (a quiet server)."""
    kinds: dict[str, list[tuple[str, RawRequest]]] = defaultdict(list)
    for kind, request in _encoded(url, headers, mix):
        kinds[kind].append((kind, request))
    lines = [
        "| kind | requests | web CPU ms/req | PostgreSQL CPU ms/req | worker CPU ms/req | client CPU ms/req "
        "| total ms/req | wall p50 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    async with _client(url, timeout=60) as client:
        for kind, requests in sorted(kinds.items()):
            results = Results()
            # db_cpu queries through Django, which refuses to from the event loop's thread.
            before, pg_before, client_before = stack.cpu_seconds(), await asyncio.to_thread(db_cpu), time.process_time()
            for i in range(0, per_kind, 2):
                pair = [requests[(i + j) % len(requests)] for j in range(2)]
                await asyncio.gather(*(_send(client, results, *req) for req in pair))
            after, pg_after, client_after = stack.cpu_seconds(), await asyncio.to_thread(db_cpu), time.process_time()
            n = sum(len(v) for v in results.latencies.values())
            per = {
                "web": (after["web"] - before["web"]) * 1000 / n,
                "pg": (pg_after - pg_before) * 1000 / n,
                "worker": (after["worker"] - before["worker"]) * 1000 / n,
                "client": (client_after - client_before) * 1000 / n,
            }
            lines.append(
                f"| {kind} | {n} | {per['web']:.1f} | {per['pg']:.1f} | {per['worker']:.1f} | {per['client']:.1f} "
                f"| {sum(per.values()):.1f} | {_pct(results.latencies[kind], 0.5):.1f} |"
            )
    return lines


async def _exports_then_users(
    url: str, headers: dict[str, str], setup: dict[str, Any], mix: list[Any], args: Any
) -> Results:
    results = Results()
    export = encode_request(
        "POST", "/api/v1/export", url.removeprefix("http://"), headers, {"format": "csv", "dataset": "airings"}
    )
    encoded = _encoded(url, headers, mix)
    async with _client(url, timeout=60) as client:
        for _ in range(args.exports):
            await _send(client, results, "export-in-a-row", export)
        deadline = time.perf_counter() + args.users_seconds

        async def user(offset: int) -> None:
            i = offset
            while time.perf_counter() < deadline:
                kind, request = encoded[i % len(encoded)]
                await _send(client, results, f"user-{kind}", request)
                i += 1

        await asyncio.gather(*(user(n) for n in range(args.users)))
    return results


def _table(results: Results, seconds: float) -> tuple[list[str], dict[str, float]]:
    lines = [
        "| requests | answered | errors (5xx, no answer) | unsent | p50 (ms) | p99 (ms) |",
        "|---|---|---|---|---|---|",
    ]
    every: list[float] = []
    for kind in sorted(set(results.latencies) | set(results.unsent)):
        values = results.latencies.get(kind, [])
        every += values
        lines.append(
            f"| {kind} | {len(values)} | {results.errors.get(kind, 0)} | {results.unsent.get(kind, 0)} "
            f"| {_pct(values, 0.5):.1f} | {_pct(values, 0.99):.1f} |"
        )
    unsent = sum(results.unsent.values())
    errors = sum(results.errors.values()) + unsent  # an unsent request is an error too
    figures = {
        "count": len(every),
        "errors": errors,
        "unsent": unsent,
        "p50": _pct(every, 0.5),
        "p99": _pct(every, 0.99),
        "late": len(results.send_lag_ms),
        "max_lag": max(results.send_lag_ms, default=0.0),
    }
    figures["throughput"] = len(every) / seconds if seconds else float("nan")
    lines.append(
        f"| **all** | {len(every)} | {sum(results.errors.values())} | {unsent} | {figures['p50']:.1f} "
        f"| {figures['p99']:.1f} |"
    )
    return lines, figures


def _db_cpu() -> float:
    """CPU seconds of the PostgreSQL backends connected to this database (same machine; 0 when not)."""
    import psutil
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [row[0] for row in cursor.fetchall()]
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def main() -> None:
    args = _args()
    var = Path(args.var)
    var.mkdir(parents=True, exist_ok=True)
    env = _env(var)
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY", "BMS_VAR_DIR")})
    setup = _prepare()
    stack = Stack(env=env, var=var, workers=args.web_workers)
    stack.start()
    wall_started = time.perf_counter()
    import uvloop

    try:
        # As behind the TLS-terminating proxy of docker-compose / the ingress (else SECURE_SSL_REDIRECT: 301).
        headers = {"X-API-Key": setup["api_key"], "X-Forwarded-Proto": "https"}
        created = httpx.post(f"{stack.url}/api/v1/sessions/create", json={}, headers=headers, timeout=30)
        if created.status_code != 201:
            raise SystemExit(f"sessions/create answered {created.status_code}: {created.text[:300]}")
        session = created.json()
        mix = _mix(setup, session["session_id"])
        print(
            f"{args.exports} exports in a row, then {args.users} users for {args.users_seconds:.0f} s ...", flush=True
        )
        first = uvloop.run(_exports_then_users(stack.url, headers, setup, mix, args))
        first_lines, first_figures = _table(first, 0)
        print("\n".join(first_lines), *first.samples, sep="\n", flush=True)
        profile_lines: list[str] = []
        if args.profile_requests:
            print(f"CPU profile: {args.profile_requests} requests per kind ...", flush=True)
            profile_lines = uvloop.run(_profile(stack.url, headers, mix, stack, args.profile_requests, _db_cpu))
            print("\n".join(profile_lines), flush=True)
        print(f"open loop: {args.rate:.0f} requests/s for {args.seconds:.0f} s ...", flush=True)
        load_before, pg_before, client_before = stack.cpu_seconds(), _db_cpu(), time.process_time()
        began = time.perf_counter()
        load = uvloop.run(_open_loop(stack.url, headers, mix, args.rate, args.seconds, args.max_in_flight))
        elapsed = time.perf_counter() - began
        load_after, pg_after, client_after = stack.cpu_seconds(), _db_cpu(), time.process_time()
        load_lines, figures = _table(load, elapsed)
        print("\n".join(load_lines), *load.samples, sep="\n", flush=True)
    finally:
        stack.stop()
    answered = max(figures["count"], 1)
    cpu = {
        "web": (load_after["web"] - load_before["web"]) * 1000 / answered,
        "worker": (load_after["worker"] - load_before["worker"]) * 1000 / answered,
        "PostgreSQL": (pg_after - pg_before) * 1000 / answered,
        "client": (client_after - client_before) * 1000 / answered,
    }
    # Share of the machine's cores the whole stack used during the open loop (all of it: aim <= ~60 % for p99).
    busy = sum(cpu.values()) * figures["throughput"] / (1000.0 * (os.cpu_count() or 1))
    cpu_line = (
        ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
        + f" (total {sum(cpu.values()):.1f}; {busy:.0%} of {os.cpu_count()} cores)"
    )
    verdict = "met" if figures["p99"] <= P99_TARGET_MS and figures["errors"] == 0 else "NOT met"
    load_avg = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    body = "\n".join(
        [
            "## Mixed load (bench/load.py)",
            "",
            f"gunicorn as docker/Dockerfile starts it, with {args.web_workers} sync workers "
            "(PostgreSQL pool each, metrics in multiprocess mode), Redis, one Celery worker, all on the same machine "
            "as the load generator (bench/_http.py: keep-alive connections, pre-encoded requests, httptools' parser, on uvloop). "
            f"Machine: {os.cpu_count()} CPUs, load average {load_avg} (1/5/15 min) at the end of the run; "
            f"the whole script took {time.perf_counter() - wall_started:.0f} s after setup. "
            f"Command: `bench/load.py --rate {args.rate:g} --seconds {args.seconds:g}`.",
            "",
            f"**{args.exports} streamed exports in a row, then {args.users} concurrent users for "
            f"{args.users_seconds:.0f} s** (lists, predictions, chat, exports): "
            f"{first_figures['count']} requests, **{first_figures['errors']:.0f} errors**.",
            "",
            *first_lines,
            "",
            *(
                [
                    f"**CPU per request of each kind** ({args.profile_requests} requests each, two at a time; "
                    "process CPU from /proc, so the figures hold on a busy machine better than wall times):",
                    "",
                    *profile_lines,
                    "",
                ]
                if profile_lines
                else []
            ),
            f"**Open loop, {args.rate:.0f} requests/s for {args.seconds:.0f} s** (lists 50 %, predictions 30 %, "
            f"chat 10 %, exports of one channel-week 10 %): {figures['throughput']:.1f} requests/s answered, "
            f"p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms (timed from when each request was due), "
            f"**{figures['errors']:.0f} errors** of which {figures['unsent']:.0f} never sent; the client sent "
            f"{figures['late']:.0f} requests late (at most {figures['max_lag']:.0f} ms). "
            f"CPU ms per answered request: {cpu_line}. "
            f"Target p99 <= {P99_TARGET_MS:.0f} ms and 0 errors: {verdict}.",
            "",
            *load_lines,
        ]
    )
    if not args.no_write:
        from bench._report import write_section

        write_section("load", body)
    print(
        f"\nthroughput {figures['throughput']:.1f}/s, p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms, "
        f"errors {figures['errors']:.0f} (unsent {figures['unsent']:.0f}); CPU ms/request: {cpu_line} ({verdict})"
    )


if __name__ == "__main__":
    main()
