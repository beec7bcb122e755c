"""``bootstrap_demo`` (the first step of ``make run``): each step runs only when its result is missing."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import override_settings

from bms.management.commands import bootstrap_demo
from registry.models import ModelVersion
from tests.registry.factories import version_factory

pytestmark = pytest.mark.django_db


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The commands bootstrap_demo calls (recorded, not run: generating and training take minutes)."""
    called: list[str] = []

    def record(name: str, *args: Any, **kwargs: Any) -> None:
        called.append(name)

    monkeypatch.setattr(bootstrap_demo, "call_command", record)
    return called


@override_settings(DEMO_USERS=True)
def test_an_empty_platform_gets_data_models_and_the_demo_logins(steps: list[str]) -> None:
    call_command("bootstrap_demo")

    assert steps == ["generate_broadcasts", "train_models"]
    admin = User.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password("admin-demo")
    assert list(User.objects.get(username="viewer").groups.values_list("name", flat=True)) == ["viewer"]


@override_settings(DEMO_USERS=False)
def test_existing_production_models_are_not_retrained_and_no_logins_outside_embedded(steps: list[str]) -> None:
    version_factory(status=ModelVersion.Status.PRODUCTION)

    call_command("bootstrap_demo")

    assert steps == ["generate_broadcasts"]
    assert not User.objects.filter(username__in=["admin", "analyst", "viewer"]).exists()
