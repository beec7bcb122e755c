"""The bounded LLM path against providers that hang (a loopback server that never answers in time).

Self-contained: its own hanging server on 127.0.0.1, released when the test ends. With every provider
hanging, a question is answered by the offline agent within the time budget (+1 s), the repeat is a
cache hit, and after enough failures each provider's circuit breaker is open: skipped without a
request, visible in /health/deep and in the ``bms_llm_circuit_state`` metric.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client

from chat.agent import default_models
from chat.services import chat_answer, chat_session_create

BUDGET = 1.0
QUESTION = "top 3 programs by rating"


class HangingLLM:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                outer.requests.append(self.path.strip("/").split("/")[0])
                outer.release.wait(30)  # hang until the test is over
                with suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    def url(self, provider: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{provider}/v1"


@pytest.fixture
def hanging(settings: Any, loopback: None) -> Iterator[HangingLLM]:
    llm = HangingLLM()
    thread = threading.Thread(target=llm.server.serve_forever, daemon=True)
    thread.start()
    for name in ("groq", "gemini", "openrouter"):
        setattr(settings, f"{name.upper()}_API_KEY", f"test-{name}")
        setattr(settings, f"{name.upper()}_BASE_URL", llm.url(name))
    settings.CHAT_TIME_BUDGET_SECONDS = BUDGET
    settings.LLM_TIMEOUT_SECONDS = 30.0
    settings.LLM_MAX_RETRIES = 1
    settings.LLM_BREAKER_FAILURES = 2
    settings.LLM_BREAKER_COOLDOWN_SECONDS = 600.0
    default_models()  # the clients of a running process exist already (building them takes ~1 s)
    try:
        yield llm
    finally:
        llm.release.set()
        llm.server.shutdown()
        llm.server.server_close()


def test_with_every_provider_hanging_the_offline_agent_answers_within_the_budget(
    world: Any, analyst: Any, hanging: HangingLLM
) -> None:
    session = chat_session_create(user=analyst)
    started = time.monotonic()
    first = chat_answer(user=analyst, session_id=session.id, message=QUESTION)
    elapsed = time.monotonic() - started
    assert elapsed <= BUDGET + 1.0
    assert first.metadata["provider"] == "offline"
    assert first.metadata["fallback"]["failures"] == ["groq: timeout", "groq: time budget spent"]
    assert first.response.startswith("Scope: target rating; period: all data; highest first, 3 shown at most.")
    assert "1. Night Watch (NWT001): 4.50" in first.response

    asked = len(hanging.requests)
    again = chat_answer(user=analyst, session_id=session.id, message=QUESTION)
    assert again.metadata["cache_hit"] is True
    assert again.response == first.response
    assert len(hanging.requests) == asked  # the repeat did not wait for any provider


def test_breakers_open_after_failures_skip_the_provider_and_show_in_health_and_metrics(
    world: Any, analyst: Any, hanging: HangingLLM
) -> None:
    session = chat_session_create(user=analyst)
    failures = [
        chat_answer(user=analyst, session_id=session.id, message=f"top {n} programs by revenue").metadata["fallback"][
            "failures"
        ]
        for n in (1, 2, 3, 4)
    ]
    assert failures == [
        ["groq: timeout", "groq: time budget spent"],
        ["groq: timeout", "groq: time budget spent"],  # the second failure in a row opens groq's breaker
        ["groq: circuit open", "gemini: timeout", "gemini: time budget spent"],
        ["groq: circuit open", "gemini: timeout", "gemini: time budget spent"],
    ]
    assert hanging.requests == ["groq", "groq", "gemini", "gemini"]  # an open breaker sends nothing
    health = Client(REMOTE_ADDR="127.0.0.1").get("/health/deep").json()
    assert health["checks"]["llm"]["circuits"] == {
        "gemini": {"state": "open", "failures": 2},
        "groq": {"state": "open", "failures": 2},
    }
    metrics = Client().get("/metrics").content.decode()
    assert 'bms_llm_circuit_state{provider="groq"} 2.0' in metrics
    assert 'bms_llm_circuit_state{provider="gemini"} 2.0' in metrics
