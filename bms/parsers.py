"""A JSON parser that enforces ``DATA_UPLOAD_MAX_MEMORY_SIZE`` and ``JSON_MAX_DEPTH`` whatever it is handed.

DRF 3.18 hands JSON parsers ``request.body`` (Django's size check, which only looks at
Content-Length); older DRF versions and bodies without a Content-Length skip that check. Too large
-> 413 in the error format (bms.errors.payload_too_large), the same answer either way.

Nesting: Python's decoder recurses once per level and raises ``RecursionError`` (not a ``ValueError``,
so DRF would answer 500) near the interpreter's limit; anything that walks a parsed value recursively
later (serializers, the renderer of an error) would too. Deeper than ``JSON_MAX_DEPTH`` -> 400.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as _JSONParser

from bms.errors import payload_too_large


def json_depth_exceeds(value: object, limit: int) -> bool:
    """Whether ``value`` nests lists/objects more than ``limit`` deep (iterative: no recursion of its own)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _too_deep() -> ParseError:
    return ParseError(f"JSON parse error - nested deeper than {settings.JSON_MAX_DEPTH} levels.")


class JSONParser(_JSONParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None:
            request = (parser_context or {}).get("request")
            declared = request.META.get("CONTENT_LENGTH") if request is not None else None
            if declared and str(declared).isdigit() and int(declared) > limit:
                raise payload_too_large()
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise payload_too_large()
            stream = io.BytesIO(body)
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise _too_deep() from None
        if json_depth_exceeds(data, settings.JSON_MAX_DEPTH):
            raise _too_deep()
        return data
