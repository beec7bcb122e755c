"""Factories for broadcast data tests: model rows, canonical CSV text and small generator configs."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from programs.aggregates import airings_aggregate, airings_frame
from programs.generator import GeneratorConfig
from programs.importer import CANONICAL_COLUMNS
from programs.models import Airing, Channel, Program

_seq = itertools.count(1)
NY = ZoneInfo("America/New_York")

# The importer's canonical columns of a plain file: without series/season/episode, finale, description
# and the channel's universe and time zone (each has its own tests).
OPTIONAL_COLUMNS = frozenset(
    {"series", "season", "episode", "is_finale", "description", "channel_universe", "time_zone"}
)
CANONICAL_HEADER = tuple(c for c in CANONICAL_COLUMNS if c not in OPTIONAL_COLUMNS)

# A reduced configuration that keeps the default's structure (every block, both weekday and weekend
# plans, several seasons per slot) and its noise levels: 2 channels x 180 days ~ 6.5k airings.
SMALL_CONFIG = GeneratorConfig(seed=42, channels=2, programs=120, days=180)


def channel(*, code: str | None = None, **fields: Any) -> Channel:
    code = code or f"dch{next(_seq)}"
    return Channel.objects.create(code=code, **{"name": f"Channel {code}", "universe_households": 1_000_000, **fields})


def program(*, external_id: str | None = None, channel_obj: Channel | None = None, **fields: Any) -> Program:
    n = next(_seq)
    values = {"title": f"Program {n}", "genre": "drama", "content_rating": "PG", "duration_minutes": 60, **fields}
    return Program.objects.create(
        external_id=external_id or f"DAT{n % 1000:03d}", channel=channel_obj or channel(), **values
    )


def airing(*, program_obj: Program, start: datetime | None = None, **fields: Any) -> Airing:
    values = {"duration_minutes": program_obj.duration_minutes, "rating": 1.5, "audience": 250.0, **fields}
    row = Airing.objects.create(
        program=program_obj,
        channel=fields.pop("channel", None) or program_obj.channel,
        start=start or datetime(2025, 3, 1, 20, 0, tzinfo=NY),
        **values,
    )
    airings_aggregate(added=airings_frame(Airing.objects.filter(pk=row.pk)))  # as every writer of airings does
    return row


def canonical_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "external_id": "ABC123",
        "title": "Harbor Lights",
        "channel": "Northstar One",
        "genre": "drama",
        "content_rating": "PG-13",
        "start": "2025-03-01T20:00:00-05:00",
        "duration_minutes": "60",
        "is_premiere": "false",
        "is_live": "false",
        "rating": "2.5",
        "revenue": "120000",
        "audience": "410.5",
        "engagement": "61",
    }
    row.update(overrides)
    return row


def canonical_row_of(stored: Airing, tz: ZoneInfo) -> dict[str, Any]:
    """The canonical CSV row that re-imports ``stored`` unchanged (its start written in ``tz``)."""
    return canonical_row(
        external_id=stored.program.external_id,
        title=stored.program.title,
        channel=stored.channel.name,
        genre=stored.program.genre,
        start=stored.start.astimezone(tz).isoformat(),
        duration_minutes=str(stored.duration_minutes),
        is_premiere=str(stored.is_premiere).lower(),
        rating=repr(stored.rating),
        revenue=repr(stored.revenue),
        audience=repr(stored.audience),
        engagement=repr(stored.engagement),
    )


def write_csv(
    path: Path, rows: Iterable[dict[str, Any] | list[Any]], header: Iterable[str] | None = CANONICAL_HEADER
) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    fields = list(header) if header is not None else None
    if fields is not None:
        writer.writerow(fields)
    for row in rows:
        if isinstance(row, dict):
            assert fields is not None
            writer.writerow([row.get(f, "") for f in fields])
        else:
            writer.writerow(row)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path
