"""WebSocket chat: Channels' communicator for the contract, and once through a real server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from chat.auth import JwtOrSessionAuthMiddleware
from chat.history import get_store
from chat.models import ChatMessage
from chat.routing import websocket_urlpatterns
from tests.chat.factories import user_factory, world_factory
from tests.live import asgi_server

TOP5 = "Show me the top 5 programs by rating"
pytestmark = pytest.mark.django_db(transaction=True)


def _app() -> Any:
    return JwtOrSessionAuthMiddleware(URLRouter(websocket_urlpatterns))


@database_sync_to_async
def _setup(role: str = "analyst") -> tuple[Any, str, str]:
    world_factory()
    user = user_factory("wsuser", role)
    session = get_store().session_create(owner_id=user.pk)
    return user, session.id, str(AccessToken.for_user(user))


async def _collect(communicator: WebsocketCommunicator) -> list[dict[str, Any]]:
    events = []
    while True:
        event = await communicator.receive_json_from(timeout=10)
        events.append(event)
        if event["type"] in ("final", "error"):
            return events


async def test_a_question_streams_tool_calls_tokens_then_the_final_answer() -> None:
    _, sid, token = await _setup()
    communicator = WebsocketCommunicator(_app(), f"/ws/chat/{sid}/?token={token}")
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"message": TOP5})
    events = await _collect(communicator)
    await communicator.disconnect()
    kinds = [e["type"] for e in events]
    assert kinds[0] == "tool_call"
    assert events[0]["name"] == "get_programs"
    assert events[0]["arguments"] == {"target": "rating", "n": 5}
    assert set(kinds[1:-1]) == {"token"}
    final = events[-1]
    assert final["type"] == "final"
    assert final["session_id"] == sid
    assert "".join(e["text"] for e in events if e["type"] == "token") == final["response"]
    assert final["response"].startswith(
        "Scope: target rating; period: all data; highest first, 5 shown at most.\nTop 5 programs by average rating:"
    )
    assert final["metadata"]["cache_hit"] is False
    assert await database_sync_to_async(ChatMessage.objects.count)() == 2


async def test_the_authorization_header_also_authenticates() -> None:
    _, sid, token = await _setup()
    communicator = WebsocketCommunicator(
        _app(), f"/ws/chat/{sid}/", headers=[(b"authorization", f"Bearer {token}".encode())]
    )
    connected, _ = await communicator.connect()
    assert connected
    await communicator.disconnect()


async def test_the_session_cookie_authenticates() -> None:
    user, sid, _ = await _setup()

    def login_cookie() -> str:
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    cookie = await database_sync_to_async(login_cookie)()
    communicator = WebsocketCommunicator(
        _app(), f"/ws/chat/{sid}/", headers=[(b"cookie", f"sessionid={cookie}".encode())]
    )
    connected, _ = await communicator.connect()
    assert connected
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("case", "code"), [("anonymous", 4401), ("bad-token", 4401), ("viewer", 4403), ("other-session", 4404)]
)
async def test_refused_connections_say_why(case: str, code: int) -> None:
    _user, sid, token = await _setup("viewer" if case == "viewer" else "analyst")
    if case == "anonymous":
        path = f"/ws/chat/{sid}/"
    elif case == "bad-token":
        path = f"/ws/chat/{sid}/?token=not.a.jwt"
    elif case == "other-session":
        other = await database_sync_to_async(user_factory)("someone", "analyst")
        other_sid = (await database_sync_to_async(get_store().session_create)(owner_id=other.pk)).id
        path = f"/ws/chat/{other_sid}/?token={token}"
    else:
        path = f"/ws/chat/{sid}/?token={token}"
    communicator = WebsocketCommunicator(_app(), path)
    connected, _ = await communicator.connect()
    assert connected  # accepted, then closed with the reason, which a browser can show
    closed = await communicator.receive_output()
    assert (closed["type"], closed["code"]) == ("websocket.close", code)
    assert closed["reason"]


async def test_bad_messages_get_an_error_event_and_write_nothing() -> None:
    _, sid, token = await _setup()
    communicator = WebsocketCommunicator(_app(), f"/ws/chat/{sid}/?token={token}")
    await communicator.connect()
    await communicator.send_to(text_data="{not json")
    assert (await communicator.receive_json_from())["error"]["code"] == "parse_error"
    await communicator.send_json_to({"text": "no message key"})
    assert (await communicator.receive_json_from())["error"]["code"] == "validation_error"
    await communicator.send_json_to({"message": "x" * 5000})
    assert (await communicator.receive_json_from())["error"]["code"] == "message_too_long"
    await communicator.disconnect()
    assert await database_sync_to_async(ChatMessage.objects.count)() == 0


@pytest.mark.live_server
@pytest.mark.loopback
def test_a_real_server_and_a_real_client() -> None:
    import websockets

    world_factory()
    user = user_factory("wsuser", "analyst")
    sid = get_store().session_create(owner_id=user.pk).id
    token = str(AccessToken.for_user(user))
    with asgi_server() as base:
        host = base.removeprefix("http://")

        async def talk() -> list[dict[str, Any]]:
            uri = f"ws://{host}/ws/chat/{sid}/?token={token}"
            async with websockets.connect(uri, origin=base, open_timeout=10) as ws:  # type: ignore[arg-type]
                await ws.send(json.dumps({"message": TOP5}))
                events: list[dict[str, Any]] = []
                while not events or events[-1]["type"] not in ("final", "error"):
                    events.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=20)))
                return events

        events = asyncio.run(talk())
    assert events[0]["type"] == "tool_call"
    assert events[-1]["type"] == "final"
    assert events[-1]["response"].startswith(
        "Scope: target rating; period: all data; highest first, 5 shown at most.\nTop 5 programs by average rating:\n1. Night Watch (NWT001): 4.50"
    )
