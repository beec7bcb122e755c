"""Create the sweep of stuck training runs in django-celery-beat (TRAINING_SWEEP_CRON, in TIME_ZONE)."""

from django.conf import settings
from django.db import migrations

from bms.beat import periodic_tasks_ensure, periodic_tasks_remove

TASK_NAME = "registry: sweep stuck training runs"
DESCRIPTION = "Finish runs whose chord callback was lost, finish idle runs with what was trained, fail stale queued runs."


def create_schedule(apps, schema_editor):
    periodic_tasks_ensure(
        apps, cron=settings.TRAINING_SWEEP_CRON, tasks=[(TASK_NAME, "registry.training_runs_sweep", DESCRIPTION)]
    )


def remove_schedule(apps, schema_editor):
    periodic_tasks_remove(apps, names=[TASK_NAME])


class Migration(migrations.Migration):
    dependencies = [("registry", "0002_nightly_training_schedule")]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
