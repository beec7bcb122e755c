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

Streaming responses (CSV/xlsx exports) are sent the way Django sends them: inside a per-request
thread-sensitive context, with a client disconnect cancelling the stream. WebSockets do not come here
(``bms.asgi`` routes them to Channels).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponseBase
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

    def load_middleware(self, is_async: bool = False) -> None:
        # The chain is always the synchronous one: it runs on one thread as a whole.
        super().load_middleware(is_async=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        # Nothing in the common path asks for a thread-sensitive call, so this context makes no
        # thread; a streaming export's chunks are pulled inside it, on one thread of their own.
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


def get_asgi_http_application() -> PooledASGIHandler:
    """Like ``django.core.asgi.get_asgi_application``: set Django up, return the HTTP handler."""
    import django

    django.setup(set_prefix=False)
    return PooledASGIHandler()
