"""Benchmark: the 24-model training run on real Celery workers — 1 worker process vs 2, and a killed worker.

Needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL: a scratch database and Redis db, the broadcast data
is replaced by the demo data). For each case it starts ``celery worker`` subprocesses (prefork, one
process per model at a time), starts a run through ``registry.services.training_run_start`` (the same
path as ``POST /api/v1/training-runs``) and times it until the run leaves RUNNING:

- 1 worker process; 2 worker processes (the fan-out: one task per model);
- 2 worker processes, one pool process SIGKILLed while it trains: acks_late + reject_on_worker_lost
  redeliver its model, and the run must still end SUCCEEDED with 24 models.

Give it a Redis database no other process uses (``REDIS_URL=redis://.../N``): it flushes that database
before each case, and anything else that clears the cache there while it runs (another bench's
``cache.clear()``, which is a FLUSHDB when cache and broker share the database) deletes the queued
training messages, so the run waits for jobs that will never arrive.

Rewrites the ``scale-training`` section of docs/benchmarks.md.
Every case starts from the same registry state (no production model: the selection of a later case
would otherwise also score the earlier case's champions). The default size (365 days of the demo
schedule, 3-fold CV) keeps the whole command within about 8 minutes on a quiet 2-core machine.
Usage: ``.venv/bin/python bench/train_workers.py [--no-cv] [--days=365] [--no-write]``
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("TRAINING_N_JOBS", "1")

import django  # noqa: E402

django.setup()

import psutil  # noqa: E402
import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db.models import Count, Max, Min  # noqa: E402

from bench._report import write_section  # noqa: E402
from programs.generator import generate  # noqa: E402
from programs.models import Airing  # noqa: E402
from registry import services  # noqa: E402
from registry.models import ModelVersion, TrainingJob, TrainingRun  # noqa: E402

SECTION = "scale-training"
TIMEOUT_S = 3600


def start_workers(n: int) -> list[subprocess.Popen[bytes]]:
    log = ROOT / "var" / "bench-train-workers.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "celery"),
                "-A",
                "bms",
                "worker",
                "--concurrency",
                "1",
                "--pool",
                "prefork",
                "-n",
                f"bench{i}@%h",
                "-l",
                "WARNING",
            ],
            cwd=ROOT,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "TRAINING_N_JOBS": "1"},
        )
        for i in range(n)
    ]


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        w.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.wait(timeout=60)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()


def pool_children(worker: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return psutil.Process(worker.pid).children(recursive=True)


def cpu_seconds(workers: list[subprocess.Popen[bytes]]) -> float:
    """CPU time of the worker processes so far: each main process, its reaped pool processes, live ones."""
    total = 0.0
    for w in workers:
        try:
            main = psutil.Process(w.pid)
            times = main.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
            for child in main.children(recursive=True):
                t = child.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


def phases(run: TrainingRun) -> dict[str, float]:
    """Seconds of the run's serial start (claim, dataset, baselines), its jobs, and its selection."""
    first = run.jobs.aggregate(first=Min("started_at"), last=Max("finished_at"))
    out: dict[str, float] = {}
    if run.started_at and first["first"]:
        out["prepare"] = (first["first"] - run.started_at).total_seconds()
    if first["first"] and first["last"]:
        out["jobs"] = (first["last"] - first["first"]).total_seconds()
    if first["last"] and run.finished_at:
        out["select"] = (run.finished_at - first["last"]).total_seconds()
    return out


def run_once(
    workers: int, *, kill_one: bool = False, options: services.TrainingOptions
) -> tuple[float, float, TrainingRun, int]:
    redis.Redis.from_url(str(settings.CELERY_BROKER_URL)).flushdb()  # no message of an earlier case
    # The same start for every case: no production model to score in the selection (a bench database).
    ModelVersion.objects.filter(status=ModelVersion.Status.PRODUCTION).update(status=ModelVersion.Status.ARCHIVED)
    procs = start_workers(workers)
    time.sleep(8)  # let them connect before the fan-out
    killed = 0
    cpu_started = cpu_seconds(procs)
    try:
        started = time.perf_counter()
        run = services.training_run_start(trigger=TrainingRun.Trigger.MANUAL, actor=None, options=options)
        while True:
            run.refresh_from_db()
            if run.status not in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING):
                break
            if time.perf_counter() - started > TIMEOUT_S:
                raise SystemExit(f"run {run.pk} still {run.status} after {TIMEOUT_S} s")
            done = run.jobs.filter(status=TrainingJob.Status.SUCCEEDED).count()
            if kill_one and not killed and done >= 4:
                running = run.jobs.filter(status=TrainingJob.Status.RUNNING).count()
                children = pool_children(procs[0])
                if running and children:
                    children[0].send_signal(signal.SIGKILL)  # the pool process training a model
                    killed = 1
                    print(f"  killed pool process {children[0].pid} with {done} models done", flush=True)
            time.sleep(1)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds(procs) - cpu_started
    finally:
        stop(procs)
    return seconds, cpu, run, killed


def main() -> int:
    if not settings.REDIS_URL or "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        print("bench/train_workers.py needs DATABASE_URL (PostgreSQL) and REDIS_URL.")
        return 1
    # --no-cv: skip the 3 cross-validation refits per model (4x less work; the fan-out is what is measured).
    options = services.TrainingOptions(cv_splits=0) if "--no-cv" in sys.argv else services.TrainingOptions()
    call_command("migrate", verbosity=0)
    days = int(next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--days=")), "365"))
    begun = time.perf_counter()
    generate(replace_existing=True, days=days)  # the demo schedule (730 days by default)
    rows = Airing.objects.count()
    print(f"{rows:,} airings; training window {settings.TRAINING_WINDOW_DAYS} days", flush=True)
    results = []
    loads = []
    kills = 0
    for label, workers, kill in (
        ("1 worker process", 1, False),
        ("2 worker processes", 2, False),
        ("2 worker processes, one killed mid-run", 2, True),
    ):
        load_before = os.getloadavg()[0]
        seconds, cpu, run, killed = run_once(workers, kill_one=kill, options=options)
        loads.append((load_before, os.getloadavg()[0]))
        models = ModelVersion.objects.filter(run=run).count()
        jobs = dict(run.jobs.values("status").annotate(n=Count("id")).values_list("status", "n"))
        parts = phases(run)
        print(
            f"{label}: {seconds:.0f} s ({cpu:.0f} s CPU), run {run.status}, {models} models, jobs {jobs}, "
            f"phases {parts}",
            flush=True,
        )
        results.append((label, seconds, cpu, run.status, models, jobs, parts))
        kills += killed
    one, two = results[0][1], results[1][1]
    cpu_one, cpu_two = results[0][2], results[1][2]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    table = "\n".join(
        f"| {label} | {seconds:.0f} | {cpu:.0f} | {parts.get('prepare', 0):.0f} / {parts.get('jobs', 0):.0f} / "
        f"{parts.get('select', 0):.0f} | {status} | {models} | "
        f"{', '.join(f'{k} {v}' for k, v in sorted(jobs.items()))} | {before:.1f} -> {after:.1f} |"
        for (label, seconds, cpu, status, models, jobs, parts), (before, after) in zip(results, loads, strict=True)
    )
    killed_run = results[2]
    no_loss = killed_run[3] == TrainingRun.Status.SUCCEEDED and killed_run[4] == 24
    elapsed = time.perf_counter() - begun
    body = (
        "## Training on real Celery workers (`bench/train_workers.py`, PostgreSQL + Redis)\n\n"
        f"`.venv/bin/python bench/train_workers.py {' '.join(a for a in sys.argv[1:] if a != '--no-write')}`: "
        f"The 24 models (6 algorithms x 4 targets) on the demo schedule over {days} days ({rows:,} airings), one Celery task per "
        f"model, `TRAINING_N_JOBS=1`, run options {options.as_json() or 'default (3-fold CV per model)'}, each worker process "
        "trains one model at a time (prefork, concurrency 1). "
        "Wall time from `training_run_start` to the run leaving RUNNING; CPU: the worker processes' own (the same "
        "work either way, so a wall ratio far from the CPU ratio is the machine's load). Target: 2 processes "
        "<= 60% of 1.\n\n"
        "| case | seconds (wall) | CPU s of the workers | prepare / jobs / selection s | run | models registered | "
        "jobs | 1-min load before -> after |\n|---|---|---|---|---|---|---|---|\n"
        f"{table}\n\n"
        f"2 processes / 1 process: **{two / one:.0%}** wall (target <= 60%); CPU {cpu_two / max(cpu_one, 1e-9):.0%}. "
        f"Killed worker ({kills} pool process SIGKILLed while training): run {killed_run[3]}, {killed_run[4]} models "
        f"({'no model lost, no run stuck' if no_loss else 'NOT every model registered'}). "
        f"Whole command {elapsed / 60:.1f} min. Load average at the end: {load} on 2 cores; a load above 2 means "
        "other work shared the cores with the workers.\n"
    )
    print(body)
    if "--no-write" not in sys.argv:
        write_section(SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
