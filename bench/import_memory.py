"""Benchmark: peak memory of a CSV import as the file grows (50k, 300k and 1M rows).

Each import runs in a fresh child process on a fresh SQLite file (migrated first), so the figure is the
import's own peak RSS growth (the child's ``VmHWM`` minus its RSS just before the import), not the
parent's. Not ``ru_maxrss``: on Linux a child started with fork/vfork + exec inherits the parent's
high-water mark in it, and the parent holds the generated file as a pandas frame (that alone made the
growth look like 0.3 KB per row before).
The file is the generator's default data (seed 43) repeated with shifted starts, written as the canonical
CSV (bench/foundation.py). Usage: ``.venv/bin/python bench/import_memory.py [ROWS ...]`` (default
50000 300000 1000000; rewrites the ``import-memory`` section of docs/benchmarks.md, ``import-postgres``
with ``--postgres``). The import runs on
the embedded SQLite (its slower per-chunk ORM writer); ``--postgres`` runs it against DATABASE_URL
instead (a scratch database: the broadcast tables are emptied first).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SECTION = "import-memory"
SECTION_POSTGRES = "import-postgres"  # the same figures for the PostgreSQL bulk path
SIZES = (50_000, 300_000, 1_000_000)
# The same script on the importer before it read in chunks (commit adb866b: every row, the whole frame
# and a dict per row held at once), run 2026-12-02 01:03 UTC on this machine, load average 10.9.
BEFORE = "before the chunked reader: 100,000 rows 548 MB peak (241 MB growth); 300,000 rows 1,040 MB (732 MB)"
# And with the chunked reader but one write of every validated row (commit adc1609), same machine, load ~10.
BEFORE_WRITE = "with chunked reading but one write at the end: 300,000 rows peaked at 733 MB"


# Why the SQLite growth used to rise (measured 2026-12-02 on a 200k-row file) and what fixed it.
SQLITE_NOTE = (
    "SQLite's growth used to rise with the file (75 -> 118 -> 184 MB at 50k / 300k / 1M rows): SQLite's own "
    "memory, not Python's (tracemalloc flat; `sqlite3_memory_used` 26 -> 36 -> 42 MB over a 200k-row import), "
    "held by the connection's prepared-statement cache (Python's default, 128 statements), because the "
    "summaries' multi-row upserts (`bms.db.rows_accumulate`) have a different SQL text for each batch length. "
    "`bms/settings.py` now opens SQLite with `cached_statements=16`."
)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    """This process's own peak RSS (``VmHWM``: the high-water mark of its address space since exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(path: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    from programs.importer import airings_import

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE programs_airing, programs_program, programs_channel, programs_programstats,"
                " programs_programperiodstats, programs_segmentperiodstats, programs_channelperiodstats,"
                " programs_genreperiodstats CASCADE"
            )
    before = _rss_bytes()
    result = airings_import(path=path)
    peak = _peak_rss_bytes()
    inherited = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # includes the parent's peak
    figures = {"created": result.created, "seconds": result.seconds, "cpu": result.cpu_seconds}
    print(json.dumps({**figures, "peak": peak, "ru_maxrss": inherited, "before": before, "vendor": connection.vendor}))


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
    postgres = "--postgres" in sys.argv
    sizes = [int(a) for a in sys.argv[1:] if a.isdigit()] or list(SIZES)
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            path = Path(tmp) / f"airings-{rows}.csv"
            write_csv(path, rows)
            dropped = (
                ("REDIS_URL", "BMS_REQUIRE_SERVICES")
                if postgres
                else ("DATABASE_URL", "REDIS_URL", "BMS_REQUIRE_SERVICES")
            )
            env = {k: v for k, v in os.environ.items() if k not in dropped}
            env["BMS_VAR_DIR"] = str(Path(tmp) / f"var-{rows}")
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path)], env=env, capture_output=True, text=True, check=True
            )
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            results.append((rows, path.stat().st_size / 1e6, figures))
            print(rows, figures, flush=True)
            path.unlink()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"Peak memory of `airings_import` (`bench/import_memory.py{' --postgres' if postgres else ''}`, "
        f"{results[0][2]['vendor'] if results else '?'}, a child process per file, into empty tables); "
        f"{machine()}; load average at the end {load} (shared machine: seconds are upper bounds).",
        "",
        "| rows | file MB | created | seconds (CPU s) | CPU s per 1M rows | peak RSS MB (VmHWM) "
        "| growth during the import MB | ru_maxrss MB (with the parent's peak) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rows, size_mb, f in results:
        lines.append(
            f"| {rows:,} | {size_mb:.0f} | {f['created']:,} | {f['seconds']:.1f} ({f['cpu']:.1f}) "
            f"| {f['cpu'] * 1e6 / rows:.0f} | {f['peak'] / 2**20:.0f} | {(f['peak'] - f['before']) / 2**20:.0f} "
            f"| {f['ru_maxrss'] / 2**20:.0f} |"
        )
    lines += [
        "",
        f"For comparison, {BEFORE}; {BEFORE_WRITE} (those were read from `ru_maxrss`, which includes the "
        "parent's peak, see below). Rows are read, validated (column by column, `programs/import_columns.py`; "
        "the row parser only for rows a column check refuses) and written `CHUNK_ROWS` (20,000) at a time inside "
        "one transaction; what the import keeps between chunks is the channel and program ids, the rejects, and "
        "the wall-clock rows of DST nights (placed at the end); duplicate natural keys across chunks are found "
        "in a temporary table (into an empty PostgreSQL table: by its natural-key constraint, as each chunk is "
        "COPYed into it). Quote-free UTF-8 files are read by pandas' C parser a block of lines at a time. Compare the growth column across sizes: flat means bounded by the chunk. The last "
        "column is what this bench used to report: a child started with fork/vfork + exec inherits the parent's "
        "high-water mark in `ru_maxrss`, and the parent holds the generated file as a pandas frame, so it grew "
        "with the file (the 0.3 KB per row reported before was the parent's frame, not the import).",
    ]
    if not postgres:
        lines += ["", SQLITE_NOTE]
    body = "\n".join(lines)
    print(body)
    write_section(SECTION_POSTGRES if postgres else SECTION, body)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
