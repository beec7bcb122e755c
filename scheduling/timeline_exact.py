"""The time-indexed integer program of a timeline, solved with HiGHS (``scipy.optimize.milp``).

Variables: ``x[p, t]`` = 1 if program p starts at cell t (only where ``start_ok``; a pin is a variable
fixed to 1), ``e[c]`` = cell c is empty (only when gaps are allowed). Constraints: every cell is covered
exactly once (``sum of x[p, t] with t <= c < t + length[p]`` + ``e[c]`` = 1), airings per day and per
window per program. Soft terms:

* genre runs, for K = 1 and K = 2 exactly: ``b[g, c]`` >= (an airing of genre g ends at boundary c) +
  (one of genre g starts at c) - 1 marks a same-genre transition; K = 1 pays per transition, K = 2 pays
  per airing ``w[p, t] >= x[p, t] + b[g, t] + b[g, t + length[p]] - 2`` with same-genre neighbours on
  both sides (the third of three). For K >= 3 the run term is left out, so the result is an upper
  bound, never reported as the proven optimum.
* diversity: ``z[b, g] <= sum of genre-g starts in block b``, ``sum_g z[b, g] + u[b] >= need[b]``.

:func:`timeline_milp` gives the proven optimum (benchmark sizes) and, with ``relax=True``, the LP
relaxation: an upper bound of the objective, cheap enough for every job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from scheduling.problem import Conflict, FloatArray, IntArray
from scheduling.timeline import CONT, GAP, Timeline, cell_conflicts


@dataclass
class TimelineMilpResult:
    schedule: IntArray | None  # start array
    objective: float
    bound: float
    proven: bool  # the optimum of the full objective (runs modelled exactly)
    seconds: float
    status: str
    runs_exact: bool
    code: int = 0  # HiGHS status via scipy: 0 optimal, 1 limit reached, 2 infeasible


def timeline_milp(tl: Timeline, *, time_limit: float = 60.0, relax: bool = False) -> TimelineMilpResult:
    t0 = time.perf_counter()
    T, G = tl.n_cells, tl.n_genres
    ok = tl.start_ok.copy()
    xp, xt = np.nonzero(ok)
    nx = xp.size
    lengths = tl.length[xp]
    gap_vars = tl.gaps_allowed
    ne = T if gap_vars else 0
    K = tl.max_consecutive_genre
    runs_exact = not tl.run_weight or K <= 2
    model_runs = bool(tl.run_weight) and K in (1, 2)

    # same-genre transitions b[g, c] for boundaries c inside a segment
    b_key: dict[tuple[int, int], int] = {}
    b_rows: list[tuple[int, int]] = []
    if model_runs:
        xg = tl.genre[xp]
        end = xt + lengths
        starts_gc = set(zip(xg.tolist(), xt.tolist(), strict=True))
        for g, c in zip(xg.tolist(), end.tolist(), strict=True):
            if c < T and tl.seg_first[c] < c and (g, c) in starts_gc and (g, c) not in b_key:
                b_key[(g, c)] = len(b_rows)
                b_rows.append((g, c))
    nb_ = len(b_rows)
    # K = 2: w per x variable with transitions on both sides
    w_of: list[int] = []
    if model_runs and K == 2:
        xg = tl.genre[xp]
        for i in range(nx):
            g, t, ln = int(xg[i]), int(xt[i]), int(lengths[i])
            if (g, t) in b_key and (g, t + ln) in b_key:
                w_of.append(i)
    nw = len(w_of)
    nblk = int(tl.block.max()) + 1 if (tl.diversity_weight and T) else 0
    nz, nu = nblk * G, nblk
    o_e, o_b = nx, nx + ne
    o_w = o_b + nb_
    o_z = o_w + nw
    o_u = o_z + nz
    n = o_u + nu

    c_obj = np.zeros(n)
    c_obj[:nx] = -tl.value[xp, xt]
    c_obj[o_e:o_b] = tl.gap_cost
    if K == 1:
        c_obj[o_b:o_w] = tl.run_weight
    c_obj[o_w:o_z] = tl.run_weight
    c_obj[o_u:] = tl.diversity_weight

    rows: list[sparse.csr_matrix] = []
    lo: list[FloatArray] = []
    hi: list[FloatArray] = []

    def add(r: IntArray, col: IntArray, v: FloatArray, m: int, low: FloatArray, high: FloatArray) -> None:
        rows.append(sparse.coo_matrix((v, (r, col)), shape=(m, n)).tocsr())
        lo.append(low)
        hi.append(high)

    # cover: cell c by x[p, t] for t <= c < t + length
    rep = np.repeat(np.arange(nx), lengths)
    offs = np.arange(rep.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    cell = xt[rep] + offs
    r = np.concatenate([cell, np.arange(ne)])
    col = np.concatenate([rep, o_e + np.arange(ne)])
    add(r, col, np.ones(r.size), T, np.ones(T), np.ones(T))
    # per day per program
    key = tl.cell_day[xt] * tl.n_programs + xp
    uniq, inv = np.unique(key, return_inverse=True)
    add(
        inv,
        np.arange(nx),
        np.ones(nx),
        uniq.size,
        np.zeros(uniq.size),
        tl.max_per_day[uniq % tl.n_programs].astype(np.float64),
    )
    if tl.max_per_week is not None:
        add(xp, np.arange(nx), np.ones(nx), tl.n_programs, np.zeros(tl.n_programs), tl.week_cap.astype(np.float64))
    if nb_:
        # s[g, c] + e[g, c] - b[g, c] <= 1
        xg = tl.genre[xp]
        ri: list[IntArray] = []
        ci: list[IntArray] = []
        start_row = np.array([b_key.get((g, t), -1) for g, t in zip(xg.tolist(), xt.tolist(), strict=True)])
        end_row = np.array(
            [b_key.get((g, t + ln), -1) for g, t, ln in zip(xg.tolist(), xt.tolist(), lengths.tolist(), strict=True)]
        )
        for rr in (start_row, end_row):
            m = rr >= 0
            ri.append(rr[m])
            ci.append(np.flatnonzero(m))
        ri.append(np.arange(nb_))
        ci.append(o_b + np.arange(nb_))
        vals = np.concatenate([np.ones(ri[0].size + ri[1].size), -np.ones(nb_)])
        add(np.concatenate(ri), np.concatenate(ci), vals, nb_, np.full(nb_, -np.inf), np.ones(nb_))
    if nw:
        # x + b[g, t] + b[g, t + len] - w <= 2
        xg = tl.genre[xp]
        idx = np.array(w_of)
        b1 = np.array([b_key[(int(xg[i]), int(xt[i]))] for i in w_of])
        b2 = np.array([b_key[(int(xg[i]), int(xt[i] + lengths[i]))] for i in w_of])
        rr = np.tile(np.arange(nw), 4)
        cc = np.concatenate([idx, o_b + b1, o_b + b2, o_w + np.arange(nw)])
        vv = np.concatenate([np.ones(3 * nw), -np.ones(nw)])
        add(rr, cc, vv, nw, np.full(nw, -np.inf), np.full(nw, 2.0))
    if nblk:
        blk = tl.block[xt]
        zr = blk * G + tl.genre[xp]
        r = np.concatenate([zr, np.arange(nz)])
        col = np.concatenate([np.arange(nx), o_z + np.arange(nz)])
        v = np.concatenate([-np.ones(nx), np.ones(nz)])
        add(r, col, v, nz, np.full(nz, -np.inf), np.zeros(nz))
        r = np.concatenate([np.repeat(np.arange(nblk), G), np.arange(nblk)])
        col = np.concatenate([o_z + np.arange(nz), o_u + np.arange(nblk)])
        add(r, col, np.ones(r.size), nblk, tl.block_need.astype(np.float64), np.full(nblk, np.inf))

    lower = np.zeros(n)
    upper = np.full(n, np.inf)
    upper[:o_w] = 1.0
    upper[o_z:o_u] = 1.0
    pin_idx = {(pin.program, pin.cell) for pin in tl.pins}
    if pin_idx:
        is_pin = np.array([(int(p), int(t)) in pin_idx for p, t in zip(xp, xt, strict=True)])
        lower[:nx][is_pin] = 1.0
    integrality = np.zeros(n)
    if not relax:
        integrality[:o_b] = 1
    res = milp(
        c_obj,
        constraints=LinearConstraint(sparse.vstack(rows).tocsr(), np.concatenate(lo), np.concatenate(hi)),
        integrality=integrality,
        bounds=Bounds(lower, upper),
        options={"time_limit": time_limit, "mip_rel_gap": 1e-7, "disp": False},
    )
    seconds = time.perf_counter() - t0
    if res.x is None:
        return TimelineMilpResult(
            None, float("nan"), float("nan"), False, seconds, str(res.message), runs_exact, int(res.status)
        )
    dual = getattr(res, "mip_dual_bound", None)
    bound = -float(dual) if (not relax and dual is not None and np.isfinite(dual)) else -float(res.fun)
    schedule = None
    if not relax:
        y = np.full(T, GAP, dtype=np.int64)
        chosen = np.flatnonzero(res.x[:nx] > 0.5)
        for i in chosen.tolist():
            t, ln = int(xt[i]), int(lengths[i])
            y[t : t + ln] = CONT
            y[t] = int(xp[i])
        schedule = y
    proven = (not relax) and res.status == 0 and runs_exact
    return TimelineMilpResult(
        schedule, -float(res.fun), bound, proven, seconds, str(res.message), runs_exact, int(res.status)
    )


def lp_bound(tl: Timeline, *, time_limit: float = 30.0) -> float:
    """Upper bound of the objective from the LP relaxation (nan if the LP did not finish)."""
    return timeline_milp(tl, time_limit=time_limit, relax=True).bound


def timeline_conflicts(tl: Timeline, *, time_limit: float = 20.0) -> list[Conflict]:
    """Why no schedule exists, or [] if one does: cells nothing can cover and pins the mask refuses
    (cheap), else the HiGHS feasibility problem; a proven infeasible day names its cells, the limits and
    the programs allowed in it."""
    conflicts = cell_conflicts(tl)
    if conflicts:
        return conflicts
    res = timeline_milp(tl.with_values(np.zeros_like(tl.value)).without_soft(), time_limit=time_limit)
    if res.code != 2:
        return []
    out: list[Conflict] = []
    short: list[Conflict] = []  # days the limits alone cannot fill
    for day in range(tl.n_days):
        cells = np.flatnonzero(tl.cell_day == day)
        progs = np.flatnonzero(tl.start_ok[:, cells].any(axis=1))
        minutes = int(cells.size) * tl.grid
        supply = int((np.minimum(tl.max_per_day[progs], tl.week_cap[progs]) * tl.length[progs]).sum()) * tl.grid
        lengths = sorted({int(v) for v in tl.duration[progs]})
        out.append(
            Conflict(
                constraints=["max_per_day", "max_per_week", "content_rating_window", "availability", "pinned_airing"],
                message=f"day {day}: {minutes} minutes cannot be filled end to end by the {progs.size} programs "
                f"allowed in them (lengths {lengths} min, at most {supply} minutes within the airing limits)",
                slots=cells.tolist(),
                day=day,
                programs=progs.tolist(),
            )
        )
        if supply < minutes:
            short.append(out[-1])
    return short or out
