"""Mixed load against the production stack (section ``load`` of docs/benchmarks.md).

Starts uvicorn as docker/Dockerfile starts it (``bms.asgi``, one process, PostgreSQL pool, Redis) and
one Celery worker, then:
1. 100 streamed exports in a row, then 20 concurrent users for ``--users-seconds``: errors (the
   "exports keep a connection" check).
2. An open-loop load: ``--rate`` requests per second for ``--seconds``, arrivals on a fixed schedule
   (a slow answer does not slow the arrivals; at most ``--max-in-flight`` requests are open, beyond
   that an arrival counts as an error), mixing lists (programs, models), predictions, chat (offline
   agent) and exports (a filtered CSV). Throughput, p50/p99 per kind and overall, errors (5xx, no
   answer, timeouts).

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
BIN = Path(sys.executable).parent
P99_TARGET_MS = 250.0


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second (open loop)")
    parser.add_argument("--seconds", type=float, default=600.0, help="length of the mixed load")
    parser.add_argument("--max-in-flight", type=int, default=200)
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
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from bms.services import api_key_create
    from programs.generator import generate
    from programs.models import TARGETS, Airing, Program
    from registry.models import ModelVersion
    from registry.selectors import production_models
    from registry.services import model_version_promote, training_run_execute_inline, training_run_start

    call_command("migrate", verbosity=0)
    if not Program.objects.exists():
        print("generating data ...", flush=True)
        generate(seed=42, channels=2, programs=80, days=90)
    if not ModelVersion.objects.exists():
        print("training 4 small models (once) ...", flush=True)
        run = training_run_start(trigger="manual", algorithms=["elasticnet"], options={"cv_splits": 0}, dispatch=False)
        training_run_execute_inline(run=run)
    production = production_models()
    for target in TARGETS:
        if target not in production:
            best = ModelVersion.objects.filter(target=target).order_by("-id").first()
            if best is not None:
                model_version_promote(version=best, actor=None, reason="bench: load")
    user = User.objects.filter(username="bench-load").first()
    if user is None:
        user = User.objects.create_user("bench-load", password="bench-load-pw-not-secret")
        user.groups.add(Group.objects.get_or_create(name="analyst")[0])
    _, raw_key = api_key_create(user=user, name=f"bench load {time.time():.0f}")
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
    port: int = field(default_factory=_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        web = ["uvicorn", "bms.asgi:application", "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log"]
        worker = ["celery", "-A", "bms", "worker", "-l", "warning", "--concurrency", "1", "--without-gossip"]
        for name, argv in (("web", web), ("worker", worker)):
            with (self.var / f"{name}.log").open("wb") as log:
                argv[0] = str(BIN / argv[0])
                self.procs.append(subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise SystemExit(f"uvicorn did not start; see {self.var / 'web.log'}")

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
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)

    def record(self, kind: str, started: float, status: int, text: str = "") -> None:
        self.latencies[kind].append((time.perf_counter() - started) * 1000.0)
        if status >= 500 or status == 0:
            self.errors[kind] += 1
            if len(self.samples) < 5:
                self.samples.append(f"{kind}: {status} {text[:200]}")


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


async def _send(client: httpx.AsyncClient, results: Results, kind: str, method: str, path: str, body: Any) -> None:
    started = time.perf_counter()
    try:
        response = await client.request(method, path, json=body)
        await response.aread()
        results.record(kind, started, response.status_code, response.text if response.status_code >= 500 else "")
    except httpx.HTTPError as exc:
        results.record(kind, started, 0, f"{type(exc).__name__}: {exc}")


async def _open_loop(
    url: str, headers: dict[str, str], mix: list[Any], rate: float, seconds: float, cap: int
) -> Results:
    results = Results()
    limits = httpx.Limits(max_connections=cap, max_keepalive_connections=cap)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30, limits=limits) as client:
        in_flight: set[asyncio.Task[None]] = set()
        started = time.perf_counter()
        n = 0
        while (due := n / rate) < seconds:
            delay = started + due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            kind, method, path, body = mix[n % len(mix)]
            n += 1
            if len(in_flight) >= cap:
                results.record(kind, time.perf_counter(), 0, "client: too many requests in flight")
                continue
            task = asyncio.create_task(_send(client, results, kind, method, path, body))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
    return results


async def _exports_then_users(
    url: str, headers: dict[str, str], setup: dict[str, Any], mix: list[Any], args: Any
) -> Results:
    results = Results()
    export = {"format": "csv", "dataset": "airings"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        for _ in range(args.exports):
            await _send(client, results, "export-in-a-row", "POST", "/api/v1/export", export)
        deadline = time.perf_counter() + args.users_seconds

        async def user(offset: int) -> None:
            i = offset
            while time.perf_counter() < deadline:
                kind, method, path, body = mix[i % len(mix)]
                await _send(client, results, f"user-{kind}", method, path, body)
                i += 1

        await asyncio.gather(*(user(n) for n in range(args.users)))
    return results


def _table(results: Results, seconds: float) -> tuple[list[str], dict[str, float]]:
    lines = ["| requests | count | errors | p50 (ms) | p99 (ms) |", "|---|---|---|---|---|"]
    every: list[float] = []
    for kind in sorted(results.latencies):
        values = results.latencies[kind]
        every += values
        lines.append(
            f"| {kind} | {len(values)} | {results.errors.get(kind, 0)} | {_pct(values, 0.5):.1f} | {_pct(values, 0.99):.1f} |"
        )
    errors = sum(results.errors.values())
    figures = {"count": len(every), "errors": errors, "p50": _pct(every, 0.5), "p99": _pct(every, 0.99)}
    figures["throughput"] = len(every) / seconds if seconds else float("nan")
    lines.append(f"| **all** | {len(every)} | {errors} | {figures['p50']:.1f} | {figures['p99']:.1f} |")
    return lines, figures


def main() -> None:
    args = _args()
    var = Path(args.var)
    var.mkdir(parents=True, exist_ok=True)
    env = _env(var)
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY", "BMS_VAR_DIR")})
    setup = _prepare()
    stack = Stack(env=env, var=var)
    stack.start()
    try:
        headers = {"X-API-Key": setup["api_key"]}
        session = httpx.post(f"{stack.url}/api/v1/sessions/create", json={}, headers=headers, timeout=30).json()
        mix = _mix(setup, session["session_id"])
        print(
            f"{args.exports} exports in a row, then {args.users} users for {args.users_seconds:.0f} s ...", flush=True
        )
        first = asyncio.run(_exports_then_users(stack.url, headers, setup, mix, args))
        first_lines, first_figures = _table(first, 0)
        print("\n".join(first_lines), *first.samples, sep="\n", flush=True)
        print(f"open loop: {args.rate:.0f} requests/s for {args.seconds:.0f} s ...", flush=True)
        began = time.perf_counter()
        load = asyncio.run(_open_loop(stack.url, headers, mix, args.rate, args.seconds, args.max_in_flight))
        load_lines, figures = _table(load, time.perf_counter() - began)
        print("\n".join(load_lines), *load.samples, sep="\n", flush=True)
    finally:
        stack.stop()
    verdict = "met" if figures["p99"] <= P99_TARGET_MS and figures["errors"] == 0 else "NOT met"
    body = "\n".join(
        [
            "## Mixed load (bench/load.py)",
            "",
            "uvicorn as docker/Dockerfile starts it (one process, `ASGI_THREADS` 16, PostgreSQL pool), Redis, "
            "one Celery worker, all on the same machine as the load generator (an asyncio httpx client).",
            "",
            f"**{args.exports} streamed exports in a row, then {args.users} concurrent users for "
            f"{args.users_seconds:.0f} s** (lists, predictions, chat, exports): "
            f"{first_figures['count']} requests, **{first_figures['errors']:.0f} errors**.",
            "",
            *first_lines,
            "",
            f"**Open loop, {args.rate:.0f} requests/s for {args.seconds:.0f} s** (lists 50 %, predictions 30 %, "
            f"chat 10 %, exports of one channel-week 10 %): {figures['throughput']:.1f} requests/s answered, "
            f"p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms, **{figures['errors']:.0f} errors** "
            f"(target p99 <= {P99_TARGET_MS:.0f} ms and 0 errors: {verdict}).",
            "",
            *load_lines,
        ]
    )
    if not args.no_write:
        from bench._report import write_section

        write_section("load", body)
    print(
        f"\nthroughput {figures['throughput']:.1f}/s, p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms, errors {figures['errors']:.0f} ({verdict})"
    )


if __name__ == "__main__":
    main()
