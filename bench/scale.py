"""Benchmark: the platform at 57k, 1M and 5M airings on PostgreSQL (the growth curve).

For each size: generate the synthetic data (bulk COPY + maintained summaries), time the request paths
the issue targets (programs API in every ordering and filtered, program detail and trends, dashboard
first load), stream the CSV export of every airing (RSS growth), then empty the tables and import the
same airings from a canonical CSV. Runs against the database in DATABASE_URL (it must be PostgreSQL and
a scratch one: the broadcast tables are emptied). Rewrites the ``scale`` section of docs/benchmarks.md.

Usage: ``DATABASE_URL=postgres://.../bms_scale .venv/bin/python bench/scale.py 57k 1m [5m] [--skip-import] [--no-write]``
(``--report-only``: rewrite the section from the stored results; ``--skip-import``: leave the import out;
``--existing 5m [--skip-export]``: measure the history-state build and the request paths on the data already in
the database, generated earlier at that size, keeping the stored generation/import figures; ``--import-only FILE 5m``: the import
alone, of a canonical CSV written earlier at that size, keeping the other stored figures; ``--warmup 5m``: the
serving warm-up and predict() latency on the data already in the database, whose production models are
promoted, each in a fresh process: without stored history states, then with them; section ``scale-warmup``.)
Sizes already measured stay in the table (read back from ``var/bench-scale.json``).
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")
# In process over plain HTTP: with DATABASE_URL set the settings default to production's HTTPS redirect
# (TLS ends at the proxy), which would answer every measured request with a 301.
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
# The history states are built by the bench itself, timed (``history_build``), not by the job a generation
# starts on a background thread, which would run during the measured requests.
os.environ.setdefault("HISTORY_PREBUILD", "false")
# The canonical CSV of 5M airings is about 630 MB, above the default upload cap (512 MB).
os.environ.setdefault("IMPORT_MAX_BYTES", str(1024**3))

import django  # noqa: E402

django.setup()

import psutil  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from bench._report import DOC, write_section  # noqa: E402
from programs.generator import GeneratorConfig, days_for_airings, generate  # noqa: E402
from programs.importer import airings_import  # noqa: E402
from programs.models import Airing, Channel, Program  # noqa: E402

SECTION = "scale"
SECTION_WARMUP = "scale-warmup"
RESULTS = ROOT / "var" / "bench-scale.json"
RUNS = 15
MB = 1024 * 1024
PROC = psutil.Process()
SIZES: dict[str, GeneratorConfig | tuple[GeneratorConfig, int]] = {
    "57k": GeneratorConfig(),  # the demo data
    "1m": (GeneratorConfig(channels=30, programs=3000), 1_000_000),
    "5m": (GeneratorConfig(channels=50, programs=5000), 5_000_000),
}
TARGETS_MS = {"api": 50.0, "dashboard": 300.0}


@dataclass
class SizeResult:
    size: str
    airings: int = 0
    programs: int = 0
    channels: int = 0
    generate_s: float = 0.0
    history_s: float = 0.0  # the serving history states of the generated version, built and written
    history_cpu_s: float = 0.0
    history_peak_mb: float = 0.0  # peak RSS growth during that build
    import_s: float = 0.0
    import_cpu_s: float = 0.0
    import_rows: int = 0
    import_peak_rss_mb: float = 0.0
    import_load: str = ""  # the load average when the import ended (``load``: when the requests' were taken)
    export_s: float = 0.0
    export_mb: float = 0.0
    export_rss_growth_mb: float = 0.0
    p50_ms: dict[str, float] = field(default_factory=dict)
    cpu_ms: dict[str, float] = field(default_factory=dict)
    dashboard_cold_ms: float = 0.0
    dashboard_cold_cpu_ms: float = 0.0
    load: str = ""


def config_for(size: str) -> GeneratorConfig:
    spec = SIZES[size]
    return spec if isinstance(spec, GeneratorConfig) else days_for_airings(spec[0], spec[1])


def empty_tables() -> None:
    tables = ["programs_airing", "programs_program", "programs_channel", "programs_programstats"]
    tables += ["programs_programperiodstats", "programs_segmentperiodstats"]
    tables += ["programs_channelperiodstats", "programs_genreperiodstats"]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


def analyze() -> None:
    """VACUUM ANALYZE: what autovacuum does within minutes of a bulk write (statistics and the visibility
    map the index-only scans need); measuring before it would time a state the server leaves quickly."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def p50(client: Client | APIClient, url: str, cpu: dict[str, float], name: str, *, uncached: bool = False) -> float:
    """Median wall ms of ``RUNS`` warm requests; the median CPU ms of this process goes to ``cpu[name]``
    (under the shared machine's load, CPU time is what an idle machine's wall time would be).
    ``uncached``: the cache is emptied before each request (a filter or ordering nobody asked for since
    the last data change: the response cache cannot answer it)."""
    client.get(url)  # warm
    times, cpus = [], []
    for _ in range(RUNS):
        if uncached:
            cache.clear()
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        cpus.append((time.process_time() - cpu_started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    cpu[name] = statistics.median(cpus)
    return statistics.median(times)


def requests(result: SizeResult) -> None:
    viewer = User.objects.filter(username="bench-viewer").first() or User.objects.create_user(
        "bench-viewer", password="x"
    )
    viewer.groups.add(Group.objects.get_or_create(name="viewer")[0])
    api, web = APIClient(), Client()
    api.force_authenticate(viewer)
    web.force_login(viewer)
    program = Program.objects.filter(stats__airing_count__gt=0).order_by("-stats__airing_count").first()
    assert program is not None
    key = program.external_id
    urls = {
        "programs (default)": "/api/v1/programs",
        "programs ?ordering=-avg_audience": "/api/v1/programs?ordering=-avg_audience",
        "programs ?ordering=-last_airing": "/api/v1/programs?ordering=-last_airing",
        "programs ?ordering=-airing_count": "/api/v1/programs?ordering=-airing_count",
        "programs ?genre=drama&ordering=-avg_rating": "/api/v1/programs?genre=drama&ordering=-avg_rating",
        "programs ?search=news": "/api/v1/programs?search=news",
        "program detail": f"/api/v1/programs/{key}",
        "program trends (week)": f"/api/v1/programs/{key}/trends",
        "program trends (month, revenue)": f"/api/v1/programs/{key}/trends?period=month&target=revenue",
    }
    for name, url in urls.items():
        result.p50_ms[name] = p50(api, url, result.cpu_ms, name)
        print(f"  {name:42s} p50 {result.p50_ms[name]:7.1f} ms (CPU {result.cpu_ms[name]:.1f})", flush=True)
    # The list answers from the response cache once asked; the same requests with the cache emptied.
    for name, url in list(urls.items()):
        if url.startswith("/api/v1/programs?") or url == "/api/v1/programs":
            name = f"{name}, cache emptied"
            result.p50_ms[name] = p50(api, url, result.cpu_ms, name, uncached=True)
            print(f"  {name:42s} p50 {result.p50_ms[name]:7.1f} ms (CPU {result.cpu_ms[name]:.1f})", flush=True)
    # First load = the first request after a data change in a running server: the process has served the
    # page before (templates compiled, the registry and chat modules imported), the cached series are gone.
    assert web.get("/").status_code == 200
    cache.clear()
    started, cpu_started = time.perf_counter(), time.process_time()
    assert web.get("/").status_code == 200
    result.dashboard_cold_ms = (time.perf_counter() - started) * 1000
    result.dashboard_cold_cpu_ms = (time.process_time() - cpu_started) * 1000
    for name, url in (
        ("dashboard (warm)", "/"),
        ("program page", f"/programs/{key}/"),
        ("programs page ?ordering=-avg_audience", "/programs/?ordering=-avg_audience"),
    ):
        result.p50_ms[name] = p50(web, url, result.cpu_ms, name)
    print(f"  dashboard first load {result.dashboard_cold_ms:.1f} ms", flush=True)


def export(result: SizeResult) -> None:
    analyst = User.objects.filter(username="bench-analyst").first() or User.objects.create_user(
        "bench-analyst", password="x"
    )
    analyst.groups.add(Group.objects.get_or_create(name="analyst")[0])
    client = Client()
    client.force_login(analyst)
    gc.collect()
    base = peak = PROC.memory_info().rss
    size = 0
    started = time.perf_counter()
    response = client.post(
        "/api/v1/export", data={"format": "csv", "dataset": "airings"}, content_type="application/json"
    )
    assert response.status_code == 200
    for chunk in response.streaming_content:  # type: ignore[attr-defined]
        size += len(chunk)
        peak = max(peak, PROC.memory_info().rss)
    result.export_s = time.perf_counter() - started
    result.export_mb = size / 1e6
    result.export_rss_growth_mb = (peak - base) / MB
    print(
        f"  export {size / 1e6:.0f} MB in {result.export_s:.1f} s, RSS +{result.export_rss_growth_mb:.1f} MB",
        flush=True,
    )


CANONICAL_SQL = """
COPY (
  SELECT p.external_id, p.title, c.name AS channel, p.genre, p.content_rating,
         to_char(a.start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') AS start,
         a.duration_minutes, a.is_premiere, a.is_finale, p.is_live,
         a.rating, a.revenue, a.audience, a.engagement, c.universe_households AS channel_universe
  FROM programs_airing a JOIN programs_program p ON p.id = a.program_id JOIN programs_channel c ON c.id = a.channel_id
  ORDER BY a.id
) TO STDOUT WITH (FORMAT csv, HEADER true)
"""


def canonical_csv(path: Path) -> None:
    """The airings as a canonical import file (PostgreSQL writes it; this is set-up, not measured)."""
    with connection.cursor() as cursor, path.open("wb") as handle, cursor.cursor.copy(CANONICAL_SQL) as copy:
        for data in copy:
            handle.write(data)


class PeakRss:
    """Peak RSS of this process, sampled on a thread while a block runs."""

    def __enter__(self) -> PeakRss:
        self.peak = PROC.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, PROC.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure_existing(size: str, *, with_export: bool = True) -> SizeResult:
    """The request paths (and the export) on the data already in the database, generated earlier at
    ``size``: re-measures a large size without regenerating it (5M airings take tens of minutes)."""
    result = SizeResult(size=size)
    result.airings = Airing.objects.count()
    result.programs, result.channels = Program.objects.count(), Channel.objects.count()
    before = stored_results().get(size)
    stored = asdict(before) if before else {}
    for name in ("generate_s", "import_s", "import_cpu_s", "import_rows", "import_peak_rss_mb", "import_load"):
        setattr(result, name, stored.get(name, getattr(result, name)))
    print(f"{size}: {result.airings:,} airings already in the database", flush=True)
    history_build(result)
    analyze()
    requests(result)
    if with_export:
        export(result)
    else:
        for name in ("export_s", "export_mb", "export_rss_growth_mb"):
            setattr(result, name, stored.get(name, 0.0))
    result.load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return result


def run(size: str, *, with_import: bool = True) -> SizeResult:
    result = SizeResult(size=size)
    config = config_for(size)
    empty_tables()
    started = time.perf_counter()
    stats = generate(config)
    result.generate_s = time.perf_counter() - started
    result.airings, result.programs, result.channels = stats.airings, stats.programs, stats.channels
    print(f"{size}: generated {stats.airings:,} airings in {result.generate_s:.1f} s", flush=True)
    history_build(result)
    analyze()
    requests(result)
    export(result)
    if not with_import:  # the import figures measured before at this size stay
        before = stored_results().get(size)
        for name in ("import_s", "import_cpu_s", "import_rows", "import_peak_rss_mb", "import_load"):
            setattr(result, name, getattr(before, name) if before else getattr(result, name))
        result.load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        return result
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "airings.csv"
        canonical_csv(path)
        import_only(size, path, result)
    assert result.import_rows == result.airings, (result.import_rows, result.airings)
    result.load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return result


def history_build(result: SizeResult) -> None:
    """The job a generation or an import starts after its commit (``predictions.lookups.history_prebuild``):
    every target's serving history state of the new data version built and written to a store of its
    own, timed with the peak RSS it adds."""
    from predictions.lookups import history_prebuild, reset_lookups
    from programs.selectors import data_version_current

    reset_lookups()
    gc.collect()
    with tempfile.TemporaryDirectory() as store, override_settings(HISTORY_STATE_ROOT=store):
        base = PROC.memory_info().rss
        with PeakRss() as rss:
            started, cpu_started = time.perf_counter(), time.process_time()
            outcome = history_prebuild(version_id=data_version_current())
            result.history_s, result.history_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
        result.history_peak_mb = (rss.peak - base) / MB
        reset_lookups()  # let go of the mapped files before the directory goes
    assert outcome == "built", outcome
    print(
        f"{result.size}: history states built in {result.history_s:.1f} s (CPU {result.history_cpu_s:.1f} s, "
        f"peak RSS growth {result.history_peak_mb:.0f} MB)",
        flush=True,
    )


def import_only(size: str, path: Path, result: SizeResult) -> SizeResult:
    """The import alone, of a canonical CSV written earlier at ``size`` (``canonical_csv``), into emptied
    tables; the other figures of ``result`` (stored from an earlier full run) are kept."""
    empty_tables()
    gc.collect()
    with PeakRss() as rss:
        started = time.perf_counter()
        imported = airings_import(path=path)
        result.import_s = time.perf_counter() - started
    result.import_cpu_s, result.import_rows = imported.cpu_seconds, imported.created
    result.import_peak_rss_mb = rss.peak / MB
    result.import_load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"{size}: import {imported.created:,} rows in {result.import_s:.1f} s (CPU {result.import_cpu_s:.1f} s, "
        f"{imported.created / max(result.import_s, 1e-9):,.0f} rows/s, "
        f"peak RSS {result.import_peak_rss_mb:.0f} MB, load {result.import_load})",
        flush=True,
    )
    return result


WARMUP_REPEATS = 300


def warmup_child() -> dict[str, float]:
    """In this (fresh) process: the production models loaded, then the serving warm-up timed with the RSS it
    adds (and its peak), then ``predictions.predict.predict`` p50 per target (bench/predict.py's bodies:
    recent slots of the first programs). Prints one ``WARMUP {json}`` line."""
    from bench.predict import _bodies, _timed
    from predictions import predict
    from predictions.lookups import get_lookups
    from predictions.predictor import get_predictor

    targets = get_predictor().loaded_targets()
    assert targets, "no production model: train and promote first"
    gc.collect()
    base = PROC.memory_info().rss
    with PeakRss() as rss:
        started, cpu_started = time.perf_counter(), time.process_time()
        get_lookups().history_warm()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    out = {
        "seconds": seconds,
        "cpu_s": cpu,
        "rss_growth_mb": (PROC.memory_info().rss - base) / MB,
        "peak_growth_mb": (rss.peak - base) / MB,
    }
    bodies = _bodies(50)
    for target in targets:
        single = {**bodies[0], "target": target}
        out[f"p50_ms/{target}"], _ = _timed(
            lambda s=single: predict.predict(program=s["program_id"], target=s["target"], features=s["features"]),
            WARMUP_REPEATS,
        )
    predict.prediction_log_flush()
    print("WARMUP " + json.dumps(out), flush=True)
    return out


def measure_warmup(size: str) -> str:
    """The serving warm-up at ``size`` (the data already in the database, its models promoted), each in a
    fresh process: one that finds no stored history states (it builds and writes them), then one that
    finds them. The body of the ``scale-warmup`` section."""
    import subprocess

    airings = Airing.objects.count()
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as store:
        env = {**os.environ, "HISTORY_STATE_ROOT": store, "PYTHONPATH": str(ROOT)}
        for mode in ("build", "load"):
            done = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--warmup-child"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            line = next(x for x in done.stdout.splitlines() if x.startswith("WARMUP "))
            figures[mode] = json.loads(line.removeprefix("WARMUP "))
            print(f"{size}: warm-up ({mode}) {figures[mode]}", flush=True)
    targets = sorted(k.removeprefix("p50_ms/") for k in figures["build"] if k.startswith("p50_ms/"))
    lines = [
        f"## Serving warm-up at {airings:,} airings (`bench/scale.py --warmup {size}`, PostgreSQL)",
        "",
        "A serving process's warm-up is every target's history state (`predictions.lookups`). Each column is a "
        "fresh process with the production models loaded: **build** finds no stored states for the data version, "
        "reads the airings with an actual in chunks, builds the states and writes them to the store "
        "(`predictions.history_store`, `HISTORY_STATE_ROOT`); **load** is every later process (another worker, a "
        "restart): it maps the stored arrays in. RSS growth is measured after the warm-up (peak: sampled every "
        "0.2 s during it); `predict()` is bench/predict.py's single-row service call, "
        f"{WARMUP_REPEATS} repeats after 5 warm ones. The demo-size figures to compare with are in the "
        "`scale-predict-5m` section. The machine is shared (2 cores): read the wall times with the load average.",
        "",
        "| measure | build (no stored states) | load (stored states) |",
        "|---|---|---|",
        "| warm-up s (CPU s) | "
        + " | ".join(f"{figures[m]['seconds']:.2f} ({figures[m]['cpu_s']:.2f})" for m in ("build", "load"))
        + " |",
        "| RSS growth after the warm-up / peak growth during it, MiB | "
        + " | ".join(
            f"{figures[m]['rss_growth_mb']:.0f} / {figures[m]['peak_growth_mb']:.0f}" for m in ("build", "load")
        )
        + " |",
    ]
    for target in targets:
        lines.append(
            f"| predict() p50 ms, {target} | "
            + " | ".join(f"{figures[m][f'p50_ms/{target}']:.3f}" for m in ("build", "load"))
            + " |"
        )
    lines += ["", f"Load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}."]
    return "\n".join(lines) + "\n"


NOMINAL = {"57k": 57_000, "1m": 1_000_000, "5m": 5_000_000}  # the column of a size in the table


def _size_of(airings: int) -> str:
    """The size whose nominal count is nearest (the demo's 57k is 56,845 airings)."""
    return min(NOMINAL, key=lambda size: abs(math.log(airings / NOMINAL[size])))


def _pair(text: str) -> tuple[float, float]:
    """``"4.3 (1.3)"`` -> ``(4.3, 1.3)``."""
    first, _, rest = text.partition(" (")
    return float(first.replace(",", "")), float(rest.rstrip(")").replace(",", ""))


def stored_from_doc(doc: str) -> dict[str, SizeResult]:
    """The figures of the ``scale`` table in docs/benchmarks.md, read back as results (the inverse of
    ``report``): what ``var/bench-scale.json`` held on the machine that wrote the table. A fresh clone has
    no ``var/``, and a run there must keep the sizes it does not re-measure."""
    start, end = doc.find(f"<!-- bench:{SECTION} -->"), doc.find(f"<!-- /bench:{SECTION} -->")
    lines = [line for line in doc[start:end].splitlines() if line.startswith("| ")] if 0 <= start < end else []
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    if not rows or rows[0][0] != "measure":
        return {}
    airings = [int(cell.split()[0].replace(",", "")) for cell in rows[0][1:-1]]
    sizes = [_size_of(n) for n in airings]
    results = {size: SizeResult(size=size, airings=n) for size, n in zip(sizes, airings, strict=True)}
    for name, *values, _target in rows[1:]:
        for size, value in zip(sizes, values, strict=True):
            result = results[size]
            if name == "channels / programs":
                channels, programs = value.split(" / ")
                result.channels, result.programs = int(channels), int(programs.replace(",", ""))
            elif name.startswith("generate "):
                result.generate_s = 0.0 if value == "not timed here" else float(value)
            elif name.startswith("history states of the generated version") and value != "not run":
                timing, _, peak = value.partition(" / ")
                result.history_s, result.history_cpu_s = _pair(timing)
                result.history_peak_mb = float(peak)
            elif name.startswith("import canonical CSV") and value != "not run":
                result.import_s, rest = float(value.split(" (")[0]), value.split(" (")[1].rstrip(")")
                result.import_cpu_s = float(rest.split(";")[0])
                result.import_load = rest.split("; load ")[1] if "; load " in rest else ""
                result.import_rows = result.airings  # a run keeps an import only when it imported them all
            elif name.startswith("import peak RSS") and value != "not run":
                result.import_peak_rss_mb = float(value)
            elif name.endswith(", p50 ms (CPU ms)") and value != "nan (nan)":
                key = name.removesuffix(", p50 ms (CPU ms)")
                result.p50_ms[key], result.cpu_ms[key] = _pair(value)
            elif name.startswith("dashboard first load"):
                result.dashboard_cold_ms, result.dashboard_cold_cpu_ms = _pair(value)
            elif name.startswith("CSV export of all airings"):
                seconds, size_mb = value.split(" / ")
                result.export_s, result.export_mb = float(seconds), float(size_mb)
            elif name.startswith("CSV export RSS growth"):
                result.export_rss_growth_mb = float(value)
            elif name.startswith("load average"):
                result.load = value
    return results


def stored_results() -> dict[str, SizeResult]:
    """The sizes measured before: ``var/bench-scale.json``, or the table in docs/benchmarks.md without it."""
    if RESULTS.exists():
        return {k: SizeResult(**v) for k, v in json.loads(RESULTS.read_text()).items()}
    return stored_from_doc(DOC.read_text()) if DOC.exists() else {}


def report(results: dict[str, SizeResult]) -> str:
    order = [s for s in SIZES if s in results]
    head = "| measure | " + " | ".join(f"{results[s].airings:,} airings" for s in order) + " | target at 5M |"
    sep = "|---" * (len(order) + 2) + "|"
    lines = [head, sep]

    def row(name: str, values: list[str], target: str = "") -> None:
        lines.append(f"| {name} | " + " | ".join(values) + f" | {target} |")

    row("channels / programs", [f"{results[s].channels} / {results[s].programs:,}" for s in order])
    row(
        "generate (simulate + COPY + summaries), s",
        [f"{results[s].generate_s:.1f}" if results[s].generate_s else "not timed here" for s in order],
        "minutes",
    )
    row(
        "history states of the generated version (the job after its commit): s (CPU s) / peak RSS growth MB",
        [
            f"{results[s].history_s:.1f} ({results[s].history_cpu_s:.1f}) / {results[s].history_peak_mb:.0f}"
            if results[s].history_s
            else "not run"
            for s in order
        ],
        "<= 120 s / 1536 MB",
    )
    row(
        "import canonical CSV into empty tables, s (bench CPU s; rows/s[; load average at its end])",
        [
            f"{results[s].import_s:.1f} ({results[s].import_cpu_s:.1f}; {results[s].import_rows / results[s].import_s:,.0f}"
            + (f"; load {results[s].import_load}" if results[s].import_load else "")
            + ")"
            if results[s].import_rows
            else "not run"
            for s in order
        ],
        "<= 300",
    )
    row(
        "import peak RSS, MB",
        [f"{results[s].import_peak_rss_mb:.0f}" if results[s].import_rows else "not run" for s in order],
    )
    names = list(results[order[0]].p50_ms)
    for name in names:
        target = (
            "<= 300"
            if name.startswith("dashboard")
            else ("<= 50" if not name.endswith("page") and "page " not in name else "")
        )
        row(
            f"{name}, p50 ms (CPU ms)",
            [
                f"{results[s].p50_ms.get(name, float('nan')):.1f} ({results[s].cpu_ms.get(name, float('nan')):.1f})"
                for s in order
            ],
            target,
        )
    row(
        "dashboard first load (warm process, cache cleared), ms (CPU ms)",
        [f"{results[s].dashboard_cold_ms:.0f} ({results[s].dashboard_cold_cpu_ms:.0f})" for s in order],
        "<= 300",
    )
    row("CSV export of all airings: s / MB", [f"{results[s].export_s:.1f} / {results[s].export_mb:.0f}" for s in order])
    row("CSV export RSS growth, MB", [f"{results[s].export_rss_growth_mb:.1f}" for s in order], "<= 100")
    row("load average at the end (1, 5, 15 min)", [results[s].load for s in order])
    return (
        "## Scale: 57k -> 1M -> 5M airings (`bench/scale.py`, PostgreSQL)\n\n"
        "Each size: generate, then the serving history states of the generated version built as the job after "
        "its commit builds them (`predictions.lookups.history_prebuild`: one chunked read of the airings with an "
        "actual, then numpy, each target written to the store as it is built; peak RSS growth sampled every "
        "0.2 s), then the request paths in process (test client: middleware + view + "
        f"selectors + serializer/template, {RUNS} warm requests, p50, after a VACUUM ANALYZE as autovacuum "
        "would run after the bulk write; the program list's rows again with the cache emptied before each "
        "request, as for a filter nobody asked for since the last data change), the streamed CSV export of every "
        "airing through `POST /api/v1/export`, then the same airings imported from a canonical CSV into "
        "emptied tables. The machine is shared by 8 engineers (2 cores): read the times as upper bounds "
        "and the load average with them. In parentheses: the request's CPU time in the bench process (what an "
        "idle machine's wall time would be, without the database's own time). The import reads, validates "
        "and writes 20,000-row chunks in one transaction, so its memory does not grow with the file; into an "
        "empty airings table each chunk is COPYed straight into it (a large file without the secondary "
        "indexes and foreign keys, re-created at the end) and the summaries are computed once at the end. "
        "Its CPU time is the bench process's (reading, validation), the database's own work is not in it.\n\n"
        + "\n".join(lines)
        + "\n"
    )


def main() -> int:
    if "--warmup-child" in sys.argv:
        warmup_child()
        return 0
    setup_test_environment()
    logging.getLogger("bms.access").setLevel(logging.WARNING)  # one line per request would be measured too
    if connection.vendor != "postgresql":
        print("bench/scale.py needs PostgreSQL: set DATABASE_URL to a scratch database.")
        return 1
    if "--report-only" not in sys.argv:
        call_command("migrate", verbosity=0)
    wanted = [a for a in sys.argv[1:] if a in SIZES] or ([] if "--report-only" in sys.argv else ["57k", "1m"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = stored_results()
    if "--warmup" in sys.argv:
        body = measure_warmup(wanted[0])
        print(body)
        if "--no-write" not in sys.argv:
            write_section(SECTION_WARMUP, body)
        return 0
    for size in wanted:
        if "--import-only" in sys.argv:
            csv_path = Path(sys.argv[sys.argv.index("--import-only") + 1])
            results[size] = import_only(size, csv_path, results.get(size) or SizeResult(size=size))
        elif "--existing" in sys.argv:
            results[size] = measure_existing(size, with_export="--skip-export" not in sys.argv)
        else:
            results[size] = run(size, with_import="--skip-import" not in sys.argv)
        RESULTS.write_text(json.dumps({k: asdict(v) for k, v in results.items()}, indent=1))
    body = report(results)
    print(body)
    if "--no-write" not in sys.argv:
        write_section(SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
