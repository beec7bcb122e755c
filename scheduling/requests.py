"""The schedule request: one typed input for the API, the page, the chat tool and the job.

:class:`ScheduleRequest` is what :func:`scheduling.services.optimization_job_create` takes and what a
job stores (as JSON, :meth:`ScheduleRequest.to_json` / :meth:`ScheduleRequest.from_json`). Its defaults
are written here once. :class:`ScheduleRequestSerializer` holds the validation rules (ranges, choices,
unknown fields refused) and maps onto the dataclass; the API uses it as its input serializer, the page
and the chat tool call :func:`schedule_request_parse`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import TypeAdapter, ValidationError
from rest_framework import serializers

from bms.errors import ApplicationError
from bms.jsontypes import JSONObject
from bms.serializers import StrictSerializer
from programs.calendar import DAYPART_NAMES
from programs.models import Genre
from scheduling.problem import RATINGS

SELECTIONS = ("tournament", "roulette")
CROSSOVERS = ("day_uniform", "uniform", "one_point")
MUTATIONS = ("swap", "shuffle")


@dataclass(frozen=True)
class SlotInput:
    start: dt.datetime
    length: int


@dataclass(frozen=True)
class FixedInput:
    start: dt.datetime
    program: str  # program id or external id


@dataclass(frozen=True)
class UnavailableInput:
    program: str
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class RatingWindowInput:
    start: str  # HH:MM local
    end: str
    ratings: tuple[str, ...]


@dataclass(frozen=True)
class GoalInput:
    genre: str
    weight: float
    name: str = ""
    daypart: str | None = None
    weekday: int | None = None  # 0 = Monday


@dataclass(frozen=True)
class Weights:
    revenue: float = 1.0
    audience: float = 0.0
    balance: float = 1.0


@dataclass(frozen=True)
class ScheduleRequest:
    """A schedule optimisation request. A ``date`` asks for a timeline (airings of their own lengths on
    a grid of ``slot_minutes``); an explicit list of ``slots`` is the fixed-slot special case."""

    channel: str  # channel code
    date: dt.date | None = None
    days: int = 1
    daypart: str | None = None
    start_time: str | None = None  # HH:MM
    end_time: str | None = None
    slot_minutes: int = 30
    slots: tuple[SlotInput, ...] = ()
    candidates: tuple[str, ...] = ()
    weights: Weights = field(default_factory=Weights)
    max_per_day: int = 2
    max_per_week: int | None = None
    gap_penalty: float | None = None  # None: no gaps
    filler: str | None = None
    max_consecutive_genre: int = 2
    min_genres_per_daypart: int = 0
    min_fill: float = 0.5
    rating_windows: tuple[RatingWindowInput, ...] | None = None  # None: the default windows
    fixed: tuple[FixedInput, ...] = ()
    unavailable: tuple[UnavailableInput, ...] = ()
    goals: tuple[GoalInput, ...] = ()
    seed: int = 0
    time_budget: float | None = None  # seconds; None: settings.SCHEDULE_TIME_BUDGET_SECONDS
    generations: int = 200
    population: int = 24
    top_k: int = 3
    selection: str = "tournament"
    crossover: str = "day_uniform"
    mutation: str = "swap"
    pareto: bool = True

    @property
    def is_timeline(self) -> bool:
        return not self.slots

    def to_json(self) -> JSONObject:
        """The request as stored on its job (unset optional fields left out)."""
        data: JSONObject = _ADAPTER.dump_python(self, mode="json", exclude_none=True)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ScheduleRequest:
        """A stored request (or any plain JSON with these fields) back into its types."""
        try:
            return _ADAPTER.validate_python(dict(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ApplicationError(
                f"Invalid schedule request: {where}: {first['msg']}", code="invalid_request", details={"field": where}
            ) from None


_ADAPTER: TypeAdapter[ScheduleRequest] = TypeAdapter(ScheduleRequest)


# ---- validation rules (the API's input serializer) ----------------------------------------------
class _SlotSerializer(StrictSerializer):
    start = serializers.DateTimeField()
    length = serializers.IntegerField(min_value=5, max_value=480)


class _FixedSerializer(StrictSerializer):
    start = serializers.DateTimeField()
    program = serializers.CharField(max_length=64, help_text="Program id or external id.")


class _UnavailableSerializer(StrictSerializer):
    program = serializers.CharField(max_length=64)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class _RatingWindowSerializer(StrictSerializer):
    start = serializers.RegexField(r"^\d{2}:\d{2}$")
    end = serializers.RegexField(r"^\d{2}:\d{2}$")
    ratings = serializers.ListField(child=serializers.ChoiceField(choices=RATINGS), allow_empty=False)


class _GoalSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100, required=False)
    genre = serializers.ChoiceField(choices=tuple(Genre.values))
    daypart = serializers.ChoiceField(choices=DAYPART_NAMES, required=False)
    weekday = serializers.IntegerField(min_value=0, max_value=6, required=False, help_text="0 = Monday.")
    weight = serializers.FloatField(min_value=0, max_value=10)


class _WeightsSerializer(StrictSerializer):
    revenue = serializers.FloatField(min_value=0, default=Weights.revenue)
    audience = serializers.FloatField(min_value=0, default=Weights.audience)
    balance = serializers.FloatField(min_value=0, default=Weights.balance)


D = ScheduleRequest  # the defaults below are the dataclass's


class ScheduleRequestSerializer(StrictSerializer):
    channel = serializers.CharField(max_length=32, help_text="Channel code.")
    date = serializers.DateField(required=False, allow_null=True, help_text="First broadcast day (local).")
    days = serializers.IntegerField(min_value=1, max_value=7, default=D.days)
    daypart = serializers.ChoiceField(choices=DAYPART_NAMES, required=False, allow_null=True)
    start_time = serializers.RegexField(r"^\d{2}:\d{2}$", required=False, allow_null=True)
    end_time = serializers.RegexField(r"^\d{2}:\d{2}$", required=False, allow_null=True)
    slot_minutes = serializers.IntegerField(
        min_value=5,
        max_value=240,
        default=D.slot_minutes,
        help_text="Grid of airing starts (timeline) or the slot length.",
    )
    slots = _SlotSerializer(many=True, required=False)
    candidates = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=4000)
    weights = _WeightsSerializer(required=False)
    max_per_day = serializers.IntegerField(min_value=1, max_value=48, default=D.max_per_day)
    max_per_week = serializers.IntegerField(
        min_value=1, max_value=336, required=False, allow_null=True, help_text="Airings of a program in the window."
    )
    gap_penalty = serializers.FloatField(
        min_value=0,
        max_value=100,
        required=False,
        allow_null=True,
        help_text="Allow empty airtime at this cost per minute (slot-value units); default: no gaps.",
    )
    filler = serializers.CharField(
        max_length=64, required=False, allow_null=True, help_text="A program that may fill any leftover cell."
    )
    max_consecutive_genre = serializers.IntegerField(min_value=0, max_value=48, default=D.max_consecutive_genre)
    min_genres_per_daypart = serializers.IntegerField(min_value=0, max_value=12, default=D.min_genres_per_daypart)
    min_fill = serializers.FloatField(min_value=0, max_value=1, default=D.min_fill)
    rating_windows = _RatingWindowSerializer(many=True, required=False)
    fixed = _FixedSerializer(many=True, required=False)
    unavailable = _UnavailableSerializer(many=True, required=False)
    goals = _GoalSerializer(many=True, required=False)
    seed = serializers.IntegerField(min_value=0, default=D.seed)
    time_budget = serializers.FloatField(min_value=0.1, required=False)
    generations = serializers.IntegerField(min_value=1, max_value=1000, default=D.generations)
    population = serializers.IntegerField(min_value=4, max_value=200, default=D.population)
    top_k = serializers.IntegerField(min_value=1, max_value=10, default=D.top_k)
    selection = serializers.ChoiceField(choices=SELECTIONS, default=D.selection)
    crossover = serializers.ChoiceField(choices=CROSSOVERS, default=D.crossover)
    mutation = serializers.ChoiceField(choices=MUTATIONS, default=D.mutation)
    pareto = serializers.BooleanField(default=D.pareto)

    def validate(self, attrs: dict[str, object]) -> dict[str, object]:
        if not attrs.get("slots") and not attrs.get("date"):
            raise serializers.ValidationError("Give either a date or an explicit list of slots.")
        return attrs

    def request(self) -> ScheduleRequest:
        """The validated data as the typed request (call after ``is_valid``)."""
        return _ADAPTER.validate_python(dict(self.validated_data))


def schedule_request_parse(data: Mapping[str, object]) -> ScheduleRequest:
    """Validate a request as the API does; raises ``serializers.ValidationError`` (its ``detail`` holds
    the field errors) on bad input."""
    serializer = ScheduleRequestSerializer(data=dict(data))
    serializer.is_valid(raise_exception=True)
    return serializer.request()
