"""bench/_http.py, the load generator's client, against a scripted server on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from bench._http import HttpError, RawClient, encode_request

pytestmark = pytest.mark.loopback  # the bench client against small servers of its own on 127.0.0.1

CONTENT_LENGTH = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"


async def _serve(answers: list[bytes], seen: list[bytes]) -> tuple[asyncio.Server, int]:
    """Answers each request (read up to its blank line and body) with the next of ``answers`` on any connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while answers:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            seen.append(head + await reader.readexactly(length))
            answer = answers.pop(0)
            if not answer:  # close without answering
                break
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_it_reads_content_length_and_chunked_answers_on_one_kept_alive_connection() -> None:
    async def scenario() -> tuple[list[tuple[int, bytes]], list[bytes], int]:
        seen: list[bytes] = []
        connections = 0
        server, port = await _serve([CONTENT_LENGTH, CHUNKED], seen)
        request = encode_request("POST", "/api/v1/x", f"127.0.0.1:{port}", {"X-API-Key": "k"}, {"a": 1})
        async with RawClient("127.0.0.1", port, timeout=5) as client:
            answers = [await client.request(request), await client.request(request)]
            connections = len(client._idle)
        server.close()
        return answers, seen, connections

    answers, seen, idle = asyncio.run(scenario())
    assert answers == [(200, b"hello"), (201, b"abcdefg")]
    assert seen[0] == seen[1]
    assert seen[0].startswith(b"POST /api/v1/x HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"X-API-Key: k\r\n" in seen[0]
    assert seen[0].endswith(b'Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}')
    assert idle == 1  # both answers came over the same connection, kept for the next request


def test_a_connection_closed_without_an_answer_is_an_error_not_a_response() -> None:
    async def scenario() -> None:
        server, port = await _serve([b""], [])
        async with RawClient("127.0.0.1", port, timeout=5) as client:
            await client.request(encode_request("GET", "/", "h", {}))
        server.close()

    with pytest.raises(HttpError, match="connection lost"):
        asyncio.run(scenario())


def test_a_missing_answer_times_out() -> None:
    async def scenario() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with RawClient("127.0.0.1", port, timeout=0.2) as client:
            await client.request(encode_request("GET", "/", "h", {}))

    with pytest.raises(HttpError, match=r"no complete answer in 0\.2 s"):
        asyncio.run(scenario())


def test_a_refused_connection_is_an_error() -> None:
    async def scenario() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        async with RawClient("127.0.0.1", port, timeout=1) as client:
            await client.request(encode_request("GET", "/", "h", {}))

    with pytest.raises(HttpError, match="cannot connect"):
        asyncio.run(scenario())
