"""From a validated request to a :class:`~scheduling.problem.Problem`: slots, candidates, constraints.

The slots come from (date, days, daypart or start/end time, slot length) or an explicit list; the
candidates default to the channel's programs. Times are local (``settings.TIME_ZONE``); a broadcast
day runs 06:00-02:00, so 01:00 belongs to the previous day. The value matrices are passed in, so
the same builder checks feasibility (zeros) at request time and runs the job with predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from django.conf import settings

from bms.errors import ApplicationError, NotFoundError
from programs.calendar import DAYPART_NAMES, DAYPARTS, daypart_for_hour
from programs.models import Channel, Genre, Program
from programs.selectors import program_get
from scheduling.problem import RATINGS, AdvertiserGoal, Problem, RatingWindow
from scheduling.requests import ScheduleRequest
from scheduling.timeline import Pin, Timeline, Unavailable

GENRES: tuple[str, ...] = tuple(Genre.values)
BROADCAST_DAY_START = 6  # local hour
MAX_SLOTS = 2000
MAX_CANDIDATES = 4000
MAX_CELLS = 1_500_000  # programs x slots predicted per target in one job


@dataclass
class ProblemSpec:
    channel: Channel
    starts: list[datetime]  # aware, local
    lengths: list[int]
    programs: list[Program]
    problem_kwargs: dict[str, Any]

    def problem(self, revenue: np.ndarray, audience: np.ndarray) -> Problem:
        return Problem(revenue=revenue, audience=audience, **self.problem_kwargs)

    def zeros(self) -> Problem:
        shape = (len(self.programs), len(self.starts))
        return self.problem(np.zeros(shape), np.zeros(shape))


def _tz() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _hhmm(value: str, field: str) -> int:
    try:
        hours, minutes = value.split(":")
        h, m = int(hours), int(minutes)
    except (ValueError, AttributeError):
        raise ApplicationError(f"{field} must be HH:MM.", code="invalid_time", details={field: value}) from None
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ApplicationError(f"{field} must be HH:MM.", code="invalid_time", details={field: value})
    return h * 60 + m


def _aware(value: datetime) -> datetime:
    tz = _tz()
    return value.astimezone(tz) if value.tzinfo else value.replace(tzinfo=tz)


def broadcast_date(moment: datetime) -> date:
    return (moment - timedelta(hours=BROADCAST_DAY_START)).date()


def channel_resolve(key: str | int) -> Channel:
    text = str(key).strip()
    channel = Channel.objects.filter(code=text).first()
    if channel is None and text.isdigit():
        channel = Channel.objects.filter(pk=int(text)).first()
    if channel is None:
        raise ApplicationError(f"Unknown channel {text!r}.", code="unknown_channel", details={"channel": text})
    return channel


def _program_get(key: str) -> Program:
    try:
        return program_get(key=key)
    except NotFoundError as exc:
        raise ApplicationError(exc.message, code="unknown_program", details=exc.details) from None


def _program_index(key: str, index: dict[int, int]) -> int:
    """The candidate index of a program named in the request (pins, unavailability)."""
    program = _program_get(key)
    if program.pk not in index:
        raise ApplicationError(
            f"Program {program.external_id} is not among the candidates.",
            code="not_a_candidate",
            details={"program": program.external_id},
        )
    return index[program.pk]


def _goals(req: ScheduleRequest, dayparts: list[int], weekdays: list[int]) -> tuple[AdvertiserGoal, ...]:
    """The advertiser goals with their masks over the cells (daypart index and weekday per cell)."""
    goals = []
    for n, goal in enumerate(req.goals):
        if goal.genre not in GENRES:
            raise ApplicationError(f"Unknown genre {goal.genre!r}.", code="invalid_genre")
        mask = tuple(
            goal.daypart in (None, "", DAYPART_NAMES[dp]) and goal.weekday in (None, wd)
            for dp, wd in zip(dayparts, weekdays, strict=True)
        )
        goals.append(AdvertiserGoal(goal.name or f"goal {n + 1}", GENRES.index(goal.genre), mask, goal.weight))
    return tuple(goals)


def _program_columns(programs: list[Program]) -> dict[str, list[int]]:
    """Genre, content rating and duration per candidate (unknown genre -> other, rating -> PG)."""
    return {
        "genre": [GENRES.index(p.genre) if p.genre in GENRES else GENRES.index("other") for p in programs],
        "rating": [RATINGS.index(p.content_rating) if p.content_rating in RATINGS else 1 for p in programs],
        "duration": [p.duration_minutes for p in programs],
    }


def _rule_columns(req: ScheduleRequest, goals: tuple[AdvertiserGoal, ...]) -> dict[str, Any]:
    """What both models take alike: the genre rules, the goals, the objective's weights, rating windows."""
    weights = req.weights
    out: dict[str, Any] = {
        "n_genres": len(GENRES),
        "max_consecutive_genre": req.max_consecutive_genre,
        "min_genres_per_daypart": req.min_genres_per_daypart,
        "goals": goals,
        "weight_revenue": weights.revenue,
        "weight_audience": weights.audience,
        "weight_balance": weights.balance,
    }
    if req.rating_windows is not None:
        out["rating_windows"] = tuple(
            RatingWindow(_hhmm(w.start, "start"), _hhmm(w.end, "end"), w.ratings) for w in req.rating_windows
        )
    return out


def slots_of(req: ScheduleRequest) -> tuple[list[datetime], list[int]]:
    """(starts, lengths) ordered by start."""
    explicit = req.slots
    if explicit:
        pairs = sorted((_aware(item.start), item.length) for item in explicit)
        for a, b in pairwise(pairs):
            if a[0] + timedelta(minutes=a[1]) > b[0]:
                raise ApplicationError("Slots overlap.", code="invalid_slots", details={"slot": b[0].isoformat()})
        return [p[0] for p in pairs], [p[1] for p in pairs]
    day = req.date
    if day is None:
        raise ApplicationError("Give either a date or an explicit list of slots.", code="invalid_slots")
    step = req.slot_minutes
    begin, end = _window_minutes(req)
    tz = _tz()
    starts: list[datetime] = []
    for offset in range(req.days):
        midnight = datetime.combine(day + timedelta(days=offset), time.min)
        minute = begin
        while minute + step <= end:
            starts.append((midnight + timedelta(minutes=minute)).replace(tzinfo=tz))
            minute += step
    return starts, [step] * len(starts)


def spec_build(req: ScheduleRequest) -> ProblemSpec:
    """Resolve channel, slots and candidates and translate the constraints into problem arrays."""
    channel = channel_resolve(req.channel)
    starts, lengths = slots_of(req)
    if not starts:
        raise ApplicationError("The request gives no slots.", code="no_slots")
    if len(starts) > MAX_SLOTS:
        raise ApplicationError(
            f"At most {MAX_SLOTS} slots per job.", code="too_many_slots", details={"slots": len(starts)}
        )
    programs = _candidates(req, channel)
    if len(programs) * len(starts) > MAX_CELLS:
        raise ApplicationError(
            f"{len(programs)} candidates x {len(starts)} slots is more than {MAX_CELLS} predictions per target.",
            code="too_large",
            details={"candidates": len(programs), "slots": len(starts), "max_cells": MAX_CELLS},
        )
    index = {p.pk: i for i, p in enumerate(programs)}

    first = broadcast_date(starts[0])
    midnight0 = datetime.combine(first, time.min).replace(tzinfo=_tz())
    slot_start = [int((s - midnight0).total_seconds() // 60) for s in starts]
    slot_day = [(broadcast_date(s) - first).days for s in starts]
    slot_dp = [DAYPART_NAMES.index(daypart_for_hour(s.hour)) for s in starts]
    min_fill = req.min_fill
    slot_min = [int(np.ceil(length * min_fill)) for length in lengths]

    def slot_of(moment: datetime) -> int:
        moment = _aware(moment)
        for i, s in enumerate(starts):
            if s == moment:
                return i
        raise ApplicationError(
            f"No slot starts at {moment.isoformat()}.", code="invalid_slot", details={"start": moment.isoformat()}
        )

    fixed = [-1] * len(starts)
    for pin in req.fixed:
        fixed[slot_of(pin.start)] = _program_index(pin.program, index)
    availability = None
    if req.unavailable:
        availability = np.ones((len(programs), len(starts)), dtype=bool)
        for item in req.unavailable:
            p = _program_index(item.program, index)
            lo, hi = _aware(item.start), _aware(item.end)
            for i, s in enumerate(starts):
                if lo <= s < hi:
                    availability[p, i] = False
    goals = _goals(req, slot_dp, [broadcast_date(s).weekday() for s in starts])
    kwargs: dict[str, Any] = {
        "slot_start": slot_start,
        "slot_length": lengths,
        "slot_day": slot_day,
        "slot_daypart": slot_dp,
        "slot_min_len": slot_min,
        "slot_max_len": lengths,
        "slot_fixed": fixed,
        **_program_columns(programs),
        "max_per_day": [req.max_per_day] * len(programs),
        "availability": availability,
        **_rule_columns(req, goals),
    }
    return ProblemSpec(channel=channel, starts=starts, lengths=lengths, programs=programs, problem_kwargs=kwargs)


# ---- the timeline (programs of their own length on a grid) -----------------------------------------
@dataclass
class TimelineSpec:
    channel: Channel
    starts: list[datetime]  # aware, local: the start of every grid cell
    grid: int
    programs: list[Program]
    segments: list[tuple[datetime, datetime]]  # on-air windows (one per broadcast day)
    timeline_kwargs: dict[str, Any]

    def timeline(self, revenue: np.ndarray, audience: np.ndarray) -> Timeline:
        return Timeline(revenue=revenue, audience=audience, **self.timeline_kwargs)

    def zeros(self) -> Timeline:
        shape = (len(self.programs), len(self.starts))
        return self.timeline(np.zeros(shape), np.zeros(shape))


def _window_minutes(req: ScheduleRequest) -> tuple[int, int]:
    """(begin, end) clock minutes of each day's window; end may pass midnight (> 1440)."""
    daypart = req.daypart
    if daypart:
        if daypart not in DAYPART_NAMES:
            raise ApplicationError(
                f"Unknown daypart {daypart!r}.", code="invalid_daypart", details={"dayparts": list(DAYPART_NAMES)}
            )
        _, h0, h1 = next(d for d in DAYPARTS if d[0] == daypart)
        return h0 * 60, h1 * 60
    if req.start_time or req.end_time:
        begin = _hhmm(req.start_time or "06:00", "start_time")
        end = _hhmm(req.end_time or "02:00", "end_time")
        return begin, end + 1440 if end <= begin else end
    return BROADCAST_DAY_START * 60, (BROADCAST_DAY_START + 20) * 60


def _candidates(req: ScheduleRequest, channel: Channel) -> list[Program]:
    keys = req.candidates
    if keys:
        programs = [_program_get(key) for key in dict.fromkeys(keys)]
    else:
        programs = list(Program.objects.filter(channel=channel).order_by("pk"))
    if not programs:
        raise ApplicationError(
            f"Channel {channel.code!r} has no candidate programs.",
            code="no_candidates",
            details={"channel": channel.code},
        )
    if len(programs) > MAX_CANDIDATES:
        raise ApplicationError(f"At most {MAX_CANDIDATES} candidates.", code="too_many_candidates")
    return programs


def timeline_spec_build(req: ScheduleRequest) -> TimelineSpec:
    """A date-based request as a timeline: each day's window cut into ``slot_minutes`` grid cells, every
    candidate airing for its own length from any cell where it fits."""
    channel = channel_resolve(req.channel)
    day = req.date
    if day is None:
        raise ApplicationError("Give either a date or an explicit list of slots.", code="invalid_slots")
    grid = req.slot_minutes
    begin, end = _window_minutes(req)
    tz = _tz()
    midnight0 = datetime.combine(day, time.min).replace(tzinfo=tz)
    starts: list[datetime] = []
    cell_start: list[int] = []
    cell_day: list[int] = []
    segments: list[tuple[datetime, datetime]] = []
    for offset in range(req.days):
        midnight = datetime.combine(day + timedelta(days=offset), time.min)
        minute = begin
        while minute + grid <= end:
            starts.append((midnight + timedelta(minutes=minute)).replace(tzinfo=tz))
            cell_start.append(offset * 1440 + minute)
            cell_day.append(offset)
            minute += grid
        if minute > begin:
            segments.append(
                (
                    (midnight + timedelta(minutes=begin)).replace(tzinfo=tz),
                    (midnight + timedelta(minutes=minute)).replace(tzinfo=tz),
                )
            )
    if not starts:
        raise ApplicationError("The window holds no grid cell.", code="no_slots")
    if len(starts) > MAX_SLOTS:
        raise ApplicationError(
            f"At most {MAX_SLOTS} grid cells per job.", code="too_many_slots", details={"cells": len(starts)}
        )
    programs = _candidates(req, channel)
    filler_key = req.filler
    if filler_key:
        filler = _program_get(filler_key)
        if filler.pk not in {p.pk for p in programs}:
            programs.append(filler)
    if len(programs) * len(starts) > MAX_CELLS:
        raise ApplicationError(
            f"{len(programs)} candidates x {len(starts)} cells is more than {MAX_CELLS} predictions per target.",
            code="too_large",
            details={"candidates": len(programs), "cells": len(starts), "max_cells": MAX_CELLS},
        )
    index = {p.pk: i for i, p in enumerate(programs)}

    def minutes_of(moment: datetime) -> int:
        return int((_aware(moment) - midnight0).total_seconds() // 60)

    pins = []
    for item in req.fixed:
        minute = minutes_of(item.start)
        if minute not in cell_start:
            raise ApplicationError(
                f"No grid cell starts at {_aware(item.start).isoformat()} (grid {grid} minutes).",
                code="invalid_slot",
                details={"start": _aware(item.start).isoformat()},
            )
        pins.append(Pin(_program_index(item.program, index), cell_start.index(minute)))
    unavailable = tuple(
        Unavailable(_program_index(item.program, index), minutes_of(item.start), minutes_of(item.end))
        for item in req.unavailable
    )
    dps = [DAYPART_NAMES.index(daypart_for_hour(s.hour)) for s in starts]
    goals = _goals(req, dps, [(day + timedelta(days=d)).weekday() for d in cell_day])
    per_day = [req.max_per_day] * len(programs)
    per_week = req.max_per_week
    week = [int(per_week)] * len(programs) if per_week else None
    if filler_key:  # the filler may air as often as it is needed
        f = index[filler.pk]
        per_day[f] = len(starts)
        if week is not None:
            week[f] = len(starts)
    gap_penalty = req.gap_penalty
    kwargs: dict[str, Any] = {
        "grid": grid,
        "cell_start": cell_start,
        "cell_segment": cell_day,
        "cell_day": cell_day,
        "cell_daypart": dps,
        **_program_columns(programs),
        "max_per_day": per_day,
        "max_per_week": week,
        "unavailable": unavailable,
        "pins": tuple(pins),
        "gap_penalty": None if gap_penalty is None else float(gap_penalty),
        **_rule_columns(req, goals),
    }
    return TimelineSpec(
        channel=channel, starts=starts, grid=grid, programs=programs, segments=segments, timeline_kwargs=kwargs
    )
