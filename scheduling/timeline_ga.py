"""Memetic GA on airing sequences of a :class:`~scheduling.timeline.Timeline` (no Django).

Individuals are start arrays (one int per grid cell). Every operator keeps each segment filled end to
end, so no individual ever has an overlap or an unplanned gap:

* **ruin and recreate**: a window of consecutive airings is emptied and refilled by dynamic programming
  over the grid (:class:`GridDP`: the best sequence of programs whose lengths add up to the window,
  genre runs priced exactly in the DP state, per-day/per-window limits by Lagrangian prices and then
  accepted in value order with the holes refilled); with heavy value noise the same move is the
  "replace a block with programs of the same total length" mutation;
* **swap of equal-length blocks**: two airings (or adjacent pairs) of the same total length trade places;
* **day crossover**: children take whole broadcast days from either parent;
* **repair** to hard feasibility (limits, mask) by refilling the offending airings' windows;
* **local search**: exact DP re-solves of sliding windows, kept when the whole objective improves.

Seeds: the Lagrangian DP construction, the chronological greedy (the baseline) and noisy DP
constructions. Fitness of a whole population is one array expression (:func:`timeline.evaluate`).
DEAP provides the tournament selection and NSGA-II for the revenue/audience Pareto front.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from deap import base, creator, tools

from scheduling.optimizer import Individual
from scheduling.problem import (
    BoolArray,
    FloatArray,
    IntArray,
    alternatives_from_population,
    front_rows,
    goal_bonus,
)
from scheduling.timeline import (
    CONT,
    GAP,
    Timeline,
    TimelineTotals,
    check_timeline,
    evaluate,
    linear_totals,
    totals,
    usage,
)
from scheduling.timeline_exact import lp_bound, timeline_milp

if not hasattr(creator, "TimelineFitness"):
    creator.create("TimelineFitness", base.Fitness, weights=(1.0,))
    creator.create("TimelineIndividual", list, fitness=creator.TimelineFitness)
    creator.create("TimelineParetoFitness", base.Fitness, weights=(1.0, 1.0))
    creator.create("TimelineParetoIndividual", list, fitness=creator.TimelineParetoFitness)

EPS = 1e-9
NEG = -np.inf


class InfeasibleTimelineError(Exception):
    """The DP found no way to fill a window under the limits."""


# ---- dynamic programming over the grid ----------------------------------------------------------
class GridDP:
    """Best fill of a window of cells by a sequence of airings (lengths add up to the window).

    Programs are grouped by (length, genre); at each cell only the best program of each group can be
    part of an optimal fill (the others have the same length and genre, so the same effect on the rest).
    State: the previous airing's genre and its run length (capped at K + 1), so genre runs are priced
    exactly inside the window.
    """

    def __init__(self, tl: Timeline) -> None:
        self.tl = tl
        G = tl.n_genres
        key = tl.length * (G + 1) + tl.genre
        self.order = np.argsort(key, kind="stable")
        sk = key[self.order]
        self.group_start = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]]) if sk.size else np.zeros(0, np.int64)
        self.group_len = tl.length[self.order[self.group_start]]
        self.group_genre = tl.genre[self.order[self.group_start]]
        self.group_of = np.repeat(np.arange(self.group_start.size), np.diff(np.r_[self.group_start, sk.size]))
        self.K = tl.max_consecutive_genre if tl.run_weight else 0
        self.R = self.K + 1 if self.K > 0 else 1

    def best_per_group(self, value: FloatArray, allowed: BoolArray, a: int, b: int) -> tuple[FloatArray, IntArray]:
        """(group x window values, group x window program indices) of the best allowed program."""
        tl = self.tl
        ok = tl.start_ok[:, a:b] & np.asarray(allowed, dtype=bool)[:, None]
        M = np.where(ok, value[:, a:b], NEG)[self.order]
        best = np.maximum.reduceat(M, self.group_start, axis=0)
        rows = np.arange(M.shape[0])[:, None]
        hit = (best[self.group_of] == M) & np.isfinite(M)
        first = np.minimum.reduceat(np.where(hit, rows, M.shape[0]), self.group_start, axis=0)
        prog = np.where(first < M.shape[0], self.order[np.minimum(first, M.shape[0] - 1)], -1)
        return best, prog

    def solve(
        self,
        value: FloatArray,
        allowed: BoolArray,
        a: int,
        b: int,
        *,
        prev_genre: int = -1,
        prev_run: int = 0,
    ) -> list[tuple[int, int]] | None:
        """(cell, program) airings filling [a, b) (GAP cells as program GAP), or None if impossible."""
        tl = self.tl
        W = b - a
        if W <= 0:
            return []
        G, R, K = tl.n_genres, self.R, self.K
        bv, bp = self.best_per_group(value, allowed, a, b)
        NG = bv.shape[0]
        glen, ggen = self.group_len, self.group_genre
        f = np.full((W + 1, G + 1, R), NEG)
        f[W] = 0.0
        choice = np.full((W, G + 1, R), -1, dtype=np.int64)
        r_idx = np.arange(R)
        pen = np.where(r_idx + 2 > K, tl.run_weight, 0.0) if K > 0 else np.zeros(R)
        r_next = np.minimum(r_idx + 1, R - 1)
        same = ggen[None, :] == np.arange(G + 1)[:, None]  # (G+1) x NG
        gap = tl.gaps_allowed
        if NG == 0 and not gap:
            return None
        ends = np.arange(W)[:, None] + glen[None, :]  # W x NG: where an airing of each group would end
        base_all = np.where(ends <= W, bv.T, NEG)
        ends = np.minimum(ends, W)
        for pos in range(W - 1, -1, -1):
            base_v = base_all[pos]
            nxt = f[ends[pos], ggen]  # NG x R: the state after an airing of the group's genre
            a_diff = base_v + nxt[:, 0]  # NG
            a_same = base_v[:, None] - pen[None, :] + nxt[:, r_next]  # NG x R
            C = np.where(same[:, None, :], a_same.T[None, :, :], a_diff[None, None, :])  # (G+1) x R x NG
            if NG:
                j = np.argmax(C, axis=2)
                best = np.take_along_axis(C, j[:, :, None], axis=2)[:, :, 0]
            else:
                j = np.zeros((G + 1, R), dtype=np.int64)
                best = np.full((G + 1, R), NEG)
            if gap:
                gv = -tl.gap_cost + f[pos + 1, G, 0]
                use_gap = gv > best
                best = np.where(use_gap, gv, best)
                j = np.where(use_gap, -2, j)
            f[pos] = best
            choice[pos] = j
        choice = np.where(np.isfinite(f[:W]), choice, -1)
        g0 = prev_genre if prev_genre >= 0 else G
        r0 = min(max(prev_run - 1, 0), R - 1) if prev_genre >= 0 else 0
        if not np.isfinite(f[0, g0, r0]):
            return None
        out: list[tuple[int, int]] = []
        pos, g, r = 0, g0, r0
        while pos < W:
            j = int(choice[pos, g, r])
            if j == -2:
                out.append((a + pos, GAP))
                pos, g, r = pos + 1, G, 0
                continue
            if j < 0:
                return None
            p = int(bp[j, pos])
            out.append((a + pos, p))
            ng = int(ggen[j])
            r = int(r_next[r]) if ng == g else 0
            g = ng
            pos += int(glen[j])
        return out


# ---- the operator kit ---------------------------------------------------------------------------
@dataclass
class Kit:
    """Everything the operators share for one timeline (built once per job)."""

    tl: Timeline
    dp: GridDP
    rng: np.random.Generator
    free_runs: list[tuple[int, int, int]] = field(default_factory=list)  # (first, end, day) unlocked runs

    @classmethod
    def build(cls, tl: Timeline, seed: int) -> Kit:
        kit = cls(tl, GridDP(tl), np.random.default_rng(seed))
        T = tl.n_cells
        c = 0
        while c < T:
            if tl.locked[c]:
                c += 1
                continue
            e = c
            while e < T and not tl.locked[e] and tl.cell_segment[e] == tl.cell_segment[c]:
                e += 1
            kit.free_runs.append((c, e, int(tl.cell_day[c])))
            c = e
        return kit

    # -- helpers ----------------------------------------------------------------------------------
    def prev_state(self, y: IntArray, a: int) -> tuple[int, int]:
        """(genre, run length) of the airing just before cell a in its segment, or (-1, 0)."""
        tl = self.tl
        run, genre = 0, -1
        c = a - 1
        while c >= tl.seg_first[a] and c >= 0:
            while c >= 0 and y[c] == CONT:
                c -= 1
            if c < tl.seg_first[a] or y[c] < 0:
                break
            g = int(tl.genre[y[c]])
            if genre == -1:
                genre = g
            elif g != genre:
                break
            run += 1
            if run > tl.max_consecutive_genre:
                break
            c -= 1
        return genre, run

    def remaining(self, y: IntArray, a: int, b: int, day: int) -> IntArray:
        """Airings each program may still have in a window [a, b) of ``day`` (day and window limits)."""
        tl = self.tl
        outside = y.copy()
        outside[a:b] = GAP
        per_day, per_week = usage(tl, outside)
        left: IntArray = np.minimum(tl.max_per_day - per_day[day], tl.week_cap - per_week)
        return left

    def fill(self, y: IntArray, a: int, b: int, value: FloatArray | None = None, *, depth: int = 0) -> IntArray | None:
        """y with [a, b) (inside one day, no pins) refilled optimally under the limits; None if impossible."""
        tl = self.tl
        value = tl.value if value is None else value
        day = int(tl.cell_day[a])
        cap = self.remaining(y, a, b, day)
        if (cap < 0).any():
            cap = np.maximum(cap, 0)
        g0, r0 = self.prev_state(y, a)
        price = np.zeros(tl.n_programs)
        plan: list[tuple[int, int]] | None = None
        for _ in range(6):  # Lagrangian prices on the over-used programs
            plan = self.dp.solve(value - price[:, None], cap > 0, a, b, prev_genre=g0, prev_run=r0)
            if plan is None:
                return None
            used = np.bincount([p for _, p in plan if p >= 0], minlength=tl.n_programs)
            over = used - cap
            if (over <= 0).all():
                return _write(tl, y, a, b, plan)
            price += np.maximum(over, 0) * 0.5 * (1 + np.abs(value[:, a:b]).max(axis=1, initial=0.0) / 4)
        assert plan is not None
        # accept airings in value order while capacity lasts, refill the holes
        z = _write(tl, y, a, b, plan)
        left = cap.copy()
        keep = np.zeros(b - a, dtype=bool)
        for cell, p in sorted(plan, key=lambda cp: -(value[cp[1], cp[0]] if cp[1] >= 0 else 0.0)):
            if p < 0 or left[p] > 0:
                if p >= 0:
                    left[p] -= 1
                keep[cell - a : cell - a + (int(tl.length[p]) if p >= 0 else 1)] = True
        if keep.all() or depth > 3:
            return z if keep.all() else None
        # blank the rejected airings, then refill each hole (holes see the kept airings as used)
        for cell, p in plan:
            span = int(tl.length[p]) if p >= 0 else 1
            if not keep[cell - a]:
                z[cell : cell + span] = GAP
        c = a
        while c < b:
            if keep[c - a]:
                c += 1
                continue
            e = c
            while e < b and not keep[e - a]:
                e += 1
            refilled = self.fill(z, c, e, value, depth=depth + 1)
            if refilled is None:
                return None
            z = refilled
            c = e
        return z

    def window(self, y: IntArray, min_cells: int, max_cells: int) -> tuple[int, int] | None:
        """A random window [a, b) of whole airings inside one free run, min..max cells long."""
        if not self.free_runs:
            return None
        first, end, _ = self.free_runs[int(self.rng.integers(len(self.free_runs)))]
        starts = [c for c in range(first, end) if y[c] != CONT]
        if not starts:
            return None
        a = starts[int(self.rng.integers(len(starts)))]
        want = int(self.rng.integers(min_cells, max_cells + 1))
        bounds = [c for c in [*starts, end] if c > a]
        fitting = [c for c in bounds if c - a <= want] or bounds[:1]
        return a, fitting[-1]

    # -- operators --------------------------------------------------------------------------------
    def ruin_recreate(self, y: IntArray, *, noise: float = 0.03, min_cells: int = 4, max_cells: int = 12) -> IntArray:
        w = self.window(y, min_cells, max_cells)
        if w is None:
            return y
        a, b = w
        value = self.tl.value
        if noise:
            scale = float(np.abs(value[:, a:b]).mean()) or 1.0
            value = value.copy()
            value[:, a:b] += self.rng.normal(0.0, noise * scale, (value.shape[0], b - a))
        z = self.fill(y, a, b, value)
        return y if z is None else z

    def swap_equal(self, y: IntArray, tries: int = 8) -> IntArray:
        """Two airings of the same length trade places (mask and limits respected)."""
        tl = self.tl
        cells = np.flatnonzero((y >= 0) & (tl.pinned < 0))
        if cells.size < 2:
            return y
        for _ in range(tries):
            i = int(cells[int(self.rng.integers(cells.size))])
            same = cells[(tl.length[y[cells]] == tl.length[y[i]]) & (y[cells] != y[i])]
            if same.size == 0:
                continue
            j = int(same[int(self.rng.integers(same.size))])
            p, q = int(y[i]), int(y[j])
            if not (tl.start_ok[q, i] and tl.start_ok[p, j]):
                continue
            z = y.copy()
            z[i], z[j] = q, p
            if tl.cell_day[i] != tl.cell_day[j]:
                per_day, _ = usage(tl, z)
                if (per_day > tl.max_per_day[None, :]).any():
                    continue
            return z
        return y

    def repair(self, y: IntArray) -> IntArray:
        """Refill the airings that break the mask or a limit (the least valuable surplus ones)."""
        tl = self.tl
        y = y.copy()
        y[tl.locked] = CONT
        for pin in tl.pins:
            y[pin.cell] = pin.program
        for _ in range(4 * tl.n_days + 4):
            cells = np.flatnonzero(y >= 0)
            bad = cells[~tl.start_ok[y[cells], cells] & (tl.pinned[cells] < 0)]
            if bad.size == 0:
                per_day, per_week = usage(tl, y)
                over_d = per_day > tl.max_per_day[None, :]
                over_w = per_week > tl.week_cap
                if not over_d.any() and not over_w.any():
                    return y
                free = cells[tl.pinned[cells] < 0]
                hot = free[over_d[tl.cell_day[free], y[free]] | over_w[y[free]]]
                if hot.size == 0:
                    raise InfeasibleTimelineError("pinned airings exceed the airing limits")
                worst = hot[np.argmin(tl.value[y[hot], hot])]
                bad = np.array([worst])
            c = int(bad[0])
            run = next(r for r in self.free_runs if r[0] <= c < r[1])
            a, b = c, c + int(tl.length[y[c]])
            # widen to the neighbouring airings so the DP has room to choose other lengths
            while a > run[0] and (b - a) < 4:
                a -= 1
                while a > run[0] and y[a] == CONT:
                    a -= 1
            z = self.fill(y, a, b)
            if z is None:
                z = self.fill(y, run[0], run[1])
            if z is None:
                raise InfeasibleTimelineError(f"cannot repair cells {run[0]}-{run[1]}")
            y = z
        raise InfeasibleTimelineError("repair did not converge")

    def construct(self, value: FloatArray | None = None, *, rounds: int = 30, repairs: int = 3) -> IntArray:
        """Lagrangian DP over the whole window: the grid DP of every free run with prices on the programs
        over their day/window limits (subgradient steps), then the least over-used plans repaired."""
        tl = self.tl
        value = tl.value if value is None else value
        price_d = np.zeros((tl.n_days, tl.n_programs))
        price_w = np.zeros(tl.n_programs)
        ok = tl.start_ok
        lr = 0.25 * (
            float(np.abs(value[ok] / np.broadcast_to(tl.length[:, None], ok.shape)[ok]).mean()) if ok.any() else 1.0
        )
        allowed = np.ones(tl.n_programs, dtype=bool)
        plans: list[tuple[int, int, IntArray]] = []
        for k in range(rounds):
            y = np.full(tl.n_cells, CONT, dtype=np.int64)
            for pin in tl.pins:
                y[pin.cell] = pin.program
            for a, b, day in self.free_runs:
                priced = value - price_d[day][:, None] - price_w[:, None]
                plan = self.dp.solve(priced, allowed, a, b, prev_genre=self.prev_state(y, a)[0])
                if plan is None:
                    raise InfeasibleTimelineError("a window cannot be filled by any sequence of allowed airings")
                y = _write(tl, y, a, b, plan)
            per_day, per_week = usage(tl, y)
            over_d = per_day - tl.max_per_day[None, :]
            over_w = per_week - tl.week_cap
            excess = int(np.maximum(over_d, 0).sum() + np.maximum(over_w, 0).sum())
            plans.append((excess, -k, y))
            if excess == 0:
                break
            step = lr * 0.9**k
            price_d = np.maximum(0.0, price_d + step * np.clip(over_d, -1, 2))
            price_w = np.maximum(0.0, price_w + step * np.clip(over_w, -1, 2))
        best_y: IntArray | None = None
        best_s = NEG
        for _, _, y in sorted(plans, key=lambda e: (e[0], e[1]))[:repairs]:
            try:
                cand = self.repair(y)
            except InfeasibleTimelineError:
                continue
            s = float(evaluate(tl, cand[None, :])[0])
            if s > best_s:
                best_y, best_s = cand, s
        if best_y is None:
            raise InfeasibleTimelineError("no construction satisfied the airing limits")
        return best_y

    def local_search(self, y: IntArray, deadline: float, window: int = 8) -> IntArray:
        """Exact DP re-solves of sliding windows of whole airings; kept when the objective improves."""
        tl = self.tl
        best = float(evaluate(tl, y[None, :])[0])
        improved = True
        while improved and time.perf_counter() < deadline:
            improved = False
            for first, end, _ in self.free_runs:
                a = first
                while a < end:
                    if time.perf_counter() > deadline:
                        return y
                    bounds = [c for c in range(a + 1, min(end, a + window) + 1) if c == end or y[c] != CONT]
                    z = self.fill(y, a, bounds[-1]) if bounds else None
                    if z is not None:
                        s = float(evaluate(tl, z[None, :])[0])
                        if s > best + EPS:
                            y, best, improved = z, s, True
                    a += 1  # the next airing boundary
                    while a < end and y[a] == CONT:
                        a += 1
        return y

    def greedy(self) -> IntArray:
        """Chronological greedy: each free cell takes the allowed program with limits left and the best
        value per minute whose end leaves a fillable remainder; the baseline the GA must beat."""
        tl = self.tl
        y = np.full(tl.n_cells, CONT, dtype=np.int64)
        for pin in tl.pins:
            y[pin.cell] = pin.program
        per_day = np.zeros((tl.n_days, tl.n_programs), dtype=np.int64)
        per_week = np.zeros(tl.n_programs, dtype=np.int64)
        for pin in tl.pins:
            per_day[tl.cell_day[pin.cell], pin.program] += 1
            per_week[pin.program] += 1
        rate = tl.value / tl.length[:, None]
        for a, b, day in self.free_runs:
            # fillable[c]: [c, b) can be tiled by the lengths allowed to start in it (ignoring limits)
            fillable = np.zeros(b - a + 1, dtype=bool)
            fillable[b - a] = True
            for c in range(b - 1, a - 1, -1):
                lens = np.unique(tl.length[tl.start_ok[:, c]])
                fillable[c - a] = bool(any(c + ln <= b and fillable[c + ln - a] for ln in lens.tolist()))
                if tl.gaps_allowed:
                    fillable[c - a] |= fillable[c + 1 - a]
            c = a
            while c < b:
                ok = tl.start_ok[:, c] & (per_day[day] < tl.max_per_day) & (per_week < tl.week_cap)
                ends = c + tl.length
                ok &= ends <= b
                ok &= fillable[np.minimum(ends, b) - a]
                if not ok.any():
                    if tl.gaps_allowed:
                        y[c] = GAP
                        c += 1
                        continue
                    z = self.fill(y, c, b)  # painted into a corner: let the DP finish the run
                    if z is None:
                        raise InfeasibleTimelineError(f"greedy cannot fill cells {c}-{b}")
                    y = z
                    break
                p = int(np.argmax(np.where(ok, rate[:, c], NEG)))
                if tl.gaps_allowed and rate[p, c] < -tl.gap_cost:
                    y[c] = GAP
                    c += 1
                    continue
                y[c : c + int(tl.length[p])] = CONT
                y[c] = p
                per_day[day, p] += 1
                per_week[p] += 1
                c += int(tl.length[p])
        return y


def _write(tl: Timeline, y: IntArray, a: int, b: int, plan: list[tuple[int, int]]) -> IntArray:
    z = y.copy()
    z[a:b] = GAP
    for cell, p in plan:
        if p >= 0:
            z[cell : cell + int(tl.length[p])] = CONT
            z[cell] = p
    return z


def day_crossover(tl: Timeline, a: IntArray, b: IntArray, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """Children take whole broadcast days from either parent (each day stays filled end to end)."""
    take = rng.random(tl.n_days) < 0.5
    mask = take[tl.cell_day]
    return np.where(mask, b, a), np.where(mask, a, b)


# ---- the GA -------------------------------------------------------------------------------------
@dataclass
class TimelineParams:
    seed: int = 0
    population: int = 16
    generations: int = 60
    plateau: int = 8
    min_gain: float = 1e-4  # relative improvement that resets the plateau count
    time_budget: float = 30.0
    tournament_size: int = 3
    cxpb: float = 0.6
    mutpb: float = 0.6
    local_search_per_generation: int = 1
    top_k: int = 3
    alternative_within: float = 0.02
    alternative_min_diff: float = 0.10
    pareto: bool = True
    pareto_generations: int = 8
    pareto_population: int = 8
    bound: bool = True  # LP relaxation for the bound and gap


@dataclass
class TimelineSolution:
    schedule: list[int]  # start array
    totals: TimelineTotals
    hard_violations: list[str]


@dataclass
class TimelineResult:
    best: TimelineSolution
    alternatives: list[TimelineSolution]
    pareto: list[TimelineSolution]
    bound: float | None
    gap: float | None
    greedy: TimelineSolution
    improvement_over_greedy: float
    generations: int
    max_generations: int
    runtime: float
    stopped: str
    history: list[float] = field(default_factory=list)


def solution(tl: Timeline, y: IntArray) -> TimelineSolution:
    return TimelineSolution([int(v) for v in y], totals(tl, y), check_timeline(tl, y))


def _gap(bound: float | None, best: float) -> float | None:
    if bound is None or not np.isfinite(bound):
        return None
    return max(0.0, (bound - best) / abs(bound)) if bound else 0.0


def optimize_timeline(
    tl: Timeline, params: TimelineParams, progress: Callable[[int, int], bool] | None = None
) -> TimelineResult:
    """Memetic GA; the best schedule is never worse than the greedy one and passes ``check_timeline``."""
    t0 = time.perf_counter()
    deadline = t0 + params.time_budget
    ga_deadline = t0 + 0.6 * params.time_budget
    kit = Kit.build(tl, params.seed)
    rng = kit.rng
    pyrng = random.Random(params.seed)
    random.seed(params.seed)  # DEAP's selection draws from the module-level generator
    try:
        seed_y = kit.construct()
    except InfeasibleTimelineError:
        # tight limits can defeat the Lagrangian construction: take a feasible start from HiGHS
        exact = timeline_milp(tl, time_limit=max(1.0, 0.3 * params.time_budget))
        if exact.schedule is None:
            raise
        seed_y = exact.schedule
    try:
        greedy_y = kit.greedy()
    except InfeasibleTimelineError:
        greedy_y = seed_y  # the greedy baseline painted itself into a corner
    seed_y = kit.local_search(seed_y, min(ga_deadline, time.perf_counter() + 0.25 * params.time_budget))
    population = [seed_y, greedy_y]
    # a few noisy constructions, the rest perturbed copies of the seeds (much cheaper on long windows)
    while len(population) < min(params.population, 5) and time.perf_counter() < ga_deadline:
        noisy = tl.value + rng.normal(0.0, 0.15 * (float(np.abs(tl.value).mean()) or 1.0), tl.value.shape)
        try:
            population.append(kit.construct(noisy, rounds=4))
        except InfeasibleTimelineError:
            break
    while len(population) < params.population:
        base_y = population[int(rng.integers(len(population)))]
        population.append(kit.ruin_recreate(kit.swap_equal(base_y), noise=0.5))
    X = np.array(population, dtype=np.int64)
    scores = evaluate(tl, X)
    pop = []
    for row, sc in zip(X, scores, strict=True):
        ind = creator.TimelineIndividual(row.tolist())
        ind.fitness.values = (float(sc),)
        pop.append(ind)
    best_i = int(np.argmax(scores))
    best_y, best_s = X[best_i].copy(), float(scores[best_i])
    history = [best_s]
    stale, gen, stopped = 0, 0, "generations"
    for gen in range(1, params.generations + 1):
        if time.perf_counter() > ga_deadline:
            stopped = "time_budget"
            break
        if progress is not None and not progress(gen, params.generations):
            stopped = "cancelled"
            break
        parents = [np.array(i, dtype=np.int64) for i in tools.selTournament(pop, len(pop), params.tournament_size)]
        children: list[IntArray] = []
        for i in range(0, len(parents) - 1, 2):
            a, b = parents[i], parents[i + 1]
            if pyrng.random() < params.cxpb and tl.n_days > 1:
                a, b = day_crossover(tl, a, b, rng)
            children.extend([a, b])
        out = []
        for child in children:
            r = pyrng.random()
            if r < params.mutpb / 3:
                child = kit.swap_equal(child)
            elif r < 2 * params.mutpb / 3:
                child = kit.ruin_recreate(child, noise=0.6, min_cells=2, max_cells=6)  # replace a block
            elif r < params.mutpb:
                child = kit.ruin_recreate(child)
            try:
                out.append(kit.repair(child))
            except InfeasibleTimelineError:
                continue
        if not out:
            continue
        C = np.array(out, dtype=np.int64)
        cs = evaluate(tl, C)
        for k in np.argsort(-cs)[: params.local_search_per_generation]:
            C[k] = kit.local_search(C[k], ga_deadline, window=6)
        cs = evaluate(tl, C)
        pool: dict[tuple[int, ...], Individual] = {tuple(i): i for i in pop}
        for row, sc in zip(C, cs, strict=True):
            ind = creator.TimelineIndividual(row.tolist())
            ind.fitness.values = (float(sc),)
            pool.setdefault(tuple(ind), ind)
        pop = sorted(pool.values(), key=lambda i: -i.fitness.values[0])[: params.population]
        top = pop[0].fitness.values[0]
        stale = 0 if top > best_s + max(EPS, params.min_gain * abs(best_s)) else stale + 1  # crumbs do not count
        if top > best_s + EPS:
            best_y, best_s = np.array(pop[0], dtype=np.int64), float(top)
        history.append(best_s)
        if stale >= params.plateau:
            stopped = "plateau"
            break
    if float(evaluate(tl, greedy_y[None, :])[0]) > best_s:
        best_y = greedy_y
    best = solution(tl, best_y)
    cancelled = stopped == "cancelled"
    # the extras (alternatives, front) share at most about half the time the search took, within the budget
    ga_spent = time.perf_counter() - t0
    alt_deadline = min(deadline, t0 + 0.75 * params.time_budget, time.perf_counter() + max(0.2, 0.25 * ga_spent))
    alternatives = (
        [best] if cancelled else top_k_alternatives(tl, kit, best_y, [np.array(i) for i in pop], params, alt_deadline)
    )
    pareto: list[TimelineSolution] = []
    if params.pareto and not cancelled:
        front_deadline = min(deadline, t0 + 0.9 * params.time_budget, time.perf_counter() + max(0.2, 0.25 * ga_spent))
        pareto = [solution(tl, y) for y in pareto_front(tl, kit, params, deadline=front_deadline)]
    bound: float | None = None
    if params.bound and not cancelled:
        lp = lp_bound(tl, time_limit=max(1.0, deadline - time.perf_counter()))
        bound = lp if np.isfinite(lp) else None
    greedy_sol = solution(tl, greedy_y)
    g_obj = greedy_sol.totals.objective
    return TimelineResult(
        best=best,
        alternatives=alternatives,
        pareto=pareto,
        bound=bound,
        gap=_gap(bound, best.totals.objective),
        greedy=greedy_sol,
        improvement_over_greedy=(best.totals.objective - g_obj) / abs(g_obj) if g_obj else 0.0,
        generations=gen,
        max_generations=params.generations,
        runtime=time.perf_counter() - t0,
        stopped=stopped,
        history=history,
    )


def _differs(a: IntArray, b: IntArray) -> float:
    """Share of the cells covered by a different program."""

    def cover(y: IntArray) -> IntArray:
        idx = np.maximum.accumulate(np.where(y != CONT, np.arange(y.size), 0))
        return y[idx]

    return float((cover(a) != cover(b)).mean()) if a.size else 0.0


def top_k_alternatives(
    tl: Timeline, kit: Kit, best: IntArray, population: list[IntArray], params: TimelineParams, deadline: float
) -> list[TimelineSolution]:
    """Up to ``top_k`` schedules within ``alternative_within`` of the best, pairwise at least
    ``alternative_min_diff`` of the cells apart: from the population, else DP re-solves with the
    airings already chosen taxed."""
    found = alternatives_from_population(
        best, population, score=lambda y: float(evaluate(tl, y[None, :])[0]), distance=_differs, params=params
    )
    chosen, floor, fits = found.chosen, found.floor, found.fits
    tax = 0.0
    scale = float(np.abs(tl.value[tl.start_ok]).mean()) if tl.start_ok.any() else 1.0
    attempts = 0
    while len(chosen) < params.top_k and attempts < 8 and time.perf_counter() < deadline:
        attempts += 1
        tax += 0.05 * scale
        taxed = tl.value.copy()
        for c in chosen:
            cells = np.flatnonzero((c >= 0) & (tl.pinned < 0))
            taxed[c[cells], cells] -= tax
        try:
            cand = kit.construct(taxed, rounds=6)
        except InfeasibleTimelineError:
            break
        s = float(evaluate(tl, cand[None, :])[0])
        if s < floor:
            cand = kit.local_search(cand, deadline)
            s = float(evaluate(tl, cand[None, :])[0])
            if s < floor:
                break
        if fits(cand):
            chosen.append(cand)
            tax = 0.0
    return [solution(tl, y) for y in chosen]


def _points(tl: Timeline, Y: IntArray) -> FloatArray:
    return np.stack([linear_totals(tl, Y, tl.revenue), linear_totals(tl, Y, tl.audience)], axis=1)


def pareto_front(tl: Timeline, kit: Kit, params: TimelineParams, *, deadline: float) -> list[IntArray]:
    """NSGA-II (DEAP ``selNSGA2``) over (revenue, audience), seeded with DP constructions of weighted sums."""
    R, A = tl.revenue / tl.rev_ref, tl.audience / tl.aud_ref
    seeds: list[IntArray] = []
    for w in np.linspace(0.0, 1.0, 5):
        if time.perf_counter() > deadline:
            break
        try:
            seeds.append(kit.construct(w * R + (1 - w) * A + goal_bonus(tl), rounds=4))
        except InfeasibleTimelineError:
            continue
    if not seeds:
        return []
    pop_y = list(seeds)
    while len(pop_y) < params.pareto_population:
        pop_y.append(kit.ruin_recreate(seeds[int(kit.rng.integers(len(seeds)))], noise=0.5))

    def individuals(rows: list[IntArray]) -> list[Individual]:
        X = np.array(rows, dtype=np.int64)
        out = []
        for row, pt in zip(X, _points(tl, X), strict=True):
            ind = creator.TimelineParetoIndividual(row.tolist())
            ind.fitness.values = (float(pt[0]), float(pt[1]))
            out.append(ind)
        return out

    pop = individuals(pop_y)
    archive = {tuple(i): i for i in pop}
    for _ in range(params.pareto_generations):
        if time.perf_counter() > deadline:
            break
        kids: list[IntArray] = []
        for i in range(0, len(pop) - 1, 2):
            a, b = np.array(pop[i]), np.array(pop[i + 1])
            if tl.n_days > 1:
                a, b = day_crossover(tl, a, b, kit.rng)
            for child in (a, b):
                w = float(kit.rng.random())
                value = w * R + (1 - w) * A + goal_bonus(tl)
                win = kit.window(child, 2, 8)
                if win is not None:
                    z = kit.fill(child, win[0], win[1], value)
                    child = child if z is None else z
                try:
                    kids.append(kit.repair(child))
                except InfeasibleTimelineError:
                    continue
        offspring = individuals(kids) if kids else []
        for ind in offspring:
            archive.setdefault(tuple(ind), ind)
        pop = tools.selNSGA2(pop + offspring, params.pareto_population, nd="log")
    X = np.array(list(archive.values()), dtype=np.int64)
    return [X[i] for i in front_rows(_points(tl, X))]
