"""Prediction latency and HTTP throughput (section ``predict`` of docs/benchmarks.md).

1. In-process, per target and algorithm: one row and a batch of 100 rows through the serving path
   (``ServingModel.predict_rows``: compiled fast path) and through the registry's own
   ``LoadedModel.predict(frame)``; the whole ``predictions.predict.predict`` / ``predict_batch``
   (validation, cached lookups, model, log buffer) for each target's production model.
2. HTTP: two worker processes on 127.0.0.1, wrk (``apt-get install wrk``; an async httpx client
   without it) at several connection counts (``--levels``), ``--runs`` runs each: ``POST /api/v1/predict``
   next to ``POST /api/v1/bench/echo`` (same authentication, same body validation, no prediction).
   Throughput, p50/p99 and the server processes' CPU per request, for each of ``--servers``: gunicorn's
   sync workers (WSGI, ``bms/gunicorn_conf.py``: what the image runs) and uvicorn with Django's ASGI
   handler (``bench/_serve.py``: a SO_REUSEPORT socket per worker) at every level; ``uvicorn --workers 2``
   and gunicorn's gthread workers at ``--concurrency``.

Runs on its own SQLite database and artifacts under ``--var`` (default /tmp/bms-bench-predict): the
first run generates data and trains the six algorithms x four targets there (a few minutes), later
runs reuse them. Usage: ``.venv/bin/python bench/predict.py [--seconds 8] [--levels 1,8,16,32] [--concurrency 16]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._setup import serving_env  # noqa: E402

TARGETS_P50_MS = {"single": 1.0, "single_rf": 5.0, "batch": 20.0}


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--var", default="/tmp/bms-bench-predict")
    parser.add_argument("--seconds", type=float, default=8.0, help="per wrk run")
    parser.add_argument("--concurrency", type=int, default=16, help="the level the targets are read at")
    parser.add_argument("--levels", default="1,8,16,32", help="connection counts to measure")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per level and endpoint")
    parser.add_argument("--repeats", type=int, default=300, help="in-process timing repeats")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument(
        "--servers",
        default="gunicorn-sync,uvicorn,uvicorn-shared,gunicorn-gthread",
        help=f"servers to measure, of {', '.join(SERVERS)} (the first two at every level, the others at --concurrency)",
    )
    parser.add_argument("--gunicorn-threads", type=int, default=4, help="threads per gunicorn gthread worker")
    return parser.parse_args()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _timed(fn: Any, repeats: int) -> tuple[float, float]:
    for _ in range(5):
        fn()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000.0)
    return _pct(samples, 0.5), _pct(samples, 0.99)


# --- setup ------------------------------------------------------------------------------------------------


def _prepare() -> dict[str, Any]:
    """Data, six algorithms x four targets, a production model per target, an analyst API key."""
    from bench._setup import ServingData, serving_data_prepare

    return {"api_key": serving_data_prepare(ServingData(channels=4, programs=150, days=150), username="bench-analyst")}


def _bodies(n: int, seed: int = 1) -> list[dict[str, Any]]:
    from predictions.predictor import get_predictor
    from programs.models import Airing, Program

    targets = get_predictor().loaded_targets()
    rng = random.Random(seed)
    programs = list(Program.objects.order_by("id").values_list("id", flat=True)[:60])
    last = Airing.objects.order_by("-start").values_list("start", flat=True).first()
    assert last is not None
    bodies = []
    for _ in range(n):
        start = last.replace(minute=0, second=0, microsecond=0)
        start = start.replace(hour=rng.choice([7, 12, 18, 19, 20, 21, 22]))
        start = start - timedelta(days=rng.randint(0, 20))
        bodies.append(
            {
                "program_id": rng.choice(programs),
                "target": rng.choice(targets),
                "features": {"start": start.isoformat()},
            }
        )
    return bodies


# --- in-process -------------------------------------------------------------------------------------------


def _in_process(repeats: int) -> tuple[list[str], dict[str, float]]:
    import numpy as np

    from predictions import predict
    from predictions.fastpath import RawRows
    from predictions.lookups import get_lookups
    from predictions.predictor import get_predictor
    from programs.models import TARGETS
    from registry.artifacts import load_model
    from registry.models import ModelVersion

    def item(body: dict[str, Any]) -> predict.PredictItem:
        return predict.PredictItem(program=body["program_id"], target=body["target"], features=body["features"])

    predictor = get_predictor()
    bodies = _bodies(100)
    plain_rows = predict._raw_rows(predict._resolve([item(b) for b in bodies], user_key="bench"))
    per_target = {}
    for target in TARGETS:  # the model call with each target's history features, as the service builds them
        featured = plain_rows.take(list(range(len(plain_rows))))
        featured.history, _ = get_lookups().history_features(target=target, rows=featured)
        per_target[target] = (featured, featured.to_frame())
    lines = [
        "| target | algorithm | production | 1 row p50 / p99 (ms) | 100 rows p50 (ms) | registry path: 1 row / 100 rows p50 (ms) |",
        "|---|---|---|---|---|---|",
    ]
    figures: dict[str, float] = {}
    served = [t for t in TARGETS if t in predictor.loaded_targets()]
    production = {t: predictor.model_for(t).version_id for t in served}
    latest: dict[tuple[str, str], ModelVersion] = {}
    for v in ModelVersion.objects.order_by("target", "algorithm", "-version"):
        latest.setdefault((v.target, v.algorithm), v)
    for (target, algorithm), version in sorted(latest.items()):
        rows, frame = per_target[target]
        one_rows, one_frame = rows.take([0]), frame.iloc[[0]]
        serving = predictor.version(version.pk)
        assert isinstance(one_rows, RawRows)
        p50, p99 = _timed(lambda s=serving, r=one_rows: s.predict_rows(r), repeats)
        b50, _ = _timed(lambda s=serving, r=rows: s.predict_rows(r), max(30, repeats // 5))
        loaded = load_model(version)
        r1, _ = _timed(lambda m=loaded, f=one_frame: m.predict(f), max(20, repeats // 10))
        r100, _ = _timed(lambda m=loaded, f=frame: m.predict(f), max(20, repeats // 10))
        np.testing.assert_allclose(serving.predict_rows(rows), loaded.predict(frame), rtol=1e-9)
        is_prod = version.pk == production.get(target)
        fast = "" if serving.fast is not None else " (no fast path)"
        lines.append(
            f"| {target} | {algorithm}{fast} | {'**yes**' if is_prod else ''} | {p50:.3f} / {p99:.3f} | {b50:.2f} | "
            f"{r1:.2f} / {r100:.2f} |"
        )
        figures[f"{target}/{algorithm}/single_p50"] = p50
        figures[f"{target}/{algorithm}/batch_p50"] = b50
    lines += [
        "",
        "Whole service (validation, cached program/lead-in lookups, production model, log rows handed to the",
        "background flusher, whose bulk inserts run in the same process):",
        "",
        "| target | predict() p50 / p99 (ms) | predict_batch(100 items) p50 (ms) |",
        "|---|---|---|",
    ]
    for target in served:
        single = {**bodies[0], "target": target}
        items = [item({**b, "target": target}) for b in bodies]
        p50, p99 = _timed(
            lambda s=single: predict.predict(program=s["program_id"], target=s["target"], features=s["features"]),
            repeats,
        )
        b50, _ = _timed(lambda i=items: predict.predict_batch(items=i), max(30, repeats // 5))
        predict.prediction_log_flush()
        lines.append(f"| {target} | {p50:.3f} / {p99:.3f} | {b50:.2f} |")
        figures[f"service/{target}/single_p50"] = p50
        figures[f"service/{target}/batch_p50"] = b50
    return lines, figures


# --- HTTP -------------------------------------------------------------------------------------------------

WRK_SCRIPT = """
local bodies = {%(bodies)s}
local i = 0
local headers = {["X-API-Key"] = "%(key)s", ["Content-Type"] = "application/json"}
request = function()
  i = i + 1
  return wrk.format("POST", nil, headers, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"n": %%d, "seconds": %%.3f, "p50": %%.3f, "p99": %%.3f, "errors": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wrk(url: str, script: Path, seconds: float, concurrency: int) -> dict[str, float]:
    """One wrk run (new connections): requests/s, p50/p99 in ms, errors (socket errors and non-2xx)."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s", "--timeout", "10s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    r = json.loads(line[len("BENCH ") :])
    return {"rps": r["n"] / r["seconds"], "p50": r["p50"], "p99": r["p99"], "n": r["n"], "errors": r["errors"]}


async def _httpx_load(
    url: str, bodies: list[bytes], headers: dict[str, str], seconds: float, concurrency: int
) -> dict[str, float]:
    """The same measurement with an async httpx client, for a machine without wrk (costs more CPU)."""
    import httpx

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:

        async def worker(offset: int, until: float) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < until:
                started = time.perf_counter()
                response = await client.post(url, content=bodies[i % len(bodies)], headers=headers)
                i += concurrency
                if response.status_code == 200:
                    latencies.append((time.perf_counter() - started) * 1000.0)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(k, started + seconds) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"rps": len(latencies) / elapsed, "p50": _pct(latencies, 0.5), "p99": _pct(latencies, 0.99),
            "n": len(latencies), "errors": errors}  # fmt: skip


SERVERS = {
    "gunicorn-sync": "gunicorn, 2 sync workers (WSGI; Django's own handler; bms/gunicorn_conf.py, as the image runs it)",
    "uvicorn": "two uvicorn workers, a socket each (SO_REUSEPORT; Django's own ASGI handler)",
    "uvicorn-shared": "uvicorn --workers 2 (one shared socket; Django's own ASGI handler)",
    "gunicorn-gthread": "gunicorn, 2 gthread workers (WSGI; Django's own handler)",
}


def _start_workers(var: Path, port: int, workers: int, server: str, threads: int = 0) -> list[subprocess.Popen[bytes]]:
    bind = ["--host", "127.0.0.1", "--port", str(port)]
    if server == "uvicorn-shared":  # uvicorn's own --workers: one listening socket for all
        cmd = [str(ROOT / ".venv" / "bin" / "uvicorn"), "bms.asgi:application", *bind, "--workers", str(workers),
               "--no-access-log", "--log-level", "warning"]  # fmt: skip
        return [subprocess.Popen(cmd, cwd=ROOT, env=serving_env(var), start_new_session=True)]
    if server.startswith("gunicorn"):  # the production config (bms/gunicorn_conf.py), metrics in multiprocess mode
        cmd = [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", str(ROOT / "bms" / "gunicorn_conf.py"),
               "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", server.split("-")[1],
               "--threads", str(1 if server == "gunicorn-sync" else threads),
               "--log-level", "warning"]  # fmt: skip
        env = {**serving_env(var), "PROMETHEUS_MULTIPROC_DIR": str(var / f"prometheus-multiproc-{port}")}
        return [subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)]
    serve = [sys.executable, str(ROOT / "bench" / "_serve.py"), "127.0.0.1", str(port)]
    return [subprocess.Popen(serve, cwd=ROOT, env=serving_env(var), start_new_session=True) for _ in range(workers)]


def _stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=30)


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median p99, with the sums of requests and errors over all runs."""
    mid = sorted(runs, key=lambda r: r["p99"])[len(runs) // 2]
    return {**mid, "n": sum(r["n"] for r in runs), "errors": sum(r["errors"] for r in runs)}


def _cpu_seconds(procs: list[subprocess.Popen[bytes]]) -> float:
    """User + system CPU of the server processes and their children (gunicorn's workers) so far."""
    from bench._report import process_tree_cpu

    return sum(process_tree_cpu(proc.pid) for proc in procs)


def _http(
    var: Path, api_key: str, seconds: float, plans: dict[str, list[int]], target_level: int, runs: int, threads: int
) -> tuple[list[str], dict[str, float]]:
    import httpx

    use_wrk = shutil.which("wrk") is not None
    bodies = [json.dumps(b) for b in _bodies(500, seed=2)]
    headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
    script = var / "bench-predict.lua"
    script.write_text(WRK_SCRIPT % {"bodies": ",".join(f"[==[{b}]==]" for b in bodies), "key": api_key})
    endpoints = (("bare (validate only)", "/api/v1/bench/echo"), ("predict", "/api/v1/predict"))

    def measure(base: str, path: str, concurrency: int, secs: float) -> dict[str, float]:
        if use_wrk:
            return _wrk(base + path, script, secs, concurrency)
        encoded = [b.encode() for b in bodies]
        return asyncio.run(_httpx_load(base + path, encoded, headers, secs, concurrency))

    def serve(server: str, plan: list[int]) -> dict[tuple[str, int], dict[str, float]]:
        port = _free_port()
        procs = _start_workers(var, port, 2, server, threads)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 90
            while time.time() < deadline:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.3)
            else:
                raise RuntimeError("the workers did not start")
            check = httpx.post(f"{base}/api/v1/predict", content=bodies[0], headers=headers)
            assert check.status_code == 200, check.text
            for _, path in endpoints:  # warm-up with many connections, so that both workers take some
                measure(base, path, 32, 3)
            out = {}
            for concurrency in plan:
                for name, path in endpoints:
                    cpu = _cpu_seconds(procs)
                    measured = [measure(base, path, concurrency, seconds) for _ in range(runs)]
                    cpu = _cpu_seconds(procs) - cpu
                    r = out[(name, concurrency)] = _median_run(measured)
                    r["cpu_ms"] = 1000.0 * cpu / max(1, sum(m["n"] for m in measured))
                    print(
                        f"  c={concurrency} {name}: {r['rps']:.0f} req/s p50 {r['p50']:.1f} ms p99 {r['p99']:.1f} ms"
                        f" server CPU {r['cpu_ms']:.2f} ms/request",
                        flush=True,
                    )
            return out
        finally:
            _stop_workers(procs)

    results: dict[str, dict[tuple[str, int], dict[str, float]]] = {}
    for server, plan in plans.items():
        print(f"  {SERVERS[server]}:", flush=True)
        results[server] = serve(server, plan)
    load = os.getloadavg()
    client = "wrk (1 thread)" if use_wrk else "an async httpx client (wrk not installed)"
    lines = [
        f"Each server with two worker processes on 127.0.0.1; client {client}, on the same 2 cores; `X-API-Key` "
        f"authentication; 500 different bodies (random program, target, slot). Each row: {runs} runs of "
        f"{seconds:.0f} s, each with new connections, after a warm-up; the row is the run with the median p99 "
        "(requests and errors summed over the runs); server CPU: user + system CPU time of the server's "
        "processes over those runs divided by the requests answered (the figure least moved by other load). "
        f"Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min).",
        "",
        "| server | connections | endpoint | requests/s | p50 (ms) | p99 (ms) | server CPU (ms/request) | requests | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for server, plan in plans.items():
        for concurrency in plan:
            for name, _ in endpoints:
                r = results[server][(name, concurrency)]
                lines.append(
                    f"| {server} | {concurrency} | {name} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
                    f"{r['cpu_ms']:.2f} | {r['n']} | {r['errors']} |"
                )
    lines += ["", *(f"- {server}: {SERVERS[server]}" for server in plans), ""]
    figures: dict[str, float] = {}
    for server, measured in results.items():
        if ("predict", target_level) not in measured:
            continue
        bare, pred = measured[("bare (validate only)", target_level)], measured[("predict", target_level)]
        ratio = pred["rps"] / bare["rps"]
        met = "met" if ratio >= 0.40 and pred["p99"] <= 50.0 else "**missed**"
        lines.append(
            f"{server} at {target_level} connections: predict / bare throughput **{ratio:.0%}** (target >= 40%); "
            f"predict p99 **{pred['p99']:.1f} ms** (target <= 50 ms): {met}."
        )
        figures |= {f"{server}/ratio": ratio, f"{server}/p99": pred["p99"], f"{server}/rps": pred["rps"]}
    lines += [
        "",
        "uvicorn-shared: the first worker to wake accepts every connection the client opens at once, so a run may "
        "leave one worker idle: the median hides what single runs show.",
    ]
    return lines, figures


def main() -> int:
    args = _args()
    var = Path(args.var)
    var.mkdir(parents=True, exist_ok=True)
    os.environ.update(serving_env(var))
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MONGO_URL"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from bench._report import write_section

    setup = _prepare()
    print("in-process ...", flush=True)
    process_lines, figures = _in_process(args.repeats)
    print("\n".join(process_lines))
    body = [
        "In-process latency (`bench/predict.py`). The serving path is `predictions.fastpath` (the fitted encoder",
        "fed from column arrays, the estimator's trees/weights called directly, one thread), checked equal to the",
        "registry's `LoadedModel.predict` (rtol 1e-9) at load and here; the last column is that registry path.",
        "",
        *process_lines,
    ]
    prod_single = [v for k, v in figures.items() if k.startswith("service/") and k.endswith("single_p50")]
    prod_batch = [v for k, v in figures.items() if k.startswith("service/") and k.endswith("batch_p50")]
    rf = [v for k, v in figures.items() if "/random_forest/single_p50" in k]
    body += [
        "",
        f"Targets: single row p50 <= 1 ms (RF <= 5 ms): worst production predict() p50 {max(prod_single):.3f} ms, "
        f"worst random forest model call {max(rf):.3f} ms; batch of 100 <= 20 ms: worst predict_batch "
        f"{max(prod_batch):.2f} ms.",
    ]
    if not args.skip_http:
        print("HTTP ...", flush=True)
        levels = sorted({int(x) for x in args.levels.split(",")} | {args.concurrency})
        plans = {
            server: levels if server in {"gunicorn-sync", "uvicorn"} else [args.concurrency]
            for server in args.servers.split(",")
        }
        http_lines, _ = _http(
            var, setup["api_key"], args.seconds, plans, args.concurrency, args.runs, args.gunicorn_threads
        )
        body += ["", "### HTTP", "", *http_lines]
    write_section("predict", "## Predictions\n\n" + "\n".join(body))
    print("written to docs/benchmarks.md (section predict)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
