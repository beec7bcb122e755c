"""Small factories for the API/export tests (the data engineer's factories live in factories.py)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from programs.aggregates import airings_aggregate, airings_frame
from programs.models import Airing, Channel, Program

_seq = itertools.count(1)
NY = ZoneInfo("America/New_York")


def channel_factory(*, code: str | None = None, **fields: Any) -> Channel:
    n = next(_seq)
    code = code or f"ch{n}"
    values = {"name": f"Channel {code}", "universe_households": 1_000_000, **fields}
    return Channel.objects.create(code=code, **values)


def program_factory(*, external_id: str | None = None, channel: Channel | None = None, **fields: Any) -> Program:
    n = next(_seq)
    values = {
        "title": f"Program {n}",
        "genre": "drama",
        "content_rating": "PG",
        "duration_minutes": 60,
        **fields,
    }
    return Program.objects.create(
        external_id=external_id or f"PRG{n:05d}", channel=channel or channel_factory(), **values
    )


def airing_factory(
    *,
    program: Program,
    start: datetime | None = None,
    rating: float | None = 1.0,
    revenue: float | None = 1000.0,
    audience: float | None = 100.0,
    engagement: float | None = 50.0,
    **fields: Any,
) -> Airing:
    n = next(_seq)
    values = {"duration_minutes": program.duration_minutes, **fields}
    row = Airing.objects.create(
        program=program,
        channel=values.pop("channel", program.channel),
        start=start or datetime(2025, 1, 6, 20, 0, tzinfo=NY) + timedelta(minutes=n),
        rating=rating,
        revenue=revenue,
        audience=audience,
        engagement=engagement,
        **values,
    )
    airings_aggregate(added=airings_frame(Airing.objects.filter(pk=row.pk)))  # as every writer of airings does
    return row
