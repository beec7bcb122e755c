"""The pure optimiser (no Django): hard feasibility, reproducibility, bounds, conflicts, alternatives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.schedule_instances import instance
from scheduling.exact import assignment, milp_optimum
from scheduling.optimizer import GAParams, greedy, optimize, repair
from scheduling.problem import InfeasibleProblemError, RatingWindow, check_hard, evaluate

FAST = GAParams(seed=0, time_budget=5.0, generations=30, plateau=8, population=12, pareto_generations=5)


def params(**changes: object) -> GAParams:
    return GAParams(**{**FAST.__dict__, **changes})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_slots=st.integers(min_value=2, max_value=45),
    seed=st.integers(min_value=0, max_value=10_000),
    per_slot=st.floats(min_value=0.3, max_value=3.0),
    constraints=st.booleans(),
)
def test_no_returned_schedule_violates_a_hard_constraint(
    n_slots: int, seed: int, per_slot: float, constraints: bool
) -> None:
    problem = instance(n_slots, seed=seed, candidates_per_slot=per_slot, constraints=constraints)
    try:
        result = optimize(problem, params(seed=seed, top_k=2))
    except InfeasibleProblemError as exc:
        conflicts = exc.conflicts
        result = None
    if result is None:
        assert conflicts
        assert all(c.constraints and c.message for c in conflicts)
        return
    returned = [result.best, *result.alternatives, *result.pareto]
    for sol in returned:
        assert check_hard(problem, sol.schedule) == []
        assert sol.hard_violations == []
    # the GA never hands back less than its greedy seed, and never more than the bound
    assert result.best.totals.objective >= result.greedy.totals.objective - 1e-9
    assert result.best.totals.objective <= result.bound + 1e-9


def test_the_same_seed_gives_the_same_schedules() -> None:
    problem = instance(60, seed=3)
    a = optimize(problem, params(seed=7))
    b = optimize(problem, params(seed=7))
    assert a.best.schedule == b.best.schedule
    assert [s.schedule for s in a.alternatives] == [s.schedule for s in b.alternatives]
    assert [s.schedule for s in a.pareto] == [s.schedule for s in b.pareto]


def test_linear_only_instances_reach_the_exact_assignment_optimum() -> None:
    for seed in range(3):
        problem = instance(74, seed=seed).with_weights(max_consecutive_genre=0, min_genres_per_daypart=0)
        exact = assignment(problem)
        optimum = float(evaluate(problem, exact[None, :])[0])
        result = optimize(problem, params(seed=seed, pareto=False))
        assert result.bound == pytest.approx(optimum)
        assert result.best.totals.objective >= optimum * 0.99
        assert result.gap <= 0.01


def test_with_soft_constraints_the_ga_is_within_one_percent_of_the_proven_optimum() -> None:
    problem = instance(40, seed=11)
    milp = milp_optimum(problem, time_limit=60)
    assert milp.proven
    assert milp.schedule is not None
    assert check_hard(problem, milp.schedule) == []
    result = optimize(problem, params(seed=1, pareto=False))
    assert result.best.totals.objective <= milp.objective + 1e-6
    assert result.best.totals.objective >= milp.objective - 0.01 * abs(milp.objective)


def test_greedy_is_a_feasible_baseline_the_ga_improves_on() -> None:
    problem = instance(74, seed=5)
    g = greedy(problem)
    assert check_hard(problem, g) == []
    result = optimize(problem, params(seed=5, pareto=False))
    assert result.greedy.schedule == g.tolist()
    assert result.improvement_over_greedy >= 0


def test_alternatives_are_close_to_the_best_and_differ_from_each_other() -> None:
    problem = instance(74, seed=2)
    result = optimize(problem, params(seed=2, top_k=3, pareto=False))
    assert len(result.alternatives) == 3
    assert result.alternatives[0].schedule == result.best.schedule
    best = result.best.totals.objective
    xs = [np.array(s.schedule) for s in result.alternatives]
    for sol in result.alternatives:
        assert sol.totals.objective >= best - 0.02 * abs(best)
    for i in range(len(xs)):
        for j in range(i):
            assert (xs[i] != xs[j]).mean() >= 0.10


def test_the_pareto_front_has_ten_distinct_non_dominated_feasible_points() -> None:
    problem = instance(74, seed=4)
    result = optimize(problem, params(seed=4, pareto_generations=15))
    points = {(round(s.totals.revenue, 6), round(s.totals.audience, 6)) for s in result.pareto}
    assert len(points) == len(result.pareto) >= 10
    for r, a in points:
        assert not any(r2 >= r and a2 >= a and (r2, a2) != (r, a) for r2, a2 in points)


def test_a_tiny_time_budget_still_returns_a_feasible_schedule() -> None:
    problem = instance(400, seed=1)
    result = optimize(problem, params(time_budget=0.01, generations=500, plateau=500))
    assert result.stopped == "time_budget"
    assert check_hard(problem, result.best.schedule) == []


def test_a_slot_nobody_may_fill_is_reported_with_the_constraints_that_empty_it() -> None:
    # every slot is in kids' hours (06:00-09:00 only G/PG) but every program is rated R
    problem = instance(4, seed=0, fixed_news=False, rating_windows=(RatingWindow(0, 1440, ("G", "PG")),))
    problem = problem.with_weights(rating=np.full(problem.n_programs, 3))
    with pytest.raises(InfeasibleProblemError) as info:
        optimize(problem, FAST)
    conflicts = info.value.conflicts
    assert [c.slots for c in conflicts] == [[0], [1], [2], [3]]
    assert all(c.constraints == ["content_rating_window"] for c in conflicts)
    assert "slot 0 (day 0, 06:00) has no allowed program: content_rating_window" in str(info.value)


def test_too_few_programs_for_the_per_day_limit_is_reported_for_that_day() -> None:
    problem = instance(6, seed=0, fixed_news=False, constraints=False)
    problem = problem.with_weights(
        genre=problem.genre[:2],
        rating=problem.rating[:2],
        duration=np.array([30, 30]),
        max_per_day=np.array([1, 1]),
        revenue=problem.revenue[:2],
        audience=problem.audience[:2],
        availability=None,
    )
    with pytest.raises(InfeasibleProblemError) as info:
        optimize(problem, FAST)
    (conflict,) = info.value.conflicts
    assert conflict.day == 0
    assert "max_per_day" in conflict.constraints
    assert (
        conflict.message
        == "day 0: 6 slots cannot all be filled with at most max airings per day of the 2 programs allowed in them"
    )


def test_fixed_slots_that_exceed_the_daily_limit_are_reported() -> None:
    problem = instance(6, seed=0, fixed_news=False, constraints=False)
    fixed = np.full(6, -1)
    fixed[[0, 1]] = 5  # the same program twice a day with max 1
    problem = problem.with_weights(
        slot_fixed=fixed, max_per_day=np.ones(problem.n_programs, dtype=int), duration=np.full(problem.n_programs, 30)
    )
    with pytest.raises(InfeasibleProblemError) as info:
        assignment(problem)
    assert info.value.conflicts[0].constraints == ["fixed_slot", "max_per_day"]


def test_the_checker_names_each_broken_rule_independently_of_the_mask() -> None:
    problem = instance(37, seed=0)
    x = assignment(problem)
    bad = x.copy()
    news_slot = int(np.flatnonzero(problem.slot_fixed >= 0)[0])
    bad[news_slot] = (problem.slot_fixed[news_slot] + 1) % problem.n_programs
    bad[1] = bad[2]  # same program twice in one day (max 1 or 2) -- and maybe wrong length
    errors = check_hard(problem, bad)
    assert any(e.startswith(f"slot {news_slot}: fixed to 0") for e in errors)
    assert check_hard(problem, x) == []
    assert check_hard(problem, repair(problem, bad)) == []


@pytest.mark.parametrize(
    ("selection", "crossover", "mutation"),
    [("roulette", "uniform", "shuffle"), ("tournament", "one_point", "swap"), ("roulette", "day_uniform", "swap")],
)
def test_every_operator_choice_returns_feasible_schedules(selection: str, crossover: str, mutation: str) -> None:
    problem = instance(60, seed=9)
    result = optimize(problem, params(selection=selection, crossover=crossover, mutation=mutation, pareto=False))
    assert check_hard(problem, result.best.schedule) == []
    assert result.best.totals.objective >= result.greedy.totals.objective - 1e-9
    assert result.generations >= 1


def test_progress_is_reported_and_a_false_answer_cancels() -> None:
    problem = instance(40, seed=2)
    seen: list[tuple[int, int]] = []

    def progress(generation: int, maximum: int) -> bool:
        seen.append((generation, maximum))
        return generation < 3

    result = optimize(problem, params(generations=50, plateau=50, pareto=False), progress=progress)
    assert seen == [(1, 50), (2, 50), (3, 50)]
    assert result.stopped == "cancelled"
    assert check_hard(problem, result.best.schedule) == []
