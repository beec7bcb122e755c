"""REST contract of the chat: sessions, questions, history, limits, cache and usage statistics."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from chat.apis import ChatApi, plain_chat_input
from chat.models import ChatMessage, ChatSession
from programs.services import data_version_bump
from registry.models import PromotionEvent
from tests.chat.factories import user_factory

TOP5 = "Show me the top 5 programs by rating"


def _session(client: APIClient) -> str:
    response = client.post("/api/v1/sessions/create", {}, format="json")
    assert response.status_code == 201
    return str(response.json()["session_id"])


def _ask(client: APIClient, session_id: str, message: str) -> Any:
    return client.post("/api/v1/chat", {"message": message, "session_id": session_id}, format="json")


def test_create_session_returns_its_id_and_time(analyst_client: APIClient, analyst: Any) -> None:
    body = analyst_client.post("/api/v1/sessions/create", {}, format="json").json()
    assert set(body) == {"session_id", "created_at"}
    session = ChatSession.objects.get()
    assert body["session_id"] == str(session.id)
    assert session.owner == analyst


def test_chat_answers_with_the_documented_shape(world: Any, analyst_client: APIClient) -> None:
    sid = _session(analyst_client)
    response = _ask(analyst_client, sid, TOP5)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"response", "session_id", "metadata"}
    assert body["session_id"] == sid
    meta = body["metadata"]
    assert {"model_used", "cache_hit", "tokens_used", "latency_ms", "tool_calls"} <= set(meta)
    assert meta["model_used"] == "offline"
    assert meta["cache_hit"] is False
    assert meta["tokens_used"] == 0
    assert meta["tool_calls"][0]["name"] == "get_programs"
    assert meta["tool_calls"][0]["arguments"] == {"target": "rating", "n": 5}
    assert body["response"].startswith(
        "Scope: target rating; period: all data; highest first, 5 shown at most.\n"
        "Top 5 programs by average rating:\n1. Night Watch (NWT001): 4.50"
    )


def test_history_lists_the_conversation_in_order(world: Any, analyst_client: APIClient) -> None:
    sid = _session(analyst_client)
    _ask(analyst_client, sid, TOP5)
    _ask(analyst_client, sid, "Details for NWT001")
    body = analyst_client.post("/api/v1/chat/history", {"session_id": sid}, format="json").json()
    assert body["session_id"] == sid
    assert [(m["role"], m["content"][:12]) for m in body["messages"]] == [
        ("user", TOP5[:12]),
        ("assistant", "Scope: targe"),
        ("user", "Details for "),
        ("assistant", "Scope: progr"),
    ]
    assert body["messages"][1]["metadata"]["tool_calls"][0]["name"] == "get_programs"


def test_another_users_session_is_404_for_chat_and_history(world: Any, analyst_client: APIClient) -> None:
    other = APIClient()
    other.force_authenticate(user_factory("other"))
    sid = _session(other)
    before = ChatMessage.objects.count()
    chat = _ask(analyst_client, sid, TOP5)
    history = analyst_client.post("/api/v1/chat/history", {"session_id": sid}, format="json")
    assert (chat.status_code, history.status_code) == (404, 404)
    assert chat.json()["error"]["code"] == "not_found"
    assert _ask(analyst_client, str(uuid.uuid4()), TOP5).status_code == 404
    assert ChatMessage.objects.count() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "hi"}, "session_id"),
        ({"message": "hi", "session_id": "not-a-uuid"}, "session_id"),
        ({"message": "", "session_id": str(uuid.uuid4())}, "message"),
        ({"message": "   ", "session_id": str(uuid.uuid4())}, "message"),
        ({"message": ["a"], "session_id": str(uuid.uuid4())}, "message"),
        ({"message": "x" * 2001, "session_id": str(uuid.uuid4())}, "message"),
    ],
)
def test_bad_chat_input_is_400_and_writes_nothing(analyst_client: APIClient, body: Any, field: str) -> None:
    response = analyst_client.post("/api/v1/chat", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"]
    assert ChatMessage.objects.count() == 0


def test_malformed_json_is_400(analyst_client: APIClient) -> None:
    response = analyst_client.post("/api/v1/chat", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_chat_messages_per_minute_are_throttled(world: Any, analyst_client: APIClient, settings: Any) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "chat": "2/minute"},
    }
    sid = _session(analyst_client)
    codes = [_ask(analyst_client, sid, TOP5).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert _ask(analyst_client, sid, TOP5).json()["error"]["code"] == "throttled"
    assert ChatMessage.objects.count() == 4


def test_viewer_cannot_chat_but_can_read_stats(viewer_client: APIClient) -> None:
    assert viewer_client.post("/api/v1/sessions/create", {}, format="json").status_code == 403
    assert viewer_client.get("/api/v1/llm/cache/stats").status_code == 200
    assert viewer_client.get("/api/v1/llm/tokens/usage").status_code == 200


# --- cache -------------------------------------------------------------------------------------


def test_the_same_question_is_a_hit_with_the_same_answer(world: Any, analyst_client: APIClient) -> None:
    sid = _session(analyst_client)
    first = _ask(analyst_client, sid, TOP5).json()
    second = _ask(analyst_client, sid, "  show me the TOP 5 programs by rating?? ").json()
    assert (first["metadata"]["cache_hit"], second["metadata"]["cache_hit"]) == (False, True)
    assert second["response"] == first["response"]
    assert second["metadata"]["tool_calls"] == first["metadata"]["tool_calls"]


def test_a_hit_reads_no_data_and_writes_only_the_two_messages(world: Any, analyst_client: APIClient) -> None:
    sid = _session(analyst_client)
    _ask(analyst_client, sid, TOP5)
    with CaptureQueriesContext(connection) as queries:
        answer = _ask(analyst_client, sid, TOP5).json()
    assert answer["metadata"]["cache_hit"] is True
    statements = [q["sql"] for q in queries.captured_queries]
    writes = [sql for sql in statements if any(w in sql for w in ("INSERT INTO", "UPDATE ", "DELETE FROM"))]
    assert len(writes) == 1  # both messages in one insert; the session already has its title
    assert 'INSERT INTO "chat_chatmessage"' in writes[0]
    # the session lookup, both versions in one read, the insert: no transaction statements around it
    assert len(statements) == 3, statements
    assert not [sql for sql in statements if '"programs_program"' in sql or '"programs_airing"' in sql]
    assert ChatSession.objects.get(pk=sid).title == TOP5
    assert ChatMessage.objects.filter(session_id=UUID(sid)).count() == 4


def test_a_hit_records_the_exchange_with_its_metadata(world: Any, analyst_client: APIClient) -> None:
    sid = _session(analyst_client)
    first = _ask(analyst_client, sid, TOP5).json()
    hit = _ask(analyst_client, sid, "show me the top 5 programs by rating?").json()
    assert hit["metadata"]["cache_hit"] is True
    rows = list(
        ChatMessage.objects.filter(session_id=UUID(sid)).order_by("id").values_list("role", "content", "metadata")
    )
    assert [(role, content) for role, content, _ in rows] == [
        ("user", TOP5),
        ("assistant", first["response"]),
        ("user", "show me the top 5 programs by rating?"),
        ("assistant", first["response"]),
    ]
    assert rows[3][2] == hit["metadata"]
    assert rows[2][2] == {}


@pytest.mark.parametrize(
    "body",
    [
        {"message": "  top 5 by rating \n", "session_id": "0c4f43a6-5c1e-4d6b-9a7e-4a2f0f2b8f11"},
        {"message": "hi", "session_id": "0C4F43A65C1E4D6B9A7E4A2F0F2B8F11"},
        {"message": "hi", "session_id": "{0c4f43a6-5c1e-4d6b-9a7e-4a2f0f2b8f11}", "extra": 1},
        {"message": "x" * 2000, "session_id": "urn:uuid:0c4f43a6-5c1e-4d6b-9a7e-4a2f0f2b8f11"},
        {"message": "x" * 2001, "session_id": "0c4f43a6-5c1e-4d6b-9a7e-4a2f0f2b8f11"},
        {"message": " \t ", "session_id": "0c4f43a6-5c1e-4d6b-9a7e-4a2f0f2b8f11"},
        {"message": "nul\x00here", "session_id": "0c4f43a6-5c1e-4d6b-9a7e-4a2f0f2b8f11"},
        {"message": "lone \ud800", "session_id": "0c4f43a6-5c1e-4d6b-9a7e-4a2f0f2b8f11"},
        {"message": "hi", "session_id": "0c4f43a6-5c1e-4d6b-9a7e"},
        {"message": 12, "session_id": "0c4f43a6-5c1e-4d6b-9a7e-4a2f0f2b8f11"},
        {"message": "hi", "session_id": 12},
        {"message": None, "session_id": "0c4f43a6-5c1e-4d6b-9a7e-4a2f0f2b8f11"},
        {"session_id": "0c4f43a6-5c1e-4d6b-9a7e-4a2f0f2b8f11"},
        ["not", "an", "object"],
    ],
)
def test_the_plain_input_check_agrees_with_the_documented_serializer(body: Any) -> None:
    serializer = ChatApi.InputSerializer(data=body)
    plain = plain_chat_input(body)
    if serializer.is_valid():
        expected = (serializer.validated_data["message"], serializer.validated_data["session_id"])
        # the fast path reads string bodies; the serializer keeps the rest (numbers, integer UUIDs)
        assert plain in (expected, None)
        if isinstance(body.get("message"), str) and isinstance(body.get("session_id"), str):
            assert plain == expected
    else:
        assert plain is None


def test_another_session_of_another_analyst_shares_the_cache(world: Any, analyst_client: APIClient) -> None:
    _ask(analyst_client, _session(analyst_client), TOP5)
    other = APIClient()
    other.force_authenticate(user_factory("analyst2", "analyst"))
    assert _ask(other, _session(other), TOP5).json()["metadata"]["cache_hit"] is True


def test_a_data_import_makes_the_next_question_a_miss(world: Any, analyst_client: APIClient) -> None:
    sid = _session(analyst_client)
    _ask(analyst_client, sid, TOP5)
    data_version_bump(source="import", description="new airings", rows_affected=10)
    assert _ask(analyst_client, sid, TOP5).json()["metadata"]["cache_hit"] is False
    assert _ask(analyst_client, sid, TOP5).json()["metadata"]["cache_hit"] is True


def test_a_model_promotion_makes_the_next_question_a_miss(
    world: Any, best_models: Any, analyst_client: APIClient
) -> None:
    from django.utils import timezone

    sid = _session(analyst_client)
    question = "Which model is best for rating?"
    _ask(analyst_client, sid, question)
    assert _ask(analyst_client, sid, question).json()["metadata"]["cache_hit"] is True
    PromotionEvent.objects.create(
        version=best_models["rating"],
        target="rating",
        from_status="candidate",
        to_status="production",
        created_at=timezone.now(),
    )
    assert _ask(analyst_client, sid, question).json()["metadata"]["cache_hit"] is False


def test_clarifications_and_exports_are_never_cached(world: Any, analyst_client: APIClient) -> None:
    sid = _session(analyst_client)
    for question in ("hello", "Download airings as CSV"):
        _ask(analyst_client, sid, question)
        assert _ask(analyst_client, sid, question).json()["metadata"]["cache_hit"] is False


def test_stats_add_up(world: Any, analyst_client: APIClient) -> None:
    sid = _session(analyst_client)
    for question in (TOP5, TOP5, "Details for NWT001", TOP5, "Details for NWT001"):
        _ask(analyst_client, sid, question)
    stats = analyst_client.get("/api/v1/llm/cache/stats").json()
    assert stats["total_requests"] == 5
    assert (stats["cache_hits"], stats["cache_misses"]) == (3, 2)
    assert stats["cache_hits"] + stats["cache_misses"] == stats["total_requests"]
    assert stats["hit_rate"] == 0.6
    assert stats["avg_latency_cached_ms"] > 0
    assert stats["avg_latency_uncached_ms"] > 0
    assert stats["cost_savings"] == 0.0  # offline answers cost nothing, so a hit saves nothing
    usage = analyst_client.get("/api/v1/llm/tokens/usage").json()
    assert usage["usage"] == [
        {
            "provider": "offline",
            "model": "offline",
            "requests": 2,
            "errors": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "total_tokens": 0,
            "estimated_cost_usd": 0.0,
        }
    ]


def test_a_reply_to_a_clarifying_question_completes_it(
    world: Any, fake_predict: Any, analyst_client: APIClient
) -> None:
    sid = _session(analyst_client)
    first = _ask(analyst_client, sid, "What's the predicted revenue?").json()
    assert first["metadata"]["clarification"] is True
    second = _ask(analyst_client, sid, "Night Watch").json()
    assert second["metadata"]["tool_calls"][0]["name"] == "predict_values"
    assert second["metadata"]["tool_calls"][0]["arguments"] == {"program": "NWT001", "target": "revenue"}
