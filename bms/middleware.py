"""Request id: taken from ``X-Request-ID`` or made, put on the log records and the response."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from bms.logging import request_id_var

_VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        request_id_var.set(rid)
        try:
            response = self.get_response(request)
        except BaseException:
            request_id_var.set("-")
            raise
        # Kept until the response is closed: Django logs a 4xx/5xx (``django.request``) after the
        # middleware returned, and request_finished runs later still; both lines carry the id.
        response._resource_closers.append(lambda: request_id_var.set("-"))  # type: ignore[attr-defined]
        response["X-Request-ID"] = rid
        return response
