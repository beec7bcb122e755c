"""The compose stack's way in, for real: nginx (docker/nginx/nginx.conf) in front of gunicorn and uvicorn.

Docker cannot run here, so the processes run on loopback as compose runs them: gunicorn with
bms/gunicorn_conf.py for HTTP, uvicorn (``bms.asgi``, ``--no-proxy-headers``) for ``/ws/``, and the
Debian nginx with the shipped config, its upstreams and listener moved to loopback ports
(tests/ops/live.py ``nginx_conf_on_loopback``). CI installs nginx (.ci/run: nginx-light).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.ops.live import LiveStack

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)

pytestmark = [
    pytest.mark.loopback,
    pytest.mark.skipif(NGINX is None, reason="nginx not installed (apt: nginx-light)"),
]


@pytest.fixture(scope="module")
def proxied(live_stack: LiveStack) -> LiveStack:
    assert NGINX is not None
    if live_stack.proxy_port is None:
        live_stack.start_ws()
        live_stack.start_proxy(NGINX)
    return live_stack


def test_a_rest_call_through_nginx_reaches_gunicorn(proxied: LiveStack) -> None:
    token = proxied.token("live_viewer", base=proxied.proxy_url)
    status, body = proxied.request("GET", "/api/v1/programs", token=token, base=proxied.proxy_url)
    assert status == 200, body
    assert set(body) == {"count", "next", "previous", "results"}  # the programs page, whatever other tests added
    # /metrics is for Prometheus inside the network only: nginx answers 404 itself.
    status, _ = proxied.request("GET", "/metrics", base=proxied.proxy_url)
    assert status == 404
    assert proxied.request("GET", "/metrics")[0] == 200  # gunicorn does serve it


def test_a_websocket_through_nginx_reaches_uvicorn_and_streams_an_answer(proxied: LiveStack) -> None:
    import websockets

    token = proxied.token("live_analyst", base=proxied.proxy_url)
    status, body = proxied.request("POST", "/api/v1/sessions/create", body={}, token=token, base=proxied.proxy_url)
    assert status == 201, body
    base = proxied.proxy_url
    uri = f"ws://{base.removeprefix('http://')}/ws/chat/{body['session_id']}/?token={token}"

    async def talk() -> list[dict[str, Any]]:
        async with websockets.connect(uri, origin=base, open_timeout=10) as ws:  # type: ignore[arg-type]
            await ws.send(json.dumps({"message": "Show me the top 5 programs by rating"}))
            events: list[dict[str, Any]] = []
            while not events or events[-1]["type"] not in ("final", "error"):
                events.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=30)))
            return events

    events = asyncio.run(talk())
    assert events[-1]["type"] == "final", events


def test_a_refused_websocket_is_refused_through_nginx(proxied: LiveStack) -> None:
    # The consumer accepts, then closes with its code (chat/consumers.py: 4401 for a bad token): the
    # client sees that code and reason through the proxy, not a proxy error.
    import websockets

    base = proxied.proxy_url
    uri = f"ws://{base.removeprefix('http://')}/ws/chat/{uuid.uuid4()}/?token=not.a.jwt"

    async def refused() -> tuple[int, str]:
        async with websockets.connect(uri, origin=base, open_timeout=10) as ws:  # type: ignore[arg-type]
            try:
                await asyncio.wait_for(ws.recv(), timeout=10)
            except websockets.ConnectionClosed as exc:
                frame = exc.rcvd
                return (frame.code, frame.reason) if frame is not None else (1006, "")
        return 1000, ""

    assert asyncio.run(refused()) == (4401, "not signed in")


def _get_from(source: str, port: int, path: str, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _access_record(stack: LiveStack, request_id: str) -> dict[str, Any]:
    [record] = [r for r in stack.log_lines("web") if r.get("request_id") == request_id and "remote_addr" in r]
    return record


def test_the_client_address_is_nginx_s_peer_never_a_header_the_client_sent(proxied: LiveStack) -> None:
    # The client is 127.0.0.2 (any 127/8 address is loopback); it claims another address in X-Forwarded-For.
    # nginx overwrites the header with its peer, and gunicorn's peer (nginx, 127.0.0.1) is in
    # TRUSTED_PROXIES, so bms.client_ip takes the header: the log names 127.0.0.2, never the claim.
    assert proxied.proxy_port is not None
    request_id = f"xff-{uuid.uuid4().hex}"
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Request-ID": request_id}
    assert _get_from("127.0.0.2", proxied.proxy_port, "/api/v1/programs", headers) == 401  # logged (/health is not)
    assert _access_record(proxied, request_id)["remote_addr"] == "127.0.0.2"


def test_without_the_proxy_a_client_s_forwarded_header_is_believed_only_from_a_trusted_peer(
    proxied: LiveStack,
) -> None:
    # Straight to gunicorn from 127.0.0.2, which is not in TRUSTED_PROXIES: the header is ignored.
    request_id = f"xff-{uuid.uuid4().hex}"
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Request-ID": request_id}
    assert _get_from("127.0.0.2", proxied.web_port, "/api/v1/programs", headers) == 401  # logged (/health is not)
    assert _access_record(proxied, request_id)["remote_addr"] == "127.0.0.2"
