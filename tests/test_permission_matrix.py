"""Every endpoint x every caller (anonymous, viewer, analyst, admin) -> expected status.

ONE table, ONE test. Callers authenticate for real (a JWT ``Authorization: Bearer`` header), so the
whole authentication stack is exercised, not ``force_authenticate``.

OTHER ENGINEERS: append a ``Row(...)`` to ``MATRIX`` for each endpoint you add (keep one row per
method + path). A row says the lowest role that may call it (``public`` / ``viewer`` / ``analyst`` /
``admin``) and what a caller with enough role gets (``ok``: an exact status or ``"2xx"``). Callers
below that role get 401 (anonymous) or 403 (authenticated). Keep rows cheap: a body that fails
validation (``ok=400``) or a missing id (``ok=404``) proves the permission check passed without
running a training or a GA. Data a row needs goes into ``matrix_data`` below (small, fixed ids).
``overrides`` maps a caller to an exact expectation when the rule above does not fit. Pages
(``page=True``) are called with a session instead of a JWT, and anonymous callers expect a 302 to
/login/.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.conftest import make_user
from tests.programs.factories_api import airing_factory, channel_factory, program_factory

CALLERS = ("anonymous", "viewer", "analyst", "admin")
_RANK = {"public": 0, "viewer": 1, "analyst": 2, "admin": 3}
_CALLER_RANK = {"anonymous": 0, "viewer": 1, "analyst": 2, "admin": 3}


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    min_role: str  # public | viewer | analyst | admin
    body: Any = None
    ok: int | str = "2xx"
    overrides: dict[str, int | str] = field(default_factory=dict)
    # Server-rendered pages: callers sign in with a session cookie, and anonymous callers are
    # redirected to the login page (302) instead of getting 401.
    page: bool = False

    def expected(self, caller: str) -> int | str:
        if caller in self.overrides:
            return self.overrides[caller]
        if _CALLER_RANK[caller] >= _RANK[self.min_role]:
            return self.ok
        if caller == "anonymous":
            return 302 if self.page else 401
        return 403


MATRIX: list[Row] = [
    # --- platform (bms) ---
    Row("GET", "/health", "public", ok=200),
    # The test client calls from 127.0.0.1, an internal network: deep health answers everyone there.
    Row("GET", "/health/deep", "public", ok=200),
    Row("GET", "/metrics", "public", ok=200),
    Row("GET", "/api/schema", "public", ok=200),
    Row("GET", "/api/docs", "public", ok=200),
    # Token endpoints are open to everyone; bad credentials are 401 whoever asks.
    Row("POST", "/api/v1/auth/token", "public", body={"username": "nobody", "password": "x"}, ok=401),
    Row("POST", "/api/v1/auth/token/refresh", "public", body={"refresh": "not-a-token"}, ok=401),
    # --- programs ---
    Row("GET", "/api/v1/programs", "viewer", ok=200),
    Row("GET", "/api/v1/programs?genre=drama&ordering=-avg_rating", "viewer", ok=200),
    Row("GET", "/api/v1/programs/MTX001", "viewer", ok=200),
    Row("GET", "/api/v1/programs/NOPE999", "viewer", ok=404),
    Row("GET", "/api/v1/programs/MTX001/trends?target=rating", "viewer", ok=200),
    Row("POST", "/api/v1/export", "analyst", body={"format": "csv", "dataset": "airings"}, ok=200),
    Row("POST", "/api/v1/export", "analyst", body={"format": "pdf", "dataset": "airings"}, ok=400),
    # --- append rows for registry / predictions / scheduling / chat / web below ---
    # --- predictions (bodies that stop before any model is needed) ---
    Row("POST", "/api/v1/predict", "analyst", body={"program_id": "NOPE999", "target": "rating"}, ok=404),
    Row("POST", "/api/v1/predict/batch", "analyst", body={"items": []}, ok=400),
    Row("GET", "/api/v1/ab-tests", "analyst", ok=200),
    Row("GET", "/api/v1/ab-tests/999999", "analyst", ok=404),
    Row("GET", "/api/v1/drift-reports", "analyst", ok=200),
    Row("GET", "/api/v1/drift-reports/999999", "analyst", ok=404),
    # --- scheduling (an unknown channel / job id stops before any GA runs) ---
    Row("POST", "/api/v1/schedules/optimize", "analyst", body={"channel": "nope", "date": "2025-03-08"}, ok=400),
    Row("GET", "/api/v1/schedules/jobs/999999", "analyst", ok=404),
    Row("POST", "/api/v1/schedules/jobs/999999/cancel", "analyst", ok=404),
    Row("POST", "/api/v1/schedules/jobs/999999/save", "analyst", body={"name": "x"}, ok=404),
    # --- chat (an unknown session id is 404 once the role check has passed) ---
    Row("POST", "/api/v1/sessions/create", "analyst", body={}, ok=201),
    Row(
        "POST",
        "/api/v1/chat",
        "analyst",
        body={"message": "top 5 programs by rating", "session_id": "00000000-0000-4000-8000-000000000000"},
        ok=404,
    ),
    Row("POST", "/api/v1/chat/history", "analyst", body={"session_id": "00000000-0000-4000-8000-000000000000"}, ok=404),
    Row("GET", "/api/v1/llm/cache/stats", "viewer", ok=200),
    Row("GET", "/api/v1/llm/tokens/usage", "viewer", ok=200),
    Row("GET", "/api/v1/exports/not-a-signed-token", "viewer", ok=404),
    # --- registry (unknown ids/targets and invalid bodies: no training, no promotion happens) ---
    Row("GET", "/api/v1/models", "viewer", ok=200),
    Row("GET", "/api/v1/models/production", "viewer", ok=200),
    Row("GET", "/api/v1/models/likes/best", "viewer", ok=400),
    Row("POST", "/api/v1/models/999999/promote", "admin", body={"reason": "matrix"}, ok=404),
    Row("POST", "/api/v1/models/rating/rollback", "admin", body={}, ok=400),
    Row("POST", "/api/v1/training-runs", "admin", body={"targets": ["likes"]}, ok=400),
    Row("GET", "/api/v1/training-runs/999999", "viewer", ok=404),
    # --- web pages (session login; cheap GETs, unknown ids, POST-only views answered 405 after the role check) ---
    # Signed-in users are sent on from the login page.
    Row("GET", "/login/", "public", ok=200, page=True, overrides={"viewer": 302, "analyst": 302, "admin": 302}),
    Row("POST", "/logout/", "public", ok=302, page=True),
    Row("GET", "/", "viewer", ok=200, page=True),
    # Django admin is for staff (the admin role); everyone else is sent to the admin login page.
    Row("GET", "/admin/", "admin", ok=200, page=True, overrides={"viewer": 302, "analyst": 302}),
    Row("GET", "/programs/", "viewer", ok=200, page=True),
    Row("GET", "/programs/MTX001/", "viewer", ok=200, page=True),
    Row("POST", "/programs/MTX001/predict", "analyst", ok=400, page=True),  # empty form
    Row("GET", "/models/", "viewer", ok=200, page=True),
    Row("GET", "/models/999999/promote", "admin", ok=404, page=True),
    Row("GET", "/models/rollback/rating", "admin", ok=200, page=True),
    Row("GET", "/models/train", "admin", ok=405, page=True),
    Row("GET", "/models/runs/999999/", "viewer", ok=404, page=True),
    Row("GET", "/models/runs/999999/status", "viewer", ok=404, page=True),
    Row("GET", "/schedule/", "analyst", ok=200, page=True),
    Row("GET", "/schedule/jobs/999999/", "analyst", ok=404, page=True),
    Row("GET", "/schedule/jobs/999999/status", "analyst", ok=404, page=True),
    Row("POST", "/schedule/jobs/999999/save", "analyst", ok=404, page=True),
    Row("GET", "/schedule/jobs/999999/export.csv", "analyst", ok=404, page=True),
    Row("GET", "/chat/", "analyst", ok=200, page=True),
    Row("GET", "/chat/new", "analyst", ok=405, page=True),
    Row("GET", "/chat/00000000-0000-4000-8000-000000000000/", "analyst", ok=404, page=True),
    Row("GET", "/monitoring/", "admin", ok=200, page=True),
    Row("GET", "/monitoring/workers", "admin", ok=200, page=True),
]


@pytest.fixture
def matrix_data(db: Any) -> None:
    channel = channel_factory(code="mtx")
    program = program_factory(external_id="MTX001", channel=channel, genre="drama")
    airing_factory(program=program)


def _client_for(caller: str, *, page: bool) -> APIClient:
    client = APIClient()
    if caller == "anonymous":
        return client
    role = caller
    user = User.objects.filter(username=f"mtx-{role}").first() or make_user(f"mtx-{role}", role)
    if page:
        client.force_login(user)  # a real session, as a browser has after /login/
    else:
        access = RefreshToken.for_user(user).access_token
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def _matches(status: int, expected: int | str) -> bool:
    if isinstance(expected, int):
        return status == expected
    return str(status)[0] == expected[0]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r.method} {r.path}")
@pytest.mark.usefixtures("matrix_data")
def test_permission_matrix(row: Row, caller: str) -> None:
    client = _client_for(caller, page=row.page)
    response = client.generic(
        row.method,
        row.path,
        data="" if row.body is None else json.dumps(row.body),
        content_type="application/json",
    )
    expected = row.expected(caller)
    assert _matches(response.status_code, expected), (
        f"{caller} {row.method} {row.path}: got {response.status_code}, expected {expected}"
    )
    if response.status_code in (401, 403) and row.path.startswith("/api/v1/"):
        assert set(response.json()["error"]) == {"code", "message", "details"}
    if response.status_code == 302 and row.page and caller == "anonymous" and row.min_role != "public":
        assert "/login/" in response["Location"]
