"""The offline agent: answers the seed's questions and their common paraphrases with no network.

It reads the intent from keywords, extracts entities (program by external id, id or fuzzy title;
target; N; period; channel; genre; format; daypart), calls the same tools as the LLM agent and
writes the answer from their results. When it cannot tell what is asked it asks a clarifying
question instead of guessing. ``render`` is also the grounded fallback for a failed LLM answer.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from chat.tools import TARGETS, ToolCall, run_tool

EventSink = Callable[[str, dict[str, Any]], None]

_TARGET_WORDS: tuple[tuple[str, str], ...] = (
    (r"\brevenue|\bmoney|\bearn|\bincome|\bad sales|\bdollars?\b|\bsales\b|\bmonetis|\bmonetiz", "revenue"),
    (r"\bengag", "engagement"),
    (r"\baudience|\bviewers?\b|\bviewership|\bwatch|\breach\b|\beyeballs", "audience"),
    (r"\bratings?\b|\brated\b|\bshare\b", "rating"),
)
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20,
}  # fmt: skip
_GENRE_WORDS = {
    "news": "news", "drama": "drama", "dramas": "drama", "comedy": "comedy", "comedies": "comedy",
    "sport": "sports", "sports": "sports", "reality": "reality", "documentary": "documentary",
    "documentaries": "documentary", "kids": "kids", "children": "kids", "movie": "movie", "movies": "movie",
    "film": "movie", "films": "movie", "talk show": "talk", "talk shows": "talk", "game show": "game",
    "game shows": "game", "animation": "animation", "cartoons": "animation", "animated": "animation",
}  # fmt: skip
_DAYPARTS = {
    "prime time": "prime_time", "primetime": "prime_time", "prime-time": "prime_time",
    "early morning": "early_morning", "morning": "early_morning", "daytime": "daytime",
    "early fringe": "early_fringe", "prime access": "prime_access", "late night": "late_night",
    "late-night": "late_night", "overnight": "late_night",
}  # fmt: skip

INTENTS: tuple[tuple[str, str], ...] = (
    ("export_data", r"\bexport|\bdownload|\bexcel\b|\bxlsx\b|\bcsv\b|\bspreadsheet|\bdump\b"),
    ("optimize_schedule", r"\boptimi[sz]|\bschedul|\bline-?up\b|\bprogramming grid|\barrange\b"),
    (
        "get_best_model",
        r"\bbest model|\bwhich model|\bwhat model|\bmodel\b.*\b(best|perform|accura)|\bfactors?\b|\bfeature importance"
        r"|\bdrivers?\b|\bwhat (?:affects|drives|influences|impacts)|\bmost important|\binfluenc",
    ),
    (
        "predict_values",
        r"\bpredict|\bforecast|\bprojected|\bprojection|\bexpected\b|\bexpect\b|\bestimat|\bwill .{0,40}\b(get|earn|make|draw|reach)\b",
    ),
    (
        "analyze_trends",
        r"\btrend|\bover time\b|\bweek over week|\bmonth over month|\bby week\b|\bby month\b|\bweekly\b|\bmonthly\b"
        r"|\bgrowing\b|\bdeclin|\btrajectory|\bgoing up\b|\bgoing down\b|\bchanged?\b.*\bover\b",
    ),
    (
        "get_programs",
        r"\btop\b|\bhighest|\bbest[- ](?:performing|rated)|\bbest programs?|\branking|\brank\b|\bmost popular"
        r"|\blist\b|\bwhich programs|\ball programs|\bwhat programs|\bshows? me (?:the )?programs|\bprograms\b",
    ),
    (
        "get_program_details",
        r"\bdetails?\b|\btell me about|\binfo\b|\binformation\b|\babout program|\bstats (?:for|on|of)\b|\bhow (?:is|did|does)\b"
        r"|\bsummary of|\boverview of|\bdescribe\b",
    ),
)


@dataclass
class Entities:
    program: str | None = None
    program_title: str | None = None
    target: str | None = None
    n: int | None = None
    period: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    channel: str | None = None
    genre: str | None = None
    fmt: str | None = None
    daypart: str | None = None
    day: dt.date | None = None
    dataset: str | None = None
    rest: str = ""  # the question without the words that named the program


@dataclass
class OfflineAnswer:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    intent: str | None = None
    clarification: bool = False


def _target(text: str) -> str | None:
    for pattern, target in _TARGET_WORDS:
        if re.search(pattern, text):
            return target
    return None


def _n(text: str) -> int | None:
    patterns = (
        r"\b(?:top|best|first|highest|leading)\s+(\d{1,2}|[a-z]+)\b",
        r"\b(\d{1,2}|[a-z]+)\s+(?:top|best|highest|biggest|leading|most)\b",
    )
    for pattern in patterns:
        for m in re.finditer(pattern, text):
            token = m.group(1)
            if token.isdigit():
                return max(1, min(50, int(token)))
            if token in _NUMBER_WORDS:
                return _NUMBER_WORDS[token]
    return None


def _period(text: str, today: dt.date) -> tuple[dt.date | None, dt.date | None]:
    m = re.search(r"\b(?:last|past|previous)\s+(\d{1,3})\s+(day|week|month)s?\b", text)
    if m:
        days = int(m.group(1)) * {"day": 1, "week": 7, "month": 30}[m.group(2)]
        return today - dt.timedelta(days=days), today
    if re.search(r"\b(?:last|past|previous) week\b", text):
        return today - dt.timedelta(days=7), today
    if re.search(r"\b(?:last|past|previous) month\b", text):
        return today - dt.timedelta(days=30), today
    if re.search(r"\b(?:last|past|previous) year\b", text):
        return today - dt.timedelta(days=365), today
    if re.search(r"\bthis year\b|\byear to date\b|\bytd\b", text):
        return today.replace(month=1, day=1), today
    m = re.search(r"\bsince (\d{4}-\d{2}-\d{2})\b", text)
    if m:
        try:
            return dt.date.fromisoformat(m.group(1)), None
        except ValueError:
            return None, None
    return None, None


def _day(text: str, today: dt.date) -> dt.date | None:
    m = re.search(r"\b(\d{4}-\d{2}-\d{2})\b", text)
    if m:
        try:
            return dt.date.fromisoformat(m.group(1))
        except ValueError:
            return None
    if "tomorrow" in text:
        return today + dt.timedelta(days=1)
    if re.search(r"\btonight\b|\btoday\b", text):
        return today
    return None


def _lookup_programs() -> list[tuple[int, str, str]]:
    """(id, external id, title) of every program.

    A plain model read rather than ``program_list``: the matcher needs names only, not the list's
    per-program aggregates over every airing.
    """
    from programs.models import Program

    return list(Program.objects.order_by("pk").values_list("id", "external_id", "title"))


def _program(
    question: str, text: str, catalogue: list[tuple[int, str, str]], *, fuzzy: bool = True
) -> tuple[str | None, str | None, str]:
    """(external id, title, the words of the question that named it)."""
    by_ext = {ext.lower(): (ext, title) for _, ext, title in catalogue}
    for token in re.findall(r"\b[A-Za-z]{1,8}[-_]?\d{1,8}\b", question):
        hit = by_ext.get(token.lower())
        if hit:
            return hit[0], hit[1], token.lower()
    m = re.search(r"\b(?:program|show|id)\s*#?\s*(\d{1,9})\b", text)
    if m:
        pk = int(m.group(1))
        for pid, ext, title in catalogue:
            if pid == pk:
                return ext, title, m.group(0)
    # Double quotes only (straight or curly): single quotes are apostrophes too often.
    quoted = re.findall('["\u201c]([^"\u201d]{2,120})["\u201d]', question)
    titles = {title.lower(): (ext, title) for _, ext, title in catalogue}
    for q in quoted:
        close = difflib.get_close_matches(q.lower(), list(titles), n=1, cutoff=0.75)
        if close:
            return (*titles[close[0]], q.lower())
    # Longest exact title contained in the question, then a fuzzy match on word windows.
    contained = [t for t in titles if len(t) >= 3 and re.search(r"\b" + re.escape(t) + r"\b", text)]
    if contained:
        longest = max(contained, key=len)
        return (*titles[longest], longest)
    if not fuzzy:
        return None, None, ""
    words = re.findall(r"[\w'&-]+", text)
    best: tuple[float, str, str] | None = None
    matcher = difflib.SequenceMatcher(autojunk=False)
    for title in titles:
        size = len(title.split())
        matcher.set_seq2(title)  # the matcher caches its analysis of seq2 across windows
        for i in range(max(1, len(words) - size + 1)):
            window = " ".join(words[i : i + size])
            matcher.set_seq1(window)
            # Cheap upper bounds first: most windows are rejected without the full ratio.
            if matcher.real_quick_ratio() < 0.8 or matcher.quick_ratio() < 0.8:
                continue
            ratio = matcher.ratio()
            if ratio >= 0.8 and (best is None or ratio > best[0]):
                best = (ratio, title, window)
    if best:
        return (*titles[best[1]], best[2])
    return None, None, ""


def _channel(text: str) -> str | None:
    from programs.models import Channel

    for code, name in Channel.objects.values_list("code", "name"):
        if re.search(r"\b" + re.escape(code.lower()) + r"\b", text) or (
            len(name) >= 3 and re.search(r"\b" + re.escape(name.lower()) + r"\b", text)
        ):
            return str(code)
    return None


def extract(question: str, *, catalogue: list[tuple[int, str, str]] | None = None, fuzzy: bool = True) -> Entities:
    text = " ".join(question.lower().split())
    today = timezone.localdate()
    e = Entities()
    e.program, e.program_title, named = _program(
        question, text, catalogue if catalogue is not None else _lookup_programs(), fuzzy=fuzzy
    )
    if named:
        # A title is data: its words ("Night Watch") must not be read as a target or a genre.
        text = text.replace(named, " ")
    e.target = _target(text)
    e.n = _n(text)
    e.since, e.until = _period(text, today)
    e.period = "month" if re.search(r"\bmonth(ly|s)?\b|\bby month\b", text) and "last month" not in text else None
    if re.search(r"\bweek(ly|s)?\b", text) and "last week" not in text:
        e.period = "week"
    e.channel = _channel(text)
    for word in sorted(_GENRE_WORDS, key=len, reverse=True):
        if re.search(r"\b" + re.escape(word) + r"\b", text):
            e.genre = _GENRE_WORDS[word]
            break
    if re.search(r"\bexcel\b|\bxlsx\b|\bspreadsheet", text):
        e.fmt = "xlsx"
    elif re.search(r"\bcsv\b", text):
        e.fmt = "csv"
    elif re.search(r"\bjson\b", text):
        e.fmt = "json"
    for phrase in sorted(_DAYPARTS, key=len, reverse=True):
        if phrase in text:
            e.daypart = _DAYPARTS[phrase]
            break
    e.day = _day(text, today)
    e.rest = text
    e.dataset = "programs" if re.search(r"\bprogram (list|catalog)|\blist of programs|\bprograms? data", text) else None
    return e


def classify(question: str) -> str | None:
    text = " ".join(question.lower().split())
    for intent, pattern in INTENTS:
        if re.search(pattern, text):
            return intent
    return None


_NO_PROGRAM_INTENTS = ("get_programs", "get_best_model", "optimize_schedule")


def _scope(e: Entities, *, one_subject: bool = False) -> dict[str, Any]:
    """Program, genre, channel and period of a question as tool filters (a trend has one subject)."""
    scope: dict[str, Any] = {}
    if e.program:
        scope["program"] = e.program
    if e.genre and not (one_subject and e.program):
        scope["genre"] = e.genre
    if e.channel:
        scope["channel"] = e.channel
    if e.since:
        scope["start"] = e.since.isoformat()
    if e.until:
        scope["end"] = e.until.isoformat()
    return scope


def plan(
    question: str, *, catalogue: list[tuple[int, str, str]] | None = None
) -> tuple[str | None, dict[str, Any], str | None]:
    """(tool name, arguments, clarifying question). The tool is None when a question must be asked."""
    # Exact ids and titles first; the fuzzy title search (the slow part) only where a program may be meant.
    e = extract(question, catalogue=catalogue, fuzzy=False)
    intent = classify(e.rest)
    if e.program is None and intent not in _NO_PROGRAM_INTENTS:
        e = extract(question, catalogue=catalogue, fuzzy=True)
        intent = classify(e.rest)
    if intent is None:
        if e.program:
            intent = "get_program_details"
        else:
            return (
                None,
                {},
                (
                    "I can list or rank programs, show a program's details, predict rating/revenue/audience/"
                    "engagement, name the best model and its key factors, analyse trends, export data or "
                    "optimise a schedule. What would you like to know?"
                ),
            )
    if intent == "get_programs" and e.program and not re.search(r"\btop\b|\bprograms\b|\brank", e.rest):
        intent = "get_program_details"
    args: dict[str, Any] = {}
    if intent == "get_programs":
        if e.target or re.search(r"\btop\b|\bhighest|\bbest|\brank|\bmost popular", question.lower()):
            args["target"] = e.target or "rating"
        args["n"] = e.n or (5 if "target" in args else 10)
        if e.since:
            args["since"] = e.since.isoformat()
    elif intent == "get_program_details":
        if not e.program:
            return None, {}, "Which program do you mean? Give its id (e.g. ABC123) or its title."
        args["program"] = e.program
    elif intent == "predict_values":
        if not e.program:
            return None, {}, "Which program should I predict for? Give its id (e.g. ABC123) or its title."
        args = {"program": e.program, "target": e.target or "all"}
    elif intent == "get_best_model":
        target = e.target
        if target is None and re.search(r"\bfactors?\b|\bdrivers?\b|\baffects?\b|\bimportan", question.lower()):
            target = "audience"  # "what affects viewership" style questions without a target word
        if target is None:
            return None, {}, "Best model for which target: rating, revenue, audience or engagement?"
        args["target"] = target
    elif intent == "analyze_trends":
        args = {"target": e.target or "rating", "period": e.period or "week", **_scope(e, one_subject=True)}
    elif intent == "export_data":
        args = {"dataset": e.dataset or "airings", "format": e.fmt or "xlsx", "filters": _scope(e)}
    elif intent == "optimize_schedule":
        args = {"daypart": e.daypart or "prime_time"}
        if e.channel:
            args["channel"] = e.channel
        if e.day:
            args["date"] = e.day.isoformat()
    if "genre" not in args and intent == "get_programs" and e.genre:
        args["genre"] = e.genre
    if intent == "get_programs" and e.channel:
        args["channel"] = e.channel
    return intent, args, None


def answer(*, user: Any, question: str, on_event: EventSink | None = None) -> OfflineAnswer:
    tool, args, clarify = plan(question)
    if tool is None:
        return OfflineAnswer(text=clarify or "", clarification=True)
    if on_event:
        on_event("tool_call", {"name": tool, "arguments": args})
    call = run_tool(user=user, name=tool, arguments=args)
    return OfflineAnswer(text=render([call]), tool_calls=[call], intent=tool)


# --- rendering -----------------------------------------------------------------------------------

_UNITS = {"rating": "rating points", "revenue": "USD", "audience": "thousand viewers", "engagement": "/100"}


def fmt_value(target: str | None, value: Any) -> str:
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


def _value_of(row: dict[str, Any], target: str | None) -> Any:
    keys = [target, f"avg_{target}", f"mean_{target}", f"{target}_mean", f"{target}_avg"] if target else []
    for key in [*keys, "value", "mean", "avg", "average", "score", "prediction"]:
        if key and isinstance(row.get(key), (int, float)) and not isinstance(row.get(key), bool):
            return row[key]
    return None


def _name(row: dict[str, Any]) -> str:
    title = row.get("title") or row.get("program_title") or row.get("program__title") or row.get("name")
    if isinstance(row.get("program"), dict):
        title = title or row["program"].get("title")
    ext = row.get("external_id") or row.get("program__external_id") or row.get("program_external_id")
    if isinstance(row.get("program"), dict):
        ext = ext or row["program"].get("external_id")
    if title and ext:
        return f"{title} ({ext})"
    return str(title or ext or row.get("id") or "?")


def _render_programs(r: dict[str, Any]) -> str:
    rows = r.get("programs") or []
    if not rows:
        return "No programs match that request."
    target = r.get("ranked_by")
    if target:
        lines = [f"Top {len(rows)} programs by average {target}:"]
        lines += [f"{i}. {_name(row)}: {fmt_value(target, _value_of(row, target))}" for i, row in enumerate(rows, 1)]
        return "\n".join(lines)
    lines = [f"{r.get('total', len(rows))} programs match; showing {len(rows)}:"]
    lines += [f"- {_name(row)}" + (f", {row['genre']}" if row.get("genre") else "") for row in rows]
    return "\n".join(lines)


def _target_stats(detail: Any, target: str) -> dict[str, Any] | None:
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


def _render_details(r: dict[str, Any]) -> str:
    program = r.get("program") or {}
    detail = r.get("detail") or {}
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
            if isinstance(stats.get("min"), (int, float)) and isinstance(stats.get("max"), (int, float)):
                parts.append(f"range {fmt_value(target, stats['min'])} to {fmt_value(target, stats['max'])}")
            lines.append(f"{target.capitalize()}: " + ", ".join(parts))
    if len(lines) == 1 + isinstance(count, int):
        lines.append("There is no airing data with measured targets for this program yet.")
    return "\n".join(lines)


def _render_predictions(r: dict[str, Any]) -> str:
    name = _name(r.get("program") or {})
    lines = [f"Predictions for {name}:"]
    for p in r.get("predictions") or []:
        target = p.get("target")
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


def _render_best_model(r: dict[str, Any]) -> str:
    target = r.get("target")
    model = r.get("model")
    if not model:
        return f"There is no trained model for {target} yet, so I cannot say which is best."
    metrics = model.get("metrics") or {}
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
    factors = r.get("top_factors") or []
    if factors:
        names = [f"{f['feature']} ({f['importance']:.3f})" for f in factors[:5] if isinstance(f, dict)]
        text += f".\nFactors that affect {target} most: " + ", ".join(names)
    return text + "."


def _points(series: dict[str, Any]) -> list[tuple[str, float | None]]:
    out = []
    for p in series.get("points") or []:
        if isinstance(p, dict):
            out.append((str(p.get("period_start") or p.get("period") or p.get("start")), _value_of(p, None)))
        elif isinstance(p, (list, tuple)) and len(p) >= 2:
            out.append((str(p[0]), p[1] if isinstance(p[1], (int, float)) else None))
    return out


def _render_trends(r: dict[str, Any]) -> str:
    target = r.get("target")
    series = r.get("series") or {}
    subject = r.get("subject") or {}
    what = (
        _name(subject["program"])
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


def _render_export(r: dict[str, Any]) -> str:
    link = r.get("download") or {}
    return (
        f"Your {r.get('format', '').upper()} export of {r.get('dataset')} is ready: {link.get('url')} "
        f"(file {link.get('filename')}, link valid until {link.get('expires_at')}, only for you)."
    )


def _render_optimize(r: dict[str, Any]) -> str:
    params = r.get("params") or {}
    head = (
        f"Schedule optimisation job {r.get('job_id')} for {params.get('channel')} on {params.get('date')} "
        f"({str(params.get('daypart', '')).replace('_', ' ')}): status {r.get('status')}."
    )
    proposal = r.get("proposal") or {}
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


_RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "get_programs": _render_programs,
    "get_program_details": _render_details,
    "predict_values": _render_predictions,
    "get_best_model": _render_best_model,
    "analyze_trends": _render_trends,
    "export_data": _render_export,
    "optimize_schedule": _render_optimize,
}


def render(calls: list[ToolCall]) -> str:
    """A plain-language answer built only from these tool results."""
    parts = []
    for call in calls:
        if call.error is not None:
            parts.append(f"I could not run {call.name}: {call.error['message']}")
        elif call.result is not None:
            parts.append(_RENDERERS[call.name](call.result))
    return "\n\n".join(parts) if parts else "I have no data to answer that."
