"""Benchmark of the schedule optimiser: python bench/schedule_slots.py [--seeds 5] [--sizes 50,200,1000].

Synthetic instances (bench/schedule_instances.py) with 2 candidates per slot and every constraint on: fixed
news at 18:00, 5% unavailable cells, content-rating windows, length fits, per-day airing limits, at
most 2 consecutive slots of a genre, >= 3 genres per daypart, an advertiser goal; objective revenue
+ 0.5 x audience. For each size and seed: runtime of the whole job (GA + alternatives + Pareto), the
gap to the assignment bound, the gap to the proven optimum (HiGHS integer program, 50 and 200
slots), the improvement over greedy and over a "current" schedule, hard violations of every returned
schedule by the independent checker, the linear-only gap, the Pareto hypervolume share, and a plain
DEAP GA (random permutations, eaSimple, per-slot Python fitness) on the same instance.
Writes the section ``schedule_slots`` of docs/benchmarks.md (the fixed-slot special case).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench._report import write_section  # noqa: E402
from bench.schedule_instances import current_schedule, instance  # noqa: E402
from bench.schedule_quality import hypervolume_ratio, plain_deap  # noqa: E402
from scheduling.exact import assignment, milp_optimum  # noqa: E402
from scheduling.optimizer import GAParams, LocalSearch, optimize  # noqa: E402
from scheduling.problem import check_hard, evaluate  # noqa: E402


def pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def run(sizes: list[int], seeds: list[int], milp_limit: float, plain_budget: float) -> str:
    rows = []
    for n in sizes:
        agg: dict[str, list[float]] = {}
        for seed in seeds:
            prob = instance(n, seed=seed)
            t0, c0 = time.perf_counter(), time.process_time()
            res = optimize(prob, GAParams(seed=seed, time_budget=15.0))
            runtime, cpu = time.perf_counter() - t0, time.process_time() - c0
            best = res.best.totals.objective
            returned = [res.best, *res.alternatives, *res.pareto]
            violations = sum(len(check_hard(prob, s.schedule)) for s in returned)
            cur = current_schedule(prob, seed=seed)
            cur_obj = float(evaluate(prob, cur[None, :])[0])
            hv, hull_complete = hypervolume_ratio(
                prob, [np.array(s.schedule) for s in res.pareto], deadline=time.perf_counter() + 300
            )
            rec = {
                "runtime": runtime,
                "cpu": cpu,
                "gap_bound": res.gap,
                "impr_greedy": res.improvement_over_greedy,
                "impr_current": (best - cur_obj) / abs(cur_obj),
                "violations": float(violations),
                "returned": float(len(returned)),
                "alternatives": float(len(res.alternatives)),
                "pareto_points": float(len(res.pareto)),
                "hv": hv,
                "hull_complete": float(hull_complete),
                "generations": float(res.generations),
            }
            t2 = time.perf_counter()
            als = LocalSearch(prob).run(assignment(prob), time.perf_counter() + 60)
            rec["als_s"] = time.perf_counter() - t2
            als_obj = float(evaluate(prob, als[None, :])[0])
            lin = prob.with_weights(max_consecutive_genre=0, min_genres_per_daypart=0)
            lres = optimize(lin, GAParams(seed=seed, time_budget=15.0, pareto=False, top_k=1))
            rec["gap_linear"] = lres.gap
            if n <= 200:
                m = milp_optimum(prob, time_limit=milp_limit)
                rec["milp_s"] = m.seconds
                rec["milp_proven"] = float(m.proven)
                rec["gap_opt"] = (m.objective - best) / abs(m.objective)
                rec["als_gap"] = (m.objective - als_obj) / abs(m.objective)
            else:
                rec["als_gap_bound"] = (res.bound - als_obj) / abs(res.bound)
            t1 = time.perf_counter()
            plain = plain_deap(prob, seed=seed, population=100, generations=100, time_budget=plain_budget)
            rec["plain_s"] = time.perf_counter() - t1
            rec["plain_gap"] = (res.bound - float(evaluate(prob, plain[None, :])[0])) / abs(res.bound)
            rec["plain_viol"] = float(len(check_hard(prob, plain)))
            if n <= 200:
                rec["plain_gap_opt"] = (m.objective - float(evaluate(prob, plain[None, :])[0])) / abs(m.objective)
            for k, v in rec.items():
                agg.setdefault(k, []).append(v)
            print(
                f"n={n} seed={seed} runtime={runtime:.3f}s cpu={cpu:.3f}s gap_bound={pct(res.gap)} "
                + (f"gap_opt={pct(rec['gap_opt'])} milp={rec['milp_s']:.1f}s " if n <= 200 else "")
                + f"gap_linear={pct(lres.gap)} greedy+={pct(rec['impr_greedy'])} current+={pct(rec['impr_current'])} "
                f"viol={violations}/{len(returned)} schedules hv={rec['hv']:.3f} pareto={len(res.pareto)} "
                f"plain: gap={pct(rec['plain_gap'])} viol={int(rec['plain_viol'])} {rec['plain_s']:.1f}s",
                flush=True,
            )
        rows.append((n, agg))
    return render(rows, seeds, milp_limit, plain_budget)


def med(v: list[float]) -> float:
    return statistics.median(v)


def render(
    rows: list[tuple[int, dict[str, list[float]]]], seeds: list[int], milp_limit: float, plain_budget: float
) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out = [
        "### Schedule optimiser, fixed slots (`bench/schedule_slots.py`)",
        "",
        f"{len(seeds)} seeds per size, 2 candidates per slot, all constraints on (fixed news at 18:00, 5% "
        "unavailable cells, content-rating windows, length fits, per-day airing limits, <= 2 consecutive "
        "slots of a genre, >= 3 genres per daypart, an advertiser goal); objective revenue + 0.5 x audience. "
        "Medians over seeds (max/min in brackets). **Runtime** is the whole job (exact bound, greedy, GA, "
        "top-3 alternatives, Pareto front, checker), wall clock and CPU time of the process: the machine is "
        f"shared with other jobs (1-min load average {load:.1f} on {os.cpu_count()} cores when the run ended), so "
        "wall time overstates the cost; CPU time is what the job itself used. **Gap to optimum**: to the "
        f"HiGHS integer program (`scipy.optimize.milp`, time limit {milp_limit:.0f} s). **Assignment + LS**: "
        "the exact assignment polished by the same local search, no GA (the issue's 'about 1.5%' baseline). "
        "**Gap to bound**: to the exact assignment optimum of the linear part (soft constraints ignored, so an "
        "upper bound). **Linear-only gap**: the same instance with the soft constraints off, against its exact "
        "optimum. **Hypervolume**: the Pareto front (revenue, audience) as a share of the area under the "
        "convex hull of all exact weighted-sum optima (an upper bound for any front). **Plain DEAP**: random "
        "permutations, PMX, `eaSimple`, pop 100 x 100 generations (at most "
        f"{plain_budget:.0f} s), per-individual Python fitness, no repair.",
        "",
        "| slots | runtime wall median (max) | CPU median (max) | gap to optimum median (max) | optimum proven, HiGHS time "
        "| assignment + LS gap | gap to bound | linear-only gap (max) | vs greedy | vs current "
        "| hard violations / schedules checked | Pareto points (min) | hypervolume (min) "
        "| plain DEAP gap | plain DEAP hard violations | plain DEAP runtime |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, a in rows:
        gap_opt = f"{pct(med(a['gap_opt']))} ({pct(max(a['gap_opt']))})" if "gap_opt" in a else "n/a"
        proven = (
            f"{int(sum(a['milp_proven']))}/{len(a['milp_proven'])}, {med(a['milp_s']):.1f} s"
            if "milp_proven" in a
            else "not run"
        )
        als = f"{pct(med(a['als_gap']))} to optimum" if "als_gap" in a else f"{pct(med(a['als_gap_bound']))} to bound"
        plain_gap = (
            f"{pct(med(a['plain_gap_opt']))} to optimum"
            if "plain_gap_opt" in a
            else f"{pct(med(a['plain_gap']))} to bound"
        )
        out.append(
            f"| {n} | {med(a['runtime']):.2f} s ({max(a['runtime']):.2f} s) | {med(a['cpu']):.2f} s ({max(a['cpu']):.2f} s) "
            f"| {gap_opt} | {proven} | {als} | {pct(med(a['gap_bound']))} "
            f"| {pct(med(a['gap_linear']))} ({pct(max(a['gap_linear']))}) "
            f"| +{pct(med(a['impr_greedy']))} | +{pct(med(a['impr_current']))} "
            f"| {int(sum(a['violations']))} / {int(sum(a['returned']))} "
            f"| {int(med(a['pareto_points']))} ({int(min(a['pareto_points']))}) "
            f"| {med(a['hv']):.3f} ({min(a['hv']):.3f}){'' if all(a['hull_complete']) else ' (hull incomplete)'} | {plain_gap} | {int(sum(a['plain_viol']))} in {len(a['plain_viol'])} runs "
            f"| {med(a['plain_s']):.1f} s |"
        )
    out.append("")
    out.append(
        "Targets (issue 5): runtime <= 0.5 / 2 / 15 s for 50 / 200 / 1000 slots; gap to optimum <= 1% median; "
        "linear-only gap <= 1%; 0 hard violations; hypervolume >= 0.95."
    )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sizes", default="50,200,1000")
    parser.add_argument("--milp-limit", type=float, default=180.0)
    parser.add_argument("--plain-budget", type=float, default=30.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    np.seterr(all="ignore")
    body = run([int(s) for s in args.sizes.split(",")], list(range(args.seeds)), args.milp_limit, args.plain_budget)
    print(body)
    if not args.no_write:
        write_section("schedule_slots", body)


if __name__ == "__main__":
    main()
