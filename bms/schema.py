"""OpenAPI generation (drf-spectacular) fitted to the house style.

Views nest their serializers (``ProgramListApi.OutputSerializer``), so plain class names collide
across apps ("Output", "Input"). Components are named from the qualified name instead:
``ProgramListApiOutput``. The ``X-API-Key`` header is declared as a security scheme.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as _AutoSchema
from rest_framework import serializers


class AutoSchema(_AutoSchema):
    def get_serializer_name(self, serializer: serializers.Serializer, direction: Any) -> str:
        return type(serializer).__qualname__.replace(".", "").replace("Serializer", "")


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "bms.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "X-API-Key"}
