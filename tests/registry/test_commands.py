"""Management commands: train_models (in-process, progress), promote_model, rollback_model."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from registry.models import ModelVersion, PromotionEvent, TrainingRun
from tests.registry.factories import small_data, version_factory


@pytest.mark.django_db
def test_train_models_runs_the_pipeline_in_process(settings):
    settings.PROMOTION_MIN_R2 = 0.5
    small_data()
    out = StringIO()
    call_command("train_models", "--targets", "engagement", "--algorithms", "elasticnet", "--no-progress", stdout=out)
    run = TrainingRun.objects.get()
    assert (run.status, run.trigger, run.models_done, run.models_total) == ("succeeded", "manual", 1, 1)
    assert run.jobs.get().claimed_by == f"inline-{run.pk}"
    assert f"run {run.pk}: succeeded, 1/1 trained" in out.getvalue()
    assert ModelVersion.objects.filter(run=run).count() == 1


@pytest.mark.django_db
def test_train_models_rejects_unknown_names_and_creates_nothing():
    with pytest.raises(CommandError):
        call_command("train_models", "--targets", "likes")
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db
def test_promote_and_rollback_commands_use_the_services():
    first = version_factory(r2=0.8)
    second = version_factory(algorithm="mlp", r2=0.9)
    call_command("promote_model", str(first.pk), "--reason", "first", stdout=StringIO())
    call_command("promote_model", str(second.pk), "--reason", "second", stdout=StringIO())
    out = StringIO()
    call_command("rollback_model", "audience", "--reason", "bad", stdout=out)
    assert "audience/elasticnet v1" in out.getvalue()
    assert ModelVersion.objects.get(pk=first.pk).status == "production"
    assert PromotionEvent.objects.filter(actor_name="system").count() == 5
    with pytest.raises(CommandError, match="already in production"):
        call_command("promote_model", str(first.pk), "--reason", "again")
    with pytest.raises(CommandError, match="not found"):
        call_command("promote_model", "999999", "--reason", "x")
