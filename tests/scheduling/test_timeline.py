"""The timeline model: span-aware windows, coverage, pins, the exact program against brute force, the GA."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scheduling.problem import RATINGS, RatingWindow
from scheduling.timeline import CONT, GAP, Pin, Timeline, Unavailable, airings_of, check_timeline, evaluate, start_array
from scheduling.timeline_exact import timeline_conflicts, timeline_milp
from scheduling.timeline_ga import Kit, TimelineParams, optimize_timeline

R_FROM_22 = (RatingWindow(6 * 60, 22 * 60, ("G", "PG", "PG-13")),)
FAST = TimelineParams(seed=0, time_budget=5.0, generations=15, population=8, plateau=5, pareto=False, top_k=2)


def make(
    *,
    durations: list[int],
    ratings: list[str] | None = None,
    genres: list[int] | None = None,
    first: int = 20 * 60,
    cells: int = 8,
    grid: int = 30,
    seed: int = 0,
    **kwargs: Any,
) -> Timeline:
    """One window of ``cells`` grid cells from clock minute ``first`` (a single broadcast day)."""
    rng = np.random.default_rng(seed)
    n = len(durations)
    start = first + grid * np.arange(cells)
    return Timeline(
        grid=grid,
        cell_start=start,
        cell_segment=np.zeros(cells, dtype=int),
        cell_day=np.zeros(cells, dtype=int),
        cell_daypart=(start // 120) % 3,
        genre=np.asarray(genres if genres is not None else [i % 3 for i in range(n)], dtype=np.int64),
        rating=np.asarray([RATINGS.index(r) for r in (ratings or ["PG"] * n)], dtype=np.int64),
        duration=np.asarray(durations, dtype=np.int64),
        max_per_day=kwargs.pop("max_per_day", [1] * n),
        revenue=rng.uniform(1.0, 10.0, (n, cells)) * np.array(durations)[:, None] / 30,
        audience=rng.uniform(1.0, 10.0, (n, cells)),
        **{"rating_windows": R_FROM_22, **kwargs},
    )


def test_an_r_rated_film_may_not_start_where_it_would_run_into_the_r_window_before_it_opens() -> None:
    # cells 20:00 .. 23:30; program 0 is an R-rated 90-minute film
    tl = make(durations=[90, 30, 60], ratings=["R", "PG", "PG"], max_per_day=[1, 4, 2])
    starts = {f"{m // 60:02d}:{m % 60:02d}": c for c, m in enumerate(tl.cell_start.tolist())}
    assert not tl.start_ok[0, starts["21:00"]]  # 21:00-22:30 is on air before 22:00
    assert not tl.start_ok[0, starts["21:30"]]
    assert tl.start_ok[0, starts["22:00"]]
    assert tl.start_ok[0, starts["22:30"]]  # ends with the window at 00:00
    assert not tl.start_ok[0, starts["23:00"]]  # would run past the window's end
    film_at_21 = start_array(tl, [(0, 1), (1, 2), (3, 0), (6, 2)])
    assert check_timeline(tl, film_at_21) == ["cell 3: R program 0 21:30-23:00 on air at 21:30"]
    film_at_22 = start_array(tl, [(0, 2), (2, 1), (3, 1), (4, 0), (7, 1)])
    assert "R program" not in " ".join(check_timeline(tl, film_at_22))


def test_unavailability_covers_the_whole_span_of_an_airing() -> None:
    tl = make(durations=[60, 30], unavailable=(Unavailable(0, 21 * 60 + 30, 22 * 60),))
    assert tl.start_ok[0].tolist() == [True, True, False, False, True, True, True, False]


def test_the_checker_finds_overlaps_gaps_and_overruns() -> None:
    tl = make(durations=[60, 30, 90], max_per_day=[3, 3, 3])
    y = np.full(tl.n_cells, GAP)
    y[0], y[1] = 0, 1  # program 0 covers cells 0-1, program 1 starts inside it
    y[6], y[7] = 2, CONT  # 90 minutes from 23:00 runs past 00:00
    assert check_timeline(tl, y) == [
        "cell 1: program 1 at 20:30 overlaps the airing before it",
        "segment 0: nothing on air 21:00-23:00",
        "cell 6: program 2 runs past the end of its window (00:00)",
    ]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_schedule_fills_the_window_end_to_end_without_overlaps(seed: int) -> None:
    tl = make(durations=[30, 60, 90, 120, 30, 60, 30, 60], cells=16, max_per_day=[2] * 8, seed=seed)
    result = optimize_timeline(tl, FAST)
    for sol in [result.best, *result.alternatives]:
        assert sol.hard_violations == []
        y = np.array(sol.schedule)
        assert (y != GAP).all()
        assert sum(int(tl.duration[p]) for _, p in airings_of(y)) == 16 * 30


def test_gaps_appear_only_when_the_request_allows_them() -> None:
    # 4 hours, two half-hour programs once each: impossible without gaps ...
    strict = make(durations=[30, 30], max_per_day=[1, 1])
    assert [c.constraints for c in timeline_conflicts(strict)] == [
        ["max_per_day", "max_per_week", "content_rating_window", "availability", "pinned_airing"]
    ]
    # ... and with a price per empty minute the rest of the window stays empty
    loose = make(durations=[30, 30], max_per_day=[1, 1], gap_penalty=0.01)
    assert timeline_conflicts(loose) == []
    result = optimize_timeline(loose, FAST)
    assert result.best.hard_violations == []
    assert result.best.totals.gap_minutes == 180
    assert result.best.totals.airings == 2


def test_pinned_airings_are_kept() -> None:
    tl = make(durations=[30, 60, 90, 30, 60], cells=12, max_per_day=[2] * 5, pins=(Pin(2, 3), Pin(0, 9)))
    result = optimize_timeline(tl, FAST)
    for sol in [result.best, *result.alternatives]:
        assert sol.schedule[3:6] == [2, CONT, CONT]
        assert sol.schedule[9] == 0
        assert sol.hard_violations == []


def test_a_pin_the_rating_window_refuses_is_reported() -> None:
    tl = make(durations=[90, 30], ratings=["R", "PG"], max_per_day=[1, 8], pins=(Pin(0, 2),))
    conflict, *cells = timeline_conflicts(tl)
    assert conflict.constraints == ["pinned_airing", "content_rating_window"]
    assert conflict.message == "pinned airing of program 0 at cell 2 (21:00) breaks content_rating_window"
    assert (conflict.slots, conflict.programs) == ([2], [0])
    # the cells the pin blocks and nothing else may cover, with the programs that would fit without it
    assert [(c.slots, c.programs) for c in cells] == [([2], [0, 1]), ([3], [0, 1]), ([4], [0, 1])]


def _brute_force(tl: Timeline) -> float:
    best = -np.inf

    def extend(cell: int, plan: list[tuple[int, int]]) -> None:
        nonlocal best
        if cell == tl.n_cells:
            y = start_array(tl, plan)
            if not check_timeline(tl, y):
                best = max(best, float(evaluate(tl, y[None, :])[0]))
            return
        for p in range(tl.n_programs):
            if tl.start_ok[p, cell]:
                extend(cell + int(tl.length[p]), [*plan, (cell, p)])
        if tl.gaps_allowed:
            extend(cell + 1, plan)

    extend(0, [])
    return best


@pytest.mark.parametrize(
    ("seed", "k", "gap"), [(0, 1, None), (1, 2, None), (2, 2, None), (3, 0, None), (4, 2, 0.02), (5, 1, 0.05)]
)
def test_the_integer_program_finds_the_brute_force_optimum(seed: int, k: int, gap: float | None) -> None:
    rng = np.random.default_rng(seed)
    n = 6
    tl = make(
        durations=rng.choice([30, 60, 90], n).tolist(),
        ratings=rng.choice(["PG", "PG-13", "R"], n).tolist(),
        genres=rng.integers(0, 2, n).tolist(),
        max_per_day=rng.integers(1, 3, n).tolist(),
        max_consecutive_genre=k,
        min_genres_per_daypart=2 if seed % 2 else 0,
        gap_penalty=gap,
        cells=7,
        seed=seed,
    )
    exact = _brute_force(tl)
    res = timeline_milp(tl, time_limit=30)
    assert res.proven
    assert res.schedule is not None
    assert check_timeline(tl, res.schedule) == []
    assert float(evaluate(tl, res.schedule[None, :])[0]) == pytest.approx(exact, abs=1e-6)
    assert res.objective == pytest.approx(exact, abs=1e-6)
    assert timeline_milp(tl, relax=True).bound >= exact - 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_ga_is_never_worse_than_greedy_and_within_its_bound(seed: int) -> None:
    tl = make(
        durations=[30, 60, 90, 120, 30, 60, 90, 30, 60, 120],
        ratings=["PG", "R", "PG-13", "R", "G", "PG", "PG", "PG-13", "R", "PG"],
        genres=[0, 1, 2, 0, 1, 2, 0, 1, 2, 0],
        max_per_day=[2] * 10,
        max_consecutive_genre=2,
        first=18 * 60,
        cells=16,
        seed=seed,
    )
    result = optimize_timeline(tl, FAST)
    greedy = Kit.build(tl, seed).greedy()
    assert result.best.totals.objective >= float(evaluate(tl, greedy[None, :])[0]) - 1e-9
    assert result.greedy.totals.objective == pytest.approx(float(evaluate(tl, greedy[None, :])[0]))
    assert result.bound is not None
    assert result.bound >= result.best.totals.objective - 1e-6
    assert result.best.hard_violations == []
