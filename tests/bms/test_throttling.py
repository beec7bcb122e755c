"""Throttling: per client IP for anonymous callers, per user for authenticated ones -> 429."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from bms.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def low_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    # DRF copies the rates onto the throttle class at import, so the class attribute is what counts.
    monkeypatch.setattr(
        "rest_framework.throttling.SimpleRateThrottle.THROTTLE_RATES", {"anon": "2/minute", "user": "3/minute"}
    )


def test_anonymous_callers_are_throttled_per_ip(low_rates: None) -> None:
    client = APIClient(REMOTE_ADDR="198.51.100.7")
    body = {"username": "x", "password": "y"}
    statuses = [client.post("/api/v1/auth/token", body, format="json").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    response = client.post("/api/v1/auth/token", body, format="json")
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "throttled"
    assert 0 < error["details"]["retry_after_seconds"] <= 60
    assert int(response["Retry-After"]) == error["details"]["retry_after_seconds"]
    # A throttled request never reached authentication: only the two allowed attempts were audited.
    assert AuditEvent.objects.filter(action="login_failed").count() == 2
    other_ip = APIClient(REMOTE_ADDR="198.51.100.8")
    assert other_ip.post("/api/v1/auth/token", body, format="json").status_code == 401


def test_authenticated_callers_are_throttled_per_user(low_rates: None, viewer_client: APIClient, analyst: User) -> None:
    statuses = [viewer_client.get("/api/v1/programs").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert viewer_client.get("/api/v1/programs").json()["error"]["code"] == "throttled"
    other_user = APIClient()
    other_user.force_authenticate(analyst)
    assert other_user.get("/api/v1/programs").status_code == 200


def test_health_is_not_throttled(low_rates: None, client: Any) -> None:
    assert [client.get("/health").status_code for _ in range(5)] == [200] * 5
