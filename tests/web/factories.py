"""Small broadcast data for the page tests (a few channels, programs and weekly airings)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from programs.aggregates import aggregates_rebuild
from programs.models import Airing, Channel, Program
from programs.services import data_version_bump

NY = ZoneInfo("America/New_York")
GENRES = ("drama", "news", "comedy", "sports")


@dataclass
class Broadcasts:
    channels: list[Channel]
    programs: list[Program]
    airings: int


def broadcast_data(*, channels: int = 2, programs: int = 6, weeks: int = 10) -> Broadcasts:
    """``programs`` programs spread over ``channels``, each airing weekly at 20:00 for ``weeks`` weeks."""
    chans = [
        Channel.objects.create(code=f"ch{i}", name=f"Channel {i}", universe_households=1_000_000 * (i + 1))
        for i in range(channels)
    ]
    progs = [
        Program.objects.create(
            external_id=f"ABC{i:03d}",
            title=f"Show number {i}",
            channel=chans[i % channels],
            genre=GENRES[i % len(GENRES)],
            content_rating="PG",
            duration_minutes=60,
        )
        for i in range(programs)
    ]
    start = datetime(2025, 1, 6, 20, 0, tzinfo=NY)
    rows = [
        Airing(
            program=p,
            channel=p.channel,
            start=start + timedelta(days=7 * week + j % 7, hours=j // 7),
            duration_minutes=60,
            rating=1.0 + j + week / 10,
            revenue=10_000.0 * (j + 1) + 100 * week,
            audience=100.0 * (j + 1) + week,
            engagement=40.0 + j,
        )
        for j, p in enumerate(progs)
        for week in range(weeks)
    ]
    Airing.objects.bulk_create(rows)
    data_version_bump(source="generate", description="web tests", rows_affected=len(rows))
    aggregates_rebuild()  # rows written directly: bring the maintained summaries up to date
    return Broadcasts(channels=chans, programs=progs, airings=len(rows))


def model_version(*, target: str, algorithm: str, version: int = 1, status: str = "candidate", r2: float = 0.8):
    """A registry row without an artifact (tests that promote replace registry.artifacts.load_model)."""
    from registry.models import ModelVersion

    return ModelVersion.objects.create(
        target=target,
        algorithm=algorithm,
        version=version,
        status=status,
        metrics={"r2": r2, "rmse": 1.5},
        artifact_path=f"{target}/{algorithm}/v{version}.skops",
        artifact_format="skops",
        artifact_sha256="0" * 64,
    )


def promoted(version, *, actor=None, reason: str = "initial"):
    """Record ``version`` as promoted to production (what the registry's service writes)."""
    from django.utils import timezone

    from registry.models import ModelVersion, PromotionEvent

    ModelVersion.objects.filter(pk=version.pk).update(status="production")
    PromotionEvent.objects.create(
        version=version,
        target=version.target,
        from_status="candidate",
        to_status="production",
        actor=actor,
        actor_name=actor.username if actor else "system",
        reason=reason,
        created_at=timezone.now(),
    )
    version.refresh_from_db()
    return version
