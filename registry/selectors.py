"""Reads of the model registry."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from django.db.models import Count, QuerySet

from bms.errors import ApplicationError, NotFoundError
from bms.versions import count, newest, versions_read
from programs.models import TARGETS
from registry.models import Algorithm, ModelVersion, PromotionEvent, TrainingRun


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise ApplicationError(f"Unknown target {target!r}.", code="unknown_target", details={"allowed": list(TARGETS)})


def production_models() -> dict[str, ModelVersion]:
    """The production version of each target that has one (at most one per target, a DB constraint)."""
    rows = ModelVersion.objects.filter(status=ModelVersion.Status.PRODUCTION).select_related("run")
    return {v.target: v for v in rows}


def best_model(*, target: str) -> ModelVersion | None:
    """The model that serves ``target``: its production version, else the best candidate by holdout R²."""
    _check_target(target)
    production = ModelVersion.objects.filter(target=target, status=ModelVersion.Status.PRODUCTION).first()
    if production is not None:
        return production
    candidates = ModelVersion.objects.filter(target=target, status=ModelVersion.Status.CANDIDATE)
    return max(candidates, key=lambda v: v.r2 if v.r2 is not None else float("-inf"), default=None)


def model_version_list(
    *, target: str | None = None, algorithm: str | None = None, status: str | None = None
) -> QuerySet[ModelVersion]:
    if target is not None:
        _check_target(target)
    if algorithm is not None and algorithm not in Algorithm.values:
        raise ApplicationError(f"Unknown algorithm {algorithm!r}.", details={"allowed": list(Algorithm.values)})
    if status is not None and status not in ModelVersion.Status.values:
        raise ApplicationError(f"Unknown status {status!r}.", details={"allowed": list(ModelVersion.Status.values)})
    qs = ModelVersion.objects.select_related("run").order_by("target", "algorithm", "-version")
    if target is not None:
        qs = qs.filter(target=target)
    if algorithm is not None:
        qs = qs.filter(algorithm=algorithm)
    if status is not None:
        qs = qs.filter(status=status)
    return qs


def model_version_get(*, version_id: int) -> ModelVersion:
    version = ModelVersion.objects.select_related("run").filter(pk=version_id).first()
    if version is None:
        raise NotFoundError("Model version not found.")
    return version


def live_at(*, target: str, when: datetime) -> ModelVersion | None:
    """The version that was production for ``target`` at ``when`` (one query over PromotionEvent)."""
    _check_target(target)
    event = (
        PromotionEvent.objects.filter(target=target, to_status=ModelVersion.Status.PRODUCTION, created_at__lte=when)
        .select_related("version")
        .order_by("-created_at", "-id")
        .first()
    )
    return None if event is None else event.version


# Changes on every promotion or rollback: the newest PromotionEvent id.
REGISTRY_GENERATION = newest(PromotionEvent)
# (registry generation, newest version id, version count): changes on every training (a new version),
# promotion or rollback, and on a deleted version; what a cached list of versions is keyed on.
MODEL_VERSIONS_GENERATION = (REGISTRY_GENERATION, newest(ModelVersion), count(ModelVersion))


def registry_generation() -> int:
    """Changes on every promotion or rollback (the newest PromotionEvent id; an index-only max)."""
    return versions_read(REGISTRY_GENERATION)[0]


def promotion_history(*, target: str | None = None) -> QuerySet[PromotionEvent]:
    qs = PromotionEvent.objects.select_related("version").order_by("-created_at", "-id")
    return qs if target is None else qs.filter(target=target)


def training_run_get(*, run_id: int) -> TrainingRun:
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None:
        raise NotFoundError("Training run not found.")
    return run


def model_matrix() -> dict[str, dict[str, ModelVersion | None]]:
    """algorithm -> target -> newest version (the admin's algorithm x target page)."""
    matrix: dict[str, dict[str, ModelVersion | None]] = {a: dict.fromkeys(TARGETS) for a in Algorithm.values}
    for version in ModelVersion.objects.order_by("target", "algorithm", "-version"):
        row = matrix.setdefault(version.algorithm, dict.fromkeys(TARGETS))
        current = row.get(version.target)
        if current is None or (version.status == ModelVersion.Status.PRODUCTION and current.status != "production"):
            row[version.target] = version
    return matrix


def training_run_counts() -> dict[str, int]:
    """Finished training runs by status (succeeded / failed), one aggregate query."""
    finished = (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED)
    counts: dict[str, int] = {str(status): 0 for status in finished}
    rows = TrainingRun.objects.filter(status__in=finished).values("status").annotate(n=Count("id")).order_by()
    for row in rows:
        counts[row["status"]] = int(row["n"])
    return counts


class LatestBaselines(TypedDict):
    """A target's baselines in the newest run that scored them (on that run's test part)."""

    run: int
    best: str | None  # the baseline with the lowest RMSE
    scores: dict[str, dict[str, float]]  # name -> {"r2", "rmse", "mse", "mae"}


def latest_baselines() -> dict[str, LatestBaselines]:
    """Per target, the baselines of the newest run that scored them (test part of that run)."""
    out: dict[str, LatestBaselines] = {}
    for run in TrainingRun.objects.exclude(baselines={}).order_by("-id").only("id", "baselines")[:20]:
        for target, scores in (run.baselines or {}).items():
            if target not in out and scores:
                out[target] = {
                    "run": run.pk,
                    "best": scores.get("best"),
                    "scores": {k: v for k, v in scores.items() if k != "best"},
                }
        if len(out) == len(TARGETS):
            break
    return out
