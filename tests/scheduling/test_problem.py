"""The helpers both schedule models share (scheduling/problem.py): Pareto front rows, (day, daypart)
blocks, the soft-penalty weights and the weighted linear total."""

from __future__ import annotations

import numpy as np
import pytest

from bench.schedule_instances import instance
from scheduling.problem import daypart_blocks, front_rows, weighted_linear
from tests.scheduling.test_timeline import make


def test_front_rows_keeps_the_first_row_of_each_non_dominated_point_highest_revenue_first():
    points = np.array(
        [
            [1.0, 5.0],  # 0: front
            [3.0, 3.0],  # 1: front
            [2.0, 2.0],  # 2: dominated by 1
            [3.0, 3.0],  # 3: same point as 1
            [5.0, 1.0],  # 4: front
            [5.0, 0.5],  # 5: dominated by 4 (same revenue, less audience)
        ]
    )
    assert front_rows(points) == [4, 1, 0]


def test_front_rows_of_one_point_and_of_none():
    assert front_rows(np.array([[2.0, 2.0], [2.0, 2.0]])) == [0]
    assert front_rows(np.zeros((0, 2))) == []


@pytest.mark.parametrize("seed", range(5))
def test_front_rows_match_a_pairwise_dominance_check(seed):
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 6, size=(40, 2)).astype(float)  # small ints: ties and repeats
    expected = {tuple(p) for p in points if not any((q >= p).all() and (q > p).any() for q in points)}
    rows = front_rows(points)
    assert {tuple(points[i]) for i in rows} == expected
    assert len(rows) == len(expected)
    assert all(i == int(np.flatnonzero((points == points[i]).all(axis=1))[0]) for i in rows)  # first of its point
    assert [points[i, 0] for i in rows] == sorted((points[i, 0] for i in rows), reverse=True)


def test_daypart_blocks_number_day_daypart_pairs_in_order_and_cap_the_need_by_size():
    day = np.array([0, 0, 0, 0, 1, 1], dtype=np.int64)
    daypart = np.array([0, 0, 2, 2, 0, 2], dtype=np.int64)
    block, need = daypart_blocks(day, daypart, 2)
    assert block.tolist() == [0, 0, 1, 1, 2, 3]
    assert need.tolist() == [2, 2, 1, 1]
    assert block.dtype == np.int64
    assert need.dtype == np.int64


def test_daypart_blocks_of_no_columns():
    block, need = daypart_blocks(np.zeros(0, np.int64), np.zeros(0, np.int64), 3)
    assert block.tolist() == []
    assert need.tolist() == []


def test_soft_weights_are_off_when_their_constraint_is():
    for model in (make(durations=[30, 60]), instance(12, seed=1)):
        model.max_consecutive_genre, model.min_genres_per_daypart = 0, 0
        assert model.run_weight == 0.0
        assert model.diversity_weight == 0.0
        model.max_consecutive_genre, model.min_genres_per_daypart = 2, 3
        model.weight_balance, model.run_penalty, model.diversity_penalty = 2.0, 0.5, 1.5
        assert model.run_weight == 1.0
        assert model.diversity_weight == 3.0


def test_weighted_linear_normalises_each_total_by_its_reference():
    tl = make(durations=[30, 60])
    tl.weight_revenue, tl.weight_audience, tl.rev_ref, tl.aud_ref = 0.25, 0.75, 2.0, 3.0
    assert weighted_linear(tl, 8.0, 6.0) == 0.25 * 8.0 / 2.0 + 0.75 * 6.0 / 3.0
