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


def slots_from_params(params: dict[str, Any]) -> tuple[list[datetime], list[int]]:
    """(starts, lengths) ordered by start."""
    explicit = params.get("slots")
    if explicit:
        pairs = sorted((_aware(item["start"]), int(item["length"])) for item in explicit)
        for a, b in pairwise(pairs):
            if a[0] + timedelta(minutes=a[1]) > b[0]:
                raise ApplicationError("Slots overlap.", code="invalid_slots", details={"slot": b[0].isoformat()})
        return [p[0] for p in pairs], [p[1] for p in pairs]
    day: date | None = params.get("date")
    if day is None:
        raise ApplicationError("Give either a date or an explicit list of slots.", code="invalid_slots")
    step = int(params.get("slot_minutes") or 30)
    daypart = params.get("daypart")
    if daypart:
        if daypart not in DAYPART_NAMES:
            raise ApplicationError(
                f"Unknown daypart {daypart!r}.", code="invalid_daypart", details={"dayparts": list(DAYPART_NAMES)}
            )
        _, h0, h1 = next(d for d in DAYPARTS if d[0] == daypart)
        begin, end = h0 * 60, h1 * 60
    elif params.get("start_time") or params.get("end_time"):
        begin = _hhmm(params.get("start_time") or "06:00", "start_time")
        end = _hhmm(params.get("end_time") or "02:00", "end_time")
        if end <= begin:
            end += 1440
    else:
        begin, end = BROADCAST_DAY_START * 60, (BROADCAST_DAY_START + 20) * 60
    tz = _tz()
    starts: list[datetime] = []
    for offset in range(int(params.get("days") or 1)):
        midnight = datetime.combine(day + timedelta(days=offset), time.min)
        minute = begin
        while minute + step <= end:
            starts.append((midnight + timedelta(minutes=minute)).replace(tzinfo=tz))
            minute += step
    return starts, [step] * len(starts)


def spec_build(params: dict[str, Any]) -> ProblemSpec:
    """Resolve channel, slots and candidates and translate the constraints into problem arrays."""
    channel = channel_resolve(params["channel"])
    starts, lengths = slots_from_params(params)
    if not starts:
        raise ApplicationError("The request gives no slots.", code="no_slots")
    if len(starts) > MAX_SLOTS:
        raise ApplicationError(
            f"At most {MAX_SLOTS} slots per job.", code="too_many_slots", details={"slots": len(starts)}
        )
    keys = params.get("candidates")
    if keys:
        programs = []
        for key in dict.fromkeys(str(k) for k in keys):
            try:
                programs.append(program_get(key=key))
            except NotFoundError as exc:
                raise ApplicationError(exc.message, code="unknown_program", details=exc.details) from None
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
    min_fill = float(params.get("min_fill", 0.5))
    slot_min = [int(np.ceil(length * min_fill)) for length in lengths]

    def slot_of(moment: datetime) -> int:
        moment = _aware(moment)
        for i, s in enumerate(starts):
            if s == moment:
                return i
        raise ApplicationError(
            f"No slot starts at {moment.isoformat()}.", code="invalid_slot", details={"start": moment.isoformat()}
        )

    def program_index(key: Any) -> int:
        try:
            program = program_get(key=key)
        except NotFoundError as exc:
            raise ApplicationError(exc.message, code="unknown_program", details=exc.details) from None
        if program.pk not in index:
            raise ApplicationError(
                f"Program {program.external_id} is not among the candidates.",
                code="not_a_candidate",
                details={"program": program.external_id},
            )
        return index[program.pk]

    fixed = [-1] * len(starts)
    for item in params.get("fixed") or []:
        fixed[slot_of(item["start"])] = program_index(item["program"])
    availability = None
    if params.get("unavailable"):
        availability = np.ones((len(programs), len(starts)), dtype=bool)
        for item in params["unavailable"]:
            p = program_index(item["program"])
            lo, hi = _aware(item["start"]), _aware(item["end"])
            for i, s in enumerate(starts):
                if lo <= s < hi:
                    availability[p, i] = False
    windows = params.get("rating_windows")
    rating_windows = None
    if windows is not None:
        rating_windows = tuple(
            RatingWindow(_hhmm(w["start"], "start"), _hhmm(w["end"], "end"), tuple(w["ratings"])) for w in windows
        )
    goals = []
    for n, goal in enumerate(params.get("goals") or []):
        if goal["genre"] not in GENRES:
            raise ApplicationError(f"Unknown genre {goal['genre']!r}.", code="invalid_genre")
        mask = []
        for s, dp in zip(starts, slot_dp, strict=True):
            ok = goal.get("daypart") in (None, "", DAYPART_NAMES[dp])
            ok = ok and goal.get("weekday") in (None, broadcast_date(s).weekday())
            mask.append(bool(ok))
        goals.append(
            AdvertiserGoal(
                goal.get("name") or f"goal {n + 1}", GENRES.index(goal["genre"]), tuple(mask), float(goal["weight"])
            )
        )
    weights = params.get("weights") or {}
    kwargs: dict[str, Any] = {
        "slot_start": slot_start,
        "slot_length": lengths,
        "slot_day": slot_day,
        "slot_daypart": slot_dp,
        "slot_min_len": slot_min,
        "slot_max_len": lengths,
        "slot_fixed": fixed,
        "genre": [GENRES.index(p.genre) if p.genre in GENRES else GENRES.index("other") for p in programs],
        "rating": [RATINGS.index(p.content_rating) if p.content_rating in RATINGS else 1 for p in programs],
        "duration": [p.duration_minutes for p in programs],
        "max_per_day": [int(params.get("max_per_day") or 2)] * len(programs),
        "availability": availability,
        "n_genres": len(GENRES),
        "max_consecutive_genre": int(params.get("max_consecutive_genre", 2) or 0),
        "min_genres_per_daypart": int(params.get("min_genres_per_daypart", 0) or 0),
        "goals": tuple(goals),
        "weight_revenue": float(weights.get("revenue", 1.0)),
        "weight_audience": float(weights.get("audience", 0.0)),
        "weight_balance": float(weights.get("balance", 1.0)),
    }
    if rating_windows is not None:
        kwargs["rating_windows"] = rating_windows
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


def _window_minutes(params: dict[str, Any]) -> tuple[int, int]:
    """(begin, end) clock minutes of each day's window; end may pass midnight (> 1440)."""
    daypart = params.get("daypart")
    if daypart:
        if daypart not in DAYPART_NAMES:
            raise ApplicationError(
                f"Unknown daypart {daypart!r}.", code="invalid_daypart", details={"dayparts": list(DAYPART_NAMES)}
            )
        _, h0, h1 = next(d for d in DAYPARTS if d[0] == daypart)
        return h0 * 60, h1 * 60
    if params.get("start_time") or params.get("end_time"):
        begin = _hhmm(params.get("start_time") or "06:00", "start_time")
        end = _hhmm(params.get("end_time") or "02:00", "end_time")
        return begin, end + 1440 if end <= begin else end
    return BROADCAST_DAY_START * 60, (BROADCAST_DAY_START + 20) * 60


def _candidates(params: dict[str, Any], channel: Channel) -> list[Program]:
    keys = params.get("candidates")
    if keys:
        programs = []
        for key in dict.fromkeys(str(k) for k in keys):
            try:
                programs.append(program_get(key=key))
            except NotFoundError as exc:
                raise ApplicationError(exc.message, code="unknown_program", details=exc.details) from None
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


def timeline_spec_build(params: dict[str, Any]) -> TimelineSpec:
    """A date-based request as a timeline: each day's window cut into ``slot_minutes`` grid cells, every
    candidate airing for its own length from any cell where it fits."""
    channel = channel_resolve(params["channel"])
    day: date | None = params.get("date")
    if day is None:
        raise ApplicationError("Give either a date or an explicit list of slots.", code="invalid_slots")
    grid = int(params.get("slot_minutes") or 30)
    begin, end = _window_minutes(params)
    tz = _tz()
    midnight0 = datetime.combine(day, time.min).replace(tzinfo=tz)
    starts: list[datetime] = []
    cell_start: list[int] = []
    cell_day: list[int] = []
    segments: list[tuple[datetime, datetime]] = []
    for offset in range(int(params.get("days") or 1)):
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
    programs = _candidates(params, channel)
    filler_key = params.get("filler")
    if filler_key:
        try:
            filler = program_get(key=filler_key)
        except NotFoundError as exc:
            raise ApplicationError(exc.message, code="unknown_program", details=exc.details) from None
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

    def program_index(key: Any) -> int:
        try:
            program = program_get(key=key)
        except NotFoundError as exc:
            raise ApplicationError(exc.message, code="unknown_program", details=exc.details) from None
        if program.pk not in index:
            raise ApplicationError(
                f"Program {program.external_id} is not among the candidates.",
                code="not_a_candidate",
                details={"program": program.external_id},
            )
        return index[program.pk]

    pins = []
    for item in params.get("fixed") or []:
        minute = minutes_of(item["start"])
        if minute not in cell_start:
            raise ApplicationError(
                f"No grid cell starts at {_aware(item['start']).isoformat()} (grid {grid} minutes).",
                code="invalid_slot",
                details={"start": _aware(item["start"]).isoformat()},
            )
        pins.append(Pin(program_index(item["program"]), cell_start.index(minute)))
    unavailable = tuple(
        Unavailable(program_index(item["program"]), minutes_of(item["start"]), minutes_of(item["end"]))
        for item in params.get("unavailable") or []
    )
    windows = params.get("rating_windows")
    dps = [DAYPART_NAMES.index(daypart_for_hour(s.hour)) for s in starts]
    goals = []
    for n, goal in enumerate(params.get("goals") or []):
        if goal["genre"] not in GENRES:
            raise ApplicationError(f"Unknown genre {goal['genre']!r}.", code="invalid_genre")
        mask = tuple(
            bool(
                goal.get("daypart") in (None, "", DAYPART_NAMES[dp])
                and goal.get("weekday") in (None, (day + timedelta(days=d)).weekday())
            )
            for dp, d in zip(dps, cell_day, strict=True)
        )
        goals.append(
            AdvertiserGoal(
                goal.get("name") or f"goal {n + 1}", GENRES.index(goal["genre"]), mask, float(goal["weight"])
            )
        )
    weights = params.get("weights") or {}
    per_day = [int(params.get("max_per_day") or 2)] * len(programs)
    per_week = params.get("max_per_week")
    week = [int(per_week)] * len(programs) if per_week else None
    if filler_key:  # the filler may air as often as it is needed
        f = index[filler.pk]
        per_day[f] = len(starts)
        if week is not None:
            week[f] = len(starts)
    gap_penalty = params.get("gap_penalty")
    kwargs: dict[str, Any] = {
        "grid": grid,
        "cell_start": cell_start,
        "cell_segment": cell_day,
        "cell_day": cell_day,
        "cell_daypart": dps,
        "genre": [GENRES.index(p.genre) if p.genre in GENRES else GENRES.index("other") for p in programs],
        "rating": [RATINGS.index(p.content_rating) if p.content_rating in RATINGS else 1 for p in programs],
        "duration": [p.duration_minutes for p in programs],
        "max_per_day": per_day,
        "max_per_week": week,
        "unavailable": unavailable,
        "pins": tuple(pins),
        "gap_penalty": None if gap_penalty is None else float(gap_penalty),
        "n_genres": len(GENRES),
        "max_consecutive_genre": int(params.get("max_consecutive_genre", 2) or 0),
        "min_genres_per_daypart": int(params.get("min_genres_per_daypart", 0) or 0),
        "goals": tuple(goals),
        "weight_revenue": float(weights.get("revenue", 1.0)),
        "weight_audience": float(weights.get("audience", 0.0)),
        "weight_balance": float(weights.get("balance", 1.0)),
    }
    if windows is not None:
        kwargs["rating_windows"] = tuple(
            RatingWindow(_hhmm(w["start"], "start"), _hhmm(w["end"], "end"), tuple(w["ratings"])) for w in windows
        )
    return TimelineSpec(
        channel=channel, starts=starts, grid=grid, programs=programs, segments=segments, timeline_kwargs=kwargs
    )
