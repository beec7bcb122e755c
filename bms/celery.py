"""Celery application. Configuration comes from Django settings (``CELERY_*``)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")

app = Celery("bms")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

import bms.celery_metrics  # noqa: E402,F401  (task outcome counters, queue depth, worker /metrics)
