"""One evaluation question: the tool calls it must make, their key arguments, and the facts its answer carries.

``facts`` are literal strings, or templates the evaluation computes from the data through the programs
selectors (never through the chat): ``{mean:EXT:target}`` or ``{mean:EXT:target:FROM:TO}`` (a program's
mean, formatted as the chat formats it), ``{group:channel|genre:target:KEY}`` (a group's mean, optionally
with ``:FROM:TO``) and ``{pred:EXT:target}`` (the test's deterministic prediction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Item:
    question: str
    tools: tuple[tuple[str, dict[str, Any]], ...] = ()  # expected calls in order: (tool, subset of arguments)
    facts: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()  # argument names no call may carry (scope that must not be inherited)
    before: tuple[str, ...] = ()  # earlier messages of the same conversation
    tags: tuple[str, ...] = field(default=())


def Q(question: str, *tools: tuple[str, dict[str, Any]], facts: tuple[str, ...] = (), **kw: Any) -> Item:
    return Item(question=question, tools=tools, facts=facts, **kw)
