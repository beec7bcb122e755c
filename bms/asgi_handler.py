"""Django's HTTP handling under ASGI, with one thread hop per request instead of dozens.

Django's own ``ASGIHandler`` runs the middleware chain in async mode. Every middleware here is
synchronous (ours, WhiteNoise, and the views are DRF), so that chain switches between the event loop
and a worker thread for each middleware and each ``process_request``/``process_response``, and it
gives every request a new thread (``ThreadSensitiveContext``) — so a thread-local database
connection is opened per request and ``CONN_MAX_AGE`` never applies. Measured with
``bench/predict.py``, that overhead was two thirds of a bare endpoint's cost.

This handler builds the synchronous chain (as under WSGI) and runs the whole of a request's Django
work — ``request_started``, the middleware chain and the view — as one call on a long-lived request
thread, which keeps its database connection. The event loop only reads the body and writes the
response.

Requests take turns on that thread, in arrival order. Python threads share one interpreter lock, so
CPU-bound requests side by side all finish late, and the event loop waits for the lock too: in
bench/predict.py, 16 threads free for all gave /api/v1/predict a p99 of 67-74 ms at 16 connections,
one thread 39-43 ms. A request still queued after ``ASGI_QUEUE_WAIT_MS`` (behind an LLM call, an
embedded-mode training run) runs on one of ``ASGI_THREADS - 1`` overflow threads instead, so a long
request holds the others up for no longer than that.

Streaming responses (CSV/xlsx exports) with a synchronous iterator are pulled on a thread of their own
(one per stream, at most ``ASGI_STREAM_THREADS`` at once), so a long export holds neither the request
thread nor the event loop; its database cursor lives on that thread's connection, which is closed
(returned to the pool) on that same thread when the stream ends, fails or the client disconnects.
``DATABASE_POOL_MAX`` covers ``ASGI_THREADS + ASGI_STREAM_THREADS`` by construction (bms.settings).
WebSockets do not come here (``bms.asgi`` routes them to Channels).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.db import connections
from django.http import FileResponse, HttpResponseBase, StreamingHttpResponse
from django.urls import set_script_prefix

logger = logging.getLogger(__name__)
T = TypeVar("T")


class PooledASGIHandler(ASGIHandler):
    """HTTP only: the synchronous Django stack on one request thread plus ``ASGI_THREADS - 1`` overflow threads."""

    def __init__(self) -> None:
        super().__init__()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="django-http")
        self.overflow = ThreadPoolExecutor(
            max_workers=max(1, settings.ASGI_THREADS - 1), thread_name_prefix="django-http-overflow"
        )
        self._stream_slots: asyncio.Semaphore | None = None  # made on the event loop, at the first stream

    def load_middleware(self, is_async: bool = False) -> None:
        # The chain is always the synchronous one: it runs on one thread as a whole.
        super().load_middleware(is_async=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        # Nothing here asks for a thread-sensitive call, so this context makes no thread; it keeps a
        # view's own sync_to_async(thread_sensitive=True) calls off the threads of other requests.
        async with ThreadSensitiveContext():
            await self.handle(scope, receive, send)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        context = contextvars.copy_context()
        try:
            response = await self._call(context, self._respond, scope, body_file)
            try:
                if response.streaming:
                    assert isinstance(response, StreamingHttpResponse)
                    if not response.is_async:
                        # The view's own iterator (not the make_bytes map over it): closing it closes the
                        # cursor it reads from; Django maps make_bytes over what replaces it.
                        source: Iterator[Any] = response._iterator  # type: ignore[attr-defined]
                        response.streaming_content = self._pulled_on_own_thread(source, context)
                    await self._send_streaming(response, receive, send)
                else:
                    await self.send_response(response, send)
            finally:
                # request_finished (and close_old_connections) runs on a request thread, as it would
                # on a WSGI worker after the response was written.
                await self._call(context, response.close)
        finally:
            body_file.close()

    async def _call(self, context: contextvars.Context, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the request thread, in arrival order; on an overflow thread if it waited too long."""
        queued = self.executor.submit(context.run, fn, *args)
        answer = asyncio.wrap_future(queued)
        try:
            return await asyncio.wait_for(asyncio.shield(answer), settings.ASGI_QUEUE_WAIT_MS / 1000.0)
        except TimeoutError:
            if not queued.cancel():  # already running (or done): wait for it
                return await answer
        # Still queued behind a long request (an LLM call, an embedded training run): run beside it.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.overflow, context.run, fn, *args)

    def _respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        """The request's whole Django part, on one thread (like a WSGI call)."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            assert error_response is not None
            return error_response
        response = self.get_response(request)
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        return response

    async def _pulled_on_own_thread(self, chunks: Iterator[Any], context: contextvars.Context) -> AsyncIterator[Any]:
        """``chunks`` pulled on one thread of their own; that thread's database connections closed at the end.

        Django would otherwise ``list()`` a synchronous iterator under ASGI (the whole export in memory).
        The end comes by exhaustion, an error, or a disconnect (``aclose()`` from Django's ``send_response``);
        the close waits for a chunk being pulled, as it runs after it on the same thread.
        """
        if self._stream_slots is None:
            self._stream_slots = asyncio.Semaphore(max(1, settings.ASGI_STREAM_THREADS))
        loop = asyncio.get_running_loop()
        async with self._stream_slots:
            thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="django-stream")
            try:
                while (chunk := await loop.run_in_executor(thread, context.run, _next_chunk, chunks)) is not None:
                    yield chunk
            finally:
                await asyncio.shield(loop.run_in_executor(thread, context.run, _close_stream, chunks))
                thread.shutdown(wait=False)

    async def _send_streaming(self, response: HttpResponseBase, receive: Any, send: Any) -> None:
        """Send a streaming response; a client disconnect cancels it (as Django's handler does)."""
        sending = asyncio.create_task(self.send_response(response, send))
        listening = asyncio.create_task(self.listen_for_disconnect(receive))
        await asyncio.wait([sending, listening], return_when=asyncio.FIRST_COMPLETED)
        for task in (listening, sending):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            elif not task.cancelled():
                try:
                    task.result()
                except RequestAborted:
                    logger.info("client disconnected during a streaming response")


def _next_chunk(chunks: Iterator[Any]) -> Any:
    return next(chunks, None)


def _close_stream(chunks: Iterator[Any]) -> None:
    """On the stream's thread: end the generator (its cursor) and return the thread's connections."""
    try:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    finally:
        connections.close_all()


def get_asgi_http_application() -> PooledASGIHandler:
    """Like ``django.core.asgi.get_asgi_application``: set Django up, return the HTTP handler."""
    import django

    django.setup(set_prefix=False)
    return PooledASGIHandler()
