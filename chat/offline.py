"""The offline agent: answers analysts' questions with the same tools as the LLM agent and no network.

``chat.understanding`` reads the question (intents in order, programs, channel, genre, target, N,
order, period, slot, grouping, follow-up); ``plan`` turns each step into tool calls; ``render`` writes
the answer from the tool results only, each part starting with the scope it answered. When it cannot
tell what is asked it asks instead of guessing. ``render`` is also the grounded fallback for a failed
LLM answer.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from bms.jsontypes import JSONObject, JSONValue, json_object, json_objects
from bms.users import User
from chat.events import EventSink
from chat.tools import TARGETS, ToolCall, run_tool
from chat.understanding import (
    DAYPART_HOURS,
    DAYPART_START,
    Catalogue,
    Scope,
    Step,
    Understanding,
    load_catalogue,
    understand,
)

CANT_CHANGE = (
    "I can't change data: I only read it, predict, export it and propose schedules. Programs, airings and "
    "schedules are changed in the admin or by an import."
)
WHAT_I_DO = (
    "I can list or rank programs (or channels and genres), show a program's details, predict rating/revenue/"
    "audience/engagement for a slot, name the best model and its key factors, analyse trends, export data or "
    "optimise a schedule. What would you like to know?"
)


@dataclass
class OfflineAnswer:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    intent: str | None = None
    clarification: bool = False
    scope: Scope | None = None  # what a follow-up may inherit
    follow_up: bool = False


@dataclass
class Planned:
    calls: list[tuple[str, JSONObject]]
    compare: bool = False


def _usual_slot(program_id: int, zone: ZoneInfo) -> dt.datetime | None:
    from programs.selectors import program_last_airing

    last = program_last_airing(program_id=program_id)
    return timezone.localtime(last, zone) if last is not None else None


def _clock(when: dt.time) -> int:
    return when.hour if when.hour >= 6 else when.hour + 24


def slot_start(scope: Scope, *, program_id: int, now: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """The slot a prediction is for, in the channel's time zone: the day and time the question names,
    else the program's usual time on that day (within the daypart asked, else the daypart's start).
    None: the question named no day or time."""
    now = now.astimezone(zone)
    today = now.date()
    future_period = scope.since is not None and scope.since > today
    if not (scope.day or scope.time or scope.daypart or scope.tonight or future_period):
        return None
    usual = _usual_slot(program_id, zone)
    usual_time = usual.time().replace(second=0, microsecond=0) if usual else None
    at = scope.time
    if at is None:
        if scope.daypart:
            first, last = DAYPART_HOURS[scope.daypart]
            if usual_time is not None and first <= _clock(usual_time) < last:
                at = usual_time
            else:
                hour, minute = DAYPART_START[scope.daypart]
                at = dt.time(hour, minute)
        elif scope.tonight:
            at = usual_time if usual_time is not None and usual_time.hour >= 17 else dt.time(20)
        else:
            at = usual_time or dt.time(20)
    day = scope.day
    if day is None and future_period and scope.since is not None:
        day = scope.since
        if usual is not None:
            day = scope.since + dt.timedelta(days=(usual.weekday() - scope.since.weekday()) % 7)
    if day is None:
        day = today if dt.datetime.combine(today, at, tzinfo=zone) > now else today + dt.timedelta(days=1)
    return dt.datetime.combine(day, at, tzinfo=zone)


def _zone(catalogue: Catalogue, channel: str) -> ZoneInfo:
    return ZoneInfo(catalogue.time_zones.get(channel) or settings.TIME_ZONE)


def _period_args(scope: Scope, first: str, last: str) -> JSONObject:
    args: JSONObject = {}
    if scope.since:
        args[first] = scope.since.isoformat()
    if scope.until:
        args[last] = scope.until.isoformat()
    return args


def _plan_step(step: Step, *, now: dt.datetime, catalogue: Catalogue) -> tuple[Planned | None, str | None]:
    """(tool calls, None) or (None, a clarifying question)."""
    s, intent = step.scope, step.intent
    programs = s.programs
    if len(s.genres) > 1 and intent in ("get_programs", "analyze_trends") and not programs:
        # one call per genre ("comedies and dramas"), the same question otherwise
        calls: list[tuple[str, JSONObject]] = []
        for genre in s.genres:
            single = Step(intent, replace(s, genre=genre, genres=[genre]), step.text)
            planned, _ = _plan_step(single, now=now, catalogue=catalogue)
            calls += planned.calls if planned else []
        return Planned(calls), None
    if intent == "predict_values" and not programs and (s.genre or s.channel):
        # "predict audience for all dramas next Friday": each program of that genre / channel
        programs = [
            p
            for p in catalogue.programs
            if (not s.genre or p.genre == s.genre) and (not s.channel or p.channel == s.channel)
        ][:MAX_PROGRAMS]
    if intent == "get_programs":
        args: JSONObject = {}
        ranking = (
            s.target
            or s.group_by
            or s.ascending
            or s.n
            or _ranks(step.text)
            or re.search(r"\bperform|\bdoing\b|\bdid\b", step.text)
        )
        if ranking:
            args["target"] = s.target or "rating"
            args["n"] = s.n or (5 if not s.group_by else 20)
            if s.ascending:
                args["ascending"] = True
            if s.group_by:
                args["group_by"] = s.group_by
                args["n"] = s.n or 20
            args.update(_period_args(s, "since", "until"))
        else:
            args["n"] = s.n or 10
        if s.genre:
            args["genre"] = s.genre
        if s.channel:
            args["channel"] = s.channel
        return Planned([("get_programs", args)]), None
    if intent == "get_program_details":
        if not programs:
            return None, "Which program do you mean? Give its id (e.g. ABC123) or its title."
        period = _period_args(s, "start", "end")
        return Planned(
            [("get_program_details", {"program": p.external_id, **period}) for p in programs], len(programs) > 1
        ), None
    if intent == "predict_values":
        if not programs:
            return None, "Which program should I predict for? Give its id (e.g. ABC123) or its title."
        which = s.targets[0] if len(s.targets) == 1 else "all"
        calls = []
        for p in programs:
            args = {"program": p.external_id, "target": which}
            start = slot_start(s, program_id=p.id, now=now, zone=_zone(catalogue, s.channel or p.channel))
            if start is not None:
                args["start"] = start.isoformat()
            if s.channel:
                args["channel"] = s.channel
            calls.append(("predict_values", args))
        return Planned(calls, len(programs) > 1), None
    if intent == "get_best_model":
        target = s.target
        if (
            target is None
            and step.text
            and any(w in step.text for w in ("factor", "driver", "drive", "affect", "influenc", "important"))
        ):
            target = "audience"  # "what affects viewership" style questions without a target word
        if target is None:
            return None, "Best model for which target: rating, revenue, audience or engagement?"
        return Planned([("get_best_model", {"target": target})]), None
    if intent == "analyze_trends":
        base: JSONObject = {"target": s.target or "rating", "period": s.granularity or "week"}
        base.update(_period_args(s, "start", "end"))
        if s.channel:
            base["channel"] = s.channel
        if programs:
            return Planned(
                [("analyze_trends", {**base, "program": p.external_id}) for p in programs], len(programs) > 1
            ), None
        if s.genre:
            base["genre"] = s.genre
        return Planned([("analyze_trends", base)]), None
    if intent == "export_data":
        filters: JSONObject = {}
        for key in ("channel", "genre"):
            if getattr(s, key):
                filters[key] = getattr(s, key)
        if len(programs) == 1:
            filters["program"] = programs[0].external_id
        filters.update(_period_args(s, "start", "end"))
        return Planned(
            [("export_data", {"dataset": s.dataset or "airings", "format": s.fmt or "xlsx", "filters": filters})]
        ), None
    if intent == "optimize_schedule":
        args = {"daypart": s.daypart or "prime_time"}
        if s.channel:
            args["channel"] = s.channel
        day = s.day or (s.since if s.since and s.since > now.date() else None)
        if day:
            args["date"] = day.isoformat()
        return Planned([("optimize_schedule", args)]), None
    return None, WHAT_I_DO


def _ranks(text: str) -> bool:
    from chat.understanding import _RANK_WORDS

    return bool(_RANK_WORDS.search(text))


def read(
    question: str,
    *,
    now: dt.datetime | None = None,
    previous: Scope | None = None,
    previous_intent: str | None = None,
    catalogue: Catalogue | None = None,
) -> Understanding:
    return understand(
        question,
        catalogue=catalogue if catalogue is not None else load_catalogue(),
        now=timezone.localtime(now) if now is not None else timezone.localtime(),
        previous=previous,
        previous_intent=previous_intent,
    )


def plan(
    question: str,
    *,
    now: dt.datetime | None = None,
    previous: Scope | None = None,
    previous_intent: str | None = None,
    catalogue: Catalogue | None = None,
) -> tuple[Understanding, list[Planned], str | None]:
    """What the question asks, the tool calls of each step in order, and a clarifying question (if any)."""
    moment = timezone.localtime(now) if now is not None else timezone.localtime()
    u = read(question, now=moment, previous=previous, previous_intent=previous_intent, catalogue=catalogue)
    if u.write_request:
        return u, [], None
    planned: list[Planned] = []
    clarify: str | None = None
    for step in u.steps:
        p, ask = _plan_step(step, now=moment, catalogue=u.catalogue)
        if p is not None:
            planned.append(p)
        elif clarify is None:
            clarify = ask
    if not u.steps:
        clarify = WHAT_I_DO
    return u, planned, clarify


def answer(
    *,
    user: User,
    question: str,
    on_event: EventSink | None = None,
    now: dt.datetime | None = None,
    previous: Scope | None = None,
    previous_intent: str | None = None,
) -> OfflineAnswer:
    u, planned, clarify = plan(question, now=now, previous=previous, previous_intent=previous_intent)
    if u.write_request:
        return OfflineAnswer(text=CANT_CHANGE)
    if not planned:
        return OfflineAnswer(text=clarify or WHAT_I_DO, clarification=True)
    calls_by_step: list[tuple[list[ToolCall], bool]] = []
    all_calls: list[ToolCall] = []
    for p in planned:
        step_calls = []
        for name, args in p.calls:
            if on_event:
                on_event("tool_call", {"name": name, "arguments": args})
            call = run_tool(user=user, name=name, arguments=args)
            step_calls.append(call)
            all_calls.append(call)
        calls_by_step.append((step_calls, p.compare))
    parts = [render(calls, compare=compare) for calls, compare in calls_by_step]
    notes = []
    unused = [s.scope.slot_text for s in u.steps if s.scope.slot_text and s.intent not in _SLOT_INTENTS]
    if unused:
        notes.append(
            "I did not use " + ", ".join(f"'{w}'" for w in unused) + ": a day or time of day only applies to "
            "predictions and schedule optimisation."
        )
    if u.follow_up and u.inherited:
        kept = ", ".join(_FIELD_NAMES.get(name, name) for name in u.inherited if name in _FIELD_NAMES)
        if kept:
            notes.append(f"(Following on from your last question, I kept its {kept}.)")
    if u.ignored:
        notes.append("I ignored " + ", ".join(f"'{w}'" for w in u.ignored) + ": I have no data or filter for it.")
    text = "\n\n".join(parts)
    if notes:
        first, _, rest = text.partition("\n")
        text = first + "\n" + "\n".join(notes) + ("\n" + rest if rest else "")
    if clarify:
        text += "\n\n" + clarify
    last = u.steps[-1] if u.steps else None
    return OfflineAnswer(
        text=text,
        tool_calls=all_calls,
        intent=all_calls[0].name if all_calls else None,
        scope=last.scope if last else None,
        follow_up=u.follow_up,
    )


_SLOT_INTENTS = ("predict_values", "optimize_schedule")
MAX_PROGRAMS = 10  # programs predicted for one genre or channel

_FIELD_NAMES = {
    "programs": "program",
    "targets": "target",
    "channel": "channel",
    "genre": "genre",
    "since": "period",
    "day": "day",
    "time": "time",
    "daypart": "daypart",
    "n": "number of results",
    "granularity": "granularity",
}


# --- rendering -----------------------------------------------------------------------------------

_UNITS = {"rating": "rating points", "revenue": "USD", "audience": "thousand viewers", "engagement": "/100"}


def fmt_value(target: str | None, value: object) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "n/a"
    if target == "revenue":
        return f"${value:,.0f}"
    if target == "rating":
        return f"{value:.2f}"
    if target == "audience":
        return f"{value:,.1f}k viewers"
    if target == "engagement":
        return f"{value:.1f}/100"
    return f"{value:,.2f}"


def _text(value: JSONValue) -> str | None:
    """A name read from a result (a target, a group kind): its text, or None when absent."""
    return None if value is None else str(value)


def _value_of(row: JSONObject, target: str | None) -> int | float | None:
    keys = [target, f"avg_{target}", f"mean_{target}", f"{target}_mean", f"{target}_avg"] if target else []
    for key in [*keys, "value", "mean", "avg", "average", "score", "prediction"]:
        value = row.get(key) if key else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    return None


def _name(row: JSONObject) -> str:
    program = row.get("program")
    title = row.get("title") or row.get("program_title") or row.get("program__title") or row.get("name")
    if isinstance(program, dict):
        title = title or program.get("title")
    ext = row.get("external_id") or row.get("program__external_id") or row.get("program_external_id")
    if isinstance(program, dict):
        ext = ext or program.get("external_id")
    if title and ext:
        return f"{title} ({ext})"
    return str(title or ext or row.get("id") or "?")


def _render_programs(r: JSONObject) -> str:
    if r.get("group_by"):
        return _render_groups(r)
    rows = json_objects(r.get("programs"))
    target = _text(r.get("ranked_by"))
    if not rows:
        if r.get("data_ends"):
            return f"There is no data in that period: the data ends on {r['data_ends']}."
        return "No programs match that request."
    if target:
        order = "lowest" if r.get("ascending") else "top"
        count = f"{len(rows)} programs" if len(rows) > 1 else "program"
        lines = [f"{order.capitalize()} {count} by average {target}:"]
        lines += [f"{i}. {_name(row)}: {fmt_value(target, _value_of(row, target))}" for i, row in enumerate(rows, 1)]
        return "\n".join(lines)
    lines = [f"{r.get('total', len(rows))} programs match; showing {len(rows)}:"]
    lines += [f"- {_name(row)}" + (f", {row['genre']}" if row.get("genre") else "") for row in rows]
    return "\n".join(lines)


def _plural(count: JSONValue, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _render_groups(r: JSONObject) -> str:
    rows = json_objects(r.get("groups"))
    target, kind = _text(r.get("ranked_by")), r.get("group_by")
    if not rows:
        if r.get("data_ends"):
            return f"There is no data in that period: the data ends on {r['data_ends']}."
        return f"No {kind} has {target} data for that request."
    order = "lowest first" if r.get("ascending") else "highest first"
    lines = [f"{str(kind).capitalize()}s by average {target} per airing ({order}):"]
    for i, row in enumerate(rows, 1):
        label = str(row.get("key"))
        if row.get("name") and row.get("name") != row.get("key"):
            label += f" ({row['name']})"
        lines.append(
            f"{i}. {label}: {fmt_value(target, row.get('mean'))} "
            f"({_plural(row.get('programs'), 'program')}, {_plural(row.get('airings'), 'airing')})"
        )
    return "\n".join(lines)


def _target_stats(detail: JSONValue, target: str) -> JSONObject | None:
    """Find the per-target aggregate dict (mean/min/max) wherever the selector put it."""
    if isinstance(detail, dict):
        value = detail.get(target)
        if isinstance(value, dict) and any(k in value for k in ("mean", "avg", "average", "min", "max")):
            return value
        for item in detail.values():
            found = _target_stats(item, target)
            if found:
                return found
    return None


def _render_details(r: JSONObject) -> str:
    program = json_object(r.get("program"))
    detail = json_object(r.get("detail"))
    head = f"{_name(program)}"
    extra = [str(program[k]) for k in ("genre", "channel") if program.get(k)]
    lines = [head + (f" — {', '.join(extra)}" if extra else "")]
    count = detail.get("airing_count", detail.get("airings", detail.get("count")))
    if isinstance(count, int):
        lines.append(f"Airings: {count}")
    for target in TARGETS:
        stats = _target_stats(detail, target)
        if stats:
            mean = stats.get("mean", stats.get("avg", stats.get("average")))
            parts = [f"average {fmt_value(target, mean)}"]
            low, high = stats.get("min"), stats.get("max")
            if isinstance(low, (int, float)) and isinstance(high, (int, float)):
                parts.append(f"range {fmt_value(target, low)} to {fmt_value(target, high)}")
            lines.append(f"{target.capitalize()}: " + ", ".join(parts))
    if len(lines) == 1 + isinstance(count, int):
        lines.append("There is no airing data with measured targets for this program yet.")
    return "\n".join(lines)


def _render_predictions(r: JSONObject) -> str:
    name = _name(json_object(r.get("program")))
    lines = [f"Predictions for {name}:"]
    for p in json_objects(r.get("predictions")):
        target = _text(p.get("target"))
        if "error" in p:
            lines.append(f"- {target}: not available ({p['error']})")
            continue
        line = f"- {target}: {fmt_value(target, p.get('prediction'))}"
        interval = p.get("interval")
        if isinstance(interval, dict) and isinstance(interval.get("low"), (int, float)):
            line += f" (interval {fmt_value(target, interval['low'])} to {fmt_value(target, interval.get('high'))})"
        model = p.get("model")
        if isinstance(model, dict) and model.get("algorithm"):
            line += f", model {model['algorithm']}"
        lines.append(line)
    return "\n".join(lines)


def _render_best_model(r: JSONObject) -> str:
    target = r.get("target")
    model = json_object(r.get("model"))
    if not model:
        return f"There is no trained model for {target} yet, so I cannot say which is best."
    metrics = json_object(model.get("metrics"))
    shown = [
        f"{k.upper() if len(k) <= 4 else k} {v:.3f}"
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k.lower() in ("r2", "rmse", "mae", "mape")
    ]
    text = f"Best model for {target}: {model.get('algorithm')}"
    if model.get("version") is not None:
        text += f" (version {model['version']})"
    if shown:
        text += " — " + ", ".join(shown)
    factors = json_objects(r.get("top_factors"))
    if factors:
        names = [f"{f['feature']} ({f['importance']:.3f})" for f in factors[:5]]
        text += f".\nFactors that affect {target} most: " + ", ".join(names)
    return text + "."


def _points(series: JSONObject) -> list[tuple[str, float | None]]:
    out: list[tuple[str, float | None]] = []
    points = series.get("points")
    for p in points if isinstance(points, list) else []:
        if isinstance(p, dict):
            out.append((str(p.get("period_start") or p.get("period") or p.get("start")), _value_of(p, None)))
        elif isinstance(p, list) and len(p) >= 2:
            value = p[1]
            out.append((str(p[0]), value if isinstance(value, (int, float)) else None))
    return out


def _render_trends(r: JSONObject) -> str:
    target = _text(r.get("target"))
    series = json_object(r.get("series"))
    subject = json_object(r.get("subject"))
    what = (
        _name(json_object(subject["program"]))
        if subject.get("program")
        else f"{subject['genre']} programs"
        if subject.get("genre")
        else "all programs"
    )
    if subject.get("channel"):
        what += f" on {subject['channel']}"
    points = [p for p in _points(series) if p[1] is not None]
    if not points:
        return f"There is no {target} data for {what} in that period, so there is no trend to show."
    period = "Weekly" if r.get("period") == "week" else "Monthly"
    first, last = points[0], points[-1]
    text = (
        f"{period} average {target} for {what}: {len(points)} periods from {first[0][:10]} to {last[0][:10]}; "
        f"{fmt_value(target, first[1])} at the start, {fmt_value(target, last[1])} at the end"
    )
    change = series.get("change_pct")
    direction = series.get("direction")
    if isinstance(change, (int, float)):
        text += f", a change of {change:+.1f}%"
    if direction:
        text += f" ({direction})"
    return text + "."


def _render_export(r: JSONObject) -> str:
    link = json_object(r.get("download"))
    return (
        f"Your {str(r.get('format', '')).upper()} export of {r.get('dataset')} is ready: {link.get('url')} "
        f"(file {link.get('filename')}, link valid until {link.get('expires_at')}, only for you)."
    )


def _render_optimize(r: JSONObject) -> str:
    params = json_object(r.get("params"))
    head = (
        f"Schedule optimisation job {r.get('job_id')} for {params.get('channel')} on {params.get('date')} "
        f"({str(params.get('daypart', '')).replace('_', ' ')}): status {r.get('status')}."
    )
    proposal = json_object(r.get("proposal"))
    totals = proposal.get("totals")
    if isinstance(totals, dict):
        parts = [
            f"{k} {fmt_value(k, totals[k])}" for k in ("revenue", "audience") if isinstance(totals.get(k), (int, float))
        ]
        if parts:
            head += " Proposed schedule totals: " + ", ".join(parts) + "."
    best = proposal.get("best")
    entries = best.get("entries") if isinstance(best, dict) else None
    if isinstance(entries, list) and entries:
        lines = []
        for e in entries[:8]:
            if isinstance(e, dict):
                lines.append(f"- {str(e.get('start', ''))[11:16]} {e.get('title') or e.get('program')}")
        head += "\n" + "\n".join(lines)
    if not proposal:
        head += " The proposal will be on the job page when it finishes."
    return head + "\nNothing was saved: the current schedule is unchanged."


_RENDERERS: dict[str, Callable[[JSONObject], str]] = {
    "get_programs": _render_programs,
    "get_program_details": _render_details,
    "predict_values": _render_predictions,
    "get_best_model": _render_best_model,
    "analyze_trends": _render_trends,
    "export_data": _render_export,
    "optimize_schedule": _render_optimize,
}


def _slot(value: JSONValue, zone: JSONValue) -> str:
    """A slot start in the channel's time zone ("Fri 2025-03-14 21:00 EDT, America/New_York")."""
    try:
        when = dt.datetime.fromisoformat(str(value))
        tz = ZoneInfo(str(zone or settings.TIME_ZONE))
    except (ValueError, KeyError):
        return str(value)
    local = when.astimezone(tz) if timezone.is_aware(when) else when.replace(tzinfo=tz)
    return f"{local.strftime('%a %Y-%m-%d %H:%M %Z')}, {tz.key}"


def scope_line(call: ToolCall) -> str:
    """What a call answered, read back from its arguments and result."""
    a, r = call.arguments, call.result or {}
    parts: list[str] = []
    subject = json_object(r.get("subject"))
    program = next((p for p in (r.get("program"), subject.get("program")) if isinstance(p, dict)), None)
    if program:
        parts.append(f"program {program.get('title')} ({program.get('external_id')}, id {program.get('id')})")
    elif a.get("program"):
        parts.append(f"program {a['program']}")
    filters = json_object(a.get("filters"))
    if call.name == "get_programs" and a.get("group_by", "program") != "program":
        parts.append(f"{a['group_by']}s ranked")
    if a.get("target"):
        parts.append(f"target {'all four targets' if a['target'] == 'all' else a['target']}")
    if call.name == "predict_values":
        zone = r.get("time_zone")
        parts.append(f"slot {_slot(a['start'], zone)}" if a.get("start") else "slot: the next full hour (the default)")
    channel = a.get("channel") or filters.get("channel")
    if channel:
        parts.append(f"channel {channel}")
    genre = a.get("genre") or filters.get("genre")
    if genre:
        parts.append(f"genre {genre}")
    if filters.get("program"):
        parts.append(f"program {filters['program']}")
    first = a.get("since") or a.get("start") if call.name != "predict_values" else None
    first = first or filters.get("start")
    last = a.get("until") or a.get("end") or filters.get("end")
    if first or last:
        parts.append(f"period {first or 'the start of the data'} to {last or 'the latest data'}")
    elif call.name in ("get_programs", "get_program_details", "analyze_trends") and (
        a.get("target") or call.name != "get_programs"
    ):
        parts.append("period: all data")
    if call.name == "get_programs" and a.get("target"):
        parts.append(("lowest" if a.get("ascending") else "highest") + f" first, {a.get('n')} shown at most")
    if call.name == "analyze_trends":
        parts.append(f"by {a.get('period', 'week')}")
    if call.name == "export_data":
        parts.append(f"{a.get('dataset')} as {str(a.get('format')).upper()}")
    if call.name == "optimize_schedule":
        parts.append(f"daypart {str(a.get('daypart', 'prime_time')).replace('_', ' ')}")
        if a.get("date"):
            parts.append(f"day {a['date']}")
    return "Scope: " + ("; ".join(parts) if parts else "everything") + "."


def _data_note(call: ToolCall) -> str:
    ends = (call.result or {}).get("data_ends")
    if not ends:
        return ""
    return f"\nNote: the data ends on {ends}, before (part of) the period asked about."


def _render_one(call: ToolCall) -> str:
    if call.error is not None:
        return f"I could not run {call.name}: {call.error['message']}"
    if call.result is None:
        return ""
    body = _RENDERERS[call.name](call.result)
    note = "" if "data ends" in body else _data_note(call)
    return body + note


def _side_by_side(calls: list[ToolCall]) -> str:
    """Two or more programs' details or predictions as one line per measure."""
    ok = [c for c in calls if c.ok and c.result]
    names = [_name(json_object(c.result.get("program"))) for c in ok if c.result]
    lines = [" vs ".join(names) + ":"]
    if ok and ok[0].name == "get_program_details":
        counts = []
        for c in ok:
            detail = json_object((c.result or {}).get("detail"))
            counts.append(str(detail.get("airing_count", "?")))
        lines.append("- Airings: " + " vs ".join(counts))
        for target in TARGETS:
            values = []
            for c in ok:
                stats = _target_stats(json_object((c.result or {}).get("detail")), target)
                values.append(fmt_value(target, stats.get("mean")) if stats else "n/a")
            lines.append(f"- {target.capitalize()} (average): " + " vs ".join(values))
    elif ok and ok[0].name == "predict_values":
        per_target: dict[str, list[str]] = {}
        for c in ok:
            for p in json_objects((c.result or {}).get("predictions")):
                value = "not available" if "error" in p else fmt_value(_text(p.get("target")), p.get("prediction"))
                per_target.setdefault(str(p.get("target")), []).append(value)
        for target, values in per_target.items():
            lines.append(f"- Predicted {target}: " + " vs ".join(values))
    else:
        return "\n\n".join(_render_one(c) for c in calls)
    failed = [_render_one(c) for c in calls if not c.ok]
    return "\n".join(lines + failed)


def render(calls: list[ToolCall], *, compare: bool = False) -> str:
    """A plain-language answer built only from these tool results, each part led by its scope."""
    if not calls:
        return "I have no data to answer that."
    if compare and len(calls) > 1 and calls[0].name in ("get_program_details", "predict_values"):
        scopes = [scope_line(c) for c in calls]
        return "\n".join(scopes) + "\n" + _side_by_side(calls)
    return "\n\n".join(scope_line(c) + "\n" + _render_one(c) for c in calls)
