"""Periodic tasks in django-celery-beat, created by data migrations from settings.

Takes the migration's ``apps`` (historical models), so migrations can call it. Re-running ``migrate``
does not change an existing row; edit it in the admin (Periodic tasks) afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.apps.registry import Apps
from django.conf import settings


def periodic_tasks_ensure(
    apps: Apps, *, cron: str, tasks: Iterable[tuple[str, str, str]], enabled: bool = True
) -> None:
    """Create each ``(name, task, description)`` on the crontab ``cron`` ("m h dom mon dow", TIME_ZONE)."""
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    minute, hour, day_of_month, month_of_year, day_of_week = cron.split()
    crontab, _ = crontab_model.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=settings.TIME_ZONE,
    )
    for name, task, description in tasks:
        task_model.objects.get_or_create(
            name=name, defaults={"task": task, "crontab": crontab, "enabled": enabled, "description": description}
        )


def periodic_tasks_remove(apps: Apps, *, names: Iterable[str]) -> None:
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=list(names)).delete()
