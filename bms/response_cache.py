"""Server-side cache of the hot GET list responses (``/api/v1/programs``, ``/api/v1/models``).

Key = sha256(view scope + scheme/host + full path with its query string + the caller's role + the
versions of the data the response is built from). The view names those versions as ``bms.versions``
marks, numbers that already change on every write that matters (``programs.selectors.DATA_VERSION``:
imports, generator runs, admin edits; ``registry.selectors.MODEL_VERSIONS_GENERATION``: training and
promotions), read here in one statement (``versions_read``, the read the chat cache makes too), so a
stale entry is never found again; nothing scans keys. ``RESPONSE_CACHE_SECONDS`` is a short TTL on top, the safety net for writes no version covers
(for example a channel renamed in the admin).

The cache is Django's default cache, i.e. Redis with the per-process fallback of ``bms.cache`` while
Redis is down. What is stored is the rendered JSON body, so a hit is one cache read and an
``HttpResponse`` of those bytes: nothing is unpickled into Python objects and rendered again. Content
negotiation has run before the view (DRF's ``initial``): the media type negotiated (with its parameters,
such as ``indent``) is part of the key, and a request that negotiated another renderer than
``JSONRenderer`` is built and rendered as usual, uncached. Only 200 responses are stored; errors are raised
as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from bms.roles import user_role
from bms.versions import Mark, versions_read

KEY_PREFIX = "api:list:v2:"  # v2: rendered bytes (v1 held the data)


def cache_key(request: Request, *, scope: str, versions: tuple[int, ...]) -> str:
    material = json.dumps(
        {
            "s": scope,
            "u": request.build_absolute_uri(request.get_full_path()),  # pagination links are absolute
            "r": user_role(request.user).label,
            "m": getattr(request, "accepted_media_type", ""),
            "v": list(versions),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return KEY_PREFIX + hashlib.sha256(material.encode()).hexdigest()


def cached_response(
    request: Request, *, scope: str, versions: Sequence[Mark], build: Callable[[], Response]
) -> HttpResponse | Response:
    """The cached body of this request's response, or ``build()``'s (rendered and stored when it is a 200).

    ``versions``: the marks of the data the response is built from (read on every request, a hit too)."""
    timeout = int(getattr(settings, "RESPONSE_CACHE_SECONDS", 30))
    renderer = getattr(request, "accepted_renderer", None)
    if timeout <= 0 or type(renderer) is not JSONRenderer:
        return build()
    key = cache_key(request, scope=scope, versions=versions_read(*versions))
    content = cache.get(key)
    if content is None:
        response = build()
        if response.status_code != 200 or response.data is None:
            return response
        context = {"request": request, "response": response}
        content = renderer.render(response.data, request.accepted_media_type, context)
        cache.set(key, content, timeout)
    return HttpResponse(content, content_type=renderer.media_type)
