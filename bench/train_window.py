"""Benchmark: what ``TRAINING_WINDOW_DAYS`` costs in test R² against training on all data.

Generates five years of the demo schedule (4 channels) into the configured database (a scratch one: the
broadcast data is replaced), fixes one untouched test period (the latest 20% of the windowed rows), and
fits the same model twice per target: on every airing before the test period, and on the window's
airings before it (``registry.training.training_airings``). Same features, same hyperparameters, same
test rows. Rewrites the ``scale-window`` section of docs/benchmarks.md.

Usage: ``.venv/bin/python bench/train_window.py [--algorithm xgboost] [--no-write]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from bench._report import write_section  # noqa: E402
from programs.generator import GeneratorConfig, generate  # noqa: E402
from programs.models import TARGETS  # noqa: E402
from registry.algorithms import ModelSpec, hyperparameters_for  # noqa: E402
from registry.features import airings_frame  # noqa: E402
from registry.training import Split, clean_target, fit_and_evaluate, time_split, training_airings  # noqa: E402

CONFIG = GeneratorConfig(days=1826)  # five years of the demo channels


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--algorithm", default="xgboost")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    generate(CONFIG, replace_existing=True)
    window = settings.TRAINING_WINDOW_DAYS
    full = airings_frame()
    windowed_ids = set(training_airings().values_list("pk", flat=True))
    print(f"{len(full):,} airings, {len(windowed_ids):,} in the {window}-day window", flush=True)
    rows = []
    for target in TARGETS:
        clean, _ = clean_target(full, target)
        clean = clean.sort_values("start", kind="stable")
        test_split = time_split(clean[clean.index.isin(windowed_ids)])
        cut = test_split.holdout_start
        test = clean[clean["start"] >= cut]
        spec = ModelSpec(
            algorithm=args.algorithm, target=target, hyperparameters=hyperparameters_for(args.algorithm), seed=42
        )
        scores = {}
        for label, train in (
            ("all", clean[clean["start"] < cut]),
            ("window", clean[(clean["start"] < cut) & clean.index.isin(windowed_ids)]),
        ):
            started = time.perf_counter()
            trained = fit_and_evaluate(spec, Split(train=train, holdout=test, holdout_start=cut), n_jobs=1, cv_splits=0)
            scores[label] = (trained.metrics["r2"], len(train), time.perf_counter() - started)
        rows.append((target, scores, len(test)))
        print(target, scores, flush=True)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    table = "\n".join(
        f"| {t} | {s['all'][1]:,} | {s['all'][0]:.4f} | {s['all'][2]:.0f} | {s['window'][1]:,} | {s['window'][0]:.4f} | "
        f"{s['window'][2]:.0f} | {s['window'][0] - s['all'][0]:+.4f} | {n:,} |"
        for t, s, n in rows
    )
    body = (
        "## Training window: test R² it costs (`bench/train_window.py`)\n\n"
        f"Five years of the demo schedule ({len(full):,} airings, 4 channels, PostgreSQL); `{args.algorithm}` "
        f"with its default hyperparameters, trained on all airings before the test period and on the latest "
        f"`TRAINING_WINDOW_DAYS={window}` days before it; both scored on the same untouched test period "
        "(the latest 20% of the window's airings).\n\n"
        "| target | rows (all) | test R² (all) | fit s | rows (window) | test R² (window) | fit s | R² cost of the window | test rows |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        f"{table}\n\nLoad average at the end: {load} (2 shared cores: fit seconds are upper bounds).\n"
    )
    print(body)
    if not args.no_write:
        write_section("scale-window", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
