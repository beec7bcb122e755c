"""Shared fixtures: users per role, API clients, service gates, the network guard.

Tests that need PostgreSQL or Redis are skipped with a reason when the service is not configured;
with ``BMS_REQUIRE_SERVICES=1`` (CI) such a skip becomes a failure instead.

Every test runs under ``tests/sockets.py``: it may connect to the configured services (PostgreSQL,
Redis, MongoDB) and, only when it declares it (``@pytest.mark.loopback`` on the test or its module, or
the ``loopback`` fixture requested by a fixture that starts a local server), to any other port on loopback.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from rest_framework.test import APIClient

from bms.api_key_cache import api_key_cache_clear
from chat.understanding import catalogue_forget
from programs.selectors import channel_time_zones_forget
from tests import sockets

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


def _service_urls() -> list[str]:
    urls = [settings.REDIS_URL, settings.CELERY_BROKER_URL, settings.CELERY_RESULT_BACKEND, settings.MONGO_URL]
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.postgresql":
        urls.append(f"postgres://{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}")
    return [url for url in urls if url]


_services: tuple[frozenset[tuple[str, int]], frozenset[str]] | None = None


def pytest_configure(config: pytest.Config) -> None:
    sockets.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    sockets.uninstall()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    """The test's setup, call and teardown run under its network policy (see tests/sockets.py)."""
    global _services
    if _services is None:
        _services = sockets.endpoints(_service_urls())  # resolved once, outside any test
    endpoints, hosts = _services
    declared = item.get_closest_marker("loopback") is not None or "loopback" in getattr(item, "fixturenames", ())
    policy = sockets.Policy(endpoints, hosts, loopback=declared)
    with sockets.guarded(policy):
        return (yield)


@pytest.fixture(scope="session")  # requested by fixtures of any scope; only its name matters
def loopback() -> None:
    """Declares that the test talks to a server of its own on loopback: a fixture that starts one (an LLM
    stub, a live server) requests this, so every test using it may connect there (tests/sockets.py)."""


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
