"""Real-data check: audience models on Toonami ratings vs the per-show mean, on a time holdout.

Imports ../shared/data/real/toonami-ratings/export.csv with docs/mappings/toonami.json into its own
SQLite database (var/bench-toonami/), trains the six audience models with the registry pipeline
(same features, same time split: latest 20% held out), and compares the best model's holdout RMSE with
the baseline "mean audience of the show in the training period" (global training mean for new shows).
Writes section ``toonami`` of docs/benchmarks.md.

    .venv/bin/python bench/toonami.py [path/to/export.csv]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.pop("DATABASE_URL", None)
os.environ["BMS_VAR_DIR"] = str(ROOT / "var" / "bench-toonami")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# One thread per model: on a shared 2-core machine OpenMP pools (HistGradientBoosting, XGBoost) spin.
os.environ.setdefault("TRAINING_N_JOBS", "1")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.core.management import call_command  # noqa: E402

from bench._report import write_section  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared" / "data" / "real" / "toonami-ratings" / "export.csv"


def main() -> int:
    from programs.importer import ColumnMapping, airings_import
    from programs.models import Airing
    from registry import services
    from registry.models import ModelVersion, TrainingRun
    from registry.training import time_split, training_dataset

    csv = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CSV
    if not csv.exists():
        print(f"skipped: {csv} not found (the real datasets live outside the repository)")
        return 0
    call_command("migrate", verbosity=0)
    if not Airing.objects.exists():
        mapping = ColumnMapping.load(str(ROOT / "docs" / "mappings" / "toonami.json"))
        result = airings_import(path=str(csv), mapping=mapping, skip_invalid=True)
        print(f"imported: {result}")
    dataset = training_dataset(target="audience")
    split = time_split(dataset.frame)
    print(f"{dataset.rows} airings with audience (dropped {dataset.dropped}); holdout from {split.test_start}")

    run = services.training_run_start(trigger=TrainingRun.Trigger.MANUAL, targets=["audience"], dispatch=False)
    started = time.perf_counter()
    run = services.training_run_execute_inline(run=run)
    wall = time.perf_counter() - started
    versions = list(ModelVersion.objects.filter(run=run))
    best = max(versions, key=lambda v: v.r2 if v.r2 is not None else float("-inf"))

    train_y = split.train["audience"]
    show_mean = train_y.groupby(split.train["program_id"]).mean()
    baseline = split.test["program_id"].map(show_mean).fillna(train_y.mean()).to_numpy(dtype="float64")
    y = split.test["audience"].to_numpy(dtype="float64")
    baseline_rmse = float(np.sqrt(np.mean((y - baseline) ** 2)))
    baseline_r2 = 1.0 - float(np.sum((y - baseline) ** 2)) / float(np.sum((y - y.mean()) ** 2))

    lines = [
        "## Toonami (real data): best audience model vs per-show mean",
        "",
        f"`{csv.name}` imported with `docs/mappings/toonami.json`: {dataset.rows} airings with an audience "
        f"(dropped: {dataset.dropped}); time holdout = latest 20% ({len(split.test)} airings from "
        f"{split.test_start:%Y-%m-%d}). Audience in thousands of viewers.",
        "",
        "| model | holdout RMSE | holdout R² |",
        "|---|---|---|",
        f"| per-show mean of the training period (baseline) | {baseline_rmse:.1f} | {baseline_r2:.3f} |",
    ]
    for v in sorted(versions, key=lambda v: -(v.r2 or -9)):
        mark = " **(best)**" if v.pk == best.pk else ""
        lines.append(f"| {v.algorithm}{mark} | {v.metrics['rmse']:.1f} | {v.metrics['r2']:.3f} |")
    verdict = "beats" if best.metrics["rmse"] < baseline_rmse else "does NOT beat"
    lines += [
        "",
        f"Best model ({best.algorithm}) RMSE **{best.metrics['rmse']:.1f}** vs baseline **{baseline_rmse:.1f}**: "
        f"it {verdict} the per-show mean. Six audience models trained in {wall:.1f} s.",
    ]
    body = "\n".join(lines)
    print(body)
    write_section("toonami", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
