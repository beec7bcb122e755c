"""Train the 24 models on the default demo data and write section ``training`` of docs/benchmarks.md.

Uses its own SQLite database and artifact directory under var/bench-train/ (unless DATABASE_URL is
set), generates the default demo data there once (programs.generator defaults, seed 42), runs the same
in-process pipeline as ``manage.py train_models``, and reports: the 4 x 6 holdout R² table, the
generator's ceilings, the production model per target and its gap to the ceiling, the run's wall time,
and the time to load all 24 artifacts (and the 4 production ones).

    .venv/bin/python bench/train.py [--fresh] [--seed N]

``--seed N`` (not 42) trains on another draw of the same generator, in its own directory
var/bench-train-seedN, and only prints: a check that a change is general, not fitted to seed 42's
test part. docs/benchmarks.md keeps the default seed's section.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_SEED = 42


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fresh", action="store_true", help="regenerate the demo data first")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the generator's seed (default 42)")
    args = parser.parse_args()
    if args.seed != DEFAULT_SEED and os.environ.get("DATABASE_URL") and not args.fresh:
        parser.error("--seed with DATABASE_URL needs --fresh (that database holds another seed's data)")
    return args


ARGS = _args()
if not os.environ.get("DATABASE_URL"):
    suffix = "" if ARGS.seed == DEFAULT_SEED else f"-seed{ARGS.seed}"
    os.environ.setdefault("BMS_VAR_DIR", str(ROOT / "var" / f"bench-train{suffix}"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# One thread per model by default: on a shared 2-core machine OpenMP pools (HistGradientBoosting,
# XGBoost) spin-wait and slow everything down; scale out with Celery workers instead.
os.environ.setdefault("TRAINING_N_JOBS", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from bench._report import write_section  # noqa: E402


def main() -> int:
    args = ARGS
    from programs.generator import GeneratorConfig, ceilings, generate, simulate
    from programs.models import TARGETS, Airing
    from registry import artifacts, services
    from registry.algorithms import ALGORITHMS
    from registry.models import ModelVersion, TrainingRun

    call_command("migrate", verbosity=0)
    config = GeneratorConfig(seed=args.seed)
    if args.fresh or not Airing.objects.exists():
        started = time.perf_counter()
        stats = generate(config, replace_existing=True)
        print(f"generated demo data in {time.perf_counter() - started:.1f}s: {stats}")
    ceiling = ceilings(simulate(config))
    rows = Airing.objects.count()
    print(f"{rows} airings; ceilings: " + ", ".join(f"{t} {ceiling[t]:.3f}" for t in TARGETS))

    run = services.training_run_start(trigger=TrainingRun.Trigger.MANUAL, dispatch=False)
    started = time.perf_counter()
    cpu_started = time.process_time()

    def progress(job: object, outcome: services.JobOutcome) -> None:
        print(f"  {job} -> {outcome.status} {outcome.error[:120]}", flush=True)

    run = services.training_run_execute_inline(run=run, progress=progress)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    load = os.getloadavg()[1]
    print(
        f"run {run.pk}: {run.status} in {wall:.1f}s ({run.models_done}/{run.models_total}, failed {run.models_failed})"
    )

    versions = {(v.target, v.algorithm): v for v in ModelVersion.objects.filter(run=run)}
    t0 = time.perf_counter()
    for version in versions.values():
        artifacts.load_model(version)
    load_all = time.perf_counter() - t0
    production = {v.target: v for v in ModelVersion.objects.filter(status=ModelVersion.Status.PRODUCTION)}
    t0 = time.perf_counter()
    for version in production.values():
        artifacts.load_model(version)
    load_production = time.perf_counter() - t0
    print(
        f"load all {len(versions)}: {load_all * 1000:.0f} ms; load {len(production)} production: {load_production * 1000:.0f} ms"
    )

    lines = [
        "## Training: 6 algorithms x 4 targets on the default demo data",
        "",
        f"Demo data: `programs.generator` defaults (seed {config.seed}, {config.channels} channels, "
        f"{config.programs} programs, {config.days} days) = {rows} airings; time-ordered parts train 70% / "
        f"validation 10% / test = latest 20% (the generator's ceiling is computed on the same latest 20%). "
        f"`TRAINING_N_JOBS={settings.TRAINING_N_JOBS}`, seed {run.seed}. Test R² (chosen on validation; CV = 3 "
        "expanding time folds on the training part; features include each airing's history):",
        "",
        "| algorithm | " + " | ".join(TARGETS) + " |",
        "|---|" + "---|" * len(TARGETS),
    ]
    for algorithm in ALGORITHMS:
        cells = []
        for target in TARGETS:
            v = versions.get((target, algorithm))
            cells.append("failed" if v is None or v.r2 is None else f"{v.r2:.3f}")
        lines.append(f"| {algorithm} | " + " | ".join(cells) + " |")
    lines.append("| **generator ceiling** | " + " | ".join(f"**{ceiling[t]:.3f}**" for t in TARGETS) + " |")
    baselines = run.baselines or {}
    names = [n for n in (baselines.get(TARGETS[0]) or {}) if n != "best"]
    for name in names:
        cells = [f"{baselines[t][name]['r2']:.3f}" if t in baselines else "" for t in TARGETS]
        lines.append(f"| baseline: {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| target | production model | test R² | ceiling | gap | > 0.7 and within 0.02 | 80/90/95% interval coverage (test) |",
        "|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for target in TARGETS:
        v = production.get(target)
        if v is None or v.r2 is None:
            lines.append(f"| {target} | none | | {ceiling[target]:.3f} | | no |")
            verdicts.append(False)
            continue
        gap = ceiling[target] - v.r2
        ok = v.r2 > 0.7 and gap <= 0.02
        verdicts.append(ok)
        cov = v.metrics.get("interval_coverage") or {}
        coverage = " / ".join(f"{cov[k]:.3f}" for k in ("0.8", "0.9", "0.95") if k in cov)
        lines.append(
            f"| {target} | {v.algorithm} v{v.version} | {v.r2:.3f} | {ceiling[target]:.3f} | {gap:.3f} | "
            f"{'yes' if ok else 'no'} | {coverage} |"
        )
    fit_total = sum(v.training_seconds for v in versions.values())
    lines += [
        "",
        f"- whole {run.models_total}-model run (in-process, incl. dataset load, CV, importance, artifacts, selection): "
        f"**{wall:.1f} s** wall (target < 300 s), {cpu:.1f} s CPU (all threads of this process); "
        f"sum of per-model training seconds {fit_total:.1f} s; machine load average during the run ~{load:.1f} "
        "(other work shares these 2 cores, so wall time overstates an idle machine)",
        f"- loading all {len(versions)} artifacts (sha256 + skops/UBJ/cbm): **{load_all * 1000:.0f} ms** (target < 1 s); "
        f"the {len(production)} production models: {load_production * 1000:.0f} ms",
        f"- every target within 0.02 of its ceiling: **{'yes' if all(verdicts) else 'no'}**",
    ]
    body = "\n".join(lines)
    print(body)
    if args.seed == DEFAULT_SEED:
        write_section("training", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
