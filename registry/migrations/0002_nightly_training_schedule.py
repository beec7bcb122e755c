"""Create (or update) the nightly retraining schedule in django-celery-beat from settings.

NIGHTLY_TRAINING_CRON ("m h dom mon dow", in TIME_ZONE) and NIGHTLY_TRAINING_ENABLED. Re-running
``migrate`` does not change an existing row; edit it in the admin (Periodic tasks) afterwards.
"""

from django.conf import settings
from django.db import migrations

TASK_NAME = "registry: nightly retraining"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    minute, hour, day_of_month, month_of_year, day_of_week = settings.NIGHTLY_TRAINING_CRON.split()
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "registry.training_run_nightly",
            "crontab": crontab,
            "enabled": settings.NIGHTLY_TRAINING_ENABLED,
            "description": "Retrain the 24 models; promotion follows the registry rules.",
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
