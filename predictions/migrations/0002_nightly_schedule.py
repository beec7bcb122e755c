"""Nightly drift check and A/B scoring in django-celery-beat (cron from DRIFT_CHECK_CRON, TIME_ZONE).

Re-running ``migrate`` does not change existing rows; edit them in the admin (Periodic tasks).
"""

from django.conf import settings
from django.db import migrations

TASKS = (
    ("predictions: nightly drift check", "predictions.drift_check", "Drift report per target (PSI / KS, accuracy)."),
    ("predictions: A/B scoring", "predictions.ab_tests_score", "Score active A/B tests on imported actual values."),
)


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    minute, hour, day_of_month, month_of_year, day_of_week = settings.DRIFT_CHECK_CRON.split()
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=settings.TIME_ZONE,
    )
    for name, task, description in TASKS:
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "crontab": crontab, "enabled": True, "description": description}
        )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[t[0] for t in TASKS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("predictions", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
