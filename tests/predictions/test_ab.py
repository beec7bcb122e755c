import numpy as np
import pytest

from predictions.ab import CHALLENGER, CHAMPION, ab_arm, ab_bucket, ab_score


def test_assignment_is_deterministic_and_depends_on_the_test():
    assert ab_bucket(key="user:7", test_id=1) == ab_bucket(key="user:7", test_id=1)
    assert ab_bucket(key="user:7", test_id=1) != ab_bucket(key="user:7", test_id=2)
    assert 0.0 <= ab_bucket(key="", test_id=1) < 1.0


@pytest.mark.parametrize("share", [0.1, 0.3, 0.5])
def test_assignment_is_near_the_share_over_10k_keys(share):
    arms = [ab_arm(key=f"user-{i}", test_id=3, share=share) for i in range(10_000)]
    again = [ab_arm(key=f"user-{i}", test_id=3, share=share) for i in range(10_000)]
    assert arms == again
    observed = arms.count(CHALLENGER) / 10_000
    # 4 standard errors of a binomial proportion: a fair hash never fails this.
    assert abs(observed - share) < 4 * np.sqrt(share * (1 - share) / 10_000)
    assert set(arms) == {CHAMPION, CHALLENGER}


def test_share_zero_and_one():
    assert {ab_arm(key=str(i), test_id=1, share=0.0) for i in range(200)} == {CHAMPION}
    assert {ab_arm(key=str(i), test_id=1, share=1.0) for i in range(200)} == {CHALLENGER}


def test_score_of_a_better_challenger():
    y = np.array([10.0, 20.0, 30.0, 40.0, 50.0] * 20)
    champion = y + np.tile([2.0, -2.0], 50)
    challenger = y + np.tile([0.5, -0.5], 50)
    score = ab_score(actual=y, champion=champion, challenger=challenger, n_boot=500)
    assert score.n == 100
    assert score.champion.rmse == pytest.approx(2.0)
    assert score.champion.mae == pytest.approx(2.0)
    assert score.challenger.rmse == pytest.approx(0.5)
    assert score.challenger.mae == pytest.approx(0.5)
    assert score.diff_mean == pytest.approx(-1.5)
    assert score.diff_low == pytest.approx(-1.5)
    assert score.diff_high == pytest.approx(-1.5)
    assert score.winner == CHALLENGER


def test_score_of_equal_arms_is_inconclusive():
    rng = np.random.default_rng(0)
    y = rng.normal(0, 1, 300)
    a = y + rng.normal(0, 1, 300)
    b = y + rng.normal(0, 1, 300)
    score = ab_score(actual=y, champion=a, challenger=b, n_boot=1000, seed=1)
    assert score.diff_low < score.diff_mean < score.diff_high
    assert score.winner == "inconclusive"


def test_score_rejects_mismatched_arrays():
    with pytest.raises(ValueError):
        ab_score(actual=np.ones(3), champion=np.ones(3), challenger=np.ones(2))
