"""One error format for every 4xx/5xx: ``{"error": {"code", "message", "details"}}``.

Services raise :class:`ApplicationError` subclasses; the DRF exception handler and the plain-Django
handlers below render them (and DRF's own exceptions) in that one shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from bms.jsontypes import JSONData

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A domain error with an HTTP status, a stable code and a human message."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    code: str = "invalid"

    def __init__(self, message: str, *, details: Mapping[str, JSONData] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: Mapping[str, JSONData] = details if details is not None else {}
        if code is not None:
            self.code = code


class NotFoundError(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class ConflictError(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class InvalidStateError(ConflictError):
    code = "invalid_state"


class PayloadTooLargeError(ApplicationError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"


class ServiceUnavailableError(ApplicationError):
    """A dependency (the broker, the database) is down for now: 503 with ``Retry-After``."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "service_unavailable"

    def __init__(
        self,
        message: str,
        *,
        details: Mapping[str, JSONData] | None = None,
        code: str | None = None,
        retry_after_seconds: int = 30,
    ) -> None:
        super().__init__(message, details=details, code=code)
        self.retry_after_seconds = retry_after_seconds


def payload_too_large() -> PayloadTooLargeError:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return PayloadTooLargeError(f"Request body is larger than {limit} bytes.", details={"max_bytes": limit})


def error_body(code: str, message: str, details: object = None) -> dict[str, dict[str, object]]:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def _first_message(detail: object) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = _first_message(value)
            return inner if key in ("non_field_errors", "detail") else f"{key}: {inner}"
        return "Invalid input."
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "Invalid input."
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, object]) -> Response | None:
    # Imported here: rest_framework.views reads the DRF settings at import time, and those name
    # classes (bms.parsers) that import this module; a top-level import would be circular.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database went away or the pool had no connection in time (PoolTimeout): the client may
        # retry; a connection is reopened on the next request (CONN_HEALTH_CHECKS, the pool's check).
        logger.warning("database unavailable: %s: %s", type(exc).__name__, exc, exc_info=True)
        exc = ServiceUnavailableError(
            "The database is unavailable; retry shortly.", code="database_unavailable", retry_after_seconds=1
        )
    if isinstance(exc, ApplicationError):
        answer = Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
        if isinstance(exc, ServiceUnavailableError):
            answer["Retry-After"] = str(exc.retry_after_seconds)
        elif "retry_after_seconds" in exc.details:
            answer["Retry-After"] = str(exc.details["retry_after_seconds"])
        return answer
    if isinstance(exc, RequestDataTooBig):
        # Django's own body-size check (DRF reads request.body for JSON): same answer as bms.parsers.
        exc = payload_too_large()
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    detail = response.data
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("validation_error", _first_message(detail), detail)
    else:
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        message = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else _first_message(exc.detail)
        body = error_body(str(code), message)
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            body["error"]["details"] = {"retry_after_seconds": int(wait)}
    response.data = body
    return response


def _json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):  # a plain Django view read a too-large body
        too_large = payload_too_large()
        return JsonResponse(error_body(too_large.code, too_large.message, too_large.details), status=413)
    return _json_error(400, "bad_request", "Bad request.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(403, "permission_denied", "You do not have permission to perform this action.")


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _json_error(404, "not_found", "Not found.")


def handler500(request: HttpRequest) -> JsonResponse:
    return _json_error(500, "server_error", "Internal server error.")
