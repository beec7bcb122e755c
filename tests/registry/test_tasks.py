"""Jobs: idempotent claim, crash safety, the eager chord, and a real Celery worker running the fan-out."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from registry import services
from registry.models import ModelVersion, TrainingJob, TrainingRun
from tests.registry.factories import TINY_OPTIONS, small_data

J = TrainingJob.Status


def _claim(*, job_id: int, token: str) -> TrainingJob:
    job = services.training_job_claim(job_id=job_id, token=token)
    assert job is not None, "the job was not claimed"
    return job


def _run(**kwargs) -> TrainingRun:
    return services.training_run_start(
        trigger=TrainingRun.Trigger.API,
        targets=kwargs.pop("targets", ["engagement"]),
        algorithms=kwargs.pop("algorithms", ["elasticnet"]),
        options=TINY_OPTIONS,
        dispatch=kwargs.pop("dispatch", False),
    )


@pytest.mark.django_db
def test_a_job_is_claimed_once_and_only_its_own_task_may_resume_it():
    run = _run()
    job = run.jobs.get()
    assert services.training_job_claim(job_id=job.pk, token="task-a") is not None
    assert services.training_job_claim(job_id=job.pk, token="task-b") is None  # a duplicate message
    resumed = services.training_job_claim(job_id=job.pk, token="task-a")  # the same message redelivered
    assert resumed is not None
    job.refresh_from_db()
    assert (job.status, job.claimed_by, job.attempts) == (J.RUNNING, "task-a", 2)


@pytest.mark.django_db
def test_a_finished_job_is_never_claimed_again():
    small_data()
    run = _run()
    assert services.training_run_prepare(run=run) is True
    assert services.training_run_prepare(run=run) is False  # the run itself is claimed once too
    job = _claim(job_id=run.jobs.get().pk, token="t")
    outcome = services.training_job_execute(job=job, token="t")
    assert outcome.status == J.SUCCEEDED
    assert services.training_job_claim(job_id=job.pk, token="t") is None
    assert services.training_job_claim(job_id=job.pk, token="other") is None
    assert ModelVersion.objects.count() == 1


@pytest.mark.django_db
def test_a_worker_killed_while_registering_leaves_no_version_and_the_redelivery_finishes(monkeypatch):
    small_data()
    run = _run()
    services.training_run_prepare(run=run)
    job = _claim(job_id=run.jobs.get().pk, token="task-a")
    real_create = ModelVersion.objects.create

    def killed(**kwargs):
        raise SystemExit("worker killed")  # not an Exception: like a kill, nothing may be recorded

    monkeypatch.setattr(ModelVersion.objects, "create", killed)
    with pytest.raises(SystemExit):
        services.training_job_execute(job=job, token="task-a")
    assert ModelVersion.objects.count() == 0
    assert list(Path(settings.ARTIFACT_ROOT).rglob("*.skops")) == []  # the written file was removed
    job.refresh_from_db()
    assert (job.status, job.model_version_id) == (J.RUNNING, None)
    run.refresh_from_db()
    assert run.models_done == 0

    monkeypatch.setattr(ModelVersion.objects, "create", real_create)
    again = _claim(job_id=job.pk, token="task-a")
    assert services.training_job_execute(job=again, token="task-a").status == J.SUCCEEDED
    assert ModelVersion.objects.count() == 1
    run.refresh_from_db()
    assert (run.models_done, run.models_failed) == (1, 0)


@pytest.mark.django_db
def test_a_late_duplicate_cannot_register_a_second_version():
    small_data()
    run = _run()
    services.training_run_prepare(run=run)
    job = _claim(job_id=run.jobs.get().pk, token="task-a")
    assert services.training_job_execute(job=job, token="task-a").status == J.SUCCEEDED
    version = services.model_version_register(
        job=job,
        token="task-a",
        model=ModelVersion.objects.get().pk,
        metrics={},
        hyperparameters={},
        feature_importance={},
        training_seconds=0.0,
        dataset_fingerprint="",
    )
    assert version is None
    assert ModelVersion.objects.count() == 1


@pytest.mark.django_db
def test_finishing_a_run_fails_jobs_that_never_finished_and_reports_progress():
    small_data()
    run = _run(algorithms=["elasticnet", "mlp"])
    services.training_run_prepare(run=run)
    first, second = run.jobs.order_by("id")
    services.training_job_execute(job=_claim(job_id=first.pk, token="a"), token="a")
    services.training_job_claim(job_id=second.pk, token="lost")  # its worker vanished with the message
    run = services.training_run_finish(run=run)
    assert (run.status, run.error) == (TrainingRun.Status.PARTIAL, "1 of 2 models failed")
    assert (run.models_total, run.models_done, run.models_failed) == (2, 2, 1)
    second.refresh_from_db()
    assert (second.status, second.error) == (J.FAILED, "did not finish (worker lost?)")


@pytest.mark.django_db
def test_a_dispatch_redelivered_before_its_fan_out_resumes_the_run_and_a_duplicate_does_not():
    small_data()
    run = _run()
    assert services.training_run_prepare(run=run, token="dispatch-a") is True
    # Its worker died here: nothing was fanned out. The same message (same task id) comes back.
    assert services.training_run_prepare(run=run, token="dispatch-b") is False  # another message: no
    assert services.training_run_prepare(run=run, token="dispatch-a") is True
    services.training_run_dispatched(run=run)
    assert services.training_run_prepare(run=run, token="dispatch-a") is False  # fanned out: never twice
    run.refresh_from_db()
    assert (run.status, run.claimed_by, run.dispatched_at is not None) == (
        TrainingRun.Status.RUNNING,
        "dispatch-a",
        True,
    )


@pytest.mark.django_db
def test_the_chord_callback_leaves_a_run_with_open_jobs_to_their_own_delivery():
    from registry.tasks import training_run_complete

    small_data()
    run = _run()
    services.training_run_prepare(run=run)
    services.training_job_claim(job_id=run.jobs.get().pk, token="redelivered-later")
    assert training_run_complete.run(run.pk) == {"run_id": run.pk, "status": "jobs-still-open"}
    run.refresh_from_db()
    assert (run.status, run.models_done, run.finished_at) == (TrainingRun.Status.RUNNING, 0, None)


@pytest.mark.django_db
def test_a_run_ends_succeeded_only_when_every_model_did():
    small_data()
    run = _run(algorithms=["elasticnet", "mlp"])
    services.training_run_prepare(run=run)
    for job in run.jobs.order_by("id"):
        services.training_job_execute(job=_claim(job_id=job.pk, token="t"), token="t")
    run = services.training_run_finish(run=run)
    assert (run.status, run.error, run.models_done, run.models_failed) == (TrainingRun.Status.SUCCEEDED, "", 2, 0)


@pytest.mark.django_db
def test_a_run_with_no_model_trained_ends_failed():
    small_data()
    run = _run()
    services.training_run_prepare(run=run)
    services.training_job_claim(job_id=run.jobs.get().pk, token="lost")
    run = services.training_run_finish(run=run)
    assert (run.status, run.error) == (TrainingRun.Status.FAILED, "no model was trained; see the jobs' errors")


@pytest.mark.django_db
def test_data_changed_mid_run_fails_the_job_without_a_version():
    small_data()
    run = _run()
    services.training_run_prepare(run=run)
    TrainingRun.objects.filter(pk=run.pk).update(dataset={"engagement": {"fingerprint": "0" * 64}})
    run.refresh_from_db()
    job = _claim(job_id=run.jobs.get().pk, token="a")
    outcome = services.training_job_execute(job=job, token="a")
    assert outcome.status == J.FAILED
    assert "changed since the run started" in outcome.error
    assert ModelVersion.objects.count() == 0


@pytest.mark.django_db
def test_eager_dispatch_runs_the_chord_and_selects(django_capture_on_commit_callbacks, settings, eager_tasks):
    settings.PROMOTION_MIN_R2 = -100.0
    small_data()
    with django_capture_on_commit_callbacks(execute=True):
        run = _run(algorithms=["elasticnet", "random_forest"], dispatch=True)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert (run.models_done, run.models_failed) == (2, 0)
    assert run.selection["engagement"]["best"] in set(run.versions.values_list("id", flat=True))
    assert set(run.baselines) == {"engagement"}


@pytest.mark.django_db
def test_nightly_schedule_exists_and_follows_the_setting(settings):
    from django_celery_beat.models import PeriodicTask

    from registry.tasks import training_run_nightly

    task = PeriodicTask.objects.get(name="registry: nightly retraining")
    assert task.task == "registry.training_run_nightly"
    assert (task.crontab.minute, task.crontab.hour) == ("0", "3")
    settings.NIGHTLY_TRAINING_ENABLED = False
    assert training_run_nightly() is None
    assert TrainingRun.objects.count() == 0


def _worker_env(tmp_path: Path) -> dict[str, str]:
    db = connection.settings_dict
    url = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": url,
            "DATABASE_POOL": "0",
            "REDIS_URL": settings.REDIS_URL,
            "ARTIFACT_ROOT": str(settings.ARTIFACT_ROOT),
            "TRAINING_N_JOBS": "1",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "worker-test-not-secret",
            "JOBS_IN_BACKGROUND": "0",
            "PREDICTION_LOG_BACKGROUND": "0",
            "SERVER_WARM_UP": "0",
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "DJANGO_SETTINGS_MODULE": "bms.settings",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


@pytest.mark.celery_worker
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_fan_out_and_the_chord_callback(tmp_path, settings):
    settings.PROMOTION_MIN_R2 = -100.0
    small_data()
    from bms.celery import app

    app.control.purge()  # messages left by earlier runs against this Redis db
    celery = Path(sys.executable).with_name("celery")
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [str(celery), "-A", "bms", "worker", "--pool=solo", "-l", "warning", "--without-gossip", "--without-mingle"],
        cwd=settings.BASE_DIR,
        env=_worker_env(tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        run = _run(algorithms=["elasticnet", "random_forest"], dispatch=True)  # autocommit: enqueued at once
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.status in (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED):
                break
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
    assert run.status == TrainingRun.Status.SUCCEEDED, (tmp_path / "worker.log").read_text()[-3000:]
    assert (run.models_done, run.models_failed) == (2, 0)
    jobs = list(run.jobs.all())
    # Each job was claimed by its own Celery task id (not in-process).
    assert len({job.claimed_by for job in jobs}) == 2
    assert all(job.claimed_by and not job.claimed_by.startswith("inline") for job in jobs)
    assert ModelVersion.objects.filter(run=run).count() == 2
    # Selected on validation; promoted or not by the test-part gate (the tiny models may lose to a baseline).
    assert run.selection["engagement"]["best"] in set(run.versions.values_list("id", flat=True))
    assert set(run.baselines) == {"engagement"}
