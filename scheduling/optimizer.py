"""Memetic DEAP genetic algorithm over the numpy matrices of a :class:`~scheduling.problem.Problem`.

Encoding: one program index per slot. Every individual is made hard-feasible by :func:`repair`
(mask + per-day airing limits), so crossover (uniform over days or genes, one-point) and mutation (swap
or shuffle within a day) can never hand back an invalid schedule. Fitness is evaluated for the whole
population at once as arrays. Seeds: the exact assignment optimum of the linear part, the greedy
schedule and perturbed assignments, all polished by :func:`local_search` (reassign and swap moves,
their gains computed as arrays for every slot at once, one move per day per round because days are
independent), plus random repaired schedules. Elitist (mu + lambda) survival, early stop on a
plateau, a seed for reproducibility and a hard time budget (the best feasible schedule so far is
returned). NSGA-II gives the revenue/reach Pareto front. No Django here.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from deap import base, creator, tools
from scipy.optimize import linear_sum_assignment

from scheduling.exact import assignment
from scheduling.problem import (
    BoolArray,
    FloatArray,
    IntArray,
    Problem,
    Totals,
    alternatives_from_population,
    check_hard,
    evaluate,
    front_rows,
    linear_totals,
    totals,
)


class Fitness(Protocol):
    values: tuple[float, ...]


class Individual(Protocol):
    """A DEAP ``creator.Schedule`` (or ``ParetoSchedule``): a list of program indices, one per slot,
    with its fitness. DEAP is untyped; this is what the GA uses of one."""

    fitness: Fitness

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[int]: ...

    def __getitem__(self, index: int) -> int: ...

    def __setitem__(self, index: slice, value: Iterable[int]) -> None: ...


if not hasattr(creator, "ScheduleFitness"):
    creator.create("ScheduleFitness", base.Fitness, weights=(1.0,))
    creator.create("Schedule", list, fitness=creator.ScheduleFitness)
    creator.create("ParetoFitness", base.Fitness, weights=(1.0, 1.0))
    creator.create("ParetoSchedule", list, fitness=creator.ParetoFitness)

EPS = 1e-9


@dataclass
class GAParams:
    seed: int = 0
    population: int = 24
    generations: int = 200
    plateau: int = 15  # generations without improvement before stopping
    time_budget: float = 30.0  # seconds, hard
    selection: str = "tournament"  # or "roulette"
    tournament_size: int = 3
    crossover: str = "day_uniform"  # "day_uniform" | "uniform" | "one_point"
    cxpb: float = 0.8
    mutation: str = "swap"  # "swap" | "shuffle"
    mutpb: float = 0.3
    local_search_per_generation: int = 2
    ruin_recreate_per_generation: int = 2
    top_k: int = 3
    alternative_within: float = 0.02
    alternative_min_diff: float = 0.10
    pareto: bool = True
    pareto_generations: int = 40
    pareto_population: int = 24


@dataclass
class Solution:
    schedule: list[int]
    totals: Totals
    hard_violations: list[str]


@dataclass
class OptimizeResult:
    best: Solution
    alternatives: list[Solution]
    pareto: list[Solution]
    bound: float  # exact optimum of the linear part (upper bound of the objective)
    gap: float  # (bound - best) / |bound|
    greedy: Solution
    improvement_over_greedy: float
    generations: int
    max_generations: int
    runtime: float
    stopped: str  # "plateau" | "generations" | "time_budget" | "cancelled"
    history: list[float] = field(default_factory=list)


# ---- construction -------------------------------------------------------------------------------
def _slot_candidates(problem: Problem, value: FloatArray, top: int) -> tuple[IntArray, FloatArray]:
    """Per slot the ``top`` best allowed programs (S x T, padded with -1 / -inf)."""
    masked = np.where(problem.allowed, value, -np.inf)
    t = min(top, problem.n_programs)
    idx = np.argpartition(-masked, t - 1, axis=0)[:t] if t < problem.n_programs else np.argsort(-masked, axis=0)
    vals = np.take_along_axis(masked, idx, axis=0)
    order = np.argsort(-vals, axis=0)
    idx = np.take_along_axis(idx, order, axis=0).T
    vals = np.take_along_axis(vals, order, axis=0).T
    idx = np.where(np.isfinite(vals), idx, -1)
    return idx.astype(np.int64), vals


def greedy(problem: Problem) -> IntArray:
    """Chronological greedy: each slot takes the best allowed program with airings left that day,
    avoiding a genre run over the limit when it can. Capacity of fixed slots is reserved first."""
    S = problem.n_slots
    x = np.full(S, -1, dtype=np.int64)
    used = np.zeros((problem.n_days, problem.n_programs), dtype=np.int64)
    fixed = problem.slot_fixed
    for f in np.flatnonzero(fixed >= 0):
        used[problem.slot_day[f], fixed[f]] += 1
    K = problem.max_consecutive_genre
    for s in range(S):
        d = problem.slot_day[s]
        if fixed[s] >= 0:
            x[s] = fixed[s]
            continue
        ok = problem.allowed[:, s] & (used[d] < problem.max_per_day)
        if not ok.any():
            continue
        score = np.where(ok, problem.value[:, s], -np.inf)
        if K > 0 and s >= K and problem.same_day_next[s - K : s].all():
            last = problem.genre[x[s - K : s]]
            if (last == last[0]).all() and x[s - K] >= 0:
                score = score - problem.run_weight * (problem.genre == last[0])
        p = int(np.argmax(score))
        x[s] = p
        used[d, p] += 1
    if (x < 0).any():
        x = repair(problem, x)
    return x


def _holes(problem: Problem, X: IntArray) -> BoolArray:
    """Cells of each row (X: n x S, fixed slots already set) that break the mask or exceed the
    per-day airing limit; of the surplus airings the least valuable are the holes."""
    n, S = X.shape
    P = problem.n_programs
    cols = np.arange(S)
    fixed = problem.slot_fixed >= 0
    hole = ~problem.allowed[X, cols[None, :]]
    key = (np.arange(n)[:, None] * problem.n_days + problem.slot_day[None, :]) * P + X
    key = np.where(hole, -1, key).ravel()
    prio = np.where(fixed[None, :], np.inf, problem.value[X, cols[None, :]]).ravel()
    order = np.lexsort((-prio, key))
    sk = key[order]
    first = np.r_[True, sk[1:] != sk[:-1]]
    idx = np.arange(sk.size)
    rank = idx - np.maximum.accumulate(np.where(first, idx, 0))
    over = (rank >= problem.max_per_day[X.ravel()[order]]) & (sk >= 0)
    flat = hole.ravel()
    flat[order[over]] = True
    return flat.reshape(n, S)


def repair_many(problem: Problem, X: IntArray) -> IntArray:
    """Make every row of X hard-feasible: fixed slots, the mask, then the per-day airing limits (the
    lowest-value surplus airings are dropped), and refill the holes with the best program left."""
    X = np.array(X, dtype=np.int64, ndmin=2)
    X[(X < 0) | (problem.n_programs <= X)] = 0
    fixed = problem.slot_fixed >= 0
    X[:, fixed] = problem.slot_fixed[fixed]
    holes = _holes(problem, X)
    for i in np.flatnonzero(holes.any(axis=1)):
        X[i] = _fill(problem, X[i], holes[i])
    return X


def repair(problem: Problem, x: IntArray) -> IntArray:
    repaired: IntArray = repair_many(problem, np.asarray(x)[None, :])[0]
    return repaired


def _fill(problem: Problem, x: IntArray, hole: BoolArray) -> IntArray:
    used = np.zeros((problem.n_days, problem.n_programs), dtype=np.int64)
    keep = ~hole
    np.add.at(used, (problem.slot_day[keep], x[keep]), 1)
    for s in np.flatnonzero(hole):
        d = problem.slot_day[s]
        ok = problem.allowed[:, s] & (used[d] < problem.max_per_day)
        if not ok.any():
            # the greedy fill painted itself into a corner: take the day from the exact assignment
            day = problem.day_slots[d]
            x = x.copy()
            x[day] = assignment(problem)[day]
            return repair(problem, x)
        p = int(np.argmax(np.where(ok, problem.value[:, s], -np.inf)))
        x[s] = p
        used[d, p] += 1
    return x


# ---- local search -------------------------------------------------------------------------------
class LocalSearch:
    """Reassign / swap hill climbing with array deltas; one verified move per day per round."""

    def __init__(self, problem: Problem, top: int = 24) -> None:
        self.p = problem
        self.cand, self.cand_val = _slot_candidates(problem, problem.value, top)
        self.cand_genre = np.where(self.cand >= 0, problem.genre[np.maximum(self.cand, 0)], -1)
        lens = [d.size for d in problem.day_slots]
        self.L = max(lens) if lens else 0
        D = problem.n_days
        self.day_idx = np.full((D, self.L), -1, dtype=np.int64)
        for d, sl in enumerate(problem.day_slots):
            self.day_idx[d, : sl.size] = sl
        self.nb = int(problem.block.max()) + 1 if problem.n_slots else 0

    def day_score(self, x: IntArray, d: int) -> float:
        p = self.p
        sl = p.day_slots[d]
        score = float(p.value[x[sl], sl].sum())
        g = p.genre[x[sl]]
        K = p.max_consecutive_genre
        if p.run_weight and sl.size > K:
            same = g[1:] == g[:-1]
            win = np.lib.stride_tricks.sliding_window_view(same, K).all(axis=-1)
            score -= p.run_weight * int(win.sum())
        if p.diversity_weight:
            blocks = p.block[sl]
            short = 0
            for b in np.unique(blocks):
                short += max(0, int(p.block_need[b]) - np.unique(g[blocks == b]).size)
            score -= p.diversity_weight * short
        return score

    def _penalty_delta(self, x: IntArray) -> FloatArray:
        """S x G: change of the soft penalty if slot s switched to genre g (everything else fixed)."""
        p = self.p
        S, G = p.n_slots, p.n_genres
        g = p.genre[x]
        delta = np.zeros((S, G))
        K = p.max_consecutive_genre
        if p.run_weight:
            ind = g[None, :] == np.arange(G)[:, None]  # G x S
            idx = np.arange(S)
            brk = np.r_[True, ~p.same_day_next]  # a run cannot continue across days

            # run ending at i (inclusive) with day breaks
            reset = np.where(~ind, idx[None, :], -1)
            reset = np.maximum(reset, np.where(brk[None, :], idx[None, :] - 1, -1))
            last = np.maximum.accumulate(reset, axis=1)
            end_run = np.where(ind, idx[None, :] - last, 0)
            left = np.zeros((G, S), dtype=np.int64)
            left[:, 1:] = np.where(p.same_day_next[None, :], end_run[:, :-1], 0)
            rind = ind[:, ::-1]
            rbrk = np.r_[True, ~p.same_day_next[::-1]]
            reset = np.where(~rind, idx[None, :], -1)
            reset = np.maximum(reset, np.where(rbrk[None, :], idx[None, :] - 1, -1))
            last = np.maximum.accumulate(reset, axis=1)
            start_run = np.where(rind, idx[None, :] - last, 0)[:, ::-1]
            right = np.zeros((G, S), dtype=np.int64)
            right[:, :-1] = np.where(p.same_day_next[None, :], start_run[:, 1:], 0)

            def f(r: IntArray) -> IntArray:
                return np.maximum(r - K, 0)

            lo_, ro_ = left[g, idx], right[g, idx]
            removed = f(lo_) + f(ro_) - f(lo_ + 1 + ro_)  # old genre's run splits
            added = f(left + 1 + right) - f(left) - f(right)  # G x S
            drun = added.T + removed[:, None]
            drun[idx, g] = 0
            delta += p.run_weight * drun
        if p.diversity_weight:
            cnt = np.zeros((self.nb, G), dtype=np.int64)
            np.add.at(cnt, (p.block, g), 1)
            distinct = (cnt > 0).sum(axis=1)
            b = p.block
            lose = (cnt[b, g] == 1).astype(np.int64)
            add = (cnt[b] == 0).astype(np.int64)  # S x G
            new_distinct = distinct[b][:, None] - lose[:, None] + add
            need = p.block_need[b][:, None]
            ddiv = np.maximum(need - new_distinct, 0) - np.maximum(need - distinct[b][:, None], 0)
            ddiv[np.arange(S), g] = 0
            delta += p.diversity_weight * ddiv
        return delta

    def ruin_recreate(self, x: IntArray, rng: np.random.Generator, deadline: float) -> IntArray:
        """Large-neighbourhood move: re-solve a random window of one day exactly (assignment over the
        programs with airings left that day, values jittered so repeated calls explore), then climb."""
        p = self.p
        days = [sl for sl in p.day_slots if sl.size >= 2]
        if not days:
            return x
        sl = days[int(rng.integers(len(days)))]
        w = min(int(sl.size), int(rng.integers(4, 13)))
        start = int(rng.integers(0, sl.size - w + 1))
        win = sl[start : start + w]
        win = win[p.slot_fixed[win] < 0]
        if win.size < 2:
            return x
        rest = np.setdiff1d(sl, win)
        cap = p.max_per_day - np.bincount(x[rest], minlength=p.n_programs)
        progs = np.unique(self.cand[win].ravel())
        progs = progs[(progs >= 0)]
        progs = progs[cap[progs] > 0]
        if progs.size == 0:
            return x
        cols = np.repeat(progs, np.minimum(cap[progs], win.size))
        jitter = rng.normal(0.0, 0.03, (cols.size, win.size))
        cost = np.where(p.allowed[cols][:, win], -(p.value[cols][:, win] + jitter), np.inf).T
        try:
            rows, chosen = linear_sum_assignment(cost)
        except ValueError:
            return x
        if rows.size < win.size:
            return x
        y = x.copy()
        y[win[rows]] = cols[chosen]
        return self.run(y, deadline)

    def run(self, x: IntArray, deadline: float, max_rounds: int = 10_000) -> IntArray:
        p = self.p
        x = np.array(x, dtype=np.int64)
        S = p.n_slots
        if S == 0:
            return x
        cols = np.arange(S)
        free = p.slot_fixed < 0
        day_of = p.slot_day
        di = self.day_idx
        valid = di >= 0
        dis = np.maximum(di, 0)
        active = np.ones(p.n_days, dtype=bool)
        for _ in range(max_rounds):
            if time.perf_counter() > deadline or not active.any():
                break
            cur = p.value[x, cols]
            pen = self._penalty_delta(x) if (p.run_weight or p.diversity_weight) else None
            used = np.zeros((p.n_days, p.n_programs), dtype=np.int64)
            np.add.at(used, (day_of, x), 1)
            # reassign s -> candidate
            c = self.cand
            cc = np.maximum(c, 0)
            cap_ok = (c >= 0) & (c != x[:, None]) & (used[day_of[:, None], cc] < p.max_per_day[cc]) & free[:, None]
            gain_r = self.cand_val - cur[:, None]
            if pen is not None:
                gain_r = gain_r - pen[cols[:, None], np.maximum(self.cand_genre, 0)]
            gain_r = np.where(cap_ok, gain_r, -np.inf)
            best_t = np.argmax(gain_r, axis=1)
            best_r = gain_r[cols, best_t]
            # swap s <-> s2 within a day (D x L x L)
            xd = x[dis]
            a = dis[:, :, None]
            b = dis[:, None, :]
            pa = xd[:, :, None]
            pb = xd[:, None, :]
            ok = (
                valid[:, :, None]
                & valid[:, None, :]
                & (pa != pb)
                & free[a]
                & free[b]
                & p.allowed[pb, a]
                & p.allowed[pa, b]
            )
            gain_s = p.value[pb, a] + p.value[pa, b] - cur[a] - cur[b]
            if pen is not None:
                ga, gb = p.genre[pa], p.genre[pb]
                gain_s = gain_s - pen[a, gb] - pen[b, ga]
            gain_s = np.where(ok, gain_s, -np.inf)
            flat = gain_s.reshape(p.n_days, -1)
            best_sw = np.argmax(flat, axis=1)
            best_sw_gain = flat[np.arange(p.n_days), best_sw]
            # chain: the program of t moves to s and t takes its best free candidate
            has_r = np.isfinite(best_r)
            ok_m = (
                valid[:, :, None]
                & valid[:, None, :]
                & (a != b)
                & free[a]
                & free[b]
                & p.allowed[pb, a]
                & (pa != pb)
                & has_r[b]
            )
            gain_m = p.value[pb, a] - cur[a] + np.where(has_r[b], best_r[b], 0.0)
            if pen is not None:
                gain_m = gain_m - pen[a, p.genre[pb]]
            flat_m = np.where(ok_m, gain_m, -np.inf).reshape(p.n_days, -1)
            best_mv = np.argmax(flat_m, axis=1)
            best_mv_gain = flat_m[np.arange(p.n_days), best_mv]
            # best reassign per day
            per_day_r = np.where(valid, best_r[dis], -np.inf)
            best_rs = np.argmax(per_day_r, axis=1)
            best_rg = per_day_r[np.arange(p.n_days), best_rs]
            improved = np.zeros(p.n_days, dtype=bool)
            todo = active & ((best_rg > EPS) | (best_sw_gain > EPS) | (best_mv_gain > EPS))
            for d in np.flatnonzero(todo):
                before = self.day_score(x, int(d))
                moves = sorted(((best_rg[d], 0), (best_sw_gain[d], 1), (best_mv_gain[d], 2)), key=lambda m: -m[0])
                for gain, kind in moves:
                    if gain <= EPS:
                        break
                    trial = x.copy()
                    if kind == 0:
                        s = int(di[d, best_rs[d]])
                        trial[s] = c[s, best_t[s]]
                    else:
                        i, j = divmod(int(best_sw[d] if kind == 1 else best_mv[d]), self.L)
                        s1, s2 = int(di[d, i]), int(di[d, j])
                        if kind == 1:
                            trial[s1], trial[s2] = x[s2], x[s1]
                        else:
                            trial[s1], trial[s2] = x[s2], c[s2, best_t[s2]]
                    if self.day_score(trial, int(d)) > before + EPS:
                        x = trial
                        improved[d] = True
                        break
            active = improved
        return x


# ---- GA operators -------------------------------------------------------------------------------
def _cx_day_uniform(problem: Problem, a: list[int], b: list[int], rng: random.Random) -> tuple[list[int], list[int]]:
    """Uniform crossover over whole broadcast days (a day's airing limits stay intact)."""
    for sl in problem.day_slots:
        if rng.random() < 0.5:
            i, j = int(sl[0]), int(sl[-1]) + 1
            a[i:j], b[i:j] = b[i:j], a[i:j]
    return a, b


def _mut_swap(problem: Problem, ind: list[int], rng: random.Random, n_moves: int = 2) -> tuple[list[int]]:
    """Swap the programs of two slots of one day, ``n_moves`` times."""
    for _ in range(n_moves):
        sl = problem.day_slots[rng.randrange(len(problem.day_slots))]
        if sl.size < 2:
            continue
        i, j = rng.sample(range(int(sl[0]), int(sl[-1]) + 1), 2)
        ind[i], ind[j] = ind[j], ind[i]
    return (ind,)


def _mut_shuffle(problem: Problem, ind: list[int], rng: random.Random) -> tuple[list[int]]:
    """DEAP's shuffle mutation inside one day."""
    sl = problem.day_slots[rng.randrange(len(problem.day_slots))]
    i, j = int(sl[0]), int(sl[-1]) + 1
    seg = ind[i:j]
    tools.mutShuffleIndexes(seg, indpb=min(1.0, 2.0 / max(1, len(seg))))
    ind[i:j] = seg
    return (ind,)


def _random_schedule(problem: Problem, rng: np.random.Generator, cand: IntArray) -> IntArray:
    """A random schedule drawn from each slot's candidate list, then repaired."""
    n_valid = (cand >= 0).sum(axis=1)
    pick = (rng.random(problem.n_slots) * np.maximum(n_valid, 1)).astype(np.int64)
    x = cand[np.arange(problem.n_slots), pick]
    return repair(problem, x)


def _hamming(a: IntArray, b: IntArray) -> float:
    return float((a != b).mean()) if a.size else 0.0


def solution(problem: Problem, x: IntArray) -> Solution:
    return Solution(schedule=[int(v) for v in x], totals=totals(problem, x), hard_violations=check_hard(problem, x))


def _gap(bound: float, value: float) -> float:
    return (bound - value) / abs(bound) if bound else 0.0


# ---- main entry ---------------------------------------------------------------------------------
ProgressFn = Callable[[int, int], bool]  # (generation, max) -> keep going?


def optimize(problem: Problem, params: GAParams | None = None, progress: ProgressFn | None = None) -> OptimizeResult:
    """Best schedule for the weighted-sum objective, plus alternatives, Pareto front, bound and baselines.

    Raises :class:`~scheduling.problem.InfeasibleProblemError` (with the conflicting constraints)
    when no schedule satisfies the hard constraints.
    """
    params = params or GAParams()
    t0 = time.perf_counter()
    # the GA stops early enough to leave the alternatives and the Pareto front their share
    ga_deadline = t0 + params.time_budget * (0.6 if params.pareto else 0.85)
    rng = random.Random(params.seed)
    nrng = np.random.default_rng(params.seed)

    exact = assignment(problem)  # raises InfeasibleProblemError
    bound = float(linear_totals(problem, exact[None, :], problem.value)[0])
    greedy_x = greedy(problem)
    ls = LocalSearch(problem)
    seeds = _seed_schedules(problem, params, ls, [greedy_x, exact], nrng, t0=t0, deadline=ga_deadline)
    run = _evolve(problem, params, _toolbox(problem, params, rng, nrng), ls, seeds, rng, nrng, ga_deadline, progress)

    best_x = np.array(run.best, dtype=np.int64)
    if evaluate(problem, greedy_x[None, :])[0] > run.best_score:  # never worse than the greedy seed
        best_x = greedy_x
    best_sol = solution(problem, best_x)
    alternatives, pareto = _extras(problem, params, ls, best_sol, best_x, run, t0=t0)
    greedy_sol = solution(problem, greedy_x)
    return OptimizeResult(
        best=best_sol,
        alternatives=alternatives,
        pareto=pareto,
        bound=bound,
        gap=_gap(bound, best_sol.totals.objective),
        greedy=greedy_sol,
        improvement_over_greedy=_improvement(best_sol.totals.objective, greedy_sol.totals.objective),
        generations=run.generations,
        max_generations=params.generations,
        runtime=time.perf_counter() - t0,
        stopped=run.stopped,
        history=run.history,
    )


def _seed_schedules(
    problem: Problem,
    params: GAParams,
    ls: LocalSearch,
    starts: list[IntArray],
    nrng: np.random.Generator,
    *,
    t0: float,
    deadline: float,
) -> list[IntArray]:
    """The first population: the greedy and exact schedules as they are and polished, assignments of
    perturbed values (polished, within the first 30% of the budget), then random schedules."""
    seeds: list[IntArray] = [*starts, *(ls.run(x, deadline) for x in reversed(starts))]
    scale = float(np.abs(problem.value[problem.allowed]).mean()) if problem.allowed.any() else 1.0
    for _ in range(max(2, params.population // 4)):
        if time.perf_counter() > t0 + 0.3 * params.time_budget:
            break
        noisy = problem.value + nrng.normal(0.0, 0.05 * scale, problem.value.shape)
        seeds.append(ls.run(assignment(problem, noisy), deadline))
    while len(seeds) < params.population:
        seeds.append(_random_schedule(problem, nrng, ls.cand))
    return seeds


def _toolbox(problem: Problem, params: GAParams, rng: random.Random, nrng: np.random.Generator) -> base.Toolbox:
    """DEAP selection, crossover and mutation as the request chose them."""
    toolbox = base.Toolbox()
    if params.selection == "roulette":
        # roulette needs positive fitness: select on the shifted score, not in place
        def _roulette(pop: list[Individual], k: int) -> list[Individual]:
            vals = np.array([ind.fitness.values[0] for ind in pop])
            w = vals - vals.min() + 1e-6
            idx = nrng.choice(len(pop), size=k, p=w / w.sum())
            return [pop[i] for i in idx]

        toolbox.register("select", _roulette)
    else:
        toolbox.register("select", tools.selTournament, tournsize=params.tournament_size)
    if params.crossover == "uniform":
        toolbox.register("mate", tools.cxUniform, indpb=0.5)
    elif params.crossover == "one_point":
        toolbox.register("mate", tools.cxOnePoint)
    else:
        toolbox.register("mate", _cx_day_uniform, problem, rng=rng)
    if params.mutation == "shuffle":
        toolbox.register("mutate", _mut_shuffle, problem, rng=rng)
    else:
        toolbox.register("mutate", _mut_swap, problem, rng=rng)
    return toolbox


@dataclass
class _Evolution:
    best: Individual
    best_score: float
    population: list[Individual]
    history: list[float]
    generations: int
    stopped: str


def _evolve(
    problem: Problem,
    params: GAParams,
    toolbox: base.Toolbox,
    ls: LocalSearch,
    seeds: list[IntArray],
    rng: random.Random,
    nrng: np.random.Generator,
    deadline: float,
    progress: ProgressFn | None,
) -> _Evolution:
    """The generations: until the plateau, the generation limit, the deadline or a cancellation."""
    population = [creator.Schedule(s.tolist()) for s in seeds]
    for ind, sc in zip(population, evaluate(problem, np.array(population, dtype=np.int64)), strict=True):
        ind.fitness.values = (float(sc),)
    best = tools.selBest(population, 1)[0]
    best_score = best.fitness.values[0]
    history = [best_score]
    stale, gen, stopped = 0, 0, "generations"
    random.seed(params.seed)  # DEAP's operators draw from the module-level generator
    for gen in range(1, params.generations + 1):
        if time.perf_counter() > deadline:
            stopped = "time_budget"
            gen -= 1
            break
        if progress is not None and not progress(gen, params.generations):
            stopped = "cancelled"
            break
        offspring = _offspring(problem, params, toolbox, ls, population, rng, nrng, deadline)
        population = _survivors(problem, params, ls, population + offspring, nrng)
        top = population[0]
        if top.fitness.values[0] > best_score + EPS:
            best, best_score, stale = top, top.fitness.values[0], 0
        else:
            stale += 1
        history.append(best_score)
        if stale >= params.plateau:
            stopped = "plateau"
            break
    return _Evolution(best, best_score, population, history, gen, stopped)


def _offspring(
    problem: Problem,
    params: GAParams,
    toolbox: base.Toolbox,
    ls: LocalSearch,
    population: list[Individual],
    rng: random.Random,
    nrng: np.random.Generator,
    deadline: float,
) -> list[Individual]:
    """Select, mate, mutate, repair (vectorised); polish the best few; ruin-and-recreate elite members
    into the worst offspring; score them."""
    offspring = [creator.Schedule(ind) for ind in toolbox.select(population, len(population))]
    for i in range(1, len(offspring), 2):
        if rng.random() < params.cxpb:
            toolbox.mate(offspring[i - 1], offspring[i])
    for ind in offspring:
        if rng.random() < params.mutpb:
            toolbox.mutate(ind)
    X = repair_many(problem, np.array(offspring, dtype=np.int64))
    scores = evaluate(problem, X)
    for k in np.argsort(-scores)[: params.local_search_per_generation]:
        X[k] = ls.run(X[k], deadline)
    order = np.argsort(evaluate(problem, X))
    for j in range(min(params.ruin_recreate_per_generation, len(order))):
        elite = np.array(population[int(nrng.integers(min(4, len(population))))], dtype=np.int64)
        X[order[j]] = ls.ruin_recreate(elite, nrng, deadline)
    for ind, row, sc in zip(offspring, X, evaluate(problem, X), strict=True):
        ind[:] = row.tolist()
        ind.fitness.values = (float(sc),)
    return offspring


def _survivors(
    problem: Problem, params: GAParams, ls: LocalSearch, pool: list[Individual], nrng: np.random.Generator
) -> list[Individual]:
    """Elitist (mu + lambda) survival without duplicates, topped up with random schedules."""
    distinct: dict[tuple[int, ...], Individual] = {}
    for ind in sorted(pool, key=lambda i: -i.fitness.values[0]):
        distinct.setdefault(tuple(ind), ind)
    population = list(distinct.values())[: params.population]
    while len(population) < params.population:
        extra = creator.Schedule(_random_schedule(problem, nrng, ls.cand).tolist())
        extra.fitness.values = (float(evaluate(problem, np.array([extra]))[0]),)
        population.append(extra)
    return population


def _extras(
    problem: Problem,
    params: GAParams,
    ls: LocalSearch,
    best_sol: Solution,
    best_x: IntArray,
    run: _Evolution,
    *,
    t0: float,
) -> tuple[list[Solution], list[Solution]]:
    """The top-K alternatives and the Pareto front in what is left of the budget (none when cancelled:
    nobody waits for them)."""
    if run.stopped == "cancelled":
        return [best_sol], []
    budget = params.time_budget
    alt_deadline = min(t0 + budget, max(t0 + 0.75 * budget, time.perf_counter() + 0.1 * budget))
    alternatives = top_k_alternatives(problem, ls, best_x, [np.array(i) for i in run.population], params, alt_deadline)
    pareto: list[Solution] = []
    if params.pareto:
        # the front gets as much time again as the GA took, within the budget
        spent = time.perf_counter() - t0
        front = pareto_front(problem, params, deadline=min(t0 + 0.95 * budget, time.perf_counter() + max(0.1, spent)))
        pareto = [solution(problem, x) for x in front]
    return alternatives, pareto


def _improvement(new: float, old: float) -> float:
    return (new - old) / abs(old) if old else 0.0


def top_k_alternatives(
    problem: Problem,
    ls: LocalSearch,
    best: IntArray,
    population: list[IntArray],
    params: GAParams,
    deadline: float,
) -> list[Solution]:
    """Up to ``top_k`` schedules (the best first) each within ``alternative_within`` of the best and
    differing pairwise in at least ``alternative_min_diff`` of the slots."""
    found = alternatives_from_population(
        best, population, score=lambda x: float(evaluate(problem, x[None, :])[0]), distance=_hamming, params=params
    )
    chosen, floor, fits = found.chosen, found.floor, found.fits
    # not enough diversity in the population: force changes by taxing the cells already used
    free = problem.slot_fixed < 0
    cols = np.arange(problem.n_slots)
    tax = 0.0
    scale = float(np.abs(problem.value[problem.allowed]).mean()) if problem.allowed.any() else 1.0
    attempts = 0
    while len(chosen) < params.top_k and attempts < 12 and time.perf_counter() < deadline:
        attempts += 1
        tax = tax + 0.05 * scale
        taxed = problem.value.copy()
        for c in chosen:
            taxed[c[free], cols[free]] -= tax
        try:
            cand = assignment(problem, taxed)
        except Exception:
            break
        tp = problem.with_weights()
        tp.value = taxed
        cand = LocalSearch(tp).run(cand, deadline)
        score = float(evaluate(problem, cand[None, :])[0])
        if score < floor:
            break
        if fits(cand):
            chosen.append(cand)
            tax = 0.0
    return [solution(problem, x) for x in chosen]


# ---- Pareto front (NSGA-II) ---------------------------------------------------------------------
def supported_points(problem: Problem, deadline: float, max_solves: int = 200) -> tuple[list[IntArray], bool]:
    """Exact weighted-sum optima of (revenue, audience) by dichotomic search, widest gap first: with
    enough solves, every vertex of the convex hull of the feasible objective vectors. Returns the
    schedules and whether the hull is complete."""
    R, A = problem.revenue / problem.rev_ref, problem.audience / problem.aud_ref
    cols = np.arange(problem.n_slots)

    def solve(wr: float, wa: float) -> tuple[IntArray, tuple[float, float]]:
        x = assignment(problem, wr * R + wa * A + 1e-9 * (R + A))
        return x, (float(R[x, cols].sum()), float(A[x, cols].sum()))

    xa, pa = solve(1.0, 0.0)
    xb, pb = solve(0.0, 1.0)
    found = [xa, xb]
    heap: list[tuple[float, tuple[float, float], tuple[float, float]]] = []

    def push(p1: tuple[float, float], p2: tuple[float, float]) -> None:
        width = -((p1[0] - p2[0]) ** 2 + (p1[1] - p2[1]) ** 2)
        if width < -1e-12:
            heapq.heappush(heap, (width, p1, p2))

    push(pa, pb)
    solves = 2
    while heap and solves < max_solves and time.perf_counter() < deadline:
        _, (r1, a1), (r2, a2) = heapq.heappop(heap)
        wr, wa = a2 - a1, r1 - r2  # normal of the segment (both >= 0 between the extremes)
        if wr <= 0 or wa <= 0:
            continue
        x, pt = solve(wr, wa)
        solves += 1
        if wr * pt[0] + wa * pt[1] > wr * r1 + wa * a1 + 1e-7 * (abs(wr * r1) + abs(wa * a1)):
            found.append(x)
            push((r1, a1), pt)
            push(pt, (r2, a2))
    return found, not heap


def objective_points(problem: Problem, X: IntArray) -> FloatArray:
    """(revenue, audience) totals of each row of X."""
    cols = np.arange(problem.n_slots)
    return np.stack([problem.revenue[X, cols].sum(axis=1), problem.audience[X, cols].sum(axis=1)], axis=1)


def pareto_front(problem: Problem, params: GAParams, *, deadline: float, seed_solves: int = 10) -> list[IntArray]:
    """NSGA-II (DEAP ``selNSGA2``) over (revenue, audience), seeded with a few exact weighted-sum
    optima; returns the distinct non-dominated feasible schedules, highest revenue first."""
    rng = random.Random(params.seed + 1)
    support, _ = supported_points(problem, deadline, max_solves=seed_solves)
    # point mutation draws from each slot's best programs by revenue and by audience
    cand_r, _ = _slot_candidates(problem, problem.revenue, 8)
    cand_a, _ = _slot_candidates(problem, problem.audience, 8)
    cand = np.concatenate([cand_r, cand_a], axis=1)
    free_slots = np.flatnonzero(problem.slot_fixed < 0)

    def point_mutate(ind: list[int]) -> None:
        for _ in range(rng.randint(1, 3)):
            if not free_slots.size:
                return
            s = int(free_slots[rng.randrange(free_slots.size)])
            p = int(cand[s, rng.randrange(cand.shape[1])])
            if p >= 0:
                ind[s] = p

    # neighbours on the front mixed day by day land near the hull edge between them (days separate)
    support.sort(key=lambda x: -float(problem.revenue[x, np.arange(problem.n_slots)].sum()))
    seeds = list(support)
    k = 0
    while len(seeds) < params.pareto_population:
        i = k % max(1, len(support) - 1)
        a, b = support[i], support[min(i + 1, len(support) - 1)]
        child = [list(a), list(b)]
        _cx_day_uniform(problem, child[0], child[1], rng)
        if k >= len(support):
            point_mutate(child[0])
        seeds.append(repair(problem, np.array(child[0])))
        k += 1
    pop = [creator.ParetoSchedule(s.tolist()) for s in seeds]
    for ind, ob in zip(pop, objective_points(problem, np.array(pop)), strict=True):
        ind.fitness.values = (float(ob[0]), float(ob[1]))
    archive = {tuple(i): i for i in pop}
    pop = tools.selNSGA2(pop, params.pareto_population, nd="log")
    for _ in range(params.pareto_generations):
        if time.perf_counter() > deadline:
            break
        parents = tools.selTournamentDCD(pop, len(pop)) if len(pop) % 4 == 0 else pop
        offspring = [creator.ParetoSchedule(list(p)) for p in parents]
        for i in range(1, len(offspring), 2):
            _cx_day_uniform(problem, offspring[i - 1], offspring[i], rng)
        for ind in offspring:
            if rng.random() < 0.2:
                _mut_swap(problem, ind, rng)
            if rng.random() < 0.8:
                point_mutate(ind)
        X = repair_many(problem, np.array(offspring))
        for ind, row, ob in zip(offspring, X, objective_points(problem, X), strict=True):
            ind[:] = row.tolist()
            ind.fitness.values = (float(ob[0]), float(ob[1]))
        for ind in offspring:
            archive.setdefault(tuple(ind), ind)
        pop = tools.selNSGA2(pop + offspring, params.pareto_population, nd="log")
    X = np.array(list(archive.values()), dtype=np.int64)
    return [X[i] for i in front_rows(objective_points(problem, X))]
