"""Every 4xx/5xx comes back as {"error": {"code", "message", "details"}}, checked on real endpoints."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from bms.errors import PayloadTooLargeError
from bms.models import AuditEvent
from bms.parsers import JSONParser

pytestmark = pytest.mark.django_db


def _error(response: Any) -> dict[str, Any]:
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


def _post_raw(client: Any, path: str, body: str | bytes, content_type: str = "application/json") -> Any:
    return client.post(path, data=body, content_type=content_type)


@pytest.mark.parametrize("body", ['{"format": "csv"', "not json", "{'format': 'csv'}", '{"format": NaN}'])
def test_malformed_json_is_400(analyst_client: APIClient, body: str) -> None:
    response = _post_raw(analyst_client, "/api/v1/export", body)
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "parse_error"
    assert error["message"].startswith("JSON parse error")
    assert AuditEvent.objects.count() == 0


def test_malformed_json_on_the_public_token_endpoint_is_400() -> None:
    response = _post_raw(APIClient(), "/api/v1/auth/token", "{")
    assert response.status_code == 400
    assert _error(response)["code"] == "parse_error"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/export", {"format": 5}, "format"),
        ("/api/v1/export", {"format": ["csv"]}, "format"),
        ("/api/v1/export", {"format": "csv", "dataset": None}, "dataset"),
        ("/api/v1/export", {"format": "csv", "filters": [1, 2]}, "filters"),
        ("/api/v1/auth/token", {"username": ["a"], "password": {"b": 1}}, "username"),
    ],
)
def test_wrong_types_are_400_with_field_details(analyst_client: APIClient, path: str, body: Any, field: str) -> None:
    response = analyst_client.post(path, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "validation_error"
    assert field in error["details"]
    assert error["message"].startswith(f"{field}: ")


def test_wrong_query_parameter_types_are_400(viewer_client: APIClient) -> None:
    response = viewer_client.get("/api/v1/programs/X/trends", {"start": "yesterday"})
    assert response.status_code == 404  # the program is resolved first
    response = viewer_client.get("/api/v1/programs", {"ordering": ["-title", "3"]})
    assert response.status_code == 400
    assert "ordering" in _error(response)["details"]


def test_huge_payload_is_413(analyst_client: APIClient, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"format": "csv", "filters": {"genre": "x" * 2000}})
    response = _post_raw(analyst_client, "/api/v1/export", body)
    assert response.status_code == 413
    error = _error(response)
    assert error == {
        "code": "payload_too_large",
        "message": "Request body is larger than 1000 bytes.",
        "details": {"max_bytes": 1000},
    }
    assert AuditEvent.objects.count() == 0
    # Just under the limit is parsed normally (and here rejected for its content, not its size).
    small = json.dumps({"format": "csv", "filters": {"genre": "x" * 900}})
    assert _post_raw(analyst_client, "/api/v1/export", small).status_code == 400


def test_huge_payload_is_413_with_the_default_limit(analyst_client: APIClient, settings: Any) -> None:
    body = json.dumps({"format": "csv", "filters": {"genre": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)}})
    response = _post_raw(analyst_client, "/api/v1/export", body)
    assert response.status_code == 413
    assert _error(response)["code"] == "payload_too_large"


def test_parser_limits_a_body_without_content_length(settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    with pytest.raises(PayloadTooLargeError):
        JSONParser().parse(io.BytesIO(b'{"a": "' + b"x" * 200 + b'"}'), parser_context={})
    assert JSONParser().parse(io.BytesIO(b'{"a": 1}'), parser_context={}) == {"a": 1}


def test_unsupported_media_type_is_415(analyst_client: APIClient) -> None:
    response = _post_raw(analyst_client, "/api/v1/export", "format=csv", content_type="text/plain")
    assert response.status_code == 415
    assert _error(response)["code"] == "unsupported_media_type"


def test_wrong_method_is_405(analyst_client: APIClient) -> None:
    response = analyst_client.get("/api/v1/export")
    assert response.status_code == 405
    assert _error(response)["code"] == "method_not_allowed"


def test_unknown_paths_are_404_json() -> None:
    assert _error(Client().get("/api/v1/no-such-thing"))["code"] == "not_found"


def test_unexpected_exceptions_are_500_in_the_error_format(viewer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(**kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("programs.selectors.program_list", boom)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(viewer)
    response = client.get("/api/v1/programs")
    assert response.status_code == 500
    error = _error(response)
    assert error == {"code": "server_error", "message": "Internal server error.", "details": {}}
    assert b"secret internals" not in response.content


def test_too_large_body_on_a_plain_django_view_is_413(admin_user: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.post("/admin/bms/apikey/add/", {"name": "x" * 500})
    assert response.status_code == 413
    assert _error(response)["code"] == "payload_too_large"


@pytest.mark.parametrize("depth", [33, 5_000, 200_000])
def test_deeply_nested_json_is_400_even_unauthenticated(depth: int) -> None:
    # 5,000 and 200,000 levels make Python's decoder raise RecursionError; 33 is one over JSON_MAX_DEPTH.
    body = '{"username": ' + "[" * depth + "]" * depth + ', "password": "x"}'
    response = Client().post("/api/v1/auth/token", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "parse_error",
        "message": "JSON parse error - nested deeper than 32 levels.",
        "details": {},
    }
    assert not AuditEvent.objects.exists()  # refused before authentication


def test_json_nested_to_the_limit_is_parsed(analyst_client: APIClient) -> None:
    # 32 levels counting the body object itself: accepted by the parser, then refused by the serializer.
    nested: Any = 0
    for _ in range(30):
        nested = [nested]
    response = analyst_client.post(
        "/api/v1/predict", {"program_id": 1, "target": "rating", "features": nested}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
