"""Nightly drift check and A/B scoring in django-celery-beat (cron from DRIFT_CHECK_CRON, TIME_ZONE).

Re-running ``migrate`` does not change existing rows; edit them in the admin (Periodic tasks).
"""

from django.conf import settings
from django.db import migrations

from bms.beat import periodic_tasks_ensure, periodic_tasks_remove

TASKS = (
    ("predictions: nightly drift check", "predictions.drift_check", "Drift report per target (PSI / KS, accuracy)."),
    ("predictions: A/B scoring", "predictions.ab_tests_score", "Score active A/B tests on imported actual values."),
)


def create_schedule(apps, schema_editor):
    periodic_tasks_ensure(apps, cron=settings.DRIFT_CHECK_CRON, tasks=TASKS)


def remove_schedule(apps, schema_editor):
    periodic_tasks_remove(apps, names=[t[0] for t in TASKS])


class Migration(migrations.Migration):
    dependencies = [
        ("predictions", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
