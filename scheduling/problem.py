"""The schedule optimisation problem as plain numpy arrays (no Django).

A :class:`Problem` is a horizon of slots (ordered by time, each on a broadcast day and in a daypart),
candidate programs, and the two value matrices ``revenue[p, s]`` / ``audience[p, s]`` (programs x slots)
computed once per job. Every evaluation after that is array arithmetic.

Hard constraints (never violated in a returned schedule): fixed slots, the availability mask,
content-rating windows, program length fits the slot (min/max), at most ``max_per_day[p]`` airings of
a program per broadcast day. All but the last fold into one boolean mask ``allowed[p, s]``.

Soft constraints (penalised, reported): no more than ``K`` consecutive slots of one genre (each window
of K+1 same-genre slots in a day costs ``run_penalty``), at least ``m`` distinct genres per daypart of a
day (each missing genre costs ``diversity_penalty``), advertiser goals (a linear bonus per matching
slot). The runs and the diversity are the "genre balance" objective.

Every soft term is per broadcast day, so the objective is separable by day; the optimiser uses that for
its crossover and local search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

RATINGS: tuple[str, ...] = ("G", "PG", "PG-13", "R")
IntArray = npt.NDArray[np.int64]
ScheduleLike: TypeAlias = Sequence[int] | IntArray
"""A schedule as a program index per slot (or per cell): a list, an array or a GA individual."""
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class RatingWindow:
    """In slots whose clock start lies in ``[start_minute, end_minute)`` only ``ratings`` may air.

    Minutes are local clock minutes (0-1439); a window may wrap midnight (start > end). "R only from
    22:00" is ``RatingWindow(360, 1320, ("G", "PG", "PG-13"))``; kids' hours are
    ``RatingWindow(360, 540, ("G", "PG"))``.
    """

    start_minute: int
    end_minute: int
    ratings: tuple[str, ...]

    def covers(self, clock_minute: int) -> bool:
        if self.start_minute <= self.end_minute:
            return self.start_minute <= clock_minute < self.end_minute
        return clock_minute >= self.start_minute or clock_minute < self.end_minute


DEFAULT_RATING_WINDOWS: tuple[RatingWindow, ...] = (
    RatingWindow(6 * 60, 22 * 60, ("G", "PG", "PG-13")),  # R only from 22:00 to 06:00
    RatingWindow(6 * 60, 9 * 60, ("G", "PG")),  # kids' hours
)


@dataclass(frozen=True)
class AdvertiserGoal:
    """Soft goal: ``genre`` in the slots of ``slot_mask`` earns ``weight`` (in slot-value units) per slot."""

    name: str
    genre: int
    slot_mask: tuple[bool, ...]
    weight: float


class _LinearTerms(Protocol):
    """What the linear objective reads: both models (slots and timeline) have these fields."""

    revenue: FloatArray
    audience: FloatArray
    rev_ref: float
    aud_ref: float
    genre: IntArray
    goals: tuple[AdvertiserGoal, ...]


def value_reference(matrix: FloatArray, allowed: BoolArray) -> float:
    """Mean absolute best value per column over the allowed cells: the scale that makes the revenue
    and audience terms comparable (1.0 when nothing is allowed)."""
    if not matrix.shape[1]:
        return 1.0
    best = np.where(allowed, matrix, -np.inf).max(axis=0)
    best = best[np.isfinite(best)]
    mean = float(np.abs(best).mean()) if best.size else 0.0
    return mean if mean > 0 else 1.0


def goal_bonus(model: _LinearTerms) -> FloatArray:
    """Advertiser goals: ``weight`` for each program of the goal's genre in each cell of its mask."""
    bonus = np.zeros(model.revenue.shape)
    for goal in model.goals:
        mask = np.asarray(goal.slot_mask, dtype=bool)
        bonus += goal.weight * ((model.genre == goal.genre)[:, None] & mask[None, :])
    return bonus


def linear_value(model: _LinearTerms, weight_revenue: float, weight_audience: float) -> FloatArray:
    """Weighted, normalised revenue and audience plus the goal bonus, per (program, column)."""
    return (
        weight_revenue * model.revenue / model.rev_ref
        + weight_audience * model.audience / model.aud_ref
        + goal_bonus(model)
    )


class SoftWeights:
    """The weights of the two soft penalties, the same rule for both models (slots and timeline): each is
    ``weight_balance`` times its penalty, and 0 when its constraint is switched off."""

    max_consecutive_genre: int
    min_genres_per_daypart: int
    run_penalty: float
    diversity_penalty: float
    weight_balance: float

    @property
    def run_weight(self) -> float:
        return self.weight_balance * self.run_penalty if self.max_consecutive_genre > 0 else 0.0

    @property
    def diversity_weight(self) -> float:
        return self.weight_balance * self.diversity_penalty if self.min_genres_per_daypart > 0 else 0.0


def daypart_blocks(day: IntArray, daypart: IntArray, min_genres: int) -> tuple[IntArray, IntArray]:
    """The (day, daypart) block id of each column (slot or cell), numbered in order, and per block the
    distinct genres it must hold: ``min_genres``, capped by its size (n columns hold at most n airings)."""
    n_dp = int(daypart.max()) + 1 if day.size else 1
    _, block = np.unique(day * n_dp + daypart, return_inverse=True)
    block = block.astype(np.int64)
    sizes = np.bincount(block) if day.size else np.zeros(0, np.int64)
    return block, np.minimum(sizes, min_genres).astype(np.int64)


class _Weighted(Protocol):
    weight_revenue: float
    weight_audience: float
    rev_ref: float
    aud_ref: float


def weighted_linear(model: _Weighted, revenue: float, audience: float) -> float:
    """Revenue and audience totals in the objective's units: the weighted, normalised sum (no goal bonus)."""
    return model.weight_revenue * revenue / model.rev_ref + model.weight_audience * audience / model.aud_ref


def front_rows(points: FloatArray) -> list[int]:
    """Rows of ``points`` (one per schedule: revenue, audience) that make the Pareto front: non-dominated,
    one row per distinct point (its first), highest revenue first."""
    unique, first = np.unique(points, axis=0, return_index=True)
    keep = [i for i, pt in enumerate(unique) if not np.any(np.all(unique >= pt, axis=1) & np.any(unique > pt, axis=1))]
    keep.sort(key=lambda i: -float(unique[i, 0]))
    return [int(first[i]) for i in keep]


@dataclass
class Problem(SoftWeights):
    """Slots x programs with value matrices and constraints. Slots must be ordered by start."""

    # slots
    slot_start: IntArray  # minutes since midnight of the first day
    slot_length: IntArray  # minutes
    slot_day: IntArray  # broadcast day index 0..D-1 (non-decreasing)
    slot_daypart: IntArray  # daypart index
    slot_min_len: IntArray  # a program fits a slot if min_len <= duration <= max_len
    slot_max_len: IntArray
    slot_fixed: IntArray  # program index or -1
    # programs
    genre: IntArray  # genre index 0..n_genres-1
    rating: IntArray  # index into RATINGS
    duration: IntArray  # minutes
    max_per_day: IntArray
    # values (programs x slots)
    revenue: FloatArray
    audience: FloatArray
    availability: BoolArray | None = None  # programs x slots; None = all available
    rating_windows: tuple[RatingWindow, ...] = DEFAULT_RATING_WINDOWS
    n_genres: int = 12
    # soft constraints
    max_consecutive_genre: int = 0  # K; 0 switches the run limit off
    min_genres_per_daypart: int = 0  # m; 0 switches it off
    goals: tuple[AdvertiserGoal, ...] = ()
    run_penalty: float = 0.5  # per window of K+1 same-genre slots, in slot-value units
    diversity_penalty: float = 1.0  # per missing genre in a daypart
    # objective weights
    weight_revenue: float = 1.0
    weight_audience: float = 0.0
    weight_balance: float = 1.0  # multiplies both soft penalties
    # derived (filled by __post_init__)
    allowed: BoolArray = field(init=False, repr=False)
    value: FloatArray = field(init=False, repr=False)
    rev_ref: float = field(init=False)
    aud_ref: float = field(init=False)
    block: IntArray = field(init=False, repr=False)  # (day, daypart) block id per slot
    block_need: IntArray = field(init=False, repr=False)  # min distinct genres per block (capped by size)
    same_day_next: BoolArray = field(init=False, repr=False)  # slot s and s+1 on the same day
    day_slots: list[IntArray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in (
            "slot_start",
            "slot_length",
            "slot_day",
            "slot_daypart",
            "slot_min_len",
            "slot_max_len",
            "slot_fixed",
            "genre",
            "rating",
            "duration",
            "max_per_day",
        ):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        self.revenue = np.asarray(self.revenue, dtype=np.float64)
        self.audience = np.asarray(self.audience, dtype=np.float64)
        shape = (self.n_programs, self.n_slots)
        if self.revenue.shape != shape or self.audience.shape != shape:
            raise ValueError(f"value matrices must be programs x slots {shape}")
        if self.n_slots and np.any(np.diff(self.slot_start) < 0):
            raise ValueError("slots must be ordered by start")
        self.allowed = self.compute_allowed()
        self._derive_values()
        self._derive_structure()

    # -- sizes ------------------------------------------------------------------------------------
    @property
    def n_slots(self) -> int:
        return int(self.slot_start.shape[0])

    @property
    def n_programs(self) -> int:
        return int(self.genre.shape[0])

    @property
    def n_days(self) -> int:
        return int(self.slot_day.max()) + 1 if self.n_slots else 0

    # -- hard-constraint mask ---------------------------------------------------------------------
    def mask_components(self) -> dict[str, BoolArray]:
        """Each mask-type hard constraint on its own (programs x slots), for the conflict report."""
        p, s = self.n_programs, self.n_slots
        length = (self.duration[:, None] >= self.slot_min_len[None, :]) & (
            self.duration[:, None] <= self.slot_max_len[None, :]
        )
        clock = self.slot_start % 1440
        rating_ok = np.ones((p, s), dtype=bool)
        for window in self.rating_windows:
            in_window = np.array([window.covers(int(c)) for c in clock], dtype=bool)
            ok_ratings = np.array([RATINGS[r] in window.ratings for r in self.rating], dtype=bool)
            rating_ok &= ~in_window[None, :] | ok_ratings[:, None]
        avail = np.ones((p, s), dtype=bool) if self.availability is None else np.asarray(self.availability, bool)
        fixed = np.ones((p, s), dtype=bool)
        cols = np.flatnonzero(self.slot_fixed >= 0)
        fixed[:, cols] = False
        fixed[self.slot_fixed[cols], cols] = True
        return {"length": length, "content_rating_window": rating_ok, "availability": avail, "fixed_slot": fixed}

    def compute_allowed(self) -> BoolArray:
        allowed = np.ones((self.n_programs, self.n_slots), dtype=bool)
        for part in self.mask_components().values():
            allowed &= part
        return allowed

    # -- objective --------------------------------------------------------------------------------
    def _derive_values(self) -> None:
        self.rev_ref = value_reference(self.revenue, self.allowed)
        self.aud_ref = value_reference(self.audience, self.allowed)
        self.value = self.linear_value(self.weight_revenue, self.weight_audience)

    def linear_value(self, weight_revenue: float, weight_audience: float) -> FloatArray:
        """The linear part of the objective per cell, in slot-value units (~1 per slot)."""
        return linear_value(self, weight_revenue, weight_audience)

    def _derive_structure(self) -> None:
        self.block, self.block_need = daypart_blocks(self.slot_day, self.slot_daypart, self.min_genres_per_daypart)
        self.same_day_next = self.slot_day[1:] == self.slot_day[:-1] if self.n_slots else np.zeros(0, dtype=bool)
        self.day_slots = [np.flatnonzero(self.slot_day == d) for d in range(self.n_days)]

    def with_weights(self, **changes: Any) -> Problem:
        """A copy with other objective weights / soft settings (matrices shared)."""
        kwargs = {
            name: getattr(self, name) for name in self.__dataclass_fields__ if self.__dataclass_fields__[name].init
        }
        kwargs.update(changes)
        return Problem(**kwargs)


# ---- vectorised evaluation of a population (rows = individuals) ----------------------------------
def run_violations(problem: Problem, X: IntArray) -> IntArray:
    """Windows of K+1 consecutive same-genre slots within a day, per individual."""
    K = problem.max_consecutive_genre
    n = X.shape[0]
    if K <= 0 or problem.n_slots <= K:
        return np.zeros(n, dtype=np.int64)
    G = problem.genre[X]
    same = (G[:, 1:] == G[:, :-1]) & problem.same_day_next[None, :]
    windows = np.lib.stride_tricks.sliding_window_view(same, K, axis=1).all(axis=-1)
    return np.asarray(windows.sum(axis=1), dtype=np.int64)


def diversity_shortfall(problem: Problem, X: IntArray) -> IntArray:
    """Missing distinct genres summed over (day, daypart) blocks, per individual."""
    n = X.shape[0]
    if problem.min_genres_per_daypart <= 0 or problem.n_slots == 0:
        return np.zeros(n, dtype=np.int64)
    nb = int(problem.block.max()) + 1
    present = np.zeros((n, nb, problem.n_genres), dtype=bool)
    rows = np.repeat(np.arange(n), problem.n_slots)
    present[rows, np.tile(problem.block, n), problem.genre[X].ravel()] = True
    distinct = present.sum(axis=2)
    return np.asarray(np.maximum(problem.block_need[None, :] - distinct, 0).sum(axis=1), dtype=np.int64)


def linear_totals(problem: Problem, X: IntArray, matrix: FloatArray) -> FloatArray:
    cols = np.arange(problem.n_slots)
    return np.asarray(matrix[X, cols[None, :]].sum(axis=1), dtype=np.float64)


def evaluate(problem: Problem, X: IntArray) -> FloatArray:
    """Weighted-sum objective of every row of X (linear value minus soft penalties)."""
    X = np.atleast_2d(X)
    score = linear_totals(problem, X, problem.value)
    if problem.run_weight:
        score = score - problem.run_weight * run_violations(problem, X)
    if problem.diversity_weight:
        score = score - problem.diversity_weight * diversity_shortfall(problem, X)
    return score


@dataclass
class Totals:
    objective: float
    revenue: float
    audience: float
    linear: float
    run_violations: int
    diversity_shortfall: int
    goals_met: dict[str, int]


def totals(problem: Problem, x: IntArray) -> Totals:
    X = np.asarray(x, dtype=np.int64)[None, :]
    goals_met = {}
    for goal in problem.goals:
        mask = np.asarray(goal.slot_mask, dtype=bool)
        goals_met[goal.name] = int(((problem.genre[X[0]] == goal.genre) & mask).sum())
    return Totals(
        objective=float(evaluate(problem, X)[0]),
        revenue=float(linear_totals(problem, X, problem.revenue)[0]),
        audience=float(linear_totals(problem, X, problem.audience)[0]),
        linear=float(linear_totals(problem, X, problem.value)[0]),
        run_violations=int(run_violations(problem, X)[0]),
        diversity_shortfall=int(diversity_shortfall(problem, X)[0]),
        goals_met=goals_met,
    )


# ---- conflicts ----------------------------------------------------------------------------------
@dataclass
class Conflict:
    constraints: list[str]
    message: str
    slots: list[int] = field(default_factory=list)
    day: int | None = None
    programs: list[int] = field(default_factory=list)  # candidate indices involved (timeline conflicts)


class InfeasibleProblemError(Exception):
    """No schedule satisfies the hard constraints; ``conflicts`` names the constraints involved."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        super().__init__("; ".join(c.message for c in conflicts))


def slot_conflicts(problem: Problem) -> list[Conflict]:
    """Slots no program may fill, naming the smallest set of mask constraints that empties them."""
    comps = problem.mask_components()
    names = list(comps)
    empty = np.flatnonzero(~problem.allowed.any(axis=0)) if problem.n_programs else np.arange(problem.n_slots)
    conflicts: list[Conflict] = []
    for s in empty.tolist():
        culprits: list[str] = []
        if problem.n_programs == 0:
            culprits = ["candidates"]
        else:
            for name in names:  # single constraints that already empty the slot
                if not comps[name][:, s].any():
                    culprits.append(name)
            if not culprits:  # otherwise the pair(s) that do
                for i, a in enumerate(names):
                    for b in names[i + 1 :]:
                        if not (comps[a][:, s] & comps[b][:, s]).any():
                            culprits.extend(n for n in (a, b) if n not in culprits)
            if not culprits:
                culprits = names
        minute = int(problem.slot_start[s] % 1440)
        conflicts.append(
            Conflict(
                constraints=culprits,
                message=f"slot {s} (day {int(problem.slot_day[s])}, {minute // 60:02d}:{minute % 60:02d}) "
                f"has no allowed program: {' + '.join(culprits)}",
                slots=[s],
                day=int(problem.slot_day[s]),
            )
        )
    return conflicts


# ---- independent checker ------------------------------------------------------------------------
def check_hard(problem: Problem, schedule: ScheduleLike) -> list[str]:
    """Every hard-constraint violation of ``schedule`` (a program index per slot), in words.

    Written separately from the mask and the repair code on purpose: it re-derives each rule from the
    raw slot/program attributes with plain loops, so a bug in the vectorised path cannot hide itself.
    """
    problems: list[str] = []
    sched = [int(v) for v in schedule]
    if len(sched) != problem.n_slots:
        return [f"schedule has {len(sched)} entries for {problem.n_slots} slots"]
    per_day: dict[tuple[int, int], int] = {}
    for s, p in enumerate(sched):
        if not 0 <= p < problem.n_programs:
            problems.append(f"slot {s}: unknown program {p}")
            continue
        fixed = int(problem.slot_fixed[s])
        if fixed >= 0 and p != fixed:
            problems.append(f"slot {s}: fixed to {fixed}, got {p}")
        if problem.availability is not None and not bool(problem.availability[p][s]):
            problems.append(f"slot {s}: program {p} not available")
        dur = int(problem.duration[p])
        if not int(problem.slot_min_len[s]) <= dur <= int(problem.slot_max_len[s]):
            problems.append(
                f"slot {s}: program {p} lasts {dur} min, slot takes {problem.slot_min_len[s]}-{problem.slot_max_len[s]}"
            )
        clock = int(problem.slot_start[s]) % 1440
        rating = RATINGS[int(problem.rating[p])]
        for w in problem.rating_windows:
            inside = (
                (w.start_minute <= clock < w.end_minute)
                if w.start_minute <= w.end_minute
                else (clock >= w.start_minute or clock < w.end_minute)
            )
            if inside and rating not in w.ratings:
                problems.append(f"slot {s}: rating {rating} not allowed at {clock // 60:02d}:{clock % 60:02d}")
        key = (int(problem.slot_day[s]), p)
        per_day[key] = per_day.get(key, 0) + 1
    for (day, p), count in per_day.items():
        if count > int(problem.max_per_day[p]):
            problems.append(f"day {day}: program {p} airs {count} times, max {int(problem.max_per_day[p])}")
    return problems


class AlternativeParams(Protocol):
    """What a solver's params say about the alternatives it returns besides the best schedule."""

    top_k: int
    alternative_within: float  # of the best's score
    alternative_min_diff: float  # share of the cells that differ between any two


@dataclass
class Alternatives:
    chosen: list[IntArray]  # the best first
    floor: float  # the lowest score an alternative may have
    fits: Callable[[IntArray], bool]  # far enough from every chosen one


def alternatives_from_population(
    best: IntArray,
    population: list[IntArray],
    *,
    score: Callable[[IntArray], float],
    distance: Callable[[IntArray, IntArray], float],
    params: AlternativeParams,
) -> Alternatives:
    """The best, then members of ``population`` scoring within ``alternative_within`` of it and at least
    ``alternative_min_diff`` apart from every chosen one, until there are ``top_k``. ``fits`` is the
    distance test, for the candidates the caller makes when the population runs short."""
    best_score = score(best)
    floor = best_score - params.alternative_within * abs(best_score)
    chosen = [best]  # the caller appends its own candidates to this list: fits reads it

    def fits(x: IntArray) -> bool:
        return all(distance(x, c) >= params.alternative_min_diff for c in chosen)

    for x in population:
        if len(chosen) >= params.top_k:
            break
        if score(x) >= floor and fits(x):
            chosen.append(x)
    return Alternatives(chosen, floor, fits)
