"""Shared fixtures: users per role, API clients, service gates.

Tests that need PostgreSQL or Redis are skipped with a reason when the service is not configured;
with ``BMS_REQUIRE_SERVICES=1`` (CI) such a skip becomes a failure instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from rest_framework.test import APIClient

from bms.api_key_cache import api_key_cache_clear
from chat.understanding import catalogue_forget
from programs.selectors import channel_time_zones_forget

REQUIRE_SERVICES = os.environ.get("BMS_REQUIRE_SERVICES") == "1"


def _gate(item: pytest.Item, marker: str, available: bool, why: str) -> None:
    if item.get_closest_marker(marker) is None or available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{why} (BMS_REQUIRE_SERVICES=1 forbids skipping)", pytrace=False)
    pytest.skip(why)


def pytest_runtest_setup(item: pytest.Item) -> None:
    is_postgres = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    _gate(item, "postgres", is_postgres, "needs PostgreSQL: set DATABASE_URL")
    _gate(item, "redis", bool(settings.REDIS_URL), "needs Redis: set REDIS_URL")
    _gate(item, "celery_worker", bool(settings.REDIS_URL), "needs a broker for a real worker: set REDIS_URL")


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Celery runs tasks in the calling process, as in the embedded mode, even when REDIS_URL configures a
    broker (CI): these tests have no worker to read the queue."""
    from bms.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    cache.clear()
    api_key_cache_clear()
    channel_time_zones_forget()
    catalogue_forget()
    yield
    cache.clear()
    api_key_cache_clear()
    channel_time_zones_forget()
    catalogue_forget()


def make_user(username: str, role: str | None) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username, email=f"{username}@example.com")
    if role is not None:
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    if role == "admin":
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return user


@pytest.fixture
def viewer(db: Any) -> User:
    return make_user("viewer", "viewer")


@pytest.fixture
def analyst(db: Any) -> User:
    return make_user("analyst", "analyst")


@pytest.fixture
def admin_user(db: Any) -> User:
    return make_user("admin", "admin")


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user=user)
    return client


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def viewer_client(viewer: User) -> APIClient:
    return client_for(viewer)


@pytest.fixture
def analyst_client(analyst: User) -> APIClient:
    return client_for(analyst)


@pytest.fixture
def admin_client_api(admin_user: User) -> APIClient:
    return client_for(admin_user)
