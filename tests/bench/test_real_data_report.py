"""bench/real_data.py's report: the average of the eligible models is a reference row and verdict column,
and the verdict itself stays on the model the registry chose."""

from __future__ import annotations

from bench.real_data import report, verdicts


def _target(*, average: dict[str, object] | None) -> dict[str, object]:
    return {
        "rows": 100,
        "split": {"n_train": 70, "n_validation": 10, "n_test": 20, "test_start": "2020-01-01T00:00:00+00:00"},
        "seconds": 1.0,
        "selected": "elasticnet",
        "models": {
            "elasticnet": {"rmse": 10.0, "r2": 0.5, "val_r2": 0.6, "coverage": {}, "rejected": ""},
            "xgboost": {"rmse": 8.0, "r2": 0.6, "val_r2": 0.5, "coverage": {}, "rejected": ""},
        },
        "baselines": {"previous_airing": {"rmse": 10.0, "r2": 0.5}},
        "average": average,
    }


def _result() -> dict[str, object]:
    return {
        "name": "Demo",
        "csv": "demo.csv",
        "mapping": "demo.json",
        "rows_read": 100,
        "created": 100,
        "skipped": 0,
        "rejected": 0,
        "channels": 1,
        "programs": 2,
        "targets": {
            "audience": _target(average={"rmse": 9.0, "r2": 0.55, "members": 2}),
            "engagement": _target(average=None),
        },
    }


def test_the_verdict_is_on_the_chosen_model_and_the_average_is_a_reference() -> None:
    result = _result()
    assert [(t, chosen, ok) for t, chosen, _, _, ok in verdicts(result)] == [
        ("audience", "elasticnet", False),
        ("engagement", "elasticnet", False),
    ]
    text = report([result])
    assert "| average of the 2 eligible models (reference, not served) | 9.0 | 0.550 | | |" in text
    assert "| Demo | audience | elasticnet | 10.000 | 10.000 | +0.0% | **no** | +10.0% |" in text
    assert "| Demo | engagement | elasticnet | 10.000 | 10.000 | +0.0% | **no** | - |" in text
