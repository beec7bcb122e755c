"""A run's airings and datasets are built once per process and reused by its jobs (registry.run_data)."""

from __future__ import annotations

from typing import Any

import pytest

from programs.models import Airing
from registry import features, run_data, services, training
from registry.models import ModelVersion, TrainingJob, TrainingRun
from tests.registry.factories import TINY_OPTIONS, small_data

pytestmark = pytest.mark.django_db


def _run(targets: list[str], algorithms: list[str], *, dispatch: bool = False) -> TrainingRun:
    return services.training_run_start(
        trigger=TrainingRun.Trigger.API, targets=targets, algorithms=algorithms, options=TINY_OPTIONS, dispatch=dispatch
    )


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"frames": 0, "datasets": 0}
    read, build = features.airings_frame, training.training_dataset

    def frame(*args: Any, **kwargs: Any) -> Any:
        calls["frames"] += 1
        return read(*args, **kwargs)

    def dataset(*args: Any, **kwargs: Any) -> Any:
        calls["datasets"] += 1
        return build(*args, **kwargs)

    monkeypatch.setattr(run_data, "airings_frame", frame)
    monkeypatch.setattr(run_data, "training_dataset", dataset)
    return calls


def test_an_eager_run_reads_the_airings_once_and_builds_each_target_once(
    monkeypatch: pytest.MonkeyPatch, settings: Any, django_capture_on_commit_callbacks: Any, eager_tasks: None
) -> None:
    settings.PROMOTION_MIN_R2 = -100.0
    small_data()
    calls = _counting(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        run = _run(["rating", "engagement"], ["elasticnet", "random_forest"], dispatch=True)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert ModelVersion.objects.filter(run=run).count() == 4
    # The dispatch read the airings and built both targets (baselines, parts); its 4 jobs reused them.
    assert calls == {"frames": 1, "datasets": 2}
    assert run_data.builds(run) == 0  # released when the run finished


def test_jobs_reuse_the_datasets_the_dispatch_built_and_they_are_the_ones_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small_data()
    run = _run(["audience"], ["elasticnet", "mlp"])
    services.training_run_prepare(run=run)
    calls = _counting(monkeypatch)
    for job in run.jobs.order_by("id"):
        claimed = services.training_job_claim(job_id=job.pk, token=f"t{job.pk}")
        assert claimed is not None
        assert services.training_job_execute(job=claimed, token=f"t{job.pk}").status == TrainingJob.Status.SUCCEEDED
    assert calls == {"frames": 0, "datasets": 0}
    fingerprints = set(ModelVersion.objects.filter(run=run).values_list("dataset_fingerprint", flat=True))
    assert fingerprints == {run.dataset["audience"]["fingerprint"]}


def test_a_process_holds_one_run_and_a_bounded_number_of_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    small_data()
    first = _run(["rating", "revenue", "audience", "engagement"], ["elasticnet"])
    services.training_run_prepare(run=first)  # builds the four targets, keeps the latest MAX_DATASETS
    calls = _counting(monkeypatch)
    kept = ["audience", "engagement"][-run_data.MAX_DATASETS :]
    for target in kept:
        run_data.run_dataset(first, target)
    assert calls == {"frames": 0, "datasets": 0}
    run_data.run_dataset(first, "rating")  # dropped earlier: built again from the held frame
    assert calls == {"frames": 0, "datasets": 1}
    second = _run(["rating"], ["elasticnet"])
    run_data.run_dataset(second, "rating")  # another run: the first run's data is released, read anew
    assert calls == {"frames": 1, "datasets": 2}
    assert run_data.builds(first) == 0
    assert run_data.builds(second) == 1


def test_airings_changed_mid_run_a_process_with_the_runs_copy_trains_on_it_one_without_refuses() -> None:
    small_data()
    run = _run(["engagement"], ["elasticnet", "mlp"])
    services.training_run_prepare(run=run)
    Airing.objects.filter(pk=Airing.objects.order_by("-start").values_list("pk", flat=True)[0]).update(engagement=1.5)
    first, second = run.jobs.order_by("id")
    job = services.training_job_claim(job_id=first.pk, token="a")
    assert job is not None
    assert services.training_job_execute(job=job, token="a").status == TrainingJob.Status.SUCCEEDED
    run_data.forget()  # another worker process: no copy, reads the changed airings
    job = services.training_job_claim(job_id=second.pk, token="b")
    assert job is not None
    outcome = services.training_job_execute(job=job, token="b")
    assert outcome.status == TrainingJob.Status.FAILED
    assert "changed since the run started" in outcome.error
    assert ModelVersion.objects.filter(run=run).count() == 1


def test_the_run_frame_is_the_training_window() -> None:
    small_data()
    run = _run(["rating"], ["elasticnet"])
    assert len(run_data.run_frame(run)) == training.training_airings().count()


def test_jobs_are_queued_target_by_target_longest_algorithm_of_the_latest_run_first() -> None:
    from registry.tasks import dispatch_order
    from tests.registry.factories import run_factory, version_factory

    earlier = run_factory(targets=["audience"], algorithms=["elasticnet", "random_forest", "mlp"])
    for algorithm, seconds in (("elasticnet", 30.0), ("random_forest", 5.0), ("mlp", 12.0)):
        version = version_factory(algorithm=algorithm, run=earlier)
        ModelVersion.objects.filter(pk=version.pk).update(training_seconds=seconds)
    run = _run(["rating", "engagement"], ["random_forest", "xgboost", "mlp", "elasticnet"])
    order = [run.jobs.get(pk=pk) for pk in dispatch_order(run)]
    # xgboost was never timed: first; then elasticnet (30 s), mlp (12 s), random_forest (5 s); per target.
    expected = ["xgboost", "elasticnet", "mlp", "random_forest"]
    assert [(j.target, j.algorithm) for j in order] == [(t, a) for t in ("rating", "engagement") for a in expected]
