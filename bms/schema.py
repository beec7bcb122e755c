"""OpenAPI generation (drf-spectacular) fitted to the house style.

Views nest their serializers (``ProgramListApi.OutputSerializer``), so plain class names collide
across apps ("Output", "Input"). Components are named from the qualified name instead:
``ProgramListApiOutput``. The ``X-API-Key`` header is declared as a security scheme.

Every operation also lists the error answers it can give, in the one error format (component
``Error``, bms.errors): derived from what the view is (a body -> 400/413/415, query parameters -> 400,
path parameters -> 404, authentication -> 401, a role -> 403, throttles -> 429), plus the statuses a
view names in ``error_statuses`` (409 for a state conflict, 503 for a missing dependency, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as _AutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny

ERROR_DESCRIPTIONS = {
    400: "Invalid input (malformed JSON, failed validation, bad query parameter).",
    401: "Missing, invalid or expired credentials.",
    403: "Authenticated, but the role does not allow this.",
    404: "No such object.",
    409: "The object is not in a state that allows this.",
    413: "The request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE.",
    415: "The request body is not JSON.",
    429: "Too many requests (Retry-After says when to come back).",
    503: "A service this needs is unavailable (Retry-After when it is expected back).",
}
_BODY_METHODS = {"POST", "PUT", "PATCH"}

_T = TypeVar("_T")


class ErrorDetailSerializer(serializers.Serializer[Mapping[str, object]]):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. validation_error.")
    message = serializers.CharField(help_text="Human-readable summary.")
    details = serializers.JSONField(help_text="Structured details: field errors, limits, retry_after_seconds.")


class ErrorSerializer(serializers.Serializer[Mapping[str, object]]):
    error = ErrorDetailSerializer()


class AutoSchema(_AutoSchema):
    def get_serializer_name(self, serializer: serializers.BaseSerializer[_T], direction: str) -> str:
        if isinstance(serializer, (ErrorSerializer, ErrorDetailSerializer)):
            return type(serializer).__name__.replace("Serializer", "")
        return type(serializer).__qualname__.replace(".", "").replace("Serializer", "")

    def error_statuses(self) -> set[int]:
        view = self.view
        statuses: set[int] = {401}
        if self.method in _BODY_METHODS:
            statuses |= {400, 413, 415}
        if any(p.get("in") == "query" for p in self._get_parameters()):
            statuses.add(400)
        if "{" in self.path:
            statuses.add(404)
        if not all(isinstance(p, AllowAny) for p in view.get_permissions()):
            statuses.add(403)
        if view.get_throttles():
            statuses.add(429)
        statuses |= set(getattr(view, "error_statuses", ()))
        return statuses

    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        error = self.resolve_serializer(ErrorSerializer(), "response").ref
        for code in sorted(self.error_statuses()):
            responses.setdefault(
                str(code),
                {"description": ERROR_DESCRIPTIONS[code], "content": {"application/json": {"schema": error}}},
            )
        return responses


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "bms.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: _AutoSchema) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "X-API-Key"}


class JWTScheme(SimpleJWTScheme):
    """``bms.tokens.JWTAuthentication`` is simplejwt's plus a sign-out check: the same bearer scheme and name,
    so the published schema does not change."""

    target_class = "bms.tokens.JWTAuthentication"
