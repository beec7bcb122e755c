"""Benchmark: what ``TRAINING_WINDOW_DAYS`` costs in test R² against training on all data.

Generates five years of the demo schedule (4 channels) into the configured database (a scratch one: the
broadcast data is replaced), fixes one untouched test period (the latest 20% of the windowed rows), and
fits the same model twice per target: on every airing before the test period, and on the window's
airings before it (``registry.training.training_airings``). Same features, same hyperparameters, same
test rows. Rewrites the ``scale-window`` section of docs/benchmarks.md.

``--existing`` keeps the configured database's airings (e.g. a copy of the 5M ``bms_scale``) instead of
generating, and ``--against window`` compares with the day window alone (``TRAINING_MAX_AIRINGS=0``)
instead of every airing: what the row cap costs where the day window holds a million airings. That
writes the ``scale-window-cap`` section instead.

Usage: ``.venv/bin/python bench/train_window.py [--algorithm xgboost] [--days 1826] [--existing]
[--against all|window] [--targets rating,engagement] [--no-write]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import pandas as pd  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import override_settings  # noqa: E402

from bench._report import write_section  # noqa: E402
from programs.generator import GeneratorConfig, generate  # noqa: E402
from programs.models import TARGETS, Airing  # noqa: E402
from registry.algorithms import ModelSpec, hyperparameters_for  # noqa: E402
from registry.features import airings_frame  # noqa: E402
from registry.training import Split, fit_and_evaluate, time_split, training_airings, training_dataset  # noqa: E402

SECTION = "scale-window"
SECTION_CAP = "scale-window-cap"


@dataclass
class Fit:
    r2: float
    rows: int
    seconds: float
    cpu_seconds: float


def fit(spec: ModelSpec, train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame, cuts: Split) -> Fit:
    split = Split(
        train=train,
        validation=validation,
        test=test,
        validation_start=cuts.validation_start,
        test_start=cuts.test_start,
    )
    started, cpu = time.perf_counter(), time.process_time()
    trained = fit_and_evaluate(spec, split, n_jobs=1, cv_splits=0)
    return Fit(float(trained.metrics["r2"]), len(train), time.perf_counter() - started, time.process_time() - cpu)


def parts(frame: pd.DataFrame, cuts: Split) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train, validation and test rows of ``frame`` at the window run's cut points."""
    start = frame["start"]
    return (
        frame[start < cuts.validation_start],
        frame[(start >= cuts.validation_start) & (start < cuts.test_start)],
        frame[start >= cuts.test_start],
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--algorithm", default="xgboost")
    parser.add_argument("--days", type=int, default=1826, help="days of the demo schedule to generate (5 years)")
    parser.add_argument("--existing", action="store_true", help="use the database's airings, generate nothing")
    parser.add_argument("--against", choices=["all", "window"], default="all")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    if not args.existing:
        generate(GeneratorConfig(days=args.days), replace_existing=True)
    window = settings.TRAINING_WINDOW_DAYS
    cap = settings.TRAINING_MAX_AIRINGS
    if args.against == "window":
        with override_settings(TRAINING_MAX_AIRINGS=0):
            full = airings_frame(training_airings())
    else:
        full = airings_frame(Airing.objects.all())
    windowed = airings_frame(training_airings())
    total = Airing.objects.count()
    print(
        f"{total:,} airings; {len(full):,} compared with {len(windowed):,} (window {window} days, cap {cap:,})",
        flush=True,
    )
    rows = []
    for target in [t for t in args.targets.split(",") if t]:
        # Each side builds its dataset the way a run does (history features from its own rows), so the
        # window's cost includes the history it no longer sees. The cut points are the window run's own
        # (its validation and test parts); the all-data model trains on every airing before them.
        all_data = training_dataset(target=target, frame=full).frame
        win_data = training_dataset(target=target, frame=windowed).frame
        cuts = time_split(win_data)
        spec = ModelSpec(
            algorithm=args.algorithm, target=target, hyperparameters=hyperparameters_for(args.algorithm), seed=42
        )
        scores = {"all": fit(spec, *parts(all_data, cuts), cuts), "window": fit(spec, *parts(win_data, cuts), cuts)}
        test_rows = len(cuts.test)
        assert len(parts(all_data, cuts)[2]) == test_rows, "both sides must score the same test airings"
        rows.append((target, scores, test_rows))
        print(target, {k: asdict(v) for k, v in scores.items()}, flush=True)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    table = "\n".join(
        f"| {t} | {s['all'].rows:,} | {s['all'].r2:.4f} | {s['all'].seconds:.1f} ({s['all'].cpu_seconds:.1f}) | "
        f"{s['window'].rows:,} | {s['window'].r2:.4f} | {s['window'].seconds:.1f} ({s['window'].cpu_seconds:.1f}) | "
        f"{s['window'].r2 - s['all'].r2:+.4f} | {n:,} |"
        for t, s, n in rows
    )
    body = (
        "## Training window: test R² it costs (`bench/train_window.py`)\n\n"
        f"`.venv/bin/python bench/train_window.py --algorithm {args.algorithm} --days {args.days}`: "
        f"{args.days} days of the demo schedule ({len(full):,} airings, 4 channels, PostgreSQL); "
        f"`{args.algorithm}` with its default hyperparameters, without cross-validation, trained on every "
        f"airing before the validation part and on those of the latest `TRAINING_WINDOW_DAYS={window}` days "
        "before it. Each side builds its features as a run does (history from its own rows); both are scored "
        "on the same untouched test airings (the latest 20% of the window's airings, `registry.training.time_split`). "
        "Fit seconds are wall (CPU).\n\n"
        "| target | rows (all) | test R² (all) | fit s | rows (window) | test R² (window) | fit s | "
        "R² cost of the window | test rows |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        f"{table}\n\nLoad average at the end: {load} (2 cores shared with other engineers: fit seconds are "
        "upper bounds).\n"
    )
    if args.against == "window" or args.existing:
        side = "the day window alone (`TRAINING_MAX_AIRINGS=0`)" if args.against == "window" else "every airing"
        body = (
            "## Training row cap: test R² it costs (`bench/train_window.py --existing`)\n\n"
            f"`.venv/bin/python bench/train_window.py {' '.join(a for a in sys.argv[1:] if a != '--no-write')}` "
            f"on the configured database as it is ({total:,} airings): `{args.algorithm}` with its default "
            "hyperparameters, without cross-validation, trained on the airings of "
            f"{side} before the validation part ({len(full):,} airings in all) and on those the training run "
            f"reads (`TRAINING_WINDOW_DAYS={window}`, `TRAINING_MAX_AIRINGS={cap:,}`: {len(windowed):,}) "
            "before it; both scored on the same untouched test airings (the latest 20% of the capped "
            "airings). Fit seconds are wall (CPU).\n\n"
            "| target | rows (wider) | test R² (wider) | fit s | rows (run) | test R² (run) | fit s | "
            "R² cost | test rows |\n"
            "|---|---|---|---|---|---|---|---|---|\n"
            f"{table}\n\nLoad average at the end: {load} (2 cores shared with other engineers: fit seconds "
            "are upper bounds).\n"
        )
    print(body)
    if not args.no_write:
        write_section(SECTION_CAP if args.against == "window" or args.existing else SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
