"""Login lockouts (django-axes): the answer a locked-out client gets, on every login door.

Axes counts failed logins per client IP and per username (``AXES_LOCKOUT_PARAMETERS``) for every
``authenticate()`` call — the web and admin login forms and ``/api/v1/auth/token`` alike — and refuses
further attempts, right password included, for ``AXES_COOLOFF_TIME``. The client IP is the one
``bms.client_ip`` resolved, so a forged ``X-Forwarded-For`` does not open a fresh counter.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from rest_framework import status

from bms.errors import ApplicationError, error_body


class LoginLockedError(ApplicationError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "login_locked"


def cooloff_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def login_locked() -> LoginLockedError:
    seconds = cooloff_seconds()
    return LoginLockedError(
        f"Too many failed logins for this account or address; try again in {seconds // 60} minutes.",
        details={"retry_after_seconds": seconds},
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: object = None
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: 429 with ``Retry-After``; JSON under /api/, the sign-in page elsewhere."""
    error = login_locked()
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(error_body(error.code, error.message, error.details), status=error.status_code)
    else:
        response = TemplateResponse(
            request, "registration/locked_out.html", {"message": error.message}, status=error.status_code
        )
        response.render()
    response["Retry-After"] = str(cooloff_seconds())
    return response
