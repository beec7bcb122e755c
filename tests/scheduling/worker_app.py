"""Celery app of the end-to-end test's worker: the real app, with the value provider swapped for the fake
before each task (the worker has no trained models)."""

from __future__ import annotations

from typing import Any

from celery.signals import task_prerun

from bms.celery import app

__all__ = ["app"]


@task_prerun.connect
def _fake_values(**_: Any) -> None:
    import scheduling.matrices
    from tests.scheduling.fake_values import fake_value_matrices

    scheduling.matrices.value_matrices = fake_value_matrices
