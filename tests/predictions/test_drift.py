import numpy as np
import pandas as pd
import pytest

from predictions.drift import accuracy_drift_ratio, feature_drift, ks, psi, wasserstein


def test_psi_is_zero_for_identical_distributions():
    assert psi(["a", "b", "a", "b"], ["b", "a", "b", "a"]) == 0.0


def test_psi_matches_the_formula():
    ref = ["a"] * 50 + ["b"] * 50
    new = ["a"] * 80 + ["b"] * 20
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert psi(ref, new) == pytest.approx(expected)


def test_psi_stays_finite_for_a_new_category():
    assert np.isfinite(psi(["a"] * 10, ["a"] * 5 + ["c"] * 5))


def test_ks_and_wasserstein_of_shifted_normals():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 2000)
    stat_same, p_same = ks(a, rng.normal(0, 1, 2000))
    stat_shift, p_shift = ks(a, rng.normal(1, 1, 2000))
    assert stat_same < 0.06
    assert p_same > 0.01
    assert stat_shift > 0.3
    assert p_shift < 1e-10
    assert wasserstein(a, a + 1.0) == pytest.approx(1.0 / np.std(a))


def test_ks_of_an_empty_side_is_no_drift():
    assert ks([], [1.0, 2.0]) == (0.0, 1.0)


def test_feature_drift_flags_the_shifted_feature_only():
    rng = np.random.default_rng(1)
    n = 1500
    reference = pd.DataFrame(
        {
            "genre": rng.choice(["news", "drama", "sports"], n, p=[0.4, 0.4, 0.2]),
            "channel": rng.choice(["abc", "xyz"], n),
            "duration_minutes": rng.normal(60, 10, n),
            "hour": rng.integers(6, 24, n).astype(float),
        }
    )
    recent = pd.DataFrame(
        {
            "genre": rng.choice(["news", "drama", "sports"], 400, p=[0.05, 0.15, 0.8]),  # shifted
            "channel": rng.choice(["abc", "xyz"], 400),  # unchanged
            "duration_minutes": rng.normal(90, 10, 400),  # shifted
            "hour": rng.integers(6, 24, 400).astype(float),  # unchanged
        }
    )
    report = {
        d.feature: d
        for d in feature_drift(
            reference,
            recent,
            categorical=["genre", "channel"],
            numeric=["duration_minutes", "hour"],
            psi_threshold=0.2,
            ks_threshold=0.1,
        )
    }
    assert {k for k, d in report.items() if d.flagged} == {"genre", "duration_minutes"}
    assert report["genre"].kind == "categorical"
    assert report["genre"].score > 0.5
    assert report["channel"].score < 0.05
    assert report["duration_minutes"].kind == "numeric"
    assert report["duration_minutes"].score > 0.7
    assert set(report["hour"].as_dict()) == {"kind", "score", "flagged", "p_value", "wasserstein"}


def test_accuracy_drift_ratio():
    assert accuracy_drift_ratio(recent_rmse=1.2, holdout_rmse=1.0) == pytest.approx(0.2)
    assert accuracy_drift_ratio(recent_rmse=1.2, holdout_rmse=0.0) == 0.0
