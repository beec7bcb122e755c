"""The timeline model of a broadcast window (no Django).

A window (a broadcast day 06:00-02:00, a daypart, several days, or a custom start/end) is a run of grid
cells of ``grid`` minutes, cut into *segments* (one per broadcast day: the hours between two windows are
off air). It is filled end to end by airings: an airing of program ``p`` starting at cell ``t`` covers
``length[p] = ceil(duration / grid)`` cells, must stay inside its segment, and no two airings overlap.
Empty cells are allowed only when the request gives a ``gap_penalty`` (slot-value units per empty
minute). Pinned airings are fixed.

Hard (never violated in a returned schedule): coverage (no overlap; no gap unless allowed), pins,
content-rating windows over the **whole span** of an airing (an R-rated 90-minute film may not start at
21:00 when R begins at 22:00), unavailable intervals (also over the whole span), at most
``max_per_day[p]`` airings a broadcast day and ``max_per_week[p]`` in the window (<= 7 days). All but
coverage and the limits fold into one mask ``start_ok[p, t]``.

Soft (penalised, reported): more than ``K`` consecutive airings of a genre in a segment (each airing
that makes a run longer than K costs ``run_penalty``; a gap breaks a run), fewer than ``m`` genres
among the airings starting in a (day, daypart) block (``diversity_penalty`` per missing genre),
advertiser goals (a bonus per airing starting in the goal's cells).

A schedule is a start array ``y`` of one int per cell: the program index where an airing starts,
``CONT`` (-1) in the cells an airing continues over, ``GAP`` (-2) in an empty cell. Populations are
``n x T`` arrays and are evaluated as array expressions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scheduling.problem import (
    DEFAULT_RATING_WINDOWS,
    RATINGS,
    AdvertiserGoal,
    BoolArray,
    Conflict,
    FloatArray,
    IntArray,
    RatingWindow,
    ScheduleLike,
    SoftWeights,
    daypart_blocks,
    linear_value,
    value_reference,
)

CONT = -1
GAP = -2


@dataclass(frozen=True)
class Pin:
    """A fixed airing: ``program`` starts at cell ``cell``."""

    program: int
    cell: int


@dataclass(frozen=True)
class Unavailable:
    """``program`` may not be on air in ``[start_minute, end_minute)`` (minutes since day 0's midnight)."""

    program: int
    start_minute: int
    end_minute: int


@dataclass
class Timeline(SoftWeights):
    """Cells x programs with per-airing values and constraints. Cells must be ordered by start."""

    grid: int  # minutes per cell
    cell_start: IntArray  # minutes since midnight of the first broadcast day (local clock)
    cell_segment: IntArray  # contiguous on-air window id, non-decreasing
    cell_day: IntArray  # broadcast day index 0..D-1
    cell_daypart: IntArray
    genre: IntArray
    rating: IntArray  # index into RATINGS
    duration: IntArray  # minutes
    max_per_day: IntArray
    revenue: FloatArray  # programs x cells: one airing of p starting at cell t
    audience: FloatArray
    max_per_week: IntArray | None = None  # None: no weekly limit
    unavailable: tuple[Unavailable, ...] = ()
    rating_windows: tuple[RatingWindow, ...] = DEFAULT_RATING_WINDOWS
    pins: tuple[Pin, ...] = ()
    gap_penalty: float | None = None  # per empty minute; None = no gaps allowed
    n_genres: int = 12
    max_consecutive_genre: int = 0
    min_genres_per_daypart: int = 0
    goals: tuple[AdvertiserGoal, ...] = ()  # slot_mask over cells (the airing's start cell)
    run_penalty: float = 0.5
    diversity_penalty: float = 1.0
    weight_revenue: float = 1.0
    weight_audience: float = 0.0
    weight_balance: float = 1.0
    # derived
    length: IntArray = field(init=False, repr=False)
    start_ok: BoolArray = field(init=False, repr=False)
    value: FloatArray = field(init=False, repr=False)
    rev_ref: float = field(init=False)
    aud_ref: float = field(init=False)
    seg_first: IntArray = field(init=False, repr=False)  # per cell: first cell of its segment
    seg_end: IntArray = field(init=False, repr=False)  # per cell: one past the last cell of its segment
    block: IntArray = field(init=False, repr=False)
    block_need: IntArray = field(init=False, repr=False)
    week_cap: IntArray = field(init=False, repr=False)
    pinned: IntArray = field(init=False, repr=False)  # per cell: program pinned to start there, else -1
    locked: BoolArray = field(init=False, repr=False)  # cells covered by a pin

    def __post_init__(self) -> None:
        for name in ("cell_start", "cell_segment", "cell_day", "cell_daypart", "genre", "rating", "duration"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        self.max_per_day = np.asarray(self.max_per_day, dtype=np.int64)
        self.revenue = np.asarray(self.revenue, dtype=np.float64)
        self.audience = np.asarray(self.audience, dtype=np.float64)
        shape = (self.n_programs, self.n_cells)
        if self.revenue.shape != shape or self.audience.shape != shape:
            raise ValueError(f"value matrices must be programs x cells {shape}")
        if self.n_cells and np.any(np.diff(self.cell_start) <= 0):
            raise ValueError("cells must be ordered by start")
        self.length = np.maximum(1, -(-self.duration // self.grid)).astype(np.int64)
        T = self.n_cells
        idx = np.arange(T)
        first = np.r_[True, self.cell_segment[1:] != self.cell_segment[:-1]] if T else np.zeros(0, bool)
        self.seg_first = np.maximum.accumulate(np.where(first, idx, 0)) if T else idx
        last = np.r_[self.cell_segment[1:] != self.cell_segment[:-1], True] if T else np.zeros(0, bool)
        self.seg_end = (np.minimum.accumulate(np.where(last, idx, T)[::-1])[::-1] + 1) if T else idx
        self.week_cap = (
            np.full(self.n_programs, 1 << 30, dtype=np.int64)
            if self.max_per_week is None
            else np.asarray(self.max_per_week, dtype=np.int64)
        )
        self.pinned = np.full(T, -1, dtype=np.int64)
        self.locked = np.zeros(T, dtype=bool)
        for pin in self.pins:
            self.pinned[pin.cell] = pin.program
            self.locked[pin.cell : min(pin.cell + int(self.length[pin.program]), T)] = True
        self.start_ok = self.compute_start_ok()
        self._derive_values()
        self.block, self.block_need = daypart_blocks(self.cell_day, self.cell_daypart, self.min_genres_per_daypart)

    # -- sizes ------------------------------------------------------------------------------------
    @property
    def n_cells(self) -> int:
        return int(self.cell_start.shape[0])

    @property
    def n_programs(self) -> int:
        return int(self.genre.shape[0])

    @property
    def n_days(self) -> int:
        return int(self.cell_day.max()) + 1 if self.n_cells else 0

    @property
    def gaps_allowed(self) -> bool:
        return self.gap_penalty is not None

    @property
    def gap_cost(self) -> float:
        """Cost of one empty cell (slot-value units)."""
        return float(self.gap_penalty or 0.0) * self.grid

    # -- the start mask ---------------------------------------------------------------------------
    def mask_components(self) -> dict[str, BoolArray]:
        """Each start-type hard constraint on its own (programs x cells), for the conflict report."""
        P, T = self.n_programs, self.n_cells
        starts = self.cell_start
        ends = starts[None, :] + self.duration[:, None]  # P x T, minutes
        fits = (np.arange(T)[None, :] + self.length[:, None]) <= self.seg_end[None, :]
        # a pin's cells are taken: only the pinned airing itself may start there
        free_prefix = np.r_[0, np.cumsum(self.locked)]
        end_cell = np.minimum(np.arange(T)[None, :] + self.length[:, None], T)
        overlaps_pin = (free_prefix[end_cell] - free_prefix[np.arange(T)][None, :]) > 0
        is_pin = np.zeros((P, T), dtype=bool)
        pcells = np.flatnonzero(self.pinned >= 0)
        is_pin[self.pinned[pcells], pcells] = True
        pins_ok = ~overlaps_pin | is_pin
        rating_ok = np.ones((P, T), dtype=bool)
        minute = np.arange(2 * 1440)
        for window in self.rating_windows:
            inside = np.array([window.covers(int(m) % 1440) for m in minute[:1440]], dtype=bool)
            prefix = np.r_[0, np.cumsum(np.tile(inside, 2))]
            s0 = (starts % 1440)[None, :]
            span = np.minimum(self.duration[:, None], 1440)
            touches = (prefix[s0 + span] - prefix[s0]) > 0  # any minute of the airing inside the window
            disallowed = np.array([RATINGS[r] not in window.ratings for r in self.rating], dtype=bool)
            rating_ok &= ~(touches & disallowed[:, None])
        avail = np.ones((P, T), dtype=bool)
        for item in self.unavailable:
            avail[item.program] &= ~((starts < item.end_minute) & (ends[item.program] > item.start_minute))
        return {"segment": fits, "pinned_airing": pins_ok, "content_rating_window": rating_ok, "availability": avail}

    def compute_start_ok(self) -> BoolArray:
        ok = np.ones((self.n_programs, self.n_cells), dtype=bool)
        for part in self.mask_components().values():
            ok &= part
        return ok

    # -- values -----------------------------------------------------------------------------------
    def _derive_values(self) -> None:
        # mean value of an airing per grid cell it covers: normalises programs of any length
        self.rev_ref = value_reference(self.revenue / self.length[:, None], self.start_ok)
        self.aud_ref = value_reference(self.audience / self.length[:, None], self.start_ok)
        self.value = self.linear_value(self.weight_revenue, self.weight_audience)

    def linear_value(self, weight_revenue: float, weight_audience: float) -> FloatArray:
        """Value of one airing of p starting at t, in grid-cell-value units (~1 per cell covered)."""
        return linear_value(self, weight_revenue, weight_audience)

    def without_soft(self) -> Timeline:
        """A shallow copy with the soft terms off (feasibility checks)."""
        clone = self.with_values(self.value)
        clone.max_consecutive_genre = 0
        clone.min_genres_per_daypart = 0
        return clone

    def with_values(self, value: FloatArray) -> Timeline:
        """A shallow copy whose linear value is ``value`` (used for weighted sums and taxed re-solves)."""
        clone = object.__new__(Timeline)
        clone.__dict__.update(self.__dict__)
        clone.value = value
        return clone


# ---- schedules ----------------------------------------------------------------------------------
def airings_of(y: ScheduleLike) -> list[tuple[int, int]]:
    """(cell, program) of every airing of a start array."""
    starts = np.asarray(y)
    cells = np.flatnonzero(starts >= 0)
    return list(zip(cells.tolist(), starts[cells].tolist(), strict=True))


def start_array(tl: Timeline, airings: list[tuple[int, int]]) -> IntArray:
    """The start array of (cell, program) airings; uncovered cells are GAP."""
    y = np.full(tl.n_cells, GAP, dtype=np.int64)
    for cell, p in airings:
        y[cell : cell + int(tl.length[p])] = CONT
        y[cell] = p
    return y


# ---- vectorised evaluation ----------------------------------------------------------------------
def _run_lengths(tl: Timeline, Y: IntArray) -> tuple[BoolArray, IntArray]:
    """Per start cell: whether an airing starts there and the length of its same-genre run so far."""
    n, T = Y.shape
    cols = np.broadcast_to(np.arange(T), (n, T))
    S = Y >= 0
    event = Y != CONT  # a start or an empty cell
    ev_genre = np.where(S, tl.genre[np.maximum(Y, 0)], -1)
    last_event = np.maximum.accumulate(np.where(event, cols, -1), axis=1)
    prev = np.full((n, T), -1, dtype=np.int64)
    prev[:, 1:] = last_event[:, :-1]
    prev_genre = np.where(prev >= 0, np.take_along_axis(ev_genre, np.maximum(prev, 0), axis=1), -1)
    same = S & (prev >= tl.seg_first[None, :]) & (prev_genre == ev_genre)
    reset = S & ~same
    count = np.cumsum(S, axis=1)
    last_reset = np.maximum.accumulate(np.where(reset, cols, 0), axis=1)
    run = count - np.take_along_axis(count, last_reset, axis=1) + 1
    return S, np.where(S, run, 0)


def run_violations(tl: Timeline, Y: IntArray) -> IntArray:
    """Airings that make a same-genre run longer than K, per row."""
    K = tl.max_consecutive_genre
    if K <= 0:
        return np.zeros(Y.shape[0], dtype=np.int64)
    _, run = _run_lengths(tl, Y)
    return np.asarray((run > K).sum(axis=1), dtype=np.int64)


def diversity_shortfall(tl: Timeline, Y: IntArray) -> IntArray:
    n = Y.shape[0]
    if tl.min_genres_per_daypart <= 0 or tl.n_cells == 0:
        return np.zeros(n, dtype=np.int64)
    nb = int(tl.block.max()) + 1
    present = np.zeros((n, nb, tl.n_genres + 1), dtype=bool)
    g = np.where(Y >= 0, tl.genre[np.maximum(Y, 0)], tl.n_genres)  # column n_genres = no airing starts
    rows = np.repeat(np.arange(n), tl.n_cells)
    present[rows, np.tile(tl.block, n), g.ravel()] = True
    distinct = present[:, :, : tl.n_genres].sum(axis=2)
    return np.asarray(np.maximum(tl.block_need[None, :] - distinct, 0).sum(axis=1), dtype=np.int64)


def linear_totals(tl: Timeline, Y: IntArray, matrix: FloatArray) -> FloatArray:
    S = Y >= 0
    vals = matrix[np.maximum(Y, 0), np.arange(tl.n_cells)[None, :]]
    return np.asarray(np.where(S, vals, 0.0).sum(axis=1), dtype=np.float64)


def evaluate(tl: Timeline, Y: IntArray) -> FloatArray:
    """Objective of every row: linear value - gap cost - run and diversity penalties."""
    Y = np.atleast_2d(Y)
    score: FloatArray = linear_totals(tl, Y, tl.value) - tl.gap_cost * (Y == GAP).sum(axis=1)
    if tl.run_weight:
        score = score - tl.run_weight * run_violations(tl, Y)
    if tl.diversity_weight:
        score = score - tl.diversity_weight * diversity_shortfall(tl, Y)
    return score


@dataclass
class TimelineTotals:
    objective: float
    revenue: float
    audience: float
    linear: float
    airings: int
    gap_minutes: int
    run_violations: int
    diversity_shortfall: int
    goals_met: dict[str, int]


def totals(tl: Timeline, y: ScheduleLike) -> TimelineTotals:
    Y = np.asarray(y, dtype=np.int64)[None, :]
    S = Y[0] >= 0
    goals_met = {}
    for goal in tl.goals:
        mask = np.asarray(goal.slot_mask, dtype=bool)
        goals_met[goal.name] = int((S & (tl.genre[np.maximum(Y[0], 0)] == goal.genre) & mask).sum())
    return TimelineTotals(
        objective=float(evaluate(tl, Y)[0]),
        revenue=float(linear_totals(tl, Y, tl.revenue)[0]),
        audience=float(linear_totals(tl, Y, tl.audience)[0]),
        linear=float(linear_totals(tl, Y, tl.value)[0]),
        airings=int(S.sum()),
        gap_minutes=int((Y[0] == GAP).sum()) * tl.grid,
        run_violations=int(run_violations(tl, Y)[0]),
        diversity_shortfall=int(diversity_shortfall(tl, Y)[0]),
        goals_met=goals_met,
    )


def usage(tl: Timeline, y: IntArray) -> tuple[IntArray, IntArray]:
    """(airings per day x program, airings per program in the window)."""
    cells = np.flatnonzero(y >= 0)
    per_day = np.zeros((tl.n_days, tl.n_programs), dtype=np.int64)
    np.add.at(per_day, (tl.cell_day[cells], y[cells]), 1)
    return per_day, per_day.sum(axis=0)


# ---- conflicts ----------------------------------------------------------------------------------
def _clock(minute: int) -> str:
    m = int(minute) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


def cell_conflicts(tl: Timeline) -> list[Conflict]:
    """Cells no airing can cover (no gaps allowed), naming the constraints that empty them and the
    programs that come closest; pins the mask refuses. Empty when a cheap check finds nothing."""
    conflicts: list[Conflict] = []
    comps = tl.mask_components()
    names = list(comps)
    for pin in tl.pins:
        broken = [name for name in names if not comps[name][pin.program, pin.cell]]
        if broken:
            conflicts.append(
                Conflict(
                    constraints=["pinned_airing", *broken],
                    message=f"pinned airing of program {pin.program} at cell {pin.cell} "
                    f"({_clock(int(tl.cell_start[pin.cell]))}) breaks {' + '.join(broken)}",
                    slots=[pin.cell],
                    day=int(tl.cell_day[pin.cell]),
                    programs=[pin.program],
                )
            )
    if tl.gaps_allowed or tl.n_cells == 0:
        return conflicts
    # cell c can be covered if some airing starting at t <= c < t + length is allowed
    covered = np.zeros(tl.n_cells + 1, dtype=np.int64)
    for p in range(tl.n_programs):
        ok = np.flatnonzero(tl.start_ok[p])
        np.add.at(covered, ok, 1)
        np.add.at(covered, np.minimum(ok + tl.length[p], tl.n_cells), -1)
    coverable = np.cumsum(covered)[: tl.n_cells] > 0
    for c in np.flatnonzero(~coverable).tolist():
        culprits = []
        closest: list[int] = []
        for name in names:
            others = np.ones_like(tl.start_ok)
            for other in names:
                if other != name:
                    others &= comps[other]
            starts = np.arange(tl.n_cells)
            covers = (starts[None, :] <= c) & (starts[None, :] + tl.length[:, None] > c)
            rescued = np.flatnonzero((others & covers).any(axis=1))
            if rescued.size:
                culprits.append(name)
                closest.extend(rescued[:5].tolist())
        conflicts.append(
            Conflict(
                constraints=culprits or names,
                message=f"cell {c} (day {int(tl.cell_day[c])}, {_clock(int(tl.cell_start[c]))}) cannot be "
                f"covered by any airing: {' + '.join(culprits or names)}"
                + (f" (programs {sorted(set(closest))[:10]} would fit without it)" if closest else ""),
                slots=[c],
                day=int(tl.cell_day[c]),
                programs=sorted(set(closest)),
            )
        )
        if len(conflicts) >= 20:
            break
    return conflicts


# ---- independent checker ------------------------------------------------------------------------
def check_timeline(tl: Timeline, y: ScheduleLike) -> list[str]:
    """Every hard-constraint violation of the start array ``y``, in words.

    Written apart from the mask and the optimiser on purpose: it works on minutes from the raw
    attributes with plain loops (airings as [start, end) intervals), so a bug in the vectorised path
    cannot hide itself.
    """
    out: list[str] = []
    cells_y = [int(v) for v in y]
    T = tl.n_cells
    if len(cells_y) != T:
        return [f"schedule has {len(cells_y)} cells for {T}"]
    grid = tl.grid
    starts = [int(v) for v in tl.cell_start]
    segments: dict[int, list[int]] = {}
    for c in range(T):
        segments.setdefault(int(tl.cell_segment[c]), []).append(starts[c])
    windows = {seg: (cells[0], cells[-1] + grid) for seg, cells in segments.items()}
    airings: list[tuple[int, int, int, int]] = []  # (start, end, program, cell)
    for c, p in enumerate(cells_y):
        if p >= 0:
            if p >= tl.n_programs:
                out.append(f"cell {c}: unknown program {p}")
                continue
            airings.append((starts[c], starts[c] + int(tl.duration[p]), p, c))
    # coverage: every on-air minute covered once (a program shorter than its cells leaves filler)
    for seg, (lo, hi) in windows.items():
        inside = sorted(a for a in airings if lo <= a[0] < hi)
        cursor = lo
        for a_start, a_end, p, c in inside:
            if a_start < cursor:
                out.append(f"cell {c}: program {p} at {_clock(a_start)} overlaps the airing before it")
            elif a_start - cursor >= grid and not tl.gaps_allowed:
                out.append(f"segment {seg}: nothing on air {_clock(cursor)}-{_clock(a_start)}")
            if a_end > hi:
                out.append(f"cell {c}: program {p} runs past the end of its window ({_clock(hi)})")
            # the next airing may start at the first grid line at or after this one's end
            cursor = max(cursor, a_start + -(-(a_end - a_start) // grid) * grid)
        if hi - cursor >= grid and not tl.gaps_allowed:
            out.append(f"segment {seg}: nothing on air {_clock(cursor)}-{_clock(hi)}")
    for pin in tl.pins:
        if cells_y[pin.cell] != pin.program:
            out.append(f"pinned airing of program {pin.program} at {_clock(starts[pin.cell])} is missing")
    per_day: dict[tuple[int, int], int] = {}
    per_week: dict[int, int] = {}
    for a_start, a_end, p, c in airings:
        rating = RATINGS[int(tl.rating[p])]
        for w in tl.rating_windows:
            if rating in w.ratings:
                continue
            for minute in range(a_start, a_end):
                m = minute % 1440
                in_window = (
                    (w.start_minute <= m < w.end_minute)
                    if w.start_minute <= w.end_minute
                    else (m >= w.start_minute or m < w.end_minute)
                )
                if in_window:
                    out.append(
                        f"cell {c}: {rating} program {p} {_clock(a_start)}-{_clock(a_end)} on air at {_clock(m)}"
                    )
                    break
        for item in tl.unavailable:
            if item.program == p and a_start < item.end_minute and a_end > item.start_minute:
                out.append(f"cell {c}: program {p} is not available {_clock(a_start)}-{_clock(a_end)}")
        key = (int(tl.cell_day[c]), p)
        per_day[key] = per_day.get(key, 0) + 1
        per_week[p] = per_week.get(p, 0) + 1
    for (day, p), count in per_day.items():
        if count > int(tl.max_per_day[p]):
            out.append(f"day {day}: program {p} airs {count} times, max {int(tl.max_per_day[p])}")
    if tl.max_per_week is not None:
        for p, count in per_week.items():
            if count > int(tl.max_per_week[p]):
                out.append(f"program {p} airs {count} times in the window, max {int(tl.max_per_week[p])}")
    return out
