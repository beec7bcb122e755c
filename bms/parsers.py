"""A JSON parser that enforces ``DATA_UPLOAD_MAX_MEMORY_SIZE`` whatever stream it is handed.

DRF 3.18 hands JSON parsers ``request.body`` (Django's size check, which only looks at
Content-Length); older DRF versions and bodies without a Content-Length skip that check. Too large
-> 413 in the error format (bms.errors.payload_too_large), the same answer either way.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.parsers import JSONParser as _JSONParser

from bms.errors import payload_too_large


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
            return super().parse(io.BytesIO(body), media_type, parser_context)
        return super().parse(stream, media_type, parser_context)
