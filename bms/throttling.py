"""DRF's rate throttles as fixed-window counters: one cache round trip per request and throttle.

DRF's ``SimpleRateThrottle`` keeps, per caller, the list of the timestamps of every request of the last
window and reads and writes the whole list on every request: two round trips and, at the default user rate
of 6000/minute, a list of up to 6000 floats pickled both ways. Here a window starts at the caller's first
request and counts requests (``bms.cache.count_hit``: INCR + EXPIRE NX + PTTL in one pipeline on Redis,
the process's memory while Redis is down or in embedded mode). A caller gets at most ``num_requests`` per
window; as with any fixed window, up to twice that can pass across the end of one window and the start of
the next. The rates, scopes and cache keys of the callers are DRF's own (``get_cache_key``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rest_framework import throttling
from rest_framework.request import Request

from bms.cache import count_hit

if TYPE_CHECKING:  # DRF imports this module while rest_framework.views is half-initialised (its throttle setting)
    from rest_framework.views import APIView


class FixedWindowThrottleMixin:
    """Over a ``SimpleRateThrottle`` subclass: replaces its timestamp list with a counter."""

    rate: str | None
    num_requests: int | None
    duration: int | None
    key: str | None
    get_cache_key: Callable[[Request, APIView], str | None]

    def allow_request(self, request: Request, view: APIView) -> bool:
        self.seconds_left: float | None = None
        if self.rate is None or self.num_requests is None or self.duration is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        count, left = count_hit(f"{self.key}:window", int(self.duration))
        if count <= self.num_requests:
            return True
        self.seconds_left = left
        return False

    def wait(self) -> float | None:
        """Seconds until the window ends (the ``Retry-After`` of the 429)."""
        return getattr(self, "seconds_left", None)


class AnonRateThrottle(FixedWindowThrottleMixin, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(FixedWindowThrottleMixin, throttling.UserRateThrottle):
    pass


class ScopedRateThrottle(FixedWindowThrottleMixin, throttling.ScopedRateThrottle):
    def allow_request(self, request: Request, view: APIView) -> bool:
        # As DRF's: the rate is the view's scope's, known only now.
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)
