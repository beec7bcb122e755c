"""Grounding: every number an answer states must come from a tool result, for the thing it is said of.

Two levels:

- ``ungrounded_numbers``: a number is grounded when some source number rounds to it at the answer's
  own precision (directly, as a percentage of a ratio, or in thousands / millions when the answer says
  "k" / "M" / "thousand" / "million"). Used for the offline rendering, whose numbers are all copied.
- ``claim_problems``: the check of an LLM answer. Each number is bound to the entity named nearest
  before it in its sentence (a program title or id, a channel, a genre group) and to the measure named
  nearest to it (or its unit: "$" is revenue, "viewers" audience, "/100" engagement); it must equal a
  tool value *of that entity and measure* at the stated precision and within 5% (so "$2M" for
  $2.4M fails while "$2.4M" passes); a direction word ("up", "fell") must match the value's sign;
  spelled-out numbers ("three million") are read by number-parser; and an answer that claims success
  while a tool call failed is a problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from number_parser import parse_number

if TYPE_CHECKING:
    from chat.tools import ToolCall

_NUMBER = re.compile(
    r"(?<![\w.])([-+\u2212])?\$?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(\s*(?:k|m|mn|thousand|million|bn|billion)\b)?(\s*%|\s*percent\b)?",
    re.I,
)
_OUT_OF_100 = re.compile(r"/100\b")
_ISO_T = re.compile(r"(\d)T(\d)")
_LIST_MARKER = re.compile(r"^\s*\d{1,2}[.)]\s", re.M)
_SCALES = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "bn": 1e9, "billion": 1e9}
_WORD_NUMBER = (
    r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|a|and|point)"
)
_SPELLED = re.compile(
    r"\b(" + _WORD_NUMBER + r"(?:[\s-]+" + _WORD_NUMBER + r")*)\s+(thousand|million|billion|percent)\b", re.I
)
_SPELLED_PLAIN = re.compile(
    r"\b((?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen)(?:[\s-]+(?:one|two|three|four|five|six|seven|eight|nine))?|"
    r"(?:one|two|three|four|five|six|seven|eight|nine)\s+hundred(?:\s+and)?(?:[\s-]+\w+)?)\b",
    re.I,
)
_UP = re.compile(
    r"\b(up|rose|risen|rising|increased?|increasing|grew|grown|growing|gain(?:ed|s)?|higher|climb(?:ed)?|jump(?:ed)?|improv(?:ed|ing))\b",
    re.I,
)
_DOWN = re.compile(
    r"\b(down|fell|fallen|falling|decreased?|decreasing|declin(?:ed|e|ing)|dropp?(?:ed)?|lower|slipp?(?:ed)?|lost|shr[ai]nk|shrunk|slid)\b",
    re.I,
)
_SUCCESS = re.compile(
    r"\b(is ready|are ready|exported|export (?:is|was) (?:done|ready|complete)|download (?:it|the file|link)|here is the link"
    r"|successfully|has been (?:started|created|saved|scheduled|exported)|i(?:'ve| have) (?:started|created|exported|saved|scheduled|optimi[sz]ed)"
    r"|job (?:is|was) (?:started|running|done|complete)|completed?)\b",
    re.I,
)
_ADMITS_ERROR = re.compile(
    r"\b(could not|couldn't|can't|cannot|failed|error|unable|not available|unavailable|not run|did not|didn't|no data|missing)\b",
    re.I,
)
_MEASURE_WORDS = {
    "revenue": "revenue", "earn": "revenue", "earns": "revenue", "earnings": "revenue", "income": "revenue",
    "money": "revenue", "sales": "revenue", "usd": "revenue", "dollars": "revenue",
    "audience": "audience", "viewers": "audience", "viewership": "audience", "watched": "audience",
    "engagement": "engagement", "rating": "rating", "ratings": "rating", "rated": "rating", "points": "rating",
}  # fmt: skip
TARGETS = ("rating", "revenue", "audience", "engagement")
_VALUE_KEYS = {
    "mean", "avg", "average", "min", "max", "value", "prediction", "low", "high", "median", "total", "sum", "change_pct",
}  # fmt: skip


@dataclass(frozen=True)
class AnswerNumber:
    text: str
    value: float
    decimals: int
    scale: float
    start: int = 0
    sign: int = 0  # +1 / -1 when written with a sign
    percent: bool = False


def _clean(text: str) -> str:
    text = _LIST_MARKER.sub(lambda m: " " * len(m.group(0)), text)
    text = _ISO_T.sub(r"\1 \2", text)  # "2025-03-03T20:00" reads as a date and a time
    return _OUT_OF_100.sub("    ", text)  # "62.5/100" is a unit, not a second number


def answer_numbers(text: str) -> list[AnswerNumber]:
    text = _clean(text)
    out = []
    for m in _NUMBER.finditer(text):
        sign_text, whole, frac = m.group(1), m.group(2), m.group(3) or ""
        suffix = (m.group(4) or "").strip().lower()
        value = float(whole.replace(",", "") + frac)
        sign = 0 if not sign_text else (1 if sign_text == "+" else -1)
        out.append(
            AnswerNumber(
                m.group(0).strip(),
                value,
                max(0, len(frac) - 1),
                _SCALES.get(suffix, 1.0),
                m.start(2),
                sign,
                bool(m.group(5)),
            )
        )
    for pattern in (_SPELLED, _SPELLED_PLAIN):
        for m in pattern.finditer(text):
            words = m.group(1)
            scale_word = m.group(2).lower() if pattern is _SPELLED else ""
            value = parse_number(words)
            if value is None:
                continue
            if any(abs(n.start - m.start()) < 2 for n in out):
                continue
            out.append(
                AnswerNumber(
                    m.group(0), float(value), 0, _SCALES.get(scale_word, 1.0), m.start(), 0, scale_word == "percent"
                )
            )
    return sorted(out, key=lambda n: n.start)


def source_numbers(values: Iterable[object]) -> list[float]:
    found: list[float] = []

    def walk(v: object) -> None:
        if isinstance(v, bool) or v is None:
            return
        if isinstance(v, (int, float)):
            found.append(float(v))
        elif isinstance(v, str):
            found.extend(n.value * n.scale for n in answer_numbers(v))
        elif isinstance(v, dict):
            for item in v.values():
                walk(item)
        elif isinstance(v, (list, tuple)):
            found.append(float(len(v)))  # "3 periods", "5 programs": counted from the result
            for item in v:
                walk(item)

    for value in values:
        walk(value)
    return found


def _matches(n: AnswerNumber, source: float, *, signed: bool = False, strict: bool = False) -> bool:
    """Equal at the stated precision (and, for ``strict``, within 5%: no loose rounding)."""
    tolerance = 0.5 * 10 ** (-n.decimals) + 1e-9
    stated = -n.value if n.sign < 0 else n.value
    candidates = [source] if signed else [source, abs(source)]
    if n.scale == 1e3:  # "445.0k viewers" is audience as stored (thousands), or 445,000 of something
        candidates += [c / n.scale for c in candidates]
    elif n.scale != 1.0:  # "2.4M" is 2,400,000
        candidates = [c / n.scale for c in candidates]
    if n.percent or not strict:
        candidates += [c * 100 for c in list(candidates)]  # a ratio stated as a percentage
    for c in candidates:
        a, b = (stated, c) if signed else (abs(n.value), abs(c))
        if abs(a - b) <= tolerance and (not strict or abs(a - b) <= 0.05 * abs(b) + 1e-9):
            return True
    return False


def ungrounded_numbers(answer: str, sources: Iterable[object]) -> list[str]:
    """The numbers in ``answer`` that no source supports (empty list = grounded)."""
    pool = source_numbers(list(sources))
    return [n.text for n in answer_numbers(answer) if not any(_matches(n, s) for s in pool)]


# --- claim level -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    value: float
    entities: frozenset[str]  # lower-case names of the row the value belongs to (empty: a general value)
    measure: str | None


_ENTITY_KEYS = ("title", "external_id", "program_title", "program__title", "program__external_id", "key", "name")


def _measure_of(key: str) -> str | None:
    name = key.lower().removeprefix("avg_").removeprefix("mean_").removesuffix("_mean").removesuffix("_avg")
    return name if name in TARGETS else None


def facts_of(values: Iterable[object]) -> list[Fact]:
    facts: list[Fact] = []

    def walk(v: object, entities: frozenset[str], measure: str | None) -> None:
        if isinstance(v, bool) or v is None:
            return
        if isinstance(v, (int, float)):
            facts.append(Fact(float(v), entities, measure))
        elif isinstance(v, str):
            facts.extend(Fact(n.value * n.scale, entities, measure) for n in answer_numbers(v))
        elif isinstance(v, dict):
            own = {str(v[k]).lower() for k in _ENTITY_KEYS if isinstance(v.get(k), str) and len(str(v[k])) >= 2}
            program = v.get("program")
            if isinstance(program, dict):
                own |= {str(program[k]).lower() for k in ("title", "external_id") if isinstance(program.get(k), str)}
            here = frozenset(own) if own else entities
            row_measure = v.get("target") if v.get("target") in TARGETS else v.get("ranked_by")
            row_measure = row_measure if row_measure in TARGETS else measure
            for key, item in v.items():
                own_measure = _measure_of(str(key))
                # a row's target names its value fields only, not its counts ("airings": 2)
                inherited = row_measure if str(key).lower() in _VALUE_KEYS or isinstance(item, (dict, list)) else None
                walk(item, here, own_measure or inherited)
        elif isinstance(v, (list, tuple)):
            facts.append(Fact(float(len(v)), frozenset(), None))
            for item in v:
                walk(item, entities, measure)

    for value in values:
        walk(value, frozenset(), None)
    return facts


def _sentences(text: str) -> list[tuple[int, str]]:
    out, start = [], 0
    for m in re.finditer(r"\n|(?<=[a-z\)])\.\s+|;\s+", text):
        out.append((start, text[start : m.start()]))
        start = m.end()
    out.append((start, text[start:]))
    return out


def _nearest(mentions: Sequence[tuple[int, str]], position: int) -> str | None:
    before = [(p, name) for p, name in mentions if p <= position]
    if before:
        return max(before)[1]
    return None


def _measure_near(sentence: str, n: AnswerNumber, offset: int) -> str | None:
    tail = sentence[n.start - offset + len(n.text) : n.start - offset + len(n.text) + 14].lower()
    head = sentence[: n.start - offset]
    if "$" in sentence[max(0, n.start - offset - 2) : n.start - offset + 1] or re.match(r"\s*(usd|dollars)", tail):
        return "revenue"
    if re.match(r"\s*k? ?(viewers|thousand viewers)", tail):
        return "audience"
    if tail.startswith("/100") or re.match(r"\s*/\s*100", tail):
        return "engagement"
    if re.match(r"\s*(rating points|points)", tail):
        return "rating"
    words = [
        (m.start(), _MEASURE_WORDS[m.group(1).lower()])
        for m in re.finditer(r"\b(" + "|".join(_MEASURE_WORDS) + r")\b", head, re.I)
    ]
    return words[-1][1] if words else None


def claim_problems(answer: str, calls: Sequence[ToolCall], question: str = "") -> list[str]:
    """What is wrong with an LLM answer's claims (empty list: every claim holds)."""
    problems: list[str] = []
    failed = [c for c in calls if c.error is not None]
    if failed and _SUCCESS.search(answer) and not _ADMITS_ERROR.search(answer):
        problems.append(f"claims success although {failed[0].name} failed")
    sources: list[object] = [question]
    for c in calls:
        sources += [c.arguments, c.result if c.error is None else c.error]
    facts = facts_of(sources)
    names = sorted({e for f in facts for e in f.entities if len(e) >= 3}, key=len, reverse=True)
    cleaned = _clean(answer)
    for offset, sentence in _sentences(cleaned):
        lower = sentence.lower()
        mentions: list[tuple[int, str]] = []
        taken: list[tuple[int, int]] = []
        for name in names:
            for m in re.finditer(r"(?<!\w)" + re.escape(name) + r"(?!\w)", lower):
                if any(a <= m.start() < b for a, b in taken):
                    continue
                taken.append((m.start(), m.end()))
                mentions.append((offset + m.start(), name))
        for n in answer_numbers(sentence):
            n = AnswerNumber(n.text, n.value, n.decimals, n.scale, n.start + offset, n.sign, n.percent)
            if any(a <= n.start - offset < b for a, b in taken):
                continue  # a number inside a title or an id ("CTL005")
            if not any(_matches(n, f.value) for f in facts):
                problems.append(f"{n.text}: no tool result has this number")
                continue
            entity = _nearest(mentions, n.start)
            measure = _measure_near(sentence, n, offset)
            bound = [
                f
                for f in facts
                if (entity is None or not f.entities or entity in f.entities)
                and (measure is None or f.measure in (None, measure))
            ]
            precise = (
                [f for f in bound if f.measure is not None and (entity is None or entity in f.entities)]
                if measure or entity
                else []
            )
            general = [f for f in facts if not f.entities and f.measure is None]
            pool = precise + general if precise else bound
            if not any(_matches(n, f.value, strict=True) for f in pool):
                what = " ".join(x for x in (entity, measure) if x) or "anything"
                problems.append(f"{n.text}: not the value of {what} (at the stated precision)")
                continue
            before = sentence[max(0, n.start - offset - 16) : n.start - offset]
            near = re.search(r"(\w+)\s+(?:by\s+|of\s+)?\$?$", before)
            word = near.group(1) if near else ""
            direction = n.sign or (1 if _UP.fullmatch(word) else -1 if _DOWN.fullmatch(word) else 0)
            if not direction and n.percent:
                context = sentence[max(0, n.start - offset - 40) : n.start - offset + len(n.text) + 25]
                up, down = _UP.search(context), _DOWN.search(context)
                direction = 1 if up and not down else -1 if down and not up else 0
            if direction:
                signed = AnswerNumber(n.text, n.value, n.decimals, n.scale, n.start, direction, n.percent)
                if not any(_matches(signed, f.value, signed=True, strict=True) for f in pool if f.value != 0):
                    problems.append(f"{n.text}: the direction does not match the sign of the value")
    return problems
