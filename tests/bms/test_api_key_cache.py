"""API keys are looked up once per API_KEY_CACHE_SECONDS per process; a revocation is seen at once."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from bms.models import ApiKey
from bms.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


def _get(raw: str, path: str = "/api/v1/programs") -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        status = APIClient().get(path, HTTP_X_API_KEY=raw).status_code
    return status, [q["sql"] for q in queries.captured_queries]


def _auth_queries(sql: list[str]) -> list[str]:
    return [q for q in sql if "bms_apikey" in q or "auth_user_groups" in q]


def test_the_second_request_does_not_look_the_key_up_again(viewer: User, clock: _Clock) -> None:
    _, raw = api_key_create(user=viewer, name="etl")
    first, first_sql = _get(raw)
    second, second_sql = _get(raw)
    assert (first, second) == (200, 200)
    assert len(_auth_queries(first_sql)) >= 2  # the key with its user, then the user's groups (the role)
    assert _auth_queries(second_sql) == []


def test_revoking_a_key_refuses_it_at_once_even_when_cached(viewer: User, clock: _Clock) -> None:
    key, raw = api_key_create(user=viewer, name="etl")
    assert _get(raw)[0] == 200
    api_key_revoke(key=key)
    assert _get(raw)[0] == 401


def test_another_process_change_is_seen_after_the_ttl(viewer: User, clock: _Clock, settings: Any) -> None:
    settings.API_KEY_CACHE_SECONDS = 5
    _, raw = api_key_create(user=viewer, name="etl")
    assert _get(raw)[0] == 200
    User.objects.filter(pk=viewer.pk).update(is_active=False)  # as another process would
    clock.now += 4.9
    assert _get(raw)[0] == 200
    clock.now += 0.2
    assert _get(raw)[0] == 401


def test_a_new_role_is_seen_after_the_ttl(viewer: User, clock: _Clock, settings: Any) -> None:
    settings.API_KEY_CACHE_SECONDS = 5
    _, raw = api_key_create(user=viewer, name="etl")
    assert _get(raw)[0] == 200  # looked up (and cached) as a viewer
    viewer.groups.set([Group.objects.get_or_create(name="analyst")[0]])
    status_before, _ = _get(raw, "/api/v1/predict/batch")
    clock.now += 4.9
    status_still, _ = _get(raw, "/api/v1/predict/batch")
    clock.now += 0.2
    status_after, _ = _get(raw, "/api/v1/predict/batch")
    assert (status_before, status_still, status_after) == (
        403,
        403,
        405,
    )  # the analyst role reaches the view (GET: 405)


def test_zero_seconds_turns_the_cache_off(viewer: User, clock: _Clock, settings: Any) -> None:
    settings.API_KEY_CACHE_SECONDS = 0
    _, raw = api_key_create(user=viewer, name="etl")
    _get(raw)
    assert len(_auth_queries(_get(raw)[1])) >= 2


def test_each_request_gets_its_own_user_object(viewer: User, clock: _Clock) -> None:
    from bms.auth import ApiKeyAuthentication

    _, raw = api_key_create(user=viewer, name="etl")

    class _Req:
        META = {"HTTP_X_API_KEY": raw}

    first_user, first_key = ApiKeyAuthentication().authenticate(_Req())  # type: ignore[misc, arg-type]
    first_user.marker = "set by a view"  # type: ignore[union-attr]  # what a view may do: not a field of User
    second_user, second_key = ApiKeyAuthentication().authenticate(_Req())  # type: ignore[misc, arg-type]
    assert second_user is not first_user
    assert not hasattr(second_user, "marker")
    assert second_user.pk == viewer.pk
    assert second_key.pk == first_key.pk == ApiKey.objects.get().pk
