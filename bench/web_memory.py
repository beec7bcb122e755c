"""Memory of the web pod's gunicorn (section ``web-memory`` of docs/benchmarks.md), against its limits.

Starts gunicorn as the image starts it (``bms/gunicorn_conf.py``: sync workers on ``bms.wsgi``, each worker
loads the production models when it starts, metrics in multiprocess mode) with ``--workers`` workers (5:
the production overlay's WEB_CONCURRENCY) on the demo database (``manage.py bootstrap_demo``: the demo
data and its 24 models, made on the first run in ``--var`` and reused), sends ``--requests`` predictions
(``POST /api/v1/predict``, every target, ``--concurrency`` connections so that every worker takes some),
and reads each process's memory before and after:

- RSS: what ``ps`` shows; pages shared between processes (the interpreter, libraries) count in each.
- USS: pages only that process has (its heap: the models, caches).
- the pod's estimate: the USS added up, plus the shared pages once (the largest ``RSS - USS`` of one
  process: the interpreter and libraries every worker maps). A container's memory cgroup is charged each
  page once, so this is the figure to hold against ``resources.limits.memory`` (deploy/k8s: production 2Gi
  for 5 workers). PSS is not: on a host where other processes map the same venv, it hands part of the
  shared pages to them, and the RSS sum counts them once per process (the upper bound).

Usage: ``.venv/bin/python bench/web_memory.py [--workers 5] [--requests 1000] [--var /tmp/bms-bench-web-memory]``
(the first run trains the demo models: about 25 minutes on 2 busy cores).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._setup import serving_env  # noqa: E402

MIB = 2**20


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--var", default="/tmp/bms-bench-web-memory")
    parser.add_argument("--workers", type=int, default=5, help="gunicorn sync workers (production: 5)")
    parser.add_argument("--requests", type=int, default=1000, help="predictions sent after the warm-up")
    parser.add_argument("--concurrency", type=int, default=10, help="connections at once")
    parser.add_argument("--limit-mib", type=int, default=2048, help="the pod's memory limit to compare with")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/benchmarks.md")
    return parser.parse_args()


def _prepare(var: Path) -> tuple[str, list[bytes]]:
    """The demo database (made once), an analyst's API key and the request bodies."""
    os.environ.update(serving_env(var))
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from bms.services import api_key_create
    from programs.models import Airing, Program
    from registry.selectors import production_models

    call_command("migrate", verbosity=0)
    call_command("bootstrap_demo")
    targets = sorted(production_models())
    assert targets, "bootstrap_demo left no production model"
    user = User.objects.filter(username="bench-memory").first()
    if user is None:
        user = User.objects.create_user("bench-memory", password="bench-memory-pw-not-secret")
        user.groups.add(Group.objects.get_or_create(name="analyst")[0])
    _, key = api_key_create(user=user, name=f"bench-memory {time.time():.0f}")
    rng = random.Random(7)
    programs = list(Program.objects.order_by("id").values_list("id", flat=True)[:200])
    last = Airing.objects.order_by("-start").values_list("start", flat=True).first()
    assert last is not None
    bodies = []
    for _ in range(500):
        start = last.replace(minute=0, second=0, microsecond=0, hour=rng.choice([7, 12, 18, 19, 20, 21, 22]))
        start -= timedelta(days=rng.randint(0, 30))
        body = {
            "program_id": rng.choice(programs),
            "target": rng.choice(targets),
            "features": {"start": start.isoformat()},
        }
        bodies.append(json.dumps(body).encode())
    return key, bodies


def _memory(pid: int) -> dict[int, tuple[float, float, float]]:
    """RSS, PSS and USS (MiB) of the master ``pid`` and each of its children, by pid."""
    import psutil

    master = psutil.Process(pid)
    out = {}
    for proc in [master, *master.children()]:
        info = proc.memory_full_info()
        out[proc.pid] = (info.rss / MIB, info.pss / MIB, info.uss / MIB)
    return out


def _table(
    before: dict[int, tuple[float, float, float]], after: dict[int, tuple[float, float, float]], master: int
) -> list[str]:
    rows = [
        "| process | RSS after start (MiB) | after the requests: RSS | PSS | USS (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for pid in sorted(after, key=lambda p: (p != master, p)):
        name = "master" if pid == master else f"worker {pid}"
        rss0 = before.get(pid, (float("nan"), 0.0, 0.0))[0]
        rss, pss, uss = after[pid]
        rows.append(f"| {name} | {rss0:.0f} | {rss:.0f} | {pss:.0f} | {uss:.0f} |")
    return rows


def main() -> None:
    args = _args()
    var = Path(args.var)
    var.mkdir(parents=True, exist_ok=True)
    key, bodies = _prepare(var)

    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    mp_dir = var / "prometheus-multiproc"
    env = {**serving_env(var), "WEB_CONCURRENCY": str(args.workers), "PROMETHEUS_MULTIPROC_DIR": str(mp_dir)}
    log = (var / "gunicorn.log").open("wb")
    gunicorn = [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", str(ROOT / "bms" / "gunicorn_conf.py")]
    proc = subprocess.Popen(
        [*gunicorn, "--bind", f"127.0.0.1:{port}"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while (var / "gunicorn.log").read_text(errors="replace").count("worker ready") < args.workers:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not start; see {var / 'gunicorn.log'}")
            time.sleep(0.5)
        time.sleep(2)
        before = _memory(proc.pid)
        headers = {"X-API-Key": key, "Content-Type": "application/json"}

        def post(i: int) -> int:
            # A new connection per request (sync workers close it anyway): the kernel spreads them over the workers.
            return httpx.post(
                f"{base}/api/v1/predict", content=bodies[i % len(bodies)], headers=headers, timeout=60
            ).status_code

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            statuses = list(pool.map(post, range(args.requests)))
        seconds = time.perf_counter() - started
        bad = [s for s in statuses if s != 200]
        assert not bad, f"{len(bad)} predictions failed (first status {bad[0]})"
        time.sleep(1)
        after = _memory(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    workers = [v for pid, v in after.items() if pid != proc.pid]
    total_rss = sum(m[0] for m in after.values())
    total_pss = sum(m[1] for m in after.values())
    pod = sum(m[2] for m in after.values()) + max(m[0] - m[2] for m in after.values())
    lines = [
        f"gunicorn (bms/gunicorn_conf.py), {args.workers} sync workers, demo models (`bootstrap_demo`), "
        f"{args.requests} `POST /api/v1/predict` at {args.concurrency} connections ({seconds:.1f} s), then:",
        "",
        *_table(before, after, proc.pid),
        "",
        f"- per worker after the requests: RSS {min(w[0] for w in workers):.0f}-{max(w[0] for w in workers):.0f} MiB, "
        f"USS {min(w[2] for w in workers):.0f}-{max(w[2] for w in workers):.0f} MiB",
        f"- the pod (USS added up + the shared pages once): {pod:.0f} MiB against a limit of {args.limit_mib} MiB: "
        f"{100 * pod / args.limit_mib:.0f}% (PSS added up {total_pss:.0f} MiB; RSS added up, the upper bound, "
        f"{total_rss:.0f} MiB: {100 * total_rss / args.limit_mib:.0f}%)",
        "",
        f"Command: `.venv/bin/python bench/web_memory.py --workers {args.workers} --requests {args.requests}`",
    ]
    print("\n".join(lines))
    if not args.no_write:
        from bench._report import write_section

        write_section("web-memory", "## Web pod memory (gunicorn)\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
