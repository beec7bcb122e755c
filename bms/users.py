"""The user types views and services are written against.

``User`` is Django's (``AUTH_USER_MODEL`` is not swapped). A request's user is ``RequestUser`` until a
permission or ``login_required`` has let only signed-in users through; views behind one annotate their
request as ``AuthenticatedHttpRequest`` (pages) or ``AuthenticatedRequest`` (DRF), whose ``user`` is a
``User``. These request classes are for the type checker only: Django and DRF build the requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from rest_framework.request import Request

RequestUser: TypeAlias = User | AnonymousUser

__all__ = ["AuthenticatedHttpRequest", "AuthenticatedRequest", "RequestUser", "User"]


class AuthenticatedHttpRequest(HttpRequest):
    user: User


if TYPE_CHECKING:

    class AuthenticatedRequest(Request):
        @property
        def user(self) -> User: ...
        @user.setter
        def user(self, value: User) -> None: ...

else:
    AuthenticatedRequest = Request
