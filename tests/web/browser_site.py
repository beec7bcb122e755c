"""Prepare the site the browser tests drive: run as a script in the server's environment.

Migrates a fresh database (its own SQLite file or PostgreSQL database, never the test run's), generates
a small broadcast dataset, trains two fast algorithms per target with tiny hyperparameters through the
registry's own services, makes sure every target has a production model and creates the demo users.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")

import django

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from programs.generator import GeneratorConfig, generate  # noqa: E402
from programs.models import TARGETS  # noqa: E402
from registry.selectors import model_version_list, production_models  # noqa: E402
from registry.services import (  # noqa: E402
    TrainingOptions,
    model_version_promote,
    training_run_execute_inline,
    training_run_start,
)

ALGORITHMS = ["elasticnet", "gradient_boosting"]
TINY_OPTIONS = TrainingOptions(
    hyperparameters={"gradient_boosting": {"max_iter": 25}, "elasticnet": {"max_iter": 2000}}, cv_splits=2
)
PASSWORDS = {"admin": "admin-demo", "analyst": "analyst-demo", "viewer": "viewer-demo"}


def main() -> None:
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    generate(GeneratorConfig(seed=7, channels=2, programs=90, days=42))
    run = training_run_start(trigger="manual", algorithms=ALGORITHMS, options=TINY_OPTIONS, dispatch=False)
    training_run_execute_inline(run=run)
    live = production_models()
    for target in TARGETS:
        if target not in live:  # tiny data may miss the R² threshold; the pages need a live model
            best = max(model_version_list(target=target), key=lambda v: v.r2 if v.r2 is not None else -1e9)
            with transaction.atomic():
                model_version_promote(version=best, actor=None, reason="browser test setup", force=True)
    for name, password in PASSWORDS.items():
        user = User.objects.create_user(username=name, password=password, is_staff=name == "admin")
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    print("prepared", run.pk, sorted(production_models()))


if __name__ == "__main__":
    main()
