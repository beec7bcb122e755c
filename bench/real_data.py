"""Real-data check: the six algorithms against the naive forecasts an analyst would use, per dataset and target.

Imports each real dataset (CSV outside the repository, read where it lies) with its shipped mapping in
``docs/mappings/`` into a fresh SQLite database of its own (``var/bench-real/<slug>/``), trains every
target the dataset has with the registry pipeline (one training run per target, six algorithms), and
writes section ``real-data`` of docs/benchmarks.md: per dataset and target, test RMSE and R² of the six
algorithms and of the four baselines, interval coverage, and whether the best model beats the best
baseline's test RMSE by at least 5%. For reference (not what the registry serves: one version per target
is promoted), also the plain average of the eligible models' test predictions.

    .venv/bin/python bench/real_data.py [--data-dir ../shared/data/real]
    .venv/bin/python bench/real_data.py --csv other.csv --mapping other.json [--name Other]   # any dataset, printed
    .venv/bin/python bench/real_data.py --keep 0.8   # held-out check: only the earliest 80% of airings, printed

Nothing here is tuned per dataset: the same import, pipeline and baselines run on every file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry.models import ModelVersion

ROOT = Path(__file__).resolve().parent.parent
MAPPINGS = ROOT / "docs" / "mappings"
MIN_ROWS = 40  # a target with fewer known values is not trained
MARGIN = 0.05  # the best model must beat the best baseline's test RMSE by this fraction


@dataclass(frozen=True)
class RealDataset:
    name: str
    csv: str  # relative to the data directory
    mapping: str  # in docs/mappings/


DATASETS = (
    RealDataset("American Idol", "american-idol-ratings/ratings.csv", "american-idol.json"),
    RealDataset("Survivor", "survivor-viewers/viewers.csv", "survivor.json"),
    RealDataset("Toonami", "toonami-ratings/export.csv", "toonami.json"),
)


def _default_data_dir() -> Path:
    for candidate in (ROOT.parent / "shared" / "data" / "real", ROOT.parent.parent / "shared" / "data" / "real"):
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "data" / "real"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


# --- one dataset, in its own process and database -------------------------------------------------
def run_one(name: str, csv: Path, mapping: Path, keep: float = 1.0) -> dict[str, object]:
    """Import, train and score one dataset (called in a child process with its own BMS_VAR_DIR).

    ``keep`` < 1: only the earliest ``keep`` share of the airings (by start) is kept after the import, so
    the test part is an earlier period than the one the full run reports on (a held-out check that the
    method was not shaped on the full run's test part)."""
    import django

    django.setup()
    from django.core.management import call_command

    from programs.importer import ColumnMapping, airings_import
    from programs.models import TARGETS, Airing

    call_command("migrate", verbosity=0)
    result = airings_import(path=str(csv), mapping=ColumnMapping.load(str(mapping)), skip_invalid=True)
    if keep < 1.0:
        starts = sorted(Airing.objects.values_list("start", flat=True))
        if starts:
            Airing.objects.filter(start__gte=starts[int(len(starts) * keep)]).delete()
    out: dict[str, object] = {
        "name": name if keep >= 1.0 else f"{name} (earliest {keep:.0%} of airings)",
        "csv": csv.name,
        "mapping": mapping.name,
        "rows_read": result.rows_read,
        "created": result.created,
        "rejected": len(result.rejects),
        "skipped": result.skipped_without_start,
        "programs": result.programs_created,
        "channels": result.channels_created,
        "targets": {},
    }
    targets: dict[str, object] = {}
    for target in TARGETS:
        known = Airing.objects.filter(**{f"{target}__isnull": False}).count()
        if known < MIN_ROWS:
            continue
        targets[target] = _score_target(target)
    out["targets"] = targets
    return out


def _score_target(target: str) -> dict[str, object]:
    from registry import services
    from registry.models import ModelVersion, TrainingRun
    from registry.training import BASELINES

    run = services.training_run_start(trigger=TrainingRun.Trigger.MANUAL, targets=[target], dispatch=False)
    started = time.perf_counter()
    run = services.training_run_execute_inline(run=run)
    wall = time.perf_counter() - started
    summary = (run.dataset or {}).get(target, {})
    models = {}
    for version in ModelVersion.objects.filter(run=run, target=target):
        m = version.metrics or {}
        models[version.algorithm] = {
            "rmse": m.get("test_rmse"),
            "r2": m.get("test_r2"),
            "val_r2": m.get("val_r2"),
            "coverage": m.get("interval_coverage") or {},
            "rejected": m.get("rejected") or "",
        }
    scores = (run.baselines or {}).get(target) or {}
    baselines = {name: {"rmse": scores[name]["rmse"], "r2": scores[name]["r2"]} for name in BASELINES if name in scores}
    eligible = [v for v in ModelVersion.objects.filter(run=run, target=target) if not (v.metrics or {}).get("rejected")]
    return {
        "average": _average(target, eligible),
        "rows": summary.get("rows"),
        "split": {k: summary.get(k) for k in ("n_train", "n_validation", "n_test", "test_start")},
        "seconds": round(wall, 1),
        "selected": ((run.selection or {}).get(target) or {}).get("algorithm"),
        "models": models,
        "baselines": baselines,
    }


def _average(target: str, versions: list[ModelVersion]) -> dict[str, object] | None:
    """Test RMSE and R² of the plain average of these versions' test predictions (loaded artifacts, as
    ``registry.services._score_on_test`` scores production): a reference for model averaging."""
    import numpy as np

    from registry import artifacts
    from registry.features import airings_frame
    from registry.training import regression_metrics, time_split, training_airings, training_dataset

    if not versions:
        return None
    test = time_split(training_dataset(target=target, frame=airings_frame(training_airings())).frame).test
    predictions = [np.asarray(artifacts.load_model(v).predict(test), dtype="float64") for v in versions]
    scores = regression_metrics(test[target].to_numpy(dtype="float64"), np.mean(predictions, axis=0))
    return {"rmse": scores["rmse"], "r2": scores["r2"], "members": len(versions)}


# --- the parent: one child per dataset, then the report -------------------------------------------
def _child(name: str, csv: Path, mapping: Path, keep: float = 1.0) -> dict[str, object]:
    var = ROOT / "var" / "bench-real" / _slug(name)
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        {
            "BMS_VAR_DIR": str(var),
            "DJANGO_SETTINGS_MODULE": "bms.settings",
            "LOG_LEVEL": "WARNING",
            "TRAINING_N_JOBS": env.get("TRAINING_N_JOBS", "1"),
        }
    )
    out = var / "result.json"
    cmd = [sys.executable, str(Path(__file__)), "--one", name, str(csv), str(mapping), str(out), str(keep)]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    return json.loads(out.read_text())


def _fmt(value: object, digits: int) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:,.{digits}f}"


def verdicts(result: dict[str, object]) -> list[tuple[str, str, float, float, bool]]:
    """(target, model chosen on validation, its test RMSE, best baseline's test RMSE, beats by MARGIN)."""
    rows = []
    for target, scores in result["targets"].items():  # type: ignore[attr-defined]
        models = {k: v for k, v in scores["models"].items() if isinstance(v["rmse"], float)}
        chosen = scores["selected"] or min(models, key=lambda k: models[k]["rmse"])
        baseline = min(v["rmse"] for v in scores["baselines"].values())
        rmse = models[chosen]["rmse"]
        rows.append((target, chosen, rmse, baseline, rmse <= (1 - MARGIN) * baseline))
    return rows


def _coverage(values: dict[str, float]) -> str:
    return " / ".join(_fmt(values.get(level), 3) for level in ("0.8", "0.9", "0.95")) if values else "-"


def report(results: list[dict[str, object]]) -> str:
    lines = [
        "## Real data: six algorithms vs four naive baselines, per dataset and target",
        "",
        "`bench/real_data.py`: each dataset imported with its shipped mapping, each target it has trained by the "
        "registry pipeline (time-ordered train / validation / test; the model is chosen on validation, "
        "everything below is measured on the untouched test part), the registry's baselines scored on the same "
        "test rows. Target: the chosen model's test RMSE at least 5% below the best baseline's.",
        "",
    ]
    for result in results:
        lines += [
            f"### {result['name']}",
            "",
            f"`{result['csv']}` with `docs/mappings/{result['mapping']}`: {result['rows_read']} rows, "
            f"{result['created']} airings, {result['skipped']} skipped, {result['rejected']} rejected; "
            f"{result['channels']} channels, {result['programs']} programs.",
            "",
        ]
        for target, scores in result["targets"].items():  # type: ignore[attr-defined]
            digits = 3 if target == "rating" else 1
            split = scores["split"]
            lines += [
                f"**{target}** ({scores['rows']} airings: {split['n_train']} train, {split['n_validation']} "
                f"validation, {split['n_test']} test from {str(split['test_start'])[:10]}; six models in "
                f"{scores['seconds']} s)",
                "",
                "| forecast | test RMSE | test R² | validation R² | interval coverage 80 / 90 / 95% |",
                "|---|---|---|---|---|",
            ]
            for name, s in sorted(scores["models"].items(), key=lambda kv: kv[1]["rmse"] or 9e99):
                mark = " **(chosen)**" if name == scores["selected"] else (" (rejected)" if s["rejected"] else "")
                lines.append(
                    f"| {name}{mark} | {_fmt(s['rmse'], digits)} | {_fmt(s['r2'], 3)} | {_fmt(s['val_r2'], 3)} "
                    f"| {_coverage(s['coverage'])} |"
                )
            average = scores.get("average")
            if average:
                lines.append(
                    f"| average of the {average['members']} eligible models (reference, not served) "
                    f"| {_fmt(average['rmse'], digits)} | {_fmt(average['r2'], 3)} | | |"
                )
            for name, s in sorted(scores["baselines"].items(), key=lambda kv: kv[1]["rmse"]):
                lines.append(f"| baseline: {name} | {_fmt(s['rmse'], digits)} | {_fmt(s['r2'], 3)} | | |")
            lines.append("")
    lines += ["### Verdict", "", "| dataset | target | chosen model | test RMSE | best baseline RMSE | gain | ≥ 5% | average of eligible: gain (reference) |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for result in results:
        for target, chosen, rmse, baseline, ok in verdicts(result):
            gain = 1 - rmse / baseline
            average = result["targets"][target].get("average")  # type: ignore[index]
            reference = f"{1 - average['rmse'] / baseline:+.1%}" if average else "-"
            lines.append(
                f"| {result['name']} | {target} | {chosen} | {rmse:,.3f} | {baseline:,.3f} | {gain:+.1%} | "
                f"{'yes' if ok else '**no**'} | {reference} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=_default_data_dir())
    parser.add_argument("--csv", type=Path, help="a dataset outside the repository (printed, not written)")
    parser.add_argument("--mapping", type=Path)
    parser.add_argument("--name", default="other dataset")
    parser.add_argument(
        "--keep", type=float, default=1.0, help="held-out check: keep the earliest share of airings (printed)"
    )
    parser.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        sys.path.insert(0, str(ROOT))
        name, csv, mapping, out, keep = args.one
        Path(out).write_text(json.dumps(run_one(name, Path(csv), Path(mapping), float(keep))))
        return 0
    if not 0.1 <= args.keep <= 1.0:
        parser.error("--keep must be between 0.1 and 1")
    if args.csv:
        if args.mapping is None:
            parser.error("--csv needs --mapping")
        results = [_child(args.name, args.csv.resolve(), args.mapping.resolve(), args.keep)]
        print(report(results))
        return 0 if all(ok for *_, ok in verdicts(results[0])) else 1
    results = []
    for dataset in DATASETS:
        csv = args.data_dir / dataset.csv
        if not csv.exists():
            print(f"skipped {dataset.name}: {csv} not found (the real datasets live outside the repository)")
            continue
        print(f"== {dataset.name}", flush=True)
        results.append(_child(dataset.name, csv, MAPPINGS / dataset.mapping, args.keep))
    if not results:
        return 0
    body = report(results)
    print(body)
    if args.keep < 1.0:
        return 0  # a held-out check is printed, not written
    sys.path.insert(0, str(ROOT))
    from bench._report import write_section

    write_section("real-data", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
