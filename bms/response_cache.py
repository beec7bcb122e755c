"""Server-side cache of the hot GET list responses (``/api/v1/programs``, ``/api/v1/models``).

Key = sha256(view scope + scheme/host + full path with its query string + the caller's role + the
versions of the data the response is built from). The versions are numbers that already change on every
write that matters (``programs.selectors.data_version_current``: imports, generator runs, admin edits;
``registry`` numbers: training and promotions), so a stale entry is never found again; nothing scans
keys. ``RESPONSE_CACHE_SECONDS`` is a short TTL on top, the safety net for writes no version covers
(for example a channel renamed in the admin).

The cache is Django's default cache, i.e. Redis with the per-process fallback of ``bms.cache`` while
Redis is down. What is stored is the response's data (JSON-able), not rendered bytes, so the content
negotiation of each request still applies. Only 200 responses are stored; errors are raised as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.response import Response

from bms.roles import user_role

KEY_PREFIX = "api:list:v1:"


def cache_key(request: Request, *, scope: str, versions: tuple[Hashable, ...]) -> str:
    material = json.dumps(
        {
            "s": scope,
            "u": request.build_absolute_uri(request.get_full_path()),  # pagination links are absolute
            "r": user_role(request.user).label,
            "v": list(versions),
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return KEY_PREFIX + hashlib.sha256(material.encode()).hexdigest()


def cached_response(
    request: Request, *, scope: str, versions: Callable[[], tuple[Hashable, ...]], build: Callable[[], Response]
) -> Response:
    """The cached data of this request's response, or ``build()``'s (stored when it is a 200)."""
    timeout = int(getattr(settings, "RESPONSE_CACHE_SECONDS", 30))
    if timeout <= 0:
        return build()
    key = cache_key(request, scope=scope, versions=versions())
    data = cache.get(key)
    if data is not None:
        return Response(data)
    response = build()
    if response.status_code == 200 and response.data is not None:
        cache.set(key, response.data, timeout)
    return response
