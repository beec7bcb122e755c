"""Factories for the scheduling tests: a channel with a varied catalogue and a fake value provider."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from programs.models import Airing, Channel, Program
from tests.scheduling.fake_values import fake_value_matrices

__all__ = ["airing_factory", "catalogue_factory", "channel_factory", "fake_value_matrices", "program_factory"]

_seq = itertools.count(1)
GENRES = ("news", "drama", "comedy", "sports", "reality", "documentary", "kids", "movie")


def channel_factory(*, code: str | None = None) -> Channel:
    n = next(_seq)
    return Channel.objects.create(code=code or f"sch{n}", name=f"Sched {n}", universe_households=1_000_000)


def program_factory(*, channel: Channel, **fields: Any) -> Program:
    n = next(_seq)
    values = {"title": f"Show {n}", "genre": "drama", "content_rating": "PG", "duration_minutes": 30, **fields}
    return Program.objects.create(external_id=values.pop("external_id", f"SCH{n:05d}"), channel=channel, **values)


def catalogue_factory(*, channel: Channel, n: int = 12) -> list[Program]:
    """``n`` half-hour programs over 8 genres, ratings G/PG/PG-13 (nothing needs a late window)."""
    ratings = ("G", "PG", "PG-13")
    return [
        program_factory(channel=channel, genre=GENRES[i % len(GENRES)], content_rating=ratings[i % 3], title=f"Cat {i}")
        for i in range(n)
    ]


def airing_factory(*, program: Program, start: datetime) -> Airing:
    return Airing.objects.create(program=program, channel=program.channel, start=start, duration_minutes=30)
