"""Create the sweep of lost optimisation jobs in django-celery-beat (OPTIMIZATION_SWEEP_CRON, in TIME_ZONE)."""

from django.conf import settings
from django.db import migrations

from bms.beat import periodic_tasks_ensure, periodic_tasks_remove

TASK_NAME = "scheduling: sweep lost optimisation jobs"
DESCRIPTION = "Fail optimisation jobs whose worker and message were both lost (no progress past the redelivery)."


def create_schedule(apps, schema_editor):
    periodic_tasks_ensure(
        apps,
        cron=settings.OPTIMIZATION_SWEEP_CRON,
        tasks=[(TASK_NAME, "scheduling.optimization_jobs_sweep", DESCRIPTION)],
    )


def remove_schedule(apps, schema_editor):
    periodic_tasks_remove(apps, names=[TASK_NAME])


class Migration(migrations.Migration):
    dependencies = [
        ("scheduling", "0002_optimization_job_claim_and_heartbeat"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
