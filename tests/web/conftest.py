"""Page-test fixtures: Django test clients logged in per role (session auth, like a browser)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.web.factories import Broadcasts, broadcast_data


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer_web(viewer: User) -> Client:
    return _client(viewer)


@pytest.fixture
def analyst_web(analyst: User) -> Client:
    return _client(analyst)


@pytest.fixture
def admin_web(admin_user: User) -> Client:
    return _client(admin_user)


@pytest.fixture
def broadcasts(db: Any) -> Broadcasts:
    return broadcast_data()
