"""Benchmark of the timeline scheduler: python bench/schedule.py [--seeds 5] [--week-seeds 3] [--channel metro-seven].

The demo data (``programs.generator.simulate``, seed 42, the data ``make run`` loads) gives one channel's
whole catalogue (75 programs of 30-120 minutes, G to R) and what it really aired. For one broadcast day
(06:00-02:00, 20 hours, 30-minute grid) and for a week from the same date, each seed draws the value
model's error (lognormal noise on a history-based stand-in for the production models) and runs the job's
optimiser (``optimize_timeline`` with the job defaults: GA, top-3 alternatives, Pareto front, LP bound).
Reported: the whole job's runtime; the gap to the HiGHS optimum of the time-indexed program (day, time
limit 60 s, proven) or to the LP-relaxation bound (week); hard violations of every returned schedule by
the independent checker (``check_timeline``); the improvement over the greedy baseline and over the
airings the channel actually had. Writes the section ``schedule`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402

from bench._report import machine, write_section  # noqa: E402
from bench.schedule_instances import demo_timeline  # noqa: E402
from programs.generator import GeneratorConfig, simulate  # noqa: E402
from scheduling.timeline import check_timeline, evaluate, start_array  # noqa: E402
from scheduling.timeline_exact import timeline_milp  # noqa: E402
from scheduling.timeline_ga import TimelineParams, optimize_timeline  # noqa: E402


def pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def one(sim: object, *, channel: str, first: date, days: int, seed: int, milp_limit: float) -> dict[str, float]:
    demo = demo_timeline(sim, channel=channel, first_day=first, days=days, seed=seed)
    tl = demo.timeline
    t0, c0 = time.perf_counter(), time.process_time()
    res = optimize_timeline(tl, TimelineParams(seed=seed))
    runtime, cpu = time.perf_counter() - t0, time.process_time() - c0
    best = res.best.totals.objective
    returned = [res.best, *res.alternatives, *res.pareto]
    violations = sum(len(check_timeline(tl, s.schedule)) for s in returned)
    cur = start_array(tl, demo.current)
    cur_obj = float(evaluate(tl, cur[None, :])[0])  # its empty cells (if any) cost nothing
    rec = {
        "runtime": runtime,
        "cpu": cpu,
        "gap_bound": res.gap if res.gap is not None else float("nan"),
        "impr_greedy": res.improvement_over_greedy,
        "impr_current": (best - cur_obj) / abs(cur_obj),
        "current_airings": float(len(demo.current)),
        "violations": float(violations),
        "returned": float(len(returned)),
        "airings": float(res.best.totals.airings),
        "pareto": float(len(res.pareto)),
        "alternatives": float(len(res.alternatives)),
        "generations": float(res.generations),
    }
    if days == 1:
        m = timeline_milp(tl, time_limit=milp_limit)
        rec["milp_s"] = m.seconds
        rec["milp_proven"] = float(m.proven)
        rec["gap_opt"] = (m.objective - best) / abs(m.objective)
    print(
        f"days={days} seed={seed} runtime={runtime:.2f}s cpu={cpu:.2f}s airings={int(rec['airings'])} "
        + (
            f"gap_opt={pct(rec['gap_opt'])} milp={rec['milp_s']:.1f}s proven={bool(rec['milp_proven'])} "
            if days == 1
            else ""
        )
        + f"gap_bound={pct(rec['gap_bound'])} greedy+={pct(rec['impr_greedy'])} current+={pct(rec['impr_current'])} "
        f"viol={violations}/{len(returned)} generations={res.generations} stopped={res.stopped}",
        flush=True,
    )
    return rec


def med(v: list[float]) -> float:
    return statistics.median(v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--week-seeds", type=int, default=3)
    parser.add_argument("--channel", default="metro-seven")
    parser.add_argument("--date", default="2025-06-02")
    parser.add_argument("--milp-limit", type=float, default=60.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    np.seterr(all="ignore")
    sim = simulate(GeneratorConfig())
    first = date.fromisoformat(args.date)
    rows = []
    for days, seeds in ((1, args.seeds), (7, args.week_seeds)):
        agg: dict[str, list[float]] = {}
        for seed in range(seeds):
            for k, v in one(
                sim, channel=args.channel, first=first, days=days, seed=seed, milp_limit=args.milp_limit
            ).items():
                agg.setdefault(k, []).append(v)
        rows.append((days, seeds, agg))
    load = os.getloadavg()[0]
    out = [
        "### Timeline scheduler (`bench/schedule.py`)",
        "",
        f"Machine: {machine()}; 1-min load average {load:.1f} when the run ended (the machine is shared, so "
        "wall time overstates the cost; CPU time is the process's own).",
        "",
        f"Channel `{args.channel}` of the demo data (seed 42), its whole catalogue of 75 programs (30/60/90/120 "
        f"minutes, G to R) as candidates, broadcast day(s) from {args.date} 06:00-02:00 on a 30-minute grid (40 "
        "cells a day); default constraints: R only 22:00-06:00 and G/PG only 06:00-09:00 over the whole span "
        "of an airing, at most 2 airings of a program a day (and 7 in the week), at most 2 same-genre airings "
        "in a row (soft), no gaps. Values: a stand-in for the production models (a program's mean expected "
        "revenue per airing before that date x the hour's factor), with lognormal noise drawn per seed. "
        "**Runtime**: the whole job (greedy, Lagrangian grid-DP construction, GA, top-3 alternatives, Pareto "
        "front, LP bound). **Gap to optimum**: to the HiGHS time-indexed integer program (`scipy.optimize.milp`, "
        f"limit {args.milp_limit:.0f} s, runs modelled exactly). **Gap to bound**: to the LP relaxation the "
        "job reports. **Violations**: every returned schedule (best, alternatives, Pareto) re-checked by "
        "`check_timeline`. **vs current**: the objective against the airings the channel really had in the "
        "window, valued by the same model.",
        "",
        "| window | seeds | runtime wall median (max) | CPU median | gap to optimum median (max) | optimum proven, "
        "HiGHS time | gap to LP bound median (max) | hard violations / schedules | vs greedy | vs current "
        "| airings (current) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for days, seeds, a in rows:
        gap_opt = f"{pct(med(a['gap_opt']))} ({pct(max(a['gap_opt']))})" if "gap_opt" in a else "n/a"
        proven = f"{int(sum(a['milp_proven']))}/{seeds}, {med(a['milp_s']):.1f} s" if "milp_proven" in a else "not run"
        out.append(
            f"| {'day' if days == 1 else 'week'} | {seeds} | {med(a['runtime']):.2f} s ({max(a['runtime']):.2f} s) "
            f"| {med(a['cpu']):.2f} s | {gap_opt} | {proven} "
            f"| {pct(med(a['gap_bound']))} ({pct(max(a['gap_bound']))}) "
            f"| {int(sum(a['violations']))} / {int(sum(a['returned']))} | +{pct(med(a['impr_greedy']))} "
            f"| +{pct(med(a['impr_current']))} | {int(med(a['airings']))} ({int(med(a['current_airings']))}) |"
        )
    out += [
        "",
        "Targets (issue 14): day <= 2 s and median gap to the optimum <= 1% over 5 seeds; week <= 15 s and "
        "<= 2% from the bound; 0 hard violations.",
    ]
    body = "\n".join(out)
    print(body)
    if not args.no_write:
        write_section("schedule", body)


if __name__ == "__main__":
    main()
