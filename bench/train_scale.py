"""Benchmark: the 24-model training run on a large database, then prediction latency there.

Runs against the configured ``DATABASE_URL`` as it is (e.g. a copy of the 5M-airing ``bms_scale`` made
with ``CREATE DATABASE bms_scale5 TEMPLATE bms_scale``; the airings are only read, the run writes the
registry tables and artifacts). Without ``REDIS_URL`` Celery runs eagerly, so
``registry.services.training_run_start`` (the path of ``POST /api/v1/training-runs``) trains the whole
run in this process: wall time, CPU time and peak RSS are this process's, with the phases read from the
run's rows (preparation = reading the window and building the datasets and baselines; the jobs; the
selection). Then in-process prediction latency with the production models, measured by
``bench/predict.py``'s in-process part; with ``--demo-database-url`` the same measurement is repeated
in a subprocess against a demo-sized database (same code, same engine) for the comparison.

Rewrites the ``scale-training-5m`` section of docs/benchmarks.md. ``--latency-compare`` skips training
(the configured database has production models from an earlier run) and writes only the comparison of
prediction latency with the demo-sized database, section ``scale-predict-5m``.
Usage: ``DATABASE_URL=postgres://.../bms_scale5 .venv/bin/python bench/train_scale.py
[--demo-database-url postgres://.../bms_train5m] [--latency-compare] [--no-cv] [--no-write]``

``--workers=N`` (needs ``REDIS_URL``: a Redis db of its own, flushed) trains instead on N real Celery
worker processes (``bench/train_workers.py``'s harness) and writes section ``scale-training-5m-workers``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("TRAINING_N_JOBS", "1")
os.environ.setdefault("ARTIFACT_ROOT", "/tmp/bms-bench-train-scale/artifacts")
os.environ["JOBS_IN_BACKGROUND"] = "0"  # the eager run in the calling thread, not on a background one
if not any(a.startswith("--workers") for a in sys.argv):  # eager: the whole run in this process
    for _name in ("REDIS_URL", "CELERY_BROKER_URL", "MONGO_URL"):
        os.environ.pop(_name, None)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from registry.services import TrainingOptions  # noqa: E402

SECTION = "scale-training-5m"
SECTION_PREDICT = "scale-predict-5m"
SECTION_WORKERS = "scale-training-5m-workers"


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def ensure_production() -> list[str]:
    """Every target with a model gets a production one (the run's gate may have kept some back)."""
    from programs.models import TARGETS
    from registry.models import ModelVersion
    from registry.services import model_version_promote

    forced = []
    for target in TARGETS:
        if ModelVersion.objects.filter(target=target, status=ModelVersion.Status.PRODUCTION).exists():
            continue
        versions = [v for v in ModelVersion.objects.filter(target=target) if v.r2 is not None]
        if versions:
            best = max(versions, key=lambda v: float(v.r2 or 0.0))
            model_version_promote(version=best, actor=None, reason="bench: best available", force=True)
            forced.append(target)
    return forced


def latency(repeats: int) -> dict[str, Any]:
    """Predictor warm-up (history state from every airing) and bench/predict.py's in-process figures."""
    from bench.predict import _in_process
    from predictions.lookups import get_lookups
    from programs.models import TARGETS

    forced = ensure_production()
    before = current_rss_mib()
    started, cpu = time.perf_counter(), time.process_time()
    lookups = get_lookups()
    for target in TARGETS:
        lookups.history(target)
    warm = {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}
    warm["rss_growth_mib"] = current_rss_mib() - before
    lines, figures = _in_process(repeats)
    return {"lines": lines, "figures": figures, "warm": warm, "forced": forced}


def train(options: TrainingOptions) -> dict[str, Any]:
    from programs.models import Airing
    from registry import services
    from registry.features import airings_frame  # noqa: F401 - imported before timing
    from registry.models import ModelVersion, TrainingRun
    from registry.training import training_airings

    total = Airing.objects.count()
    window = training_airings().count()
    print(f"{total:,} airings, {window:,} in the training window ({settings.TRAINING_WINDOW_DAYS} days)", flush=True)
    rss_before = current_rss_mib()
    started, cpu = time.perf_counter(), time.process_time()
    run = services.training_run_start(trigger=TrainingRun.Trigger.MANUAL, actor=None, options=options)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    run.refresh_from_db()
    if run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING):
        raise SystemExit(f"run {run.pk} is still {run.status}: it did not run in this process")
    jobs = list(run.jobs.order_by("started_at"))
    first_job = min((j.started_at for j in jobs if j.started_at), default=None)
    last_job = max((j.finished_at for j in jobs if j.finished_at), default=None)
    phases = {
        "prepare": (first_job - run.started_at).total_seconds() if first_job and run.started_at else None,
        "jobs": (last_job - first_job).total_seconds() if first_job and last_job else None,
        "select": (run.finished_at - last_job).total_seconds() if last_job and run.finished_at else None,
    }
    per_algorithm: dict[str, float] = {}
    for v in ModelVersion.objects.filter(run=run):
        per_algorithm[v.algorithm] = per_algorithm.get(v.algorithm, 0.0) + float(v.training_seconds or 0.0)
    print(f"run {run.pk} {run.status} in {wall:.0f} s wall, {cpu:.0f} s CPU, peak RSS {rss_mib():.0f} MiB", flush=True)
    return {
        "run": run,
        "total": total,
        "window": window,
        "wall": wall,
        "cpu": cpu,
        "rss_before": rss_before,
        "rss_peak": rss_mib(),
        "phases": phases,
        "per_algorithm": per_algorithm,
        "versions": ModelVersion.objects.filter(run=run).count(),
    }


def demo_latency(url: str, repeats: int, artifacts: str = "") -> dict[str, Any]:
    """The same latency measurement in a subprocess on another database (its own production models,
    whose files are under ``artifacts`` when given)."""
    env = {**os.environ, "DATABASE_URL": url}
    if artifacts:
        env["ARTIFACT_ROOT"] = artifacts
    out = subprocess.run(
        [sys.executable, __file__, "--latency-only", "--json", "--repeats", str(repeats)],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    result: dict[str, Any] = json.loads(line[len("BENCH ") :])
    return result


def summary(figures: dict[str, float]) -> dict[str, float]:
    service = [v for k, v in figures.items() if k.startswith("service/") and k.endswith("single_p50")]
    batch = [v for k, v in figures.items() if k.startswith("service/") and k.endswith("batch_p50")]
    model = [v for k, v in figures.items() if not k.startswith("service/") and k.endswith("single_p50")]
    return {
        "service_single_worst": max(service),
        "service_batch_worst": max(batch),
        "model_single_worst": max(model),
    }


def comparison(big: dict[str, Any], demo: dict[str, Any], airings: int) -> list[str]:
    b, d = summary(big["figures"]), summary(demo["figures"])
    return [
        f"| in-process p50 (ms) | demo size ({demo['airings']:,} airings) | {airings:,} airings |",
        "|---|---|---|",
        f"| worst production predict() | {d['service_single_worst']:.3f} | {b['service_single_worst']:.3f} |",
        f"| worst predict_batch(100) | {d['service_batch_worst']:.2f} | {b['service_batch_worst']:.2f} |",
        f"| worst single-row model call | {d['model_single_worst']:.3f} | {b['model_single_worst']:.3f} |",
        f"| predictor warm-up s (CPU s) | {demo['warm']['seconds']:.2f} ({demo['warm']['cpu']:.2f}) | "
        f"{big['warm']['seconds']:.2f} ({big['warm']['cpu']:.2f}) |",
        f"| RSS growth of the warm-up MiB | {demo['warm']['rss_growth_mib']:.0f} | {big['warm']['rss_growth_mib']:.0f} |",
    ]


def latency_compare(args: argparse.Namespace) -> int:
    from programs.models import Airing

    if not args.demo_database_url:
        print("--latency-compare needs --demo-database-url")
        return 1
    airings = Airing.objects.count()
    big = latency(args.repeats)
    demo = demo_latency(args.demo_database_url, args.repeats, args.demo_artifact_root)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    body = "\n".join(
        [
            "## Prediction latency at 5M airings against the demo size (`bench/train_scale.py --latency-compare`)",
            "",
            "The in-process measurement of `bench/predict.py` (the serving fast path per model, and the whole "
            "`predict()` / `predict_batch()` service with each target's production model) on the large database "
            "and, in a subprocess with the same code, on a demo-sized one (both PostgreSQL); the warm-up is the "
            "predictor's history state of every target, read from all airings once per process.",
            "",
            *comparison(big, demo, airings),
            "",
            f"Load average at the end: {load} (2 cores shared with other engineers).",
        ]
    )
    print(body)
    if not args.no_write:
        from bench._report import write_section

        write_section(SECTION_PREDICT, body)
    return 0


def on_workers(args: argparse.Namespace) -> int:
    from bench.train_workers import phases, run_once
    from programs.models import Airing
    from registry.models import ModelVersion
    from registry.training import training_airings

    if not settings.REDIS_URL:
        print("--workers needs REDIS_URL (a Redis database of its own: it is flushed)")
        return 1
    options = TrainingOptions(cv_splits=0) if args.no_cv else TrainingOptions()
    total, window = Airing.objects.count(), training_airings().count()
    seconds, cpu, run, _ = run_once(args.workers, options=options)
    parts = phases(run)
    models = ModelVersion.objects.filter(run=run).count()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    body = (
        f"## Training at 5M airings on {args.workers} Celery worker processes (`bench/train_scale.py --workers`)\n\n"
        f"`bench/train_scale.py {' '.join(a for a in sys.argv[1:] if a != '--no-write')}` on the same database "
        f"({total:,} airings, {window:,} in the training window): `celery worker` processes (prefork, concurrency "
        "1, `TRAINING_N_JOBS=1`) started by `bench/train_workers.py`'s harness, the run started by "
        "`training_run_start`, timed until it leaves RUNNING.\n\n"
        "| workers | wall s | CPU s of the workers | prepare / jobs / selection s | run | models |\n"
        "|---|---|---|---|---|---|\n"
        f"| {args.workers} | {seconds:.0f} | {cpu:.0f} | {parts.get('prepare', 0):.0f} / {parts.get('jobs', 0):.0f} / "
        f"{parts.get('select', 0):.0f} | {run.status} | {models} |\n\n"
        f"Load average at the end: {load} on 2 cores shared with other engineers.\n"
    )
    print(body)
    if not args.no_write:
        from bench._report import write_section

        write_section(SECTION_WORKERS, body)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--demo-database-url", default="")
    parser.add_argument("--demo-artifact-root", default="", help="ARTIFACT_ROOT of the demo database's models")
    parser.add_argument("--no-cv", action="store_true")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--latency-only", action="store_true")
    parser.add_argument("--latency-compare", action="store_true")
    parser.add_argument("--workers", type=int, default=0, help="train on N real Celery worker processes")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        print("bench/train_scale.py needs DATABASE_URL (PostgreSQL).")
        return 1
    call_command("migrate", verbosity=0)
    if args.latency_only:
        from programs.models import Airing

        result = latency(args.repeats)
        result["airings"] = Airing.objects.count()
        if args.json:
            print("BENCH " + json.dumps({k: v for k, v in result.items() if k != "lines"}))
        else:
            print("\n".join(result["lines"]))
        return 0
    if args.latency_compare:
        return latency_compare(args)
    if args.workers:
        return on_workers(args)
    options = TrainingOptions(cv_splits=0) if args.no_cv else TrainingOptions()
    trained = train(options)
    big = latency(args.repeats)
    demo = (
        demo_latency(args.demo_database_url, args.repeats, args.demo_artifact_root) if args.demo_database_url else None
    )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    run = trained["run"]
    phases = trained["phases"]
    algo = ", ".join(f"{a} {s:.0f}" for a, s in sorted(trained["per_algorithm"].items(), key=lambda kv: -kv[1]))
    b = summary(big["figures"])
    lines = [
        "## Training at 5M airings (`bench/train_scale.py`, PostgreSQL)",
        "",
        f"`DATABASE_URL=.../bms_scale5 .venv/bin/python bench/train_scale.py {' '.join(sys.argv[1:])}` on a copy "
        f"of the `bench/scale.py` database: {trained['total']:,} airings, of which {trained['window']:,} in the "
        f"training window (`TRAINING_WINDOW_DAYS={settings.TRAINING_WINDOW_DAYS}`). The 24 models through "
        "`training_run_start` (the API's path) with Celery eager, so the whole run is this one process, "
        f"`TRAINING_N_JOBS={settings.TRAINING_N_JOBS}`, run options {options.as_json() or 'default (3-fold CV per model)'}.",
        "",
        "| run | wall s | CPU s | peak RSS MiB (before the run) | models | prepare s | jobs s | selection s |",
        "|---|---|---|---|---|---|---|---|",
        f"| {run.pk} {run.status} | {trained['wall']:.0f} | {trained['cpu']:.0f} | {trained['rss_peak']:.0f} "
        f"({trained['rss_before']:.0f}) | {trained['versions']} | {phases['prepare'] or 0:.0f} | "
        f"{phases['jobs'] or 0:.0f} | {phases['select'] or 0:.0f} |",
        "",
        f"Training seconds per algorithm (4 targets, wall, incl. CV): {algo}.",
        "",
        f"Predictions at this size: predictor warm-up (history state of every target from all airings) "
        f"{big['warm']['seconds']:.1f} s ({big['warm']['cpu']:.1f} s CPU), RSS +{big['warm']['rss_growth_mib']:.0f} MiB; "
        f"worst production `predict()` p50 {b['service_single_worst']:.3f} ms, worst `predict_batch(100)` p50 "
        f"{b['service_batch_worst']:.2f} ms, worst single-row model call p50 {b['model_single_worst']:.3f} ms."
        + (f" Forced to production for the measurement: {', '.join(big['forced'])}." if big["forced"] else ""),
    ]
    if demo is not None:
        lines += ["", *comparison(big, demo, trained["total"])]
    lines += ["", "Per model at this size:", "", *big["lines"]]
    lines += [
        "",
        f"Load average at the end: {load} on 2 cores shared with other engineers: wall times overstate a quiet "
        "machine; the CPU seconds are the work.",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        from bench._report import write_section

        write_section(SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
