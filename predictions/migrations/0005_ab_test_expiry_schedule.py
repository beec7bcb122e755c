"""A/B tests end by themselves at ends_at: the expiry task in django-celery-beat (AB_TEST_EXPIRE_CRON)."""

from django.conf import settings
from django.db import migrations

from bms.beat import periodic_tasks_ensure, periodic_tasks_remove

TASKS = (
    (
        "predictions: A/B test expiry",
        "predictions.ab_tests_expire",
        "End the A/B tests whose ends_at passed and score them a last time.",
    ),
)


def create_schedule(apps, schema_editor):
    periodic_tasks_ensure(apps, cron=settings.AB_TEST_EXPIRE_CRON, tasks=TASKS)


def remove_schedule(apps, schema_editor):
    periodic_tasks_remove(apps, names=[t[0] for t in TASKS])


class Migration(migrations.Migration):
    dependencies = [
        ("predictions", "0004_abtest_end"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
