"""Each process's memory of the API keys it looked up, for ``API_KEY_CACHE_SECONDS``.

A service calling ``/api/v1/predict`` sends the same key on every request; looking it up (key, user,
role: two queries) was the largest part of a prediction's cost (bench/predict.py). Revoking a key
(``bms.services.api_key_revoke``) drops it here at once; another process, or a user deactivated or
given another role, is seen within ``API_KEY_CACHE_SECONDS`` (0 turns the cache off).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from bms.models import ApiKey

_MAX_KEYS = 10_000

_known: dict[str, tuple[ApiKey, float]] = {}  # key hash -> (ApiKey with its user, expiry on time.monotonic())
_lock = threading.Lock()


def api_key_cache_get(key_hash: str) -> ApiKey | None:
    entry = _known.get(key_hash)
    if entry is None or entry[1] <= time.monotonic():
        return None
    return entry[0]


def api_key_cache_put(key_hash: str, key: ApiKey) -> None:
    ttl = float(settings.API_KEY_CACHE_SECONDS)
    if ttl <= 0:
        return
    with _lock:
        if len(_known) >= _MAX_KEYS:
            _known.clear()
        _known[key_hash] = (key, time.monotonic() + ttl)


def api_key_cache_clear(key_hash: str | None = None) -> None:
    """Forget one key (by its hash) or every key."""
    with _lock:
        if key_hash is None:
            _known.clear()
        else:
            _known.pop(key_hash, None)
