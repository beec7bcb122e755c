"""Writes of the model registry: runs, jobs, version registration, selection, promotion, rollback.

Every state change goes through these functions (API, admin actions, Celery tasks and the
``train_models`` / ``promote_model`` / ``rollback_model`` commands call them).
"""

from __future__ import annotations

import hashlib
import logging
import platform
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Count, F, Max, Q
from django.utils import timezone

from bms import metrics as prom
from bms.broker import broker_require
from bms.errors import ApplicationError, ConflictError, InvalidStateError
from bms.events import PRODUCTION_MODEL_CHANGED, ProductionModelChanged
from bms.jsontypes import JSONObject
from bms.models import AuditEvent
from bms.services import audit_event_record
from bms.users import RequestUser, User
from programs.models import TARGETS
from programs.selectors import data_version_current
from registry import artifacts, guards, run_data
from registry.algorithms import ALGORITHMS, ModelSpec, hyperparameters_for
from registry.features import airings_frame
from registry.models import ModelVersion, PromotionEvent, TrainingJob, TrainingRun
from registry.training import (
    CV_SPLITS,
    Dataset,
    fit_and_evaluate,
    regression_metrics,
    score_baselines,
    time_split,
    training_airings,
    training_dataset,
)

logger = logging.getLogger(__name__)

LIBRARIES = ("scikit-learn", "xgboost", "catboost", "skops", "numpy", "pandas")
SYSTEM_ACTOR = "system"


class RetryableTrainingError(Exception):
    """A transient failure (database/connection); the task may retry."""


class DataChangedError(ApplicationError):
    code = "data_changed"


@dataclass(frozen=True)
class TrainingOptions:
    """What a run changes about its jobs (tests and benches use tiny models); None: the default.

    Stored with the run (``TrainingRun.options``) so that its jobs, on any worker, train the same way.
    """

    hyperparameters: Mapping[str, Mapping[str, object]] | None = None  # algorithm -> overrides of its defaults
    cv_splits: int | None = None  # rolling-origin folds (registry.training.CV_SPLITS); 0 = none

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.hyperparameters is not None:
            out["hyperparameters"] = {a: dict(p) for a, p in self.hyperparameters.items()}
        if self.cv_splits is not None:
            out["cv_splits"] = self.cv_splits
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> TrainingOptions:
        data = data or {}
        splits = data.get("cv_splits")
        return cls(hyperparameters=data.get("hyperparameters"), cv_splits=None if splits is None else int(splits))


@dataclass(frozen=True)
class SelectedCandidate:
    """The run's best eligible version of a target, with the figures it was judged on."""

    id: int
    algorithm: str
    val_r2: float | None
    r2: float  # on the untouched test part
    rmse: float


@dataclass(frozen=True)
class BaselineScore:
    name: str
    rmse: float


@dataclass(frozen=True)
class ProductionScore:
    id: int
    r2: float | None  # None: it could not be scored on the same test part


@dataclass(frozen=True)
class TargetSelection:
    """What the selection after a run decided for one target, and why (stored as ``TrainingRun.selection``)."""

    reason: str
    promoted: int | None = None  # the version promoted, if any
    best: SelectedCandidate | None = None  # None: no model was trained, or every one was rejected
    rejected: Mapping[str, str] | None = None  # algorithm -> why it was not eligible
    best_baseline: BaselineScore | None = None
    production: ProductionScore | None = None

    def as_json(self) -> dict[str, object]:
        """The stored (and served) form: ``best``'s figures flat, absent parts left out."""
        out: dict[str, object] = {}
        if self.best is not None:
            best = self.best
            out.update(best=best.id, algorithm=best.algorithm, val_r2=best.val_r2, r2=best.r2, rmse=best.rmse)
        out["promoted"] = self.promoted
        if self.rejected is not None:
            out["rejected"] = dict(self.rejected)
        if self.best_baseline is not None:
            out["best_baseline"] = {"name": self.best_baseline.name, "rmse": self.best_baseline.rmse}
        if self.production is not None:
            out.update(production=self.production.id, production_r2=self.production.r2)
        out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class SweepResult:
    """Runs the sweep finished (selection and promotion, as the lost callback would) or failed."""

    finished: list[int]
    failed: list[int]


def library_versions() -> dict[str, str]:
    """Installed version per importable library, whatever its distribution is called (``xgboost`` comes
    from ``xgboost-cpu``, ``sklearn`` from ``scikit-learn``)."""
    versions = {"python": platform.python_version()}
    distributions = _distributions()
    for name in LIBRARIES:
        for dist in (*distributions.get(name, ()), name):
            try:
                versions[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
        else:
            versions[name] = "missing"
    return versions


@lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    """Top-level import name -> the installed distributions that provide it (read once per process)."""
    return dict(metadata.packages_distributions())


def code_version() -> str:
    """The git commit of the code (read from .git, no subprocess); empty when unknown."""
    git = settings.BASE_DIR / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            ref_file = git / ref
            if ref_file.exists():
                return ref_file.read_text().strip()[:40]
            for line in (git / "packed-refs").read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0][:40]
            return ""
        return head[:40]
    except OSError:
        return ""


def _actor_name(actor: RequestUser | None) -> str:
    return actor.get_username() if actor is not None and getattr(actor, "pk", None) else SYSTEM_ACTOR


def _user(actor: RequestUser | None) -> User | None:
    return actor if isinstance(actor, User) and actor.pk else None


# --- Runs ---------------------------------------------------------------------------------------------


def _validated(values: Sequence[str] | None, allowed: Sequence[str], what: str) -> list[str]:
    if values is None or len(values) == 0:
        return list(allowed)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ApplicationError(f"Unknown {what}: {', '.join(map(str, unknown))}.", details={"allowed": list(allowed)})
    return [v for v in allowed if v in set(values)]


@transaction.atomic
def training_run_start(
    *,
    trigger: str,
    actor: RequestUser | None = None,
    targets: Sequence[str] | None = None,
    algorithms: Sequence[str] | None = None,
    options: TrainingOptions | None = None,
    dispatch: bool = True,
) -> TrainingRun:
    """Create a QUEUED run with one job per (target, algorithm) and, after commit, enqueue it.

    ``options``: hyperparameter overrides and CV folds (tests use tiny models), stored with the run.
    ``dispatch=False`` leaves execution to the caller (the in-process ``train_models`` command).
    """
    if trigger not in TrainingRun.Trigger.values:
        raise ApplicationError(f"Unknown trigger {trigger!r}.")
    chosen_targets = _validated(targets, TARGETS, "target")
    chosen_algorithms = _validated(algorithms, ALGORITHMS, "algorithm")
    if dispatch:
        broker_require(what="a training run")  # 503 broker_unavailable, before any row is written
    run = TrainingRun.objects.create(
        trigger=trigger,
        actor=_user(actor),
        targets=chosen_targets,
        algorithms=chosen_algorithms,
        options=(options or TrainingOptions()).as_json(),
        seed=settings.TRAINING_SEED,
        code_version=code_version(),
        library_versions=library_versions(),
        data_version=data_version_current(),
        models_total=len(chosen_targets) * len(chosen_algorithms),
    )
    TrainingJob.objects.bulk_create(
        [TrainingJob(run=run, target=t, algorithm=a) for t in chosen_targets for a in chosen_algorithms]
    )
    audit_event_record(
        action=AuditEvent.Action.TRAINING,
        actor=actor,
        target=f"run {run.pk}",
        details={"trigger": trigger, "targets": chosen_targets, "algorithms": chosen_algorithms},
    )
    if dispatch:
        run_id = run.pk
        transaction.on_commit(lambda: _enqueue_dispatch(run_id))
    return run


def _enqueue_dispatch(run_id: int) -> None:
    """After commit: hand the run to Celery. A broker outage fails the run instead of leaving it queued."""
    from registry.tasks import training_run_dispatch

    try:
        training_run_dispatch.delay(run_id)
    except Exception as exc:  # never turn the caller's committed request into a 500
        logger.exception("could not enqueue training run %s", run_id)
        run = TrainingRun.objects.filter(pk=run_id).first()
        if run is not None:
            training_run_fail(run=run, error=f"could not enqueue the run: {type(exc).__name__}: {exc}")


def training_run_prepare(*, run: TrainingRun, frame: pd.DataFrame | None = None, token: str = "") -> bool:
    """Claim a QUEUED run (-> RUNNING) and record its dataset (rows, fingerprint, dropped counts, the three
    parts) and the baselines' test scores per target.

    ``token`` (the dispatch task's id) may claim again a RUNNING run it claimed but never dispatched:
    that is the same message redelivered after its worker died, and the dispatch resumes. Returns
    False when someone else holds the run or it was dispatched already (a duplicate delivery).
    """
    claimed = TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING, started_at=timezone.now(), claimed_by=token
    )
    if not claimed and token:
        claimed = TrainingRun.objects.filter(
            pk=run.pk, status=TrainingRun.Status.RUNNING, claimed_by=token, dispatched_at__isnull=True
        ).update(started_at=timezone.now())
        if claimed:
            logger.warning("run %s: resuming a dispatch whose worker was lost", run.pk)
    if not claimed:
        return False
    full = run_data.run_frame(run) if frame is None else frame
    summaries: dict[str, Any] = {}
    baselines: dict[str, object] = {}
    for target in run.targets:
        dataset = run_data.run_dataset(run, target, frame=full)  # kept for this process's jobs
        summaries[target] = dataset.summary()
        if dataset.rows >= 10:
            split = time_split(dataset.frame)
            summaries[target].update(
                {
                    "n_train": len(split.train),
                    "n_validation": len(split.validation),
                    "n_test": len(split.test),
                    "validation_start": split.validation_start.isoformat(),
                    "test_start": split.test_start.isoformat(),
                }
            )
            baselines[target] = _jsonable(score_baselines(split, target))
        if dataset.dropped["negative"] or dataset.dropped["infinite"] or dataset.dropped["out_of_range"]:
            logger.warning("run %s: %s bad values dropped: %s", run.pk, target, dataset.dropped)
    combined = hashlib.sha256("".join(summaries[t]["fingerprint"] for t in run.targets).encode()).hexdigest()
    TrainingRun.objects.filter(pk=run.pk).update(
        dataset=summaries,
        baselines=baselines,
        dataset_fingerprint=combined,
        dataset_rows=len(full),
        data_version=data_version_current(),
    )
    run.refresh_from_db()
    return True


def training_run_dispatched(*, run: TrainingRun) -> None:
    """Record that the run's per-model tasks are queued: a redelivered dispatch no longer resumes it."""
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(dispatched_at=timezone.now())


def training_run_open_jobs(*, run: TrainingRun) -> int:
    """Jobs of the run still QUEUED or RUNNING."""
    return run.jobs.filter(status__in=[TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING]).count()


def training_run_fail(*, run: TrainingRun, error: str) -> None:
    # A run already finished is left as it is (bms_training_runs_total counts the rows by status).
    TrainingRun.objects.filter(pk=run.pk, status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING]).update(
        status=TrainingRun.Status.FAILED, error=error[:5000], finished_at=timezone.now()
    )


# --- Jobs: claim, train, register -----------------------------------------------------------------------


def training_job_claim(*, job_id: int, token: str) -> TrainingJob | None:
    """Claim a job for ``token`` (a task id) by conditional update. None when someone else holds it.

    The same token may re-claim a RUNNING job: that is the same task message redelivered after its
    worker died, and nothing of the dead attempt was registered (registration is one transaction).
    """
    now = timezone.now()
    claimed = TrainingJob.objects.filter(pk=job_id, status=TrainingJob.Status.QUEUED).update(
        status=TrainingJob.Status.RUNNING, claimed_by=token, started_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        claimed = TrainingJob.objects.filter(pk=job_id, status=TrainingJob.Status.RUNNING, claimed_by=token).update(
            started_at=now, attempts=F("attempts") + 1
        )
    if not claimed:
        return None
    return TrainingJob.objects.select_related("run").get(pk=job_id)


@dataclass
class JobOutcome:
    job_id: int
    status: str
    version_id: int | None = None
    error: str = ""


def training_job_execute(
    *, job: TrainingJob, token: str, frame: pd.DataFrame | None = None, dataset: Dataset | None = None
) -> JobOutcome:
    """Train, evaluate and register one claimed job. Non-retryable failures mark the job failed.

    ``dataset``: the job target's dataset when the caller built it already (the in-process run builds
    each target's once for its six jobs). Raises ``RetryableTrainingError`` for transient database
    trouble (the task retries; the claim token lets the retry re-claim).
    """
    run = job.run
    started = timezone.now()
    try:
        if dataset is None:  # built once per process for the run's jobs (registry.run_data)
            dataset = run_data.run_dataset(run, job.target, frame=frame)
        expected = (run.dataset.get(job.target) or {}).get("fingerprint")
        if expected and expected != dataset.fingerprint:
            raise DataChangedError("The airings changed since the run started; the job cannot use the same data.")
        version = _train_and_register(job=job, token=token, dataset=dataset)
    except (OperationalError, RetryableTrainingError) as exc:
        raise RetryableTrainingError(str(exc)) from exc
    except Exception as exc:
        logger.exception("training job %s failed", job.pk)
        message = f"{type(exc).__name__}: {exc}"
        training_job_fail(job=job, token=token, error=message + "\n" + traceback.format_exc(limit=5))
        return JobOutcome(job_id=job.pk, status=TrainingJob.Status.FAILED, error=message)
    prom.MODEL_TRAINING_DURATION.labels(target=job.target, algorithm=job.algorithm).observe(
        (timezone.now() - started).total_seconds()
    )
    return JobOutcome(job_id=job.pk, status=TrainingJob.Status.SUCCEEDED, version_id=version.pk if version else None)


def _train_and_register(*, job: TrainingJob, token: str, dataset: Dataset) -> ModelVersion | None:
    run = job.run
    options = TrainingOptions.from_json(run.options)
    overrides = None if options.hyperparameters is None else {a: dict(p) for a, p in options.hyperparameters.items()}
    spec = ModelSpec(
        algorithm=job.algorithm,
        target=job.target,
        hyperparameters=hyperparameters_for(job.algorithm, overrides),
        seed=run.seed,
    )
    split = time_split(dataset.frame)
    cv_splits = CV_SPLITS if options.cv_splits is None else options.cv_splits
    trained = fit_and_evaluate(spec, split, n_jobs=settings.TRAINING_N_JOBS, cv_splits=cv_splits)
    metrics = dict(trained.metrics)
    baselines = (run.baselines or {}).get(job.target) or {}
    if baselines:
        best = baselines["best"]
        metrics["baselines"] = baselines
        metrics["best_baseline"] = {"name": best, "rmse": baselines[best]["rmse"], "r2": baselines[best]["r2"]}
    return model_version_register(
        job=job,
        token=token,
        model=trained.model,
        metrics=metrics,
        hyperparameters=spec.hyperparameters,
        feature_importance=trained.feature_importance,
        training_seconds=trained.training_seconds,
        dataset_fingerprint=dataset.fingerprint,
    )


def model_version_register(
    *,
    job: TrainingJob,
    token: str,
    model: Any,
    metrics: dict[str, Any],
    hyperparameters: dict[str, Any],
    feature_importance: dict[str, float],
    training_seconds: float,
    dataset_fingerprint: str,
) -> ModelVersion | None:
    """Write the artifact and register the candidate in ONE transaction with the job's completion.

    The job row is locked and must still be RUNNING under ``token``; otherwise (a duplicate that lost
    the race) nothing is registered and None is returned. If the transaction fails the file is removed,
    so there is never a version without its artifact nor an artifact counted as a version.
    """
    saved: artifacts.SavedArtifact | None = None
    try:
        with transaction.atomic():
            locked = TrainingJob.objects.select_for_update().filter(
                pk=job.pk, status=TrainingJob.Status.RUNNING, claimed_by=token
            )
            if not locked.exists():
                return None
            latest = (
                ModelVersion.objects.filter(target=job.target, algorithm=job.algorithm).aggregate(m=Max("version"))["m"]
                or 0
            )
            number = latest + 1
            saved = artifacts.save_model(algorithm=job.algorithm, target=job.target, version=number, model=model)
            version = ModelVersion.objects.create(
                run=job.run,
                target=job.target,
                algorithm=job.algorithm,
                version=number,
                status=ModelVersion.Status.CANDIDATE,
                metrics=_jsonable(metrics),
                hyperparameters=_jsonable(hyperparameters),
                feature_importance=feature_importance,
                training_seconds=training_seconds,
                artifact_path=saved.path,
                artifact_format=saved.format,
                artifact_size=saved.size,
                artifact_sha256=saved.sha256,
                dataset_fingerprint=dataset_fingerprint,
                library_versions=job.run.library_versions,
                seed=job.run.seed,
            )
            TrainingJob.objects.filter(pk=job.pk).update(
                status=TrainingJob.Status.SUCCEEDED, model_version=version, finished_at=timezone.now(), error=""
            )
            TrainingRun.objects.filter(pk=job.run_id).update(models_done=F("models_done") + 1)
            return version
    except IntegrityError as exc:
        # Two runs numbering the same (target, algorithm) at once: retry picks the next number.
        if saved is not None:
            artifacts.delete_artifact(saved.path)
        raise RetryableTrainingError(f"version number taken: {exc}") from exc
    except BaseException:
        if saved is not None:
            artifacts.delete_artifact(saved.path)
        raise


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def training_job_fail(*, job: TrainingJob, token: str, error: str) -> bool:
    with transaction.atomic():
        updated = TrainingJob.objects.filter(pk=job.pk, status=TrainingJob.Status.RUNNING, claimed_by=token).update(
            status=TrainingJob.Status.FAILED, error=error[:5000], finished_at=timezone.now()
        )
        if updated:
            TrainingRun.objects.filter(pk=job.run_id).update(
                models_done=F("models_done") + 1, models_failed=F("models_failed") + 1
            )
    return bool(updated)


# --- Finishing a run: selection and promotion ------------------------------------------------------------


def training_run_finish(*, run: TrainingRun, frame: pd.DataFrame | None = None) -> TrainingRun:
    """After every job: select per target, then RUNNING -> SUCCEEDED (every model trained), PARTIAL
    (some) or FAILED (none).

    Jobs still QUEUED/RUNNING at this point (a worker died and the message was lost) are marked failed.
    """
    run.refresh_from_db()
    if run.status != TrainingRun.Status.RUNNING:
        raise InvalidStateError(f"Run {run.pk} is {run.status}, not running.")
    for job in run.jobs.filter(status__in=[TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING]):
        TrainingJob.objects.filter(pk=job.pk, status=job.status).update(
            status=TrainingJob.Status.FAILED, error="did not finish (worker lost?)", finished_at=timezone.now()
        )
        TrainingRun.objects.filter(pk=run.pk).update(
            models_done=F("models_done") + 1, models_failed=F("models_failed") + 1
        )
    selection = {target: chosen.as_json() for target, chosen in select_after_run(run=run, frame=frame).items()}
    run.refresh_from_db()
    succeeded = run.models_done - run.models_failed
    if succeeded == run.models_total:
        status, error = TrainingRun.Status.SUCCEEDED, ""
    elif succeeded > 0:
        status, error = TrainingRun.Status.PARTIAL, f"{run.models_failed} of {run.models_total} models failed"
    else:
        status, error = TrainingRun.Status.FAILED, "no model was trained; see the jobs' errors"
    finished = timezone.now()
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(
        status=status, selection=selection, finished_at=finished, error=error
    )
    if run.started_at is not None:
        prom.TRAINING_DURATION.observe((finished - run.started_at).total_seconds())
    run_data.release(run)
    run.refresh_from_db()
    return run


def training_runs_sweep(*, now: datetime | None = None) -> SweepResult:
    """Finish or fail the runs that nothing will move on any more (a periodic task, ``TRAINING_SWEEP_CRON``).

    - RUNNING, every job done, the last one longer ago than ``TRAINING_SWEEP_GRACE_MINUTES``: the chord
      callback was lost; finish the run now (selection and promotion, as the callback would).
    - RUNNING with no job started or finished for ``TRAINING_RUN_STALE_MINUTES``: a worker died with its
      messages; finish it with what was trained (the unfinished jobs are marked failed).
    - QUEUED for ``TRAINING_RUN_STALE_MINUTES``: it was never dispatched; fail it.
    """
    now = now or timezone.now()
    grace = timedelta(minutes=settings.TRAINING_SWEEP_GRACE_MINUTES)
    stale = timedelta(minutes=settings.TRAINING_RUN_STALE_MINUTES)
    out = SweepResult(finished=[], failed=[])
    for run in TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, started_at__lt=now - grace):
        jobs = run.jobs.aggregate(
            open=Count("id", filter=Q(status__in=[TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING])),
            last_start=Max("started_at"),
            last_finish=Max("finished_at"),
        )
        moments = [m for m in (run.started_at, jobs["last_start"], jobs["last_finish"]) if m is not None]
        last_activity = max(moments) if moments else run.created_at
        idle = now - last_activity
        if (jobs["open"] == 0 and idle > grace) or idle > stale:
            logger.warning("sweeping training run %s (open jobs %s, idle %s)", run.pk, jobs["open"], idle)
            try:
                training_run_finish(run=run)
            except InvalidStateError:  # finished by its callback meanwhile
                continue
            out.finished.append(run.pk)
    for run in TrainingRun.objects.filter(status=TrainingRun.Status.QUEUED, created_at__lt=now - stale):
        training_run_fail(run=run, error=f"never started within {settings.TRAINING_RUN_STALE_MINUTES} minutes")
        out.failed.append(run.pk)
    return out


def select_after_run(*, run: TrainingRun, frame: pd.DataFrame | None = None) -> dict[str, TargetSelection]:
    """Per target: choose the run's best eligible candidate on its rolling-origin CV error over train +
    validation (``registry.training.cross_validate``; validation R² for versions without one), then gate
    it on the untouched TEST part. Promoted when its test R² > PROMOTION_MIN_R2, its test RMSE beats the best baseline's, and
    it beats production on the same test part (or there is none); otherwise it stays candidate and the
    returned reason says why. Not eligible: time-series CV R² below 0 or predictions outside the sane
    range (``metrics["rejected"]``). Baselines are never candidates.
    """
    threshold = float(settings.PROMOTION_MIN_R2)
    result: dict[str, TargetSelection] = {}
    loaded = [] if frame is None else [frame]

    def training_frame() -> pd.DataFrame:  # read once, and only when a production model is compared
        if not loaded:
            loaded.append(run_data.run_frame(run))
        return loaded[0]

    for target in run.targets:
        candidates = [
            v
            for v in ModelVersion.objects.filter(run=run, target=target, status=ModelVersion.Status.CANDIDATE)
            if v.r2 is not None
        ]
        if not candidates:
            result[target] = TargetSelection(reason="no model was trained for this target")
            continue
        rejected = {v.algorithm: str(v.metrics["rejected"]) for v in candidates if v.metrics.get("rejected")}
        eligible = [v for v in candidates if v.algorithm not in rejected]
        if not eligible:
            reasons = "; ".join(f"{a}: {r}" for a, r in sorted(rejected.items()))
            result[target] = TargetSelection(reason=f"every model was rejected ({reasons})", rejected=rejected)
            continue
        version = min(eligible, key=lambda v: (*_selection_key(v, eligible), v.pk))
        val_r2 = version.metrics.get("val_r2")
        best = SelectedCandidate(
            id=version.pk,
            algorithm=version.algorithm,
            val_r2=None if val_r2 is None else float(val_r2),
            r2=float(version.r2 or 0.0),
            rmse=float(version.metrics.get("rmse", float("inf"))),
        )
        result[target] = _judge(
            run=run, target=target, best=best, rejected=rejected, frame=training_frame, threshold=threshold
        )
        if result[target].promoted is not None:
            model_version_promote(version=version, actor=None, reason=f"run {run.pk}: {result[target].reason}", run=run)
    return result


def _judge(
    *,
    run: TrainingRun,
    target: str,
    best: SelectedCandidate,
    rejected: dict[str, str],
    frame: Callable[[], pd.DataFrame],
    threshold: float,
) -> TargetSelection:
    """Whether the run's best candidate of ``target`` goes to production: the R² threshold, then the best
    baseline's RMSE, then production's R² on the same test part (of ``frame()``)."""
    chosen = TargetSelection(reason="", best=best, rejected=rejected)
    r2, rmse = best.r2, best.rmse
    if r2 <= threshold:
        return replace(chosen, reason=f"best model's test R² {r2:.4f} is not above the threshold {threshold:.2f}")
    baselines = (run.baselines or {}).get(target) or {}
    if baselines:
        name = baselines["best"]
        baseline = BaselineScore(name=name, rmse=float(baselines[name]["rmse"]))
        chosen = replace(chosen, best_baseline=baseline)
        if rmse >= baseline.rmse:
            return replace(
                chosen,
                reason=f"best model's test RMSE {rmse:.4g} does not beat the best baseline {name} ({baseline.rmse:.4g})",
            )
    champion = ModelVersion.objects.filter(target=target, status=ModelVersion.Status.PRODUCTION).first()
    if champion is None:
        reason = f"test R² {r2:.4f} > {threshold:.2f} and beats the baselines; no production model yet"
        return replace(chosen, promoted=best.id, reason=reason)
    champion_r2, note = _score_on_test(champion, target=target, frame=frame())
    chosen = replace(chosen, production=ProductionScore(id=champion.pk, r2=champion_r2))
    if champion_r2 is None:
        # Not "the candidate beats it": nothing was compared. A person decides (hand promotion).
        return replace(
            chosen,
            reason=f"production {champion.label} could not be scored ({note}); not promoted automatically: "
            "restore its artifact or promote a version by hand",
        )
    if r2 <= champion_r2:
        return replace(
            chosen,
            reason=f"best test R² {r2:.4f} does not beat production {champion.label} ({champion_r2:.4f}) "
            "on the same test part",
        )
    reason = (
        f"test R² {r2:.4f} > {threshold:.2f}, beats the baselines and production {champion.label} ({champion_r2:.4f})"
    )
    return replace(chosen, promoted=best.id, reason=reason)


def _selection_key(version: ModelVersion, eligible: list[ModelVersion]) -> tuple[float, float]:
    """Lower is better: the rolling-origin CV error over train + validation relative to the anchor's
    (``cv_relative_mse``) when every eligible model has one (they share the folds and the anchor), else
    minus the validation R² (versions trained before it)."""
    if all(v.metrics.get("cv_relative_mse") is not None for v in eligible):
        return float(version.metrics["cv_relative_mse"]), -_validation_r2(version)
    return -_validation_r2(version), 0.0


def _validation_r2(version: ModelVersion) -> float:
    value = version.metrics.get("val_r2")
    return float(value) if value is not None else float("-inf")


def _score_on_test(version: ModelVersion, *, target: str, frame: pd.DataFrame) -> tuple[float | None, str]:
    """R² of ``version`` on the test part of the current data (the part the run's candidates report on)."""
    try:
        loaded = artifacts.load_model(version)
    except ApplicationError as exc:
        return None, f"its artifact cannot be loaded: {exc.message}"
    test = time_split(training_dataset(target=target, frame=frame).frame).test
    y = test[target].to_numpy(dtype="float64")
    return regression_metrics(y, loaded.predict(test))["r2"], ""


def _move(
    *,
    version: ModelVersion,
    to_status: str,
    actor: RequestUser | None,
    reason: str,
    run: TrainingRun | None = None,
    kind: str = PromotionEvent.Kind.PROMOTION,
    forced: bool = False,
    details: Mapping[str, object] | None = None,
) -> None:
    """Change a locked version's status and append the ledger event for it (one path for every move)."""
    ModelVersion.objects.filter(pk=version.pk).update(status=to_status)
    PromotionEvent.objects.create(
        version=version,
        target=version.target,
        from_status=version.status,
        to_status=to_status,
        actor=_user(actor),
        actor_name=_actor_name(actor),
        reason=reason,
        kind=kind,
        forced=forced,
        details=details or {},
        run=run,
        created_at=timezone.now(),
    )


class PromotionRefusedError(ConflictError):
    code = "promotion_refused"


@transaction.atomic
def model_version_promote(
    *,
    version: ModelVersion,
    actor: RequestUser | None,
    reason: str,
    run: TrainingRun | None = None,
    force: bool = False,
    frame: pd.DataFrame | None = None,
) -> ModelVersion:
    """Make ``version`` the production model of its target; the previous one becomes archived.

    Only candidates or archived versions can be promoted (an archived one = a manual roll-forward).
    The artifact must load and verify first, so a broken file never goes live.

    A hand promotion (no ``run``: admin, API, command) is scored with the production model and the naive
    baselines on the same test data (``registry.guards``); a candidate worse than either is refused
    (``PromotionRefusedError``, 409) unless ``force`` — then the ledger event is marked ``forced`` and its
    ``details`` say what it was forced past. A run's own selection has gated on its holdout already.

    Sends ``PRODUCTION_MODEL_CHANGED`` (subscribers in ``bms/wiring.py``): the target's active A/B
    test ends and the ledger event's ``details["ab_tests_ended"]`` says so (its champion arm is no longer
    the production model); the predictor reloads after commit.
    """
    locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if locked.status == ModelVersion.Status.PRODUCTION:
        raise InvalidStateError(f"{locked.label} is already in production.")
    artifacts.load_model(locked)  # raises ArtifactError on a missing/tampered/unknown file
    current = list(
        ModelVersion.objects.select_for_update().filter(target=locked.target, status=ModelVersion.Status.PRODUCTION)
    )
    details: dict[str, object] = {}
    forced = False
    if run is None:
        comparison = guards.promotion_comparison(version=locked, frame=frame)
        refusals = comparison.refusals()
        if refusals and not force:
            raise PromotionRefusedError(
                "Promotion refused: " + "; ".join(refusals) + ". Promote with force and a reason to override.",
                details=comparison.as_dict(),
            )
        forced = bool(refusals)
        details["comparison"] = comparison.as_dict()
        if forced:
            details["forced_past"] = refusals
    details.update(_production_changing(target=locked.target, reason=f"production changed to {locked.label}"))
    try:
        with transaction.atomic():
            for old in current:
                _move(
                    version=old,
                    to_status=ModelVersion.Status.ARCHIVED,
                    actor=actor,
                    reason=f"replaced by {locked.label}: {reason}",
                    run=run,
                )
            _move(
                version=locked,
                to_status=ModelVersion.Status.PRODUCTION,
                actor=actor,
                reason=reason,
                run=run,
                forced=forced,
                details=details,
            )
    except IntegrityError as exc:
        raise ConflictError("Another promotion for this target happened at the same time; try again.") from exc
    audit_event_record(
        action=AuditEvent.Action.PROMOTION,
        actor=actor,
        target=str(locked),
        details={"action": "promote", "version": locked.pk, "reason": reason, "forced": forced},
    )
    locked.refresh_from_db()
    return locked


def _production_changing(*, target: str, reason: str) -> JSONObject:
    """Tell the subscribers (bms/wiring.py) in this transaction; their notes for the ledger event."""
    details: JSONObject = {}
    for notes in PRODUCTION_MODEL_CHANGED.send(ProductionModelChanged(target=target, reason=reason)):
        details.update(notes)
    return details


def production_stack(*, target: str) -> list[int]:
    """The target's production versions as the ledger built them, oldest first (the top is production).

    A promotion pushes its version; a rollback pops the version it replaced. So each rollback goes one
    production version further back instead of between the last two.
    """
    stack: list[int] = []
    events = PromotionEvent.objects.filter(target=target, to_status=ModelVersion.Status.PRODUCTION).order_by("id")
    for kind, version_id in events.values_list("kind", "version_id"):
        if kind == PromotionEvent.Kind.ROLLBACK:
            if stack:
                stack.pop()
            if not stack or stack[-1] != version_id:  # history written before rollbacks were marked
                stack.append(version_id)
        else:
            stack.append(version_id)
    return stack


@transaction.atomic
def model_version_rollback(*, target: str, actor: RequestUser | None, reason: str) -> ModelVersion:
    """Put back the production version before the current one in the ledger; the current is archived.

    Walks back: after A, B, C were promoted, a rollback restores B, the next one A (``production_stack``).
    """
    if target not in TARGETS:
        raise ApplicationError(f"Unknown target {target!r}.", details={"allowed": list(TARGETS)})
    current = (
        ModelVersion.objects.select_for_update().filter(target=target, status=ModelVersion.Status.PRODUCTION).first()
    )
    if current is None:
        raise InvalidStateError(f"There is no production model for {target} to roll back.")
    stack = production_stack(target=target)
    while stack and stack[-1] == current.pk:
        stack.pop()
    if not stack:
        raise InvalidStateError(f"{current.label} has no previous production version to roll back to.")
    previous = ModelVersion.objects.select_for_update().get(pk=stack[-1])
    artifacts.load_model(previous)
    details = _production_changing(target=target, reason=f"production rolled back to {previous.label}")
    _move(
        version=current,
        to_status=ModelVersion.Status.ARCHIVED,
        actor=actor,
        reason=f"rolled back: {reason}",
        kind=PromotionEvent.Kind.ROLLBACK,
    )
    _move(
        version=previous,
        to_status=ModelVersion.Status.PRODUCTION,
        actor=actor,
        reason=f"rollback from {current.label}: {reason}",
        kind=PromotionEvent.Kind.ROLLBACK,
        details=details,
    )
    audit_event_record(
        action=AuditEvent.Action.PROMOTION,
        actor=actor,
        target=str(previous),
        details={"action": "rollback", "from": current.pk, "to": previous.pk, "reason": reason},
    )
    previous.refresh_from_db()
    return previous


# --- In-process run (the train_models command) -------------------------------------------------------------


def training_run_execute_inline(
    *, run: TrainingRun, progress: Callable[[TrainingJob, JobOutcome], None] | None = None
) -> TrainingRun:
    """Run every job of a run in this process (same services as the Celery path), then select."""
    frame = airings_frame(training_airings())
    if not training_run_prepare(run=run, frame=frame):
        raise InvalidStateError(f"Run {run.pk} was already started.")
    token = f"inline-{run.pk}"
    datasets: dict[str, Dataset] = {}
    for job in run.jobs.order_by("id"):
        claimed = training_job_claim(job_id=job.pk, token=token)
        if claimed is None:
            continue
        try:
            if claimed.target not in datasets:
                datasets[claimed.target] = training_dataset(target=claimed.target, frame=frame)
            outcome = training_job_execute(job=claimed, token=token, dataset=datasets[claimed.target])
        except RetryableTrainingError as exc:
            training_job_fail(job=claimed, token=token, error=str(exc))
            outcome = JobOutcome(job_id=claimed.pk, status=TrainingJob.Status.FAILED, error=str(exc))
        if progress is not None:
            progress(claimed, outcome)
    return training_run_finish(run=run, frame=frame)
