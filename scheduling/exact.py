"""Exact pieces: the assignment bound (Hungarian) and the integer program (HiGHS via scipy.milp).

* :func:`assignment` solves the linear part exactly: maximise ``sum value[x_s, s]`` subject to the
  mask and the per-day airing limits (programs that may air N times a day become N columns). Without
  the soft terms this is the optimum; with them it is an upper bound (penalties are >= 0).
* :func:`milp_optimum` solves the whole weighted-sum objective, the genre-run limit linearised as
  windowed sums and the per-daypart diversity as presence variables. Used by the benchmark for the
  proven optimum.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linear_sum_assignment, milp

from scheduling.problem import Conflict, FloatArray, InfeasibleProblemError, IntArray, Problem, slot_conflicts


def _top_programs(problem: Problem, value: FloatArray) -> IntArray:
    """Per slot the k best allowed programs (k = most slots in a day), as a k x S index array.

    An optimal assignment only ever uses one of a slot's top-n programs when the day has n slots:
    otherwise one of them is unused (the other n-1 slots hold at most n-1 of them) and swapping it in
    is no worse. So the columns of a day are the union of its slots' top-n lists.
    """
    n = max((sl.size for sl in problem.day_slots), default=0)
    masked = np.where(problem.allowed, value, -np.inf)
    k = min(n, problem.n_programs)
    if k >= problem.n_programs:
        return np.tile(np.arange(problem.n_programs)[:, None], problem.n_slots)
    return np.argpartition(-masked, k - 1, axis=0)[:k]


def assignment(problem: Problem, value: FloatArray | None = None) -> IntArray:
    """Best schedule for the linear objective ``value`` (default: the problem's) under the hard constraints.

    Raises :class:`InfeasibleProblemError` with the conflicting constraints if no schedule exists.
    """
    value = problem.value if value is None else value
    if problem.n_programs == 0 or not problem.allowed.any(axis=0).all():
        raise InfeasibleProblemError(slot_conflicts(problem))
    top = _top_programs(problem, value)
    x = np.full(problem.n_slots, -1, dtype=np.int64)
    day_conflicts: list[Conflict] = []
    for day, slots in enumerate(problem.day_slots):
        if slots.size == 0:
            continue
        progs = np.unique(top[:, slots].ravel())
        progs = progs[problem.allowed[progs][:, slots].any(axis=1)]
        cols = np.repeat(progs, np.minimum(problem.max_per_day[progs], slots.size))
        cost = np.where(problem.allowed[cols][:, slots], -value[cols][:, slots], np.inf).T
        try:
            rows, chosen = linear_sum_assignment(cost)
        except ValueError:
            rows, chosen = np.array([], dtype=np.int64), np.array([], dtype=np.int64)
        if rows.size < slots.size:
            day_conflicts.append(_day_conflict(problem, day, slots))
            continue
        x[slots[rows]] = cols[chosen]
    if day_conflicts:
        raise InfeasibleProblemError(day_conflicts)
    return x


def _day_conflict(problem: Problem, day: int, slots: IntArray) -> Conflict:
    fixed = problem.slot_fixed[slots]
    fixed = fixed[fixed >= 0]
    counts = np.bincount(fixed, minlength=problem.n_programs) if fixed.size else np.zeros(problem.n_programs, int)
    over = np.flatnonzero(counts > problem.max_per_day)
    if over.size:
        return Conflict(
            constraints=["fixed_slot", "max_per_day"],
            message=f"day {day}: fixed slots air program(s) {over.tolist()} more often than max airings per day",
            slots=slots.tolist(),
            day=day,
        )
    n_progs = int(problem.allowed[:, slots].any(axis=1).sum())
    return Conflict(
        constraints=["max_per_day", "length", "content_rating_window", "availability"],
        message=f"day {day}: {slots.size} slots cannot all be filled with at most max airings per day "
        f"of the {n_progs} programs allowed in them",
        slots=slots.tolist(),
        day=day,
    )


@dataclass
class MilpResult:
    schedule: IntArray | None
    objective: float  # best integer objective found
    bound: float  # dual bound (the proven optimum when status is optimal)
    proven: bool
    seconds: float
    status: str


def milp_optimum(problem: Problem, *, time_limit: float = 180.0) -> MilpResult:
    """The weighted-sum optimum (linear value minus run and diversity penalties) as an integer program."""
    t0 = time.perf_counter()
    S, G = problem.n_slots, problem.n_genres
    cell_p, cell_s = np.nonzero(problem.allowed)
    nx = cell_p.size
    cell_g = problem.genre[cell_p]
    K = problem.max_consecutive_genre
    run_w, div_w = problem.run_weight, problem.diversity_weight
    rows: list[sparse.csr_matrix] = []
    lo: list[FloatArray] = []
    hi: list[FloatArray] = []

    # extra variables: run windows v[w, g] (>= 0), presence z[b, g] in [0, 1], shortfall u[b] >= 0
    windows: list[tuple[int, int]] = []  # (first slot, genre)
    if run_w and K > 0:
        allowed_g = np.zeros((G, S), dtype=bool)
        allowed_g[cell_g, cell_s] = True
        for start in range(S - K):
            span = slice(start, start + K + 1)
            if not problem.same_day_next[start : start + K].all():
                continue
            for g in np.flatnonzero(allowed_g[:, span].all(axis=1)).tolist():
                windows.append((start, g))
    nv = len(windows)
    nb = int(problem.block.max()) + 1 if (div_w and S) else 0
    nz, nu = nb * G, nb
    n = nx + nv + nz + nu

    c = np.zeros(n)
    c[:nx] = -problem.value[cell_p, cell_s]
    c[nx : nx + nv] = run_w
    c[nx + nv + nz :] = div_w

    def add(matrix: sparse.coo_matrix, low: FloatArray, high: FloatArray) -> None:
        rows.append(matrix.tocsr())
        lo.append(low)
        hi.append(high)

    # each slot exactly one program
    add(sparse.coo_matrix((np.ones(nx), (cell_s, np.arange(nx))), shape=(S, n)), np.ones(S), np.ones(S))
    # per day per program at most max_per_day
    key = problem.slot_day[cell_s] * problem.n_programs + cell_p
    uniq, inv = np.unique(key, return_inverse=True)
    cap = problem.max_per_day[uniq % problem.n_programs].astype(float)
    add(sparse.coo_matrix((np.ones(nx), (inv, np.arange(nx))), shape=(uniq.size, n)), np.zeros(uniq.size), cap)
    # run windows: sum of genre-g cells over the K+1 window - v <= K
    if nv:
        by_sg: dict[tuple[int, int], list[int]] = {}
        for idx, (s, g) in enumerate(zip(cell_s.tolist(), cell_g.tolist(), strict=True)):
            by_sg.setdefault((s, g), []).append(idx)
        r_idx: list[int] = []
        c_idx: list[int] = []
        vals: list[float] = []
        for w, (start, g) in enumerate(windows):
            for s in range(start, start + K + 1):
                cells = by_sg.get((s, g), [])
                r_idx.extend([w] * len(cells))
                c_idx.extend(cells)
                vals.extend([1.0] * len(cells))
            r_idx.append(w)
            c_idx.append(nx + w)
            vals.append(-1.0)
        add(sparse.coo_matrix((vals, (r_idx, c_idx)), shape=(nv, n)), np.full(nv, -np.inf), np.full(nv, float(K)))
    if nb:
        # z[b, g] <= sum of genre-g cells in block b  ->  z - sum <= 0
        cb = problem.block[cell_s]
        zr = cb * G + cell_g
        r = np.concatenate([zr, np.arange(nz)])
        col = np.concatenate([np.arange(nx), nx + nv + np.arange(nz)])
        v = np.concatenate([-np.ones(nx), np.ones(nz)])
        add(sparse.coo_matrix((v, (r, col)), shape=(nz, n)), np.full(nz, -np.inf), np.zeros(nz))
        # sum_g z[b, g] + u[b] >= need[b]
        r = np.concatenate([np.repeat(np.arange(nb), G), np.arange(nb)])
        col = np.concatenate([nx + nv + np.arange(nz), nx + nv + nz + np.arange(nb)])
        add(
            sparse.coo_matrix((np.ones(r.size), (r, col)), shape=(nb, n)),
            problem.block_need.astype(float),
            np.full(nb, np.inf),
        )

    integrality = np.zeros(n)
    integrality[:nx] = 1
    upper = np.full(n, np.inf)
    upper[:nx] = 1
    upper[nx + nv : nx + nv + nz] = 1
    res = milp(
        c,
        constraints=LinearConstraint(sparse.vstack(rows).tocsr(), np.concatenate(lo), np.concatenate(hi)),
        integrality=integrality,
        bounds=Bounds(np.zeros(n), upper),
        options={"time_limit": time_limit, "mip_rel_gap": 1e-6, "disp": False},
    )
    seconds = time.perf_counter() - t0
    if res.x is None:
        return MilpResult(None, float("nan"), float("nan"), False, seconds, str(res.message))
    chosen = res.x[:nx] > 0.5
    x = np.full(S, -1, dtype=np.int64)
    x[cell_s[chosen]] = cell_p[chosen]
    dual = getattr(res, "mip_dual_bound", None)
    bound = -float(dual) if dual is not None and np.isfinite(dual) else -float(res.fun)
    return MilpResult(x, -float(res.fun), bound, res.status == 0, seconds, str(res.message))
