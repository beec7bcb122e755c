"""Celery application. Configuration comes from Django settings (``CELERY_*``)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")

# BmsTask: in the embedded mode (no broker) tasks run on background threads, not inside the request.
app = Celery("bms", task_cls="bms.jobs:BmsTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

import bms.celery_metrics  # noqa: E402,F401  (task outcome counters, queue depth, worker /metrics)
