"""/health, /health/deep, /metrics, /api/schema and /api/docs."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from bms import health

pytestmark = pytest.mark.django_db
OUTSIDE = "203.0.113.9"


def test_health_is_public_and_cheap(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        response = Client(REMOTE_ADDR=OUTSIDE).get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_deep_health_from_an_internal_address_reports_each_check() -> None:
    response = Client(REMOTE_ADDR="127.0.0.1").get("/health/deep")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {"database", "redis", "disk", "memory"} <= set(body["checks"])
    for name, check in body["checks"].items():
        assert check["ok"] is True, name
        assert isinstance(check["latency_ms"], float), name
        assert check["latency_ms"] >= 0
    assert body["checks"]["database"]["vendor"] in ("sqlite", "postgresql")
    assert 0 < body["checks"]["disk"]["free_ratio"] <= 1


def test_deep_health_refuses_anonymous_outside_callers() -> None:
    response = Client(REMOTE_ADDR=OUTSIDE).get("/health/deep")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "checks" not in response.json()


def test_deep_health_answers_staff_from_outside(admin_user: Any, viewer: Any) -> None:
    session = Client(REMOTE_ADDR=OUTSIDE)
    session.force_login(admin_user)
    assert session.get("/health/deep").status_code == 200
    jwt = APIClient(REMOTE_ADDR=OUTSIDE)
    jwt.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(admin_user).access_token}")
    assert jwt.get("/health/deep").status_code == 200
    not_staff = APIClient(REMOTE_ADDR=OUTSIDE)
    not_staff.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(viewer).access_token}")
    assert not_staff.get("/health/deep").status_code == 403
    bad = APIClient(REMOTE_ADDR=OUTSIDE)
    bad.credentials(HTTP_AUTHORIZATION="Bearer nonsense")
    assert bad.get("/health/deep").status_code == 403


def test_a_failing_check_makes_deep_health_503(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict[str, Any]:
        raise ConnectionError("connection refused")

    monkeypatch.setitem(health.CHECKS, "redis", broken)
    response = Client().get("/health/deep")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["redis"]["error"] == "ConnectionError: connection refused"
    assert body["checks"]["database"]["ok"] is True


def test_deep_health_runs_the_kernel_checks_then_the_apps_checks_the_wiring_registered() -> None:
    body = Client(REMOTE_ADDR="127.0.0.1").get("/health/deep").json()
    kernel = ["database", "redis", "broker", "disk", "memory"]
    assert list(body["checks"]) == [*kernel, "llm", "mongo", "models"]
    assert body["checks"]["mongo"] == {
        "ok": True,
        "configured": False,
        "latency_ms": body["checks"]["mongo"]["latency_ms"],
    }


def test_a_check_naming_something_unavailable_degrades_without_a_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(health.CHECKS, "models", lambda: {"serving": [], "unavailable": {"rating": "missing file"}})
    response = Client(REMOTE_ADDR="127.0.0.1").get("/health/deep")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["models"]["unavailable"] == {"rating": "missing file"}


def test_metrics_answer_in_prometheus_format() -> None:
    Client().get("/health")
    response = Client().get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "django_http_requests_total_by_method_total" in text
    assert "# TYPE bms_data_version gauge" in text


def test_schema_and_docs_answer() -> None:
    schema = Client().get("/api/schema", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/programs", "/api/v1/programs/{key}", "/api/v1/export", "/api/v1/auth/token"} <= set(paths)
    docs = Client().get("/api/docs")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
    # Served from our static files (drf-spectacular-sidecar), so the docs work without internet.
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs.content
    assert b"cdn.jsdelivr.net" not in docs.content
