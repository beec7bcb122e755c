"""Provider chain against a loopback OpenAI-compatible stub: 429/500/timeouts fall back, bounded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chat.providers import provider_chain
from chat.services import chat_answer, chat_session_create
from tests.chat.stub_llm import StubLLM, running_stub, text_reply, tool_reply

ANSWER = "Night Watch (NWT001) has the best average rating, 4.50."


@pytest.fixture
def stub(settings: Any, loopback: None) -> Iterator[StubLLM]:
    with running_stub(StubLLM()) as server:
        settings.GROQ_API_KEY, settings.GROQ_BASE_URL = "test-groq", server.base_url("groq")
        settings.GEMINI_API_KEY, settings.GEMINI_BASE_URL = "test-gemini", server.base_url("gemini")
        settings.OPENROUTER_API_KEY, settings.OPENROUTER_BASE_URL = "", server.base_url("openrouter")
        settings.LLM_MAX_RETRIES = 1
        settings.LLM_TIMEOUT_SECONDS = 2.0
        yield server


def test_providers_without_a_key_are_skipped(settings: Any) -> None:
    settings.GROQ_API_KEY, settings.GEMINI_API_KEY, settings.OPENROUTER_API_KEY = "", "g", "o"
    assert [p.name for p in provider_chain()] == ["gemini", "openrouter"]
    settings.GEMINI_API_KEY = settings.OPENROUTER_API_KEY = ""
    assert provider_chain() == []


@pytest.mark.parametrize("status", [429, 500])
def test_a_failing_first_provider_falls_back_to_the_next(world: Any, analyst: Any, stub: StubLLM, status: int) -> None:
    stub.scripts = {
        "groq": [status],
        "gemini": [tool_reply("get_programs", {"target": "rating", "n": 1}), text_reply(ANSWER)],
    }
    session = chat_session_create(user=analyst)
    answer = chat_answer(user=analyst, session_id=session.id, message="best program by rating")
    assert stub.hits("groq") == 2  # one try + LLM_MAX_RETRIES=1 retry, then the next provider
    assert stub.hits("gemini") == 2  # the tool call round and the answer round
    assert stub.hits("openrouter") == 0
    assert answer.response == ANSWER
    assert answer.metadata["model_used"] == "gemini:gemini-2.0-flash"
    assert answer.metadata["provider_failures"] == [f"groq: HTTP {status}"] * 2
    assert answer.metadata["tokens_used"] == 100 + 15 + 120 + 30
    request = stub.requests[-1][1]
    assert request["model"] == "gemini-2.0-flash"
    assert {t["function"]["name"] for t in request["tools"]} >= {"get_programs", "export_data"}


def test_an_auth_error_is_not_retried(world: Any, analyst: Any, stub: StubLLM) -> None:
    stub.scripts = {"groq": [401], "gemini": [text_reply("There is no data for that.")]}
    session = chat_session_create(user=analyst)
    answer = chat_answer(user=analyst, session_id=session.id, message="hello there")
    assert stub.hits("groq") == 1
    assert answer.metadata["model_used"] == "gemini:gemini-2.0-flash"


def test_a_timeout_falls_back(world: Any, analyst: Any, stub: StubLLM, settings: Any) -> None:
    settings.LLM_TIMEOUT_SECONDS = 0.3
    settings.LLM_MAX_RETRIES = 0
    stub.delay = {"groq": 1.0}
    stub.scripts = {"groq": [text_reply("too late")], "gemini": [text_reply("There is no data for that.")]}
    session = chat_session_create(user=analyst)
    answer = chat_answer(user=analyst, session_id=session.id, message="hello there")
    assert answer.metadata["provider_failures"] == ["groq: timeout"]
    assert answer.response == "There is no data for that."


def test_all_providers_down_means_the_offline_agent_answers(world: Any, analyst: Any, stub: StubLLM) -> None:
    stub.scripts = {"groq": [503], "gemini": [429]}
    session = chat_session_create(user=analyst)
    answer = chat_answer(user=analyst, session_id=session.id, message="Show me the top 5 programs by rating")
    assert (stub.hits("groq"), stub.hits("gemini")) == (2, 2)
    assert answer.metadata["model_used"] == "offline"
    assert answer.metadata["fallback"]["reason"] == "all providers failed"
    assert answer.response.startswith(
        "Scope: target rating; period: all data; highest first, 5 shown at most.\nTop 5 programs by average rating:"
    )
