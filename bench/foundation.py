"""Benchmark: generate the default synthetic data (~50k airings) and import a 50k-row CSV.

Runs against a throwaway test database of the configured engine (SQLite by default; set
DATABASE_URL for PostgreSQL), prints the figures and rewrites the ``foundation-data`` section of
docs/benchmarks.md. Usage: ``.venv/bin/python bench/foundation.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from bench._report import write_section  # noqa: E402
from programs.generator import GeneratorConfig, ceilings, generate, simulate  # noqa: E402
from programs.importer import CANONICAL_COLUMNS, airings_import  # noqa: E402
from programs.models import TARGETS, Airing  # noqa: E402

SECTION = "foundation-data"
IMPORT_ROWS = 50_000


def canonical_csv(path: Path, seed: int, rows: int) -> None:
    sim = simulate(GeneratorConfig(seed=seed))
    frame = sim.airings.head(rows).merge(
        sim.programs[["external_id", "title", "content_rating", "is_live"]], on="external_id"
    )
    frame = frame.merge(sim.channels[["code", "name"]], left_on="channel_code", right_on="code")
    out = frame.assign(
        channel=frame["name"],
        start=frame["start"].map(lambda t: t.isoformat()),
        is_premiere=frame["is_premiere"].map({True: "true", False: "false"}),
        is_live=frame["is_live"].map({True: "true", False: "false"}),
    )
    # The importer's canonical columns the simulation has, in their order (is_finale left out as before).
    out = out[[c for c in CANONICAL_COLUMNS if c in out.columns and c != "is_finale"]]
    out.to_csv(path, index=False)


def main() -> None:
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        config = GeneratorConfig()
        t = time.perf_counter()
        sim = simulate(config)
        simulate_s = time.perf_counter() - t
        ceiling = ceilings(sim)
        stats = generate(config)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "airings.csv"
            canonical_csv(path, seed=43, rows=IMPORT_ROWS)
            size_mb = path.stat().st_size / 1e6
            first = airings_import(path=path)
            again = airings_import(path=path)
        total = Airing.objects.count()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"Data generation and CSV import (`bench/foundation.py`, {connection.vendor}); load average at the end "
        f"{load} (the machine is shared, so these are upper bounds).",
        "",
        "| step | rows | seconds | target |",
        "|---|---|---|---|",
        f"| simulate (pure, default config seed 42) | {len(sim.airings):,} airings | {simulate_s:.1f} | |",
        f"| generate (simulate + bulk write {stats.channels} channels, {stats.programs} programs) "
        f"| {stats.airings:,} airings | {stats.seconds:.1f} | < 60 |",
        f"| import {IMPORT_ROWS:,}-row canonical CSV ({size_mb:.1f} MB, seed 43) onto the generated data "
        f"| {first.created:,} created | {first.seconds:.1f} | < 20 |",
        f"| re-import the same file (natural key, nothing changes) | {again.unchanged:,} unchanged "
        f"| {again.seconds:.1f} | |",
        "",
        "Noise ceilings of the default data (best R² on the latest 20% of airings): "
        + ", ".join(f"{t} {ceiling[t]:.3f}" for t in TARGETS)
        + f". Airings in the database after the run: {total:,}.",
    ]
    body = "\n".join(lines)
    print(body)
    write_section(SECTION, body)


if __name__ == "__main__":
    main()
