"""Benchmark: peak memory of a CSV import as the file grows (100k and 300k rows).

Each import runs in a fresh child process on a fresh SQLite file (migrated first), so the figure is the
import's own peak RSS growth (``ru_maxrss`` minus the RSS just before the import), not the parent's.
The file is the generator's default data (seed 43) repeated with shifted starts, written as the canonical
CSV (bench/foundation.py). Usage: ``.venv/bin/python bench/import_memory.py`` (rewrites the
``import-memory`` section of docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SECTION = "import-memory"
SIZES = (100_000, 300_000)
# The same script on the importer before it read in chunks (commit adb866b: every row, the whole frame
# and a dict per row held at once), run 2026-12-02 01:03 UTC on this machine, load average 10.9.
BEFORE = "before the chunked reader: 100,000 rows 548 MB peak (241 MB growth); 300,000 rows 1,040 MB (732 MB)"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(path: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from programs.importer import airings_import

    before = _rss_bytes()
    started = time.perf_counter()
    result = airings_import(path=path)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"created": result.created, "seconds": seconds, "peak": peak, "before": before}))


def write_csv(path: Path, rows: int) -> None:
    import pandas as pd

    from bench.foundation import canonical_csv

    base_path = path.with_suffix(".base.csv")
    canonical_csv(base_path, seed=43, rows=10**9)
    base = pd.read_csv(base_path, dtype=str, keep_default_na=False)
    starts = pd.to_datetime(base["start"], utc=True, format="ISO8601").dt.tz_convert("America/New_York")
    parts, total, k = [], 0, 0
    while total < rows:
        part = base.assign(start=(starts + pd.Timedelta(days=1500 * k)).map(lambda t: t.isoformat()))
        parts.append(part.head(rows - total))
        total += len(parts[-1])
        k += 1
    pd.concat(parts).to_csv(path, index=False)
    base_path.unlink()


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")
    import django

    django.setup()
    from bench._report import machine, write_section

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in SIZES:
            path = Path(tmp) / f"airings-{rows}.csv"
            write_csv(path, rows)
            env = {
                k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "BMS_REQUIRE_SERVICES")
            }
            env["BMS_VAR_DIR"] = str(Path(tmp) / f"var-{rows}")
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path)], env=env, capture_output=True, text=True, check=True
            )
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            results.append((rows, path.stat().st_size / 1e6, figures))
            print(rows, figures, flush=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"Peak memory of `airings_import` (`bench/import_memory.py`, sqlite, a child process per file); "
        f"{machine()}; load average at the end {load}.",
        "",
        "| rows | file MB | created | seconds | peak RSS MB | growth during the import MB |",
        "|---|---|---|---|---|---|",
    ]
    for rows, size_mb, f in results:
        lines.append(
            f"| {rows:,} | {size_mb:.0f} | {f['created']:,} | {f['seconds']:.1f} | {f['peak'] / 2**20:.0f} "
            f"| {(f['peak'] - f['before']) / 2**20:.0f} |"
        )
    lines += [
        "",
        f"For comparison, {BEFORE}. What still grows with the file is the validated rows the write stage "
        "takes as one list (`_Row`, strings interned) and the write's own tuples; reading, mapping and "
        "validation hold one chunk (`CHUNK_ROWS`) at a time.",
    ]
    body = "\n".join(lines)
    print(body)
    write_section(SECTION, body)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
