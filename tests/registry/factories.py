"""Factories for registry tests: small generated data, tiny model sizes, registered versions."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from django.utils import timezone

from programs.generator import GeneratorConfig, generate
from registry import artifacts
from registry.algorithms import ModelSpec, build_model, hyperparameters_for
from registry.models import ModelVersion, TrainingRun
from registry.services import TrainingOptions

# Small enough that a full 24-model run takes a few seconds.
TINY_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "random_forest": {"n_estimators": 8, "max_depth": 6},
    "xgboost": {"n_estimators": 25, "max_depth": 4},
    "catboost": {"iterations": 25, "depth": 4},
    "gradient_boosting": {"max_iter": 25},
    "mlp": {"hidden_layer_sizes": [8], "max_iter": 40, "early_stopping": False},
    "elasticnet": {"max_iter": 2000},
}
TINY_OPTIONS = TrainingOptions(hyperparameters=TINY_HYPERPARAMETERS, cv_splits=2)


def small_data(*, seed: int = 7, days: int = 28, channels: int = 2, programs: int = 90) -> Any:
    """A few thousand generated airings in the test database."""
    return generate(GeneratorConfig(seed=seed, days=days, channels=channels, programs=programs))


def raw_frame(n: int = 400, *, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A synthetic raw frame (features.RAW_COLUMNS) and a target, without the database."""
    rng = np.random.default_rng(seed)
    start = pd.Series(pd.date_range("2024-01-01 06:00", periods=n, freq="90min", tz="America/New_York"))
    program = rng.integers(1, 25, n)
    frame = pd.DataFrame(
        {
            "program_id": program.astype("int64"),
            "external_id": [f"P{p:04d}" for p in program],
            "channel": rng.choice(["abc", "nbc"], n).astype(object),
            "genre": rng.choice(["news", "drama", "comedy"], n).astype(object),
            "content_rating": rng.choice(["G", "PG", "PG-13"], n).astype(object),
            "duration_minutes": rng.choice([30.0, 60.0], n),
            "is_live": rng.random(n) < 0.2,
            "is_premiere": rng.random(n) < 0.1,
            "is_finale": np.zeros(n, dtype=bool),
            "start": start,
            "lead_in_program_id": rng.integers(-1, 25, n).astype("int64"),
        }
    )
    y = 100.0 * (1.0 + program / 10.0) * (1.0 + (start.dt.hour.to_numpy() >= 20)) * rng.lognormal(0.0, 0.1, n)
    return frame, y


@lru_cache(maxsize=16)
def _fitted(algorithm: str, target: str) -> Any:
    frame, y = raw_frame()
    spec = ModelSpec(algorithm, target, hyperparameters_for(algorithm, TINY_HYPERPARAMETERS), seed=1)
    return build_model(spec, n_jobs=1).fit(frame, y)


def fitted_model(algorithm: str, target: str = "audience") -> Any:
    return _fitted(algorithm, target)


def run_factory(**kwargs: Any) -> TrainingRun:
    defaults: dict[str, Any] = {
        "trigger": TrainingRun.Trigger.MANUAL,
        "targets": ["audience"],
        "algorithms": ["elasticnet"],
        "seed": 1,
        "status": TrainingRun.Status.SUCCEEDED,
    }
    defaults.update(kwargs)
    return TrainingRun.objects.create(**defaults)


def version_factory(
    *,
    target: str = "audience",
    algorithm: str = "elasticnet",
    r2: float = 0.8,
    status: str = ModelVersion.Status.CANDIDATE,
    run: TrainingRun | None = None,
    val_r2: float | None = None,
    metrics: dict[str, Any] | None = None,
) -> ModelVersion:
    """A registered version with a real (tiny) artifact on disk; validation R² defaults to the test R²."""
    latest = ModelVersion.objects.filter(target=target, algorithm=algorithm).order_by("-version").first()
    number = (latest.version if latest else 0) + 1
    saved = artifacts.save_model(
        algorithm=algorithm, target=target, version=number, model=fitted_model(algorithm, target)
    )
    return ModelVersion.objects.create(
        run=run,
        target=target,
        algorithm=algorithm,
        version=number,
        status=status,
        metrics={"r2": r2, "rmse": 1.0, "val_r2": r2 if val_r2 is None else val_r2, **(metrics or {})},
        artifact_path=saved.path,
        artifact_format=saved.format,
        artifact_size=saved.size,
        artifact_sha256=saved.sha256,
        created_at=timezone.now(),
    )
