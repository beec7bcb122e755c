"""bms.asgi's HTTP side on a real uvicorn server (Django's standard ASGI handler).

Production sends HTTP to gunicorn (bms.wsgi; tests/ops and tests/reliability start it); uvicorn answers
HTTP for the health probes of the WebSocket service and for everything in `make run`. These hold it to
what a client relies on there: answers and errors as under WSGI, request ids, streamed exports that
arrive whole.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from bms.services import api_key_create
from tests.conftest import make_user
from tests.live import asgi_server
from tests.programs import factories

pytestmark = [pytest.mark.live_server, pytest.mark.django_db(transaction=True)]
NY = ZoneInfo("America/New_York")


@pytest.fixture
def server(loopback: None) -> Iterator[str]:
    with asgi_server() as url:
        yield url


@pytest.fixture
def api_key(db: Any) -> str:
    return api_key_create(user=make_user("etl", "analyst"), name="etl")[1]


def test_answers_errors_and_request_ids(server: str, api_key: str) -> None:
    factories.program(external_id="HAN001", title="Handler Hour")
    with httpx.Client(base_url=server, headers={"X-API-Key": api_key}) as client:
        ok = client.get("/api/v1/programs", headers={"X-Request-ID": "trace-123"})
        bad = client.post("/api/v1/predict", content=b"{nope", headers={"Content-Type": "application/json"})
        anonymous = httpx.get(f"{server}/api/v1/programs")
    assert ok.status_code == 200
    assert ok.headers["X-Request-ID"] == "trace-123"
    assert [p["external_id"] for p in ok.json()["results"]] == ["HAN001"]
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "parse_error"
    assert len(bad.headers["X-Request-ID"]) == 32
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"


def test_a_streamed_export_arrives_whole(server: str, api_key: str) -> None:
    show = factories.program(external_id="STR001", title="Streamed")
    first = datetime(2025, 1, 1, 20, 0, tzinfo=NY)
    for day in range(300):
        factories.airing(program_obj=show, start=first + timedelta(days=day), rating=1.0 + day / 100)
    with httpx.Client(base_url=server, headers={"X-API-Key": api_key}, timeout=30) as client:
        response = client.post("/api/v1/export", json={"format": "csv", "dataset": "airings"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 300
    assert [float(r["rating"]) for r in rows] == [1.0 + d / 100 for d in range(300)]
