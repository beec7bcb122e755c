"""A minimal HTTP/1.1 client for the load generator: keep-alive connections, pre-encoded requests.

httpx cost the load generator ~11 ms of CPU per request, on the 2 cores it shares with the server it
measures. This client does next to nothing per request: the request bytes are encoded once
(``RawRequest``), a connection is an ``asyncio.Protocol`` whose bytes go straight to httptools' C parser
(llhttp: Content-Length, chunked and keep-alive handled there), and a timeout is one timer handle.
httptools is uvicorn's own parser (``uvicorn[standard]`` in requirements/base.txt), so nothing is added.

What it does not do: TLS, redirects, proxies, cookies, compression, pipelining, or responses delimited by
the connection's end (uvicorn sends Content-Length or chunked; such a response counts as no answer).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, cast

import httptools


class HttpError(Exception):
    """No (complete) answer: connection refused or lost, a malformed response, or the timeout."""


@dataclass(frozen=True)
class RawRequest:
    method: str
    path: str
    data: bytes


def encode_request(method: str, path: str, host: str, headers: dict[str, str], body: Any = None) -> RawRequest:
    """The whole request on the wire, encoded once and sent as is on every use."""
    payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    if body is not None:
        lines.append("Content-Type: application/json")
    if body is not None or method not in ("GET", "HEAD"):
        lines.append(f"Content-Length: {len(payload)}")
    return RawRequest(method, path, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.body: list[bytes] = []
        self.reusable = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"malformed response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(HttpError(f"connection lost: {exc or 'closed by the server'}"))

    # httptools callbacks
    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        if not self.parser.should_keep_alive():
            self.reusable = False
        waiter, self.waiter = self.waiter, None
        body, self.body = b"".join(self.body), []
        if waiter is not None and not waiter.done():
            waiter.set_result((self.parser.get_status_code(), body))

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def send(self, request: RawRequest, loop: asyncio.AbstractEventLoop) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        assert self.waiter is None
        self.waiter = loop.create_future()
        self.body = []
        self.transport.write(request.data)
        return self.waiter

    def timed_out(self, seconds: float) -> None:
        self._fail(HttpError(f"no complete answer in {seconds:g} s"))


class RawClient:
    """Keep-alive connections to one ``host:port``, opened on demand (as many as requests in flight)."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._idle: list[_Connection] = []

    async def request(self, request: RawRequest) -> tuple[int, bytes]:
        """(status, body) of one request; ``HttpError`` when there is no complete answer."""
        loop = asyncio.get_running_loop()
        conn = await self._acquire(loop)
        answer = conn.send(request, loop)
        timer = loop.call_later(self.timeout, conn.timed_out, self.timeout)
        try:
            result = await answer
        finally:
            timer.cancel()
        if conn.reusable:
            self._idle.append(conn)
        return result

    async def _acquire(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable and conn.transport is not None and not conn.transport.is_closing():
                return conn
        try:
            _, conn = await loop.create_connection(_Connection, self.host, self.port)
        except OSError as exc:
            raise HttpError(f"cannot connect: {exc}") from exc
        return conn

    def close(self) -> None:
        for conn in self._idle:
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
