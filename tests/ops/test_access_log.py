"""The access log middleware: one record per request with request id, user id, status and latency."""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from bms.logging import JsonFormatter, RequestIdFilter


def _access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bms.access"]


@pytest.mark.django_db
def test_an_authenticated_api_request_logs_its_user_status_latency_and_request_id(
    analyst_client: APIClient, analyst: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bms.access")

    response = analyst_client.get("/api/v1/programs", HTTP_X_REQUEST_ID="req-123")

    assert response.status_code == 200
    [record] = _access_records(caplog)
    assert record.levelno == logging.INFO
    assert record.method == "GET"  # type: ignore[attr-defined]
    assert record.path == "/api/v1/programs"  # type: ignore[attr-defined]
    assert record.view == "program-list"  # type: ignore[attr-defined]
    assert record.status == 200  # type: ignore[attr-defined]
    assert record.user_id == analyst.pk  # type: ignore[attr-defined]
    assert record.latency_ms >= 0  # type: ignore[attr-defined]
    assert record.getMessage().startswith("GET /api/v1/programs 200 ")
    # The JSON formatter puts every field on the line, with the request id the filter attaches.
    RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["user_id"] == analyst.pk
    assert line["status"] == 200
    assert line["logger"] == "bms.access"
    assert set(line) >= {"ts", "level", "message", "request_id", "latency_ms", "user_id", "method", "path"}


@pytest.mark.django_db
def test_the_request_id_is_on_the_access_record_and_the_response(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bms.access")
    seen: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            RequestIdFilter().filter(record)
            seen.append(record.request_id)  # type: ignore[attr-defined]

    handler = Capture()
    logging.getLogger("bms.access").addHandler(handler)
    try:
        response = APIClient().get("/api/v1/programs", HTTP_X_REQUEST_ID="abc-42")
    finally:
        logging.getLogger("bms.access").removeHandler(handler)

    assert response.status_code == 401
    assert response["X-Request-ID"] == "abc-42"
    assert seen == ["abc-42"]
    [record] = _access_records(caplog)
    assert record.user_id is None  # type: ignore[attr-defined]
    assert record.status == 401  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_djangos_own_warning_for_a_4xx_carries_the_request_id(analyst_client: APIClient) -> None:
    seen: list[tuple[str, str]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            RequestIdFilter().filter(record)
            seen.append((record.getMessage(), record.request_id))  # type: ignore[attr-defined]

    handler = Capture()
    logging.getLogger("django.request").addHandler(handler)
    try:
        response = analyst_client.delete("/api/v1/predict", HTTP_X_REQUEST_ID="late-7")
    finally:
        logging.getLogger("django.request").removeHandler(handler)
    assert response.status_code == 405
    assert seen == [("Method Not Allowed: /api/v1/predict", "late-7")]
    from bms.logging import request_id_var

    assert request_id_var.get() == "-"  # reset when the response was closed


@pytest.mark.django_db
def test_health_probes_log_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bms.access")

    assert Client().get("/health").status_code == 200

    [record] = _access_records(caplog)
    assert record.levelno == logging.DEBUG
    assert record.view == "health"  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_unknown_paths_log_without_a_view(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bms.access")

    response = Client().get("/definitely/not/here")

    [record] = _access_records(caplog)
    assert record.status == response.status_code == 404  # type: ignore[attr-defined]
    assert record.view is None  # type: ignore[attr-defined]
