"""Grounding: every number an answer states must come from (or round from) a tool result.

Numbers are collected from every value of the tool results and arguments (numbers inside strings
too, so dates and ids count). An answer's number is grounded when some source number rounds to it
at the answer's own precision, directly or as a percentage of a ratio, or in thousands/millions when
the answer says "k"/"M"/"thousand"/"million".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_NUMBER = re.compile(
    r"(?<![\w.])[-+]?\$?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(\s*(?:k|m|thousand|million|bn|billion)\b)?", re.I
)
_OUT_OF_100 = re.compile(r"/100\b")
_ISO_T = re.compile(r"(\d)T(\d)")
_LIST_MARKER = re.compile(r"^\s*\d{1,2}[.)]\s", re.M)
_SCALES = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "bn": 1e9, "billion": 1e9}


@dataclass(frozen=True)
class AnswerNumber:
    text: str
    value: float
    decimals: int
    scale: float


def answer_numbers(text: str) -> list[AnswerNumber]:
    text = _LIST_MARKER.sub(" ", text)
    text = _ISO_T.sub(r"\1 \2", text)  # "2025-03-03T20:00" reads as a date and a time
    text = _OUT_OF_100.sub(" ", text)  # "62.5/100" is a unit, not a second number
    out = []
    for m in _NUMBER.finditer(text):
        whole, frac, suffix = m.group(1), m.group(2) or "", (m.group(3) or "").strip().lower()
        value = float(whole.replace(",", "") + frac)
        out.append(AnswerNumber(m.group(0).strip(), value, max(0, len(frac) - 1), _SCALES.get(suffix, 1.0)))
    return out


def source_numbers(values: Iterable[Any]) -> list[float]:
    found: list[float] = []

    def walk(v: Any) -> None:
        if isinstance(v, bool) or v is None:
            return
        if isinstance(v, (int, float)):
            found.append(float(v))
        elif isinstance(v, str):
            found.extend(n.value * n.scale for n in answer_numbers(v))
            # "2026-01-05" also yields 1 and 5 once leading zeros are read as numbers
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


def _matches(n: AnswerNumber, source: float) -> bool:
    tolerance = 0.5 * 10 ** (-n.decimals) + 1e-9
    candidates = [source, abs(source)]
    if n.scale != 1.0:
        candidates += [source / n.scale, abs(source) / n.scale]
    candidates += [c * 100 for c in list(candidates)]  # a ratio stated as a percentage
    return any(abs(abs(n.value) - abs(c)) <= tolerance for c in candidates)


def ungrounded_numbers(answer: str, sources: Iterable[Any]) -> list[str]:
    """The numbers in ``answer`` that no source supports (empty list = grounded)."""
    pool = source_numbers(list(sources))
    return [n.text for n in answer_numbers(answer) if not any(_matches(n, s) for s in pool)]
