"""Bench-only yardsticks for the fixed-slot optimiser (bench/schedule_slots.py): the hypervolume of a
Pareto front against the exact convex hull, and a textbook DEAP GA as the baseline the optimiser must beat.
Not served: nothing under scheduling/ imports this module."""

from __future__ import annotations

import random
import time

import numpy as np
from deap import algorithms, base, creator, tools

from scheduling.optimizer import objective_points, supported_points
from scheduling.problem import FloatArray, IntArray, Problem

if not hasattr(creator, "PlainSchedule"):
    creator.create("PlainFitness", base.Fitness, weights=(1.0,))
    creator.create("PlainSchedule", list, fitness=creator.PlainFitness)


def hypervolume_2d(points: FloatArray, ref: tuple[float, float]) -> float:
    """Area dominated by ``points`` (maximisation) above the reference point."""
    pts = points[(points[:, 0] > ref[0]) & (points[:, 1] > ref[1])]
    if not len(pts):
        return 0.0
    pts = pts[np.argsort(-pts[:, 0])]
    area, best_y = 0.0, ref[1]
    for px, py in pts:
        if py > best_y:
            area += (px - ref[0]) * (py - best_y)
            best_y = py
    return area


def hull_area(hull: FloatArray, ref: tuple[float, float]) -> float:
    """Area under the upper-right convex hull of the supported points, above ``ref`` — an upper bound
    for the hypervolume of any feasible front (every schedule lies inside this polygon)."""
    pts = hull[np.argsort(hull[:, 0])]
    poly = [(ref[0], ref[1]), (ref[0], pts[0][1]), *[(float(a), float(b)) for a, b in pts], (pts[-1][0], ref[1])]
    area = 0.0
    for (x1, y1), (x2, y2) in zip(poly, poly[1:] + poly[:1], strict=True):
        area += x1 * y2 - x2 * y1
    return abs(area) / 2.0


def hypervolume_ratio(problem: Problem, front: list[IntArray], *, deadline: float) -> tuple[float, bool]:
    """Hypervolume of ``front`` as a share of the area under the convex hull of the exact weighted-sum
    optima (reference point: the worst revenue and audience of those optima). Every feasible schedule
    lies inside that hull, so 1.0 is the most any front can reach. Returns (ratio, hull complete)."""
    support, complete = supported_points(problem, deadline, max_solves=400)
    sup_obj = objective_points(problem, np.array(support))
    ref = (float(sup_obj[:, 0].min()), float(sup_obj[:, 1].min()))
    bound_area = hull_area(sup_obj, ref)
    pts = objective_points(problem, np.array(front))
    return (hypervolume_2d(pts, ref) / bound_area if bound_area > 0 else 1.0), complete


def plain_deap(
    problem: Problem, *, seed: int = 0, population: int = 100, generations: int = 100, time_budget: float = 60.0
) -> IntArray:
    """Textbook GA: random permutations of the programs (slot s airs perm[s]), PMX crossover,
    shuffle mutation, tournament selection, ``eaSimple``, per-individual Python fitness with a
    penalty per hard violation. No repair, no seeding, no local search."""
    random.seed(seed)
    P, S = problem.n_programs, problem.n_slots
    value = problem.value.tolist()
    allowed = problem.allowed.tolist()
    genre = problem.genre.tolist()
    day = problem.slot_day.tolist()
    K = problem.max_consecutive_genre
    big = 10.0 * (max(abs(v) for row in value for v in row) + 1.0)

    def fitness(ind: list[int]) -> tuple[float]:
        score = 0.0
        run = 0
        for s in range(S):
            p = ind[s]
            score += value[p][s] if allowed[p][s] else -big
            if s and day[s] == day[s - 1] and genre[p] == genre[ind[s - 1]]:
                run += 1
                if K and run >= K:
                    score -= problem.run_weight
            else:
                run = 0
        return (score,)

    tb = base.Toolbox()
    tb.register("indices", random.sample, range(P), P)
    tb.register("individual", tools.initIterate, creator.PlainSchedule, tb.indices)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("evaluate", fitness)
    tb.register("mate", tools.cxPartialyMatched)
    tb.register("mutate", tools.mutShuffleIndexes, indpb=2.0 / P)
    tb.register("select", tools.selTournament, tournsize=3)
    pop = tb.population(n=population)
    hof = tools.HallOfFame(1)
    t0 = time.perf_counter()
    done = 0
    while done < generations and time.perf_counter() - t0 < time_budget:
        step = min(10, generations - done)
        pop, _ = algorithms.eaSimple(pop, tb, cxpb=0.7, mutpb=0.2, ngen=step, halloffame=hof, verbose=False)
        done += step
    return np.array(hof[0][:S], dtype=np.int64)
