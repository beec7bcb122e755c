"""Access log: one structured line per request with request id, user id, status and latency.

Sits right after ``RequestIdMiddleware`` so the request id is on the record. The user is read after
the view ran: DRF authenticates (JWT, API key) inside the view and sets ``request.user`` then.
Probe and scrape paths log at DEBUG so they do not drown the useful lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("bms.access")

QUIET_PATHS = frozenset({"/health", "/health/deep", "/metrics"})


def _user_id(request: HttpRequest) -> int | None:
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    pk = getattr(user, "pk", None)
    return int(pk) if pk is not None else None


class AccessLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        match = getattr(request, "resolver_match", None)
        level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
        logger.log(
            level,
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            latency_ms,
            extra={
                "method": request.method,
                "path": request.path,
                "view": match.view_name if match is not None else None,
                "status": response.status_code,
                "latency_ms": latency_ms,
                "user_id": _user_id(request),
                "remote_addr": request.META.get("REMOTE_ADDR"),
            },
        )
        return response
