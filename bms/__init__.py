"""BMS: broadcast analytics platform (Django monolith)."""

from bms.celery import app as celery_app

__all__ = ["celery_app"]
