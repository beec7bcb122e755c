"""Channels, programs and their airings: the broadcast data every other app works on."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F
from django.db.models.expressions import CombinedExpression, OrderBy
from django.db.models.functions import NullIf


class Genre(models.TextChoices):
    NEWS = "news", "News"
    DRAMA = "drama", "Drama"
    COMEDY = "comedy", "Comedy"
    SPORTS = "sports", "Sports"
    REALITY = "reality", "Reality"
    DOCUMENTARY = "documentary", "Documentary"
    KIDS = "kids", "Kids"
    MOVIE = "movie", "Movie"
    TALK = "talk", "Talk show"
    GAME = "game", "Game show"
    ANIMATION = "animation", "Animation"
    OTHER = "other", "Other"


class ContentRating(models.TextChoices):
    G = "G", "G"
    PG = "PG", "PG"
    PG13 = "PG-13", "PG-13"
    R = "R", "R"


def default_time_zone() -> str:
    """A new channel's time zone: the platform's (``settings.TIME_ZONE``)."""
    return str(settings.TIME_ZONE)


def validate_time_zone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. America/New_York).") from exc


class Channel(models.Model):
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    universe_households = models.PositiveIntegerField(
        help_text="TV households the channel reaches; a rating point is 1% of this."
    )
    time_zone = models.CharField(
        max_length=64,
        default=default_time_zone,
        validators=[validate_time_zone],
        help_text="IANA name; hour, weekday, daypart and holiday features read the start in this zone.",
    )

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Program(models.Model):
    external_id = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=255, db_index=True)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="programs")
    genre = models.CharField(max_length=32, choices=Genre.choices, db_index=True)
    content_rating = models.CharField(max_length=8, choices=ContentRating.choices, default=ContentRating.PG)
    duration_minutes = models.PositiveSmallIntegerField()
    is_live = models.BooleanField(default=False)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]
        # The list's duration ordering, either way with the id tie-break ascending: a program's few lengths
        # (30/60/90/120 min) would leave a backward scan of one index to sort a quarter of the programs.
        indexes = [
            models.Index(fields=["duration_minutes", "id"], name="program_duration_asc"),
            models.Index(fields=["-duration_minutes", "id"], name="program_duration_desc"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.external_id})"


class Airing(models.Model):
    """One broadcast of a program. Targets are null for future airings or data that lacks them."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="airings")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="airings")
    start = models.DateTimeField()
    duration_minutes = models.PositiveSmallIntegerField()
    is_premiere = models.BooleanField(default=False)
    is_finale = models.BooleanField(default=False)
    season = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Season of a series, if known.")
    episode = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Episode within the season.")
    rating = models.FloatField(null=True, blank=True, help_text="Household rating points (% of universe).")
    revenue = models.FloatField(null=True, blank=True, help_text="USD per airing.")
    audience = models.FloatField(null=True, blank=True, help_text="Viewers, thousands.")
    engagement = models.FloatField(null=True, blank=True, help_text="0-100 score.")
    data_version = models.PositiveIntegerField(default=0, help_text="DataVersion that last wrote this row.")

    class Meta:
        ordering = ["start"]
        constraints = [
            models.UniqueConstraint(fields=["program", "channel", "start"], name="airing_natural_key"),
        ]
        indexes = [
            models.Index(fields=["channel", "start"]),
            models.Index(fields=["start"]),
            # Covering: a program's airings in time order with their targets, read by an index-only scan
            # (its weekly trend, its figures over a period) without visiting the heap (PostgreSQL; other
            # databases get the plain index).
            models.Index(
                fields=["program", "start"],
                include=["rating", "revenue", "audience", "engagement"],
                name="airing_program_start_targets",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.program_id} @ {self.start:%Y-%m-%d %H:%M}"


class DataVersion(models.Model):
    """Bumped on every import, generation or edit of airings; cache keys and provenance use it."""

    class Source(models.TextChoices):
        GENERATE = "generate", "Generated"
        IMPORT = "import", "Imported"
        EDIT = "edit", "Edited"

    source = models.CharField(max_length=16, choices=Source.choices)
    description = models.CharField(max_length=255, blank=True)
    rows_affected = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"v{self.pk} {self.source} ({self.rows_affected} rows)"


TARGETS = ("rating", "revenue", "audience", "engagement")


# --- maintained aggregates (programs.aggregates keeps them exact; nothing else writes them) --------
# The program list's orderings that read the summary (``programs.selectors.PROGRAM_ORDERINGS``).
SUMMARY_ORDERINGS = ("airing_count", "last_airing", *(f"avg_{t}" for t in TARGETS))


def summary_key(name: str, *, via: str = "") -> F | CombinedExpression:
    """The value of summary ordering ``name`` (a mean is ``sum / count``), read through ``via``
    (``"stats__"`` from a program). The list's ORDER BY and the summary's indexes are both built from it,
    so PostgreSQL sees the very expression it indexed."""
    if name.startswith("avg_"):
        target = name.removeprefix("avg_")
        return F(f"{via}{target}_sum") / NullIf(F(f"{via}{target}_count"), 0)
    return F(f"{via}{name}")


def summary_order(name: str, *, descending: bool, via: str = "") -> OrderBy:
    """The list's order on summary key ``name``: nulls last either way (programs without data never crowd
    the top of a ranking), the program id after it."""
    key = summary_key(name, via=via)
    return key.desc(nulls_last=True) if descending else key.asc(nulls_last=True)


class ProgramStats(models.Model):
    """One program's totals over all its airings: what the lists, the detail and the rankings read.

    Means are ``<target>_sum / <target>_count`` (count = airings with that target set).
    """

    program = models.OneToOneField(Program, on_delete=models.CASCADE, primary_key=True, related_name="stats")
    airing_count = models.IntegerField(default=0)
    first_airing = models.DateTimeField(null=True)
    last_airing = models.DateTimeField(null=True)
    rating_count = models.IntegerField(default=0)
    rating_sum = models.FloatField(default=0.0)
    rating_min = models.FloatField(null=True)
    rating_max = models.FloatField(null=True)
    revenue_count = models.IntegerField(default=0)
    revenue_sum = models.FloatField(default=0.0)
    revenue_min = models.FloatField(null=True)
    revenue_max = models.FloatField(null=True)
    audience_count = models.IntegerField(default=0)
    audience_sum = models.FloatField(default=0.0)
    audience_min = models.FloatField(null=True)
    audience_max = models.FloatField(null=True)
    engagement_count = models.IntegerField(default=0)
    engagement_sum = models.FloatField(default=0.0)
    engagement_min = models.FloatField(null=True)
    engagement_max = models.FloatField(null=True)

    class Meta:
        # One per ordering of the program list and direction (a backward scan would put nulls first and
        # reverse the id tie-break): the list walks one page of an index instead of sorting every program.
        # PostgreSQL only (migration 0006): SQLite has no NULLS LAST in an index.
        indexes = [
            models.Index(
                summary_order(key, descending=descending),
                F("program"),
                name=f"pstats_{key}_{('asc', 'desc')[descending]}",
            )
            for key in SUMMARY_ORDERINGS
            for descending in (False, True)
        ]

    def __str__(self) -> str:
        return f"stats of {self.program_id} ({self.airing_count} airings)"


class Period(models.TextChoices):
    WEEK = "week", "Week (local Monday)"
    MONTH = "month", "Month (local)"


class PeriodSums(models.Model):
    """Counts and sums per target for one local week or month (means are sum / count)."""

    period = models.CharField(max_length=8, choices=Period.choices)
    period_start = models.DateField()
    airing_count = models.IntegerField(default=0)
    rating_count = models.IntegerField(default=0)
    rating_sum = models.FloatField(default=0.0)
    revenue_count = models.IntegerField(default=0)
    revenue_sum = models.FloatField(default=0.0)
    audience_count = models.IntegerField(default=0)
    audience_sum = models.FloatField(default=0.0)
    engagement_count = models.IntegerField(default=0)
    engagement_sum = models.FloatField(default=0.0)

    class Meta:
        abstract = True


class ProgramPeriodStats(PeriodSums):
    """A program's airings on one channel in one period: program trends and rankings over a time range."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["program", "period", "period_start", "channel"], name="program_period_stats_key"
            ),
        ]
        indexes = [models.Index(fields=["period", "period_start"])]

    def __str__(self) -> str:
        return f"{self.program_id} {self.period} {self.period_start}"


class SegmentPeriodStats(PeriodSums):
    """All airings of one genre on one channel in one period: the dashboard and genre/channel trends."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    genre = models.CharField(max_length=32, choices=Genre.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["period", "period_start", "channel", "genre"], name="segment_period_stats_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.genre} {self.period} {self.period_start}"


class ChannelPeriodStats(PeriodSums):
    """All airings of one channel in one month (``SegmentPeriodStats`` summed over genres): the dashboard's
    per-channel series reads one row per channel and month instead of summing a row per genre."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["period", "period_start", "channel"], name="channel_period_stats_key"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.period} {self.period_start}"


class GenrePeriodStats(PeriodSums):
    """All airings of one genre in one month (``SegmentPeriodStats`` summed over channels): the dashboard's
    per-genre series."""

    genre = models.CharField(max_length=32, choices=Genre.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["period", "period_start", "genre"], name="genre_period_stats_key"),
        ]

    def __str__(self) -> str:
        return f"{self.genre} {self.period} {self.period_start}"
