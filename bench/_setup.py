"""What the serving benches start from (bench/predict.py, bench/load.py): generated data, trained models, a
production model per target and an analyst's API key. Made on a script's first run in its own database and
reused on later runs; called after ``django.setup()``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def serving_env(var: Path) -> dict[str, str]:
    """The environment of a bench's server processes: this one's, minus the services (SQLite under ``var``),
    with the bench endpoints on, throttles off, warnings-only logs and the server warm-up of production."""
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MONGO_URL"}
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bms.settings",
            "BMS_VAR_DIR": str(var),
            "ARTIFACT_ROOT": str(var / "artifacts"),
            "BMS_BENCH_ENDPOINTS": "1",
            "THROTTLE_USER": "100000000/minute",
            "LOG_LEVEL": "WARNING",
            "BMS_DEMO_USERS": "0",
            "PREDICTION_LOG_BACKGROUND": "1",
            "SERVER_WARM_UP": "1",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


@dataclass(frozen=True)
class ServingData:
    """How much to generate and train on a first run (seed 42, no cross-validation)."""

    channels: int
    programs: int
    days: int
    algorithms: Sequence[str] | None = None  # None: all six


def serving_data_prepare(data: ServingData, *, username: str) -> str:
    """Migrate; generate and train if the database has none; promote; return a new API key of ``username``.

    A target without a production model gets its best version by R² promoted with ``force``: these benches
    measure serving cost, not model quality, so the baseline guard is overridden on purpose.
    """
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from bms.services import api_key_create
    from programs.generator import generate
    from programs.models import TARGETS, Program
    from registry.models import ModelVersion
    from registry.selectors import production_models
    from registry.services import (
        TrainingOptions,
        model_version_promote,
        training_run_execute_inline,
        training_run_start,
    )

    call_command("migrate", verbosity=0)
    if not Program.objects.exists():
        print("generating data ...", flush=True)
        generate(seed=42, channels=data.channels, programs=data.programs, days=data.days)
    if not ModelVersion.objects.exists():
        print(f"training {', '.join(data.algorithms or ['all algorithms'])} for every target (once) ...", flush=True)
        started = time.perf_counter()
        run = training_run_start(
            trigger="manual", algorithms=data.algorithms, options=TrainingOptions(cv_splits=0), dispatch=False
        )
        training_run_execute_inline(run=run)
        print(f"  trained in {time.perf_counter() - started:.0f} s", flush=True)
    production = production_models()
    for target in TARGETS:
        versions = list(ModelVersion.objects.filter(target=target))
        if target not in production and versions:
            best = max(versions, key=lambda v: v.r2 or -1e9)
            model_version_promote(version=best, actor=None, reason="bench: best available", force=True)
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User.objects.create_user(username, password=f"{username}-pw-not-secret")
        user.groups.add(Group.objects.get_or_create(name="analyst")[0])
    _, raw_key = api_key_create(user=user, name=f"{username} {time.time():.0f}")
    return raw_key
