"""bms.asgi's HTTP side on a real uvicorn server: one pool of long-lived threads runs Django's stack.

Django's own ASGI handler gives each request a new thread (so a new database connection) and hops
between the event loop and threads per middleware; these tests hold the pooled handler to what a
client and the deployment rely on: answers and errors as before, request ids, streamed exports that
arrive whole, request_started/request_finished per request, and requests served by the pool.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.core.signals import request_finished, request_started

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


def test_requests_run_on_the_pool_and_send_both_signals(server: str, api_key: str) -> None:
    started: list[str] = []
    finished: list[str] = []

    def on_start(**kwargs: Any) -> None:
        started.append(threading.current_thread().name)

    def on_finish(**kwargs: Any) -> None:
        finished.append(threading.current_thread().name)

    request_started.connect(on_start)
    request_finished.connect(on_finish)
    try:
        with httpx.Client(base_url=server, headers={"X-API-Key": api_key}) as client:
            statuses = [client.get("/api/v1/programs").status_code for _ in range(25)]
        deadline = time.monotonic() + 5
        while len(finished) < 25 and time.monotonic() < deadline:  # request_finished follows the send
            time.sleep(0.01)
    finally:
        request_started.disconnect(on_start)
        request_finished.disconnect(on_finish)
    assert statuses == [200] * 25
    assert len(started) == len(finished) == 25
    assert all(name.startswith("django-http") for name in started + finished)
    # 25 requests one after another reuse a thread (and its database connection), not 25 new ones.
    assert len(set(started)) <= 2


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


def test_a_long_request_does_not_hold_up_the_next_one(server: str, settings: Any) -> None:
    """Requests take turns on one thread; one queued behind a long request runs beside it instead."""
    settings.ASGI_QUEUE_WAIT_MS = 50
    release = threading.Event()
    ran_on: dict[str, str] = {}

    def on_start(scope: dict[str, Any], **kwargs: Any) -> None:
        which = scope["query_string"].decode()
        ran_on[which] = threading.current_thread().name
        if which == "long":
            release.wait(10)  # stands for an LLM call or an embedded-mode training run

    request_started.connect(on_start)
    finished: dict[str, float] = {}

    def call(which: str) -> None:
        assert httpx.get(f"{server}/health?{which}", timeout=15).status_code == 200
        finished[which] = time.monotonic()

    try:
        long = threading.Thread(target=call, args=("long",))
        long.start()
        while "long" not in ran_on:
            time.sleep(0.01)
        began = time.monotonic()
        call("short")
        waited = finished["short"] - began
        release.set()
        long.join(timeout=15)
    finally:
        release.set()
        request_started.disconnect(on_start)
    assert ran_on["long"] == "django-http_0"
    assert ran_on["short"].startswith("django-http-overflow")
    assert 0.05 <= waited < 2.0
    assert finished["short"] < finished["long"]


@pytest.fixture
def connection_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[list[str], list[str]]]:
    """Names of the threads that open / close a database connection during the test."""
    from django.db import connections
    from django.db.backends.signals import connection_created

    opened: list[str] = []
    closed: list[str] = []

    def on_open(**kwargs: Any) -> None:
        opened.append(threading.current_thread().name)

    wrapper = type(connections["default"])
    real_close = wrapper.close

    def close(self: Any) -> None:
        if self.connection is not None:
            closed.append(threading.current_thread().name)
        real_close(self)

    monkeypatch.setattr(wrapper, "close", close)
    connection_created.connect(on_open)
    yield opened, closed
    connection_created.disconnect(on_open)


@pytest.mark.parametrize("read_all", [True, False], ids=["read-to-the-end", "client-disconnects"])
def test_a_streamed_export_returns_its_connection_on_its_own_thread(
    server: str,
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
    connection_events: tuple[list[str], list[str]],
    read_all: bool,
) -> None:
    monkeypatch.setattr("programs.export.CHUNK_ROWS", 10)  # many chunks: a disconnect lands mid-stream
    show = factories.program(external_id="STR002", title="Streamed")
    first = datetime(2025, 1, 1, 20, 0, tzinfo=NY)
    for day in range(200):
        factories.airing(program_obj=show, start=first + timedelta(days=day), rating=1.0)
    opened, closed = connection_events
    client = httpx.Client(base_url=server, headers={"X-API-Key": api_key}, timeout=30)
    with client, client.stream("POST", "/api/v1/export", json={"format": "csv", "dataset": "airings"}) as response:
        assert response.status_code == 200
        body = b"".join(response.iter_bytes()) if read_all else next(response.iter_bytes())
    deadline = time.monotonic() + 10
    while not any(name.startswith("django-stream") for name in closed) and time.monotonic() < deadline:
        time.sleep(0.02)
    streams_opened = [name for name in opened if name.startswith("django-stream")]
    streams_closed = [name for name in closed if name.startswith("django-stream")]
    assert len(streams_opened) == 1
    assert streams_closed == streams_opened  # returned by the thread that held it
    if read_all:
        assert body.count(b"\r\n") == 201  # header + 200 rows
