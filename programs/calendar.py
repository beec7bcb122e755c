"""Broadcast calendar: dayparts and holidays. Shared by the generator, features and the optimiser."""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

# Broadcast day: 06:00 to 02:00 local time. Hours after midnight belong to late night.
DAYPARTS: tuple[tuple[str, int, int], ...] = (
    ("early_morning", 6, 9),
    ("daytime", 9, 16),
    ("early_fringe", 16, 18),
    ("prime_access", 18, 20),
    ("prime_time", 20, 23),
    ("late_night", 23, 26),
)
DAYPART_NAMES = tuple(name for name, _, _ in DAYPARTS)


def daypart_for_hour(hour: int) -> str:
    """Daypart of a local clock hour (0-23); hours 0-5 are late night / overnight."""
    h = hour if hour >= 6 else hour + 24
    for name, start, end in DAYPARTS:
        if start <= h < end:
            return name
    return "late_night"


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    return first + timedelta(days=offset + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


@lru_cache(maxsize=64)
def holidays(year: int) -> frozenset[date]:
    """US federal holidays plus the big TV nights (Christmas Eve, New Year's Eve)."""
    return frozenset(
        {
            date(year, 1, 1),
            _nth_weekday(year, 1, 0, 3),  # MLK day
            _nth_weekday(year, 2, 0, 3),  # Presidents' day
            _last_weekday(year, 5, 0),  # Memorial day
            date(year, 7, 4),
            _nth_weekday(year, 9, 0, 1),  # Labor day
            _nth_weekday(year, 11, 3, 4),  # Thanksgiving
            _nth_weekday(year, 11, 3, 4) + timedelta(days=1),
            date(year, 12, 24),
            date(year, 12, 25),
            date(year, 12, 31),
        }
    )


def is_holiday(day: date) -> bool:
    return day in holidays(day.year)
