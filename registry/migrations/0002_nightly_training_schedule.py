"""Create (or update) the nightly retraining schedule in django-celery-beat from settings.

NIGHTLY_TRAINING_CRON ("m h dom mon dow", in TIME_ZONE) and NIGHTLY_TRAINING_ENABLED. Re-running
``migrate`` does not change an existing row; edit it in the admin (Periodic tasks) afterwards.
"""

from django.conf import settings
from django.db import migrations

from bms.beat import periodic_tasks_ensure, periodic_tasks_remove

TASK_NAME = "registry: nightly retraining"
DESCRIPTION = "Retrain the 24 models; promotion follows the registry rules."


def create_schedule(apps, schema_editor):
    periodic_tasks_ensure(
        apps,
        cron=settings.NIGHTLY_TRAINING_CRON,
        tasks=[(TASK_NAME, "registry.training_run_nightly", DESCRIPTION)],
        enabled=settings.NIGHTLY_TRAINING_ENABLED,
    )


def remove_schedule(apps, schema_editor):
    periodic_tasks_remove(apps, names=[TASK_NAME])


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
