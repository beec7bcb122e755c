"""The Redis cache, degrading to a per-process memory cache while Redis is unreachable.

Everything that uses Django's cache goes through here: DRF's throttles (so during an outage each
process limits on its own counts instead of answering 500), the chat answer cache and its statistics,
the WebSocket message limit. On a connection error (or a timeout: ``SOCKET_TIMEOUT`` keeps them short)
the call is answered by a ``LocMemCache`` of this process, and for ``FALLBACK_RETRY_SECONDS`` every call
goes there without trying Redis, so a request never waits on a dead server more than once per window.
The first call after the window tries Redis again: recovery needs nothing from an operator.

What is lost during an outage is sharing: limits count per process, cached answers and chat statistics
stay in the process that made them. Nothing here is business data (that is in the database).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from typing import Any

from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django_redis.cache import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bms.metrics import CACHE_FALLBACKS

logger = logging.getLogger(__name__)

# With IGNORE_EXCEPTIONS off (it must be: we want to know), django-redis re-raises the client's error.
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)


class FallbackRedisCache(RedisCache):
    """``django_redis.cache.RedisCache`` with a local fallback; the methods BMS uses are covered."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = dict(params.get("OPTIONS", {}))
        self.retry_seconds = float(options.pop("FALLBACK_RETRY_SECONDS", 5.0))
        super().__init__(server, {**params, "OPTIONS": options})
        self.local = LocMemCache(f"bms-fallback-{id(self)}", {"OPTIONS": {"MAX_ENTRIES": 10_000}})
        self._down_until = 0.0
        self._lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        """True while calls go to the local cache (Redis failed less than ``retry_seconds`` ago)."""
        return time.monotonic() < self._down_until

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            first = not self.degraded
            self._down_until = time.monotonic() + self.retry_seconds
        if first:
            logger.warning("Redis cache unavailable (%s: %s); using the process's memory", type(exc).__name__, exc)
        CACHE_FALLBACKS.inc()

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if not self.degraded:
            try:
                return getattr(super(), name)(*args, **kwargs)
            except UNAVAILABLE as exc:
                self._failed(exc)
        return getattr(self.local, name)(*args, **kwargs)

    def incr_many(self, deltas: Mapping[str, int]) -> None:
        """Add each delta to its counter in one round trip: a pipeline of INCRBY (a missing counter
        starts at 0 and never expires). django-redis stores integers as plain Redis integers, so
        ``get`` reads these counters back as ints."""
        if not self.degraded:
            try:
                pipe = self.client.get_client(write=True).pipeline(transaction=False)
                for key, delta in deltas.items():
                    pipe.incrby(self.client.make_key(key), delta)
                pipe.execute()
                return
            except UNAVAILABLE as exc:
                self._failed(exc)
        counters_add(self.local, deltas)

    def count_hit(self, key: str, seconds: int) -> tuple[int, float]:
        """See ``count_hit``: INCR, EXPIRE NX and PTTL in one round trip (the key always has a TTL)."""
        if not self.degraded:
            try:
                name = self.client.make_key(key)
                pipe = self.client.get_client(write=True).pipeline(transaction=False)
                pipe.incr(name)
                pipe.expire(name, seconds, nx=True)  # only the first hit of a window sets it (Redis >= 7)
                pipe.pttl(name)
                count, _, left_ms = pipe.execute()
                return int(count), max(int(left_ms), 0) / 1000.0
            except UNAVAILABLE as exc:
                self._failed(exc)
        return _local_count_hit(self.local, key, seconds)

    def get(self, key: Any, default: Any = None, version: int | None = None, client: Any = None) -> Any:
        if client is not None:
            return super().get(key, default, version, client)
        return self._call("get", key, default, version=version)

    def set(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("set", *args, **kwargs)

    def add(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("add", *args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("delete", *args, **kwargs)

    def get_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("get_many", *args, **kwargs)

    def set_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("set_many", *args, **kwargs)

    def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("delete_many", *args, **kwargs)

    def incr(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("incr", *args, **kwargs)

    def decr(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("decr", *args, **kwargs)

    def has_key(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("has_key", *args, **kwargs)

    def touch(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("touch", *args, **kwargs)

    def clear(self) -> Any:
        self.local.clear()
        return self._call("clear")


def counters_add(backend: BaseCache, deltas: Mapping[str, int]) -> None:
    """Add each delta to its counter in ``backend`` (created at the delta, without expiry, if missing)."""
    for key, delta in deltas.items():
        # incr() raises for a missing key: only then (the first count, or after an eviction) is the
        # counter created, so a steady-state count is one call.
        try:
            backend.incr(key, delta)
        except ValueError:
            if not backend.add(key, delta, timeout=None):  # another process created it meanwhile
                try:
                    backend.incr(key, delta)
                except ValueError:  # evicted again in between: start from this delta
                    backend.set(key, delta, timeout=None)


def incr_many(deltas: Mapping[str, int]) -> None:
    """Add to several counters of the default cache: one round trip on Redis, one call each elsewhere."""
    from django.core.cache import caches

    backend = caches["default"]
    if isinstance(backend, FallbackRedisCache):
        backend.incr_many(deltas)
    else:
        counters_add(backend, deltas)


_count_lock = threading.Lock()


def _local_count_hit(cache: BaseCache, key: str, seconds: int) -> tuple[int, float]:
    now = time.time()
    with _count_lock:
        entry = cache.get(key)
        if entry is None or entry[1] <= now:
            entry = (0, now + seconds)
        entry = (entry[0] + 1, entry[1])
        cache.set(key, entry, timeout=max(1, math.ceil(entry[1] - now)))
    return entry[0], entry[1] - now


def count_hit(key: str, seconds: int) -> tuple[int, float]:
    """Count one hit on ``key`` in a window of ``seconds`` that starts at its first hit: (hits so far in the
    window, seconds until it ends). On Redis one round trip; in a process's memory (the embedded cache, or
    Redis unreachable) per process."""
    from django.core.cache import caches

    backend = caches["default"]
    if isinstance(backend, FallbackRedisCache):
        return backend.count_hit(key, seconds)
    return _local_count_hit(backend, key, seconds)


def shared_cache_unavailable() -> bool:
    """True while the default cache answers from this process's memory (Redis unreachable)."""
    from django.core.cache import caches

    backend = caches["default"]
    return isinstance(backend, FallbackRedisCache) and backend.degraded
