"""A small generated broadcast world with tiny trained models, for the predictions tests.

Built once per test module (training takes a couple of seconds) by ``world`` in conftest.py and
deleted again afterwards, so nothing leaks into other apps' tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.test import override_settings

from bms.models import AuditEvent
from predictions.models import ABTest, DriftReport, PredictionLog
from predictions.predict import Answer, Interval, ModelRef, TargetPrediction
from programs.generator import generate
from programs.models import TARGETS, Airing, Channel, DataVersion, GenrePeriodStats, Program
from registry.models import ModelVersion, PromotionEvent, TrainingJob, TrainingRun
from registry.services import TrainingOptions, model_version_promote, training_run_execute_inline, training_run_start

TINY: dict[str, dict[str, object]] = {
    "random_forest": {"n_estimators": 8, "max_depth": 8},
    "xgboost": {"n_estimators": 25, "max_depth": 4},
    "catboost": {"iterations": 25, "depth": 4},
    "gradient_boosting": {"max_iter": 25},
    "mlp": {"hidden_layer_sizes": [8], "max_iter": 30},
    "elasticnet": {},
}
# The other four families, trained for one target only (checked equal to their artifacts, never served).
OTHER_FAMILIES = ("catboost", "gradient_boosting", "mlp", "elasticnet")


@dataclass
class World:
    production: dict[str, ModelVersion]  # random_forest per target
    challengers: dict[str, ModelVersion]  # xgboost per target (candidates)
    programs: list[Program]
    channels: list[Channel]


def train(
    *, targets: tuple[str, ...] = TARGETS, algorithms: tuple[str, ...] = ("random_forest", "xgboost")
) -> TrainingRun:
    # No automatic promotion: the tests decide what is production.
    with override_settings(PROMOTION_MIN_R2=1.5):
        run = training_run_start(
            trigger="manual",
            targets=list(targets),
            algorithms=list(algorithms),
            options=TrainingOptions(hyperparameters={a: TINY[a] for a in algorithms}, cv_splits=0),
            dispatch=False,
        )
        return training_run_execute_inline(run=run)


def build_world(*, seed: int = 5, days: int = 40) -> World:
    generate(seed=seed, channels=2, programs=70, days=days)
    run = train()
    train(targets=("revenue",), algorithms=OTHER_FAMILIES)
    versions = {(v.target, v.algorithm): v for v in ModelVersion.objects.filter(run=run)}
    production = {}
    for target in TARGETS:
        production[target] = model_version_promote(
            version=versions[(target, "random_forest")], actor=None, reason="tests: tiny models", force=True
        )
    return World(
        production=production,
        challengers={t: versions[(t, "xgboost")] for t in TARGETS},
        programs=list(Program.objects.select_related("channel").order_by("id")),
        channels=list(Channel.objects.order_by("id")),
    )


def clear_world() -> None:
    PredictionLog.objects.all().delete()
    ABTest.objects.all().delete()
    DriftReport.objects.all().delete()
    PromotionEvent.objects.all().delete()
    TrainingJob.objects.all().delete()
    ModelVersion.objects.all().delete()
    TrainingRun.objects.all().delete()
    AuditEvent.objects.all().delete()
    Airing.objects.all().delete()
    Program.objects.all().delete()
    Channel.objects.all().delete()
    GenrePeriodStats.objects.all().delete()  # keyed by genre, not by a channel or program: no cascade
    DataVersion.objects.all().delete()


def item(program: Program, target: str = "rating", **features: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"program_id": program.pk, "target": target}
    if features:
        body["features"] = features
    return body


def prediction_answer(
    *, program_id: int, target: str, value: float, level: float = 0.8, algorithm: str = "xgboost", version: int = 1
) -> Answer:
    """A stand-in for ``predictions.predict.predict``'s answer (one target): the value, a +-10% interval."""
    interval = Interval(low=value * 0.9, high=value * 1.1, level=level)
    prediction = TargetPrediction(
        prediction=value,
        target=target,
        program_id=program_id,
        model=ModelRef(id=1, algorithm=algorithm, version=version),
        interval=interval,
        intervals=(interval,),
        history_through=None,
        clipped=False,
    )
    return Answer(target=target, program_id=program_id, predictions=(prediction,))
