"""Run evaluation items through the chat service (offline agent) and score them.

Used by ``tests/chat/test_eval.py`` and ``bench/chat.py``. Each item runs in a new session through
``chat_answer`` (so clarifications, follow-ups and the cache work as for a user), at ``world.NOW``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from chat.offline import fmt_value
from chat.services import chat_answer, chat_session_create
from programs import selectors
from programs.models import Program
from tests.chat.eval.items import Item


def fake_prediction(program: Any, target: str) -> float:
    from tests.chat.conftest import fake_prediction as value

    return value(program, target)


def _fact(template: str) -> str:
    def one(m: re.Match[str]) -> str:
        kind, *parts = m.group(1).split(":")
        if kind == "mean":
            period = {"start": date.fromisoformat(parts[2]), "end": date.fromisoformat(parts[3])} if len(parts) >= 4 else {}
            ext, target = parts[0], parts[1]
            detail = selectors.program_detail(program=Program.objects.get(external_id=ext), **period)
            return fmt_value(target, detail.targets[target].mean)
        if kind == "group":
            group_by, target, key = parts[0], parts[1], parts[2]
            span = parts[3:5]
            since, until = (date.fromisoformat(span[0]), date.fromisoformat(span[1])) if len(span) == 2 else (None, None)
            rows = selectors.top_groups(target=target, group_by=group_by, n=100, since=since, until=until)
            return fmt_value(target, next(r["mean"] for r in rows if r["key"] == key))
        if kind == "pred":
            return fmt_value(parts[1], fake_prediction(Program.objects.get(external_id=parts[0]), parts[1]))
        raise ValueError(template)

    return re.sub(r"\{([^}]+)\}", one, template)


def _subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(_subset(v, actual.get(k)) for k, v in expected.items())
    return bool(expected == actual)


@dataclass
class Outcome:
    item: Item
    tools_ok: bool
    answer_ok: bool
    response: str
    calls: list[dict[str, Any]]
    why: str = ""


def run_item(item: Item, user: Any) -> Outcome:
    session = chat_session_create(user=user)
    for earlier in item.before:
        chat_answer(user=user, session_id=session.id, message=earlier)
    answer = chat_answer(user=user, session_id=session.id, message=item.question)
    calls = answer.metadata.get("tool_calls", [])
    why = ""
    tools_ok = len(calls) == len(item.tools)
    if not tools_ok:
        why = f"calls {[c['name'] for c in calls]} != {[t for t, _ in item.tools]}"
    for call, (name, args) in zip(calls, item.tools, strict=False):
        if call["name"] != name or not _subset(args, call["arguments"]):
            tools_ok = False
            why = why or f"{call['name']} {call['arguments']} != {name} {args}"
    for call in calls:
        if any(key in call["arguments"] or key in (call["arguments"].get("filters") or {}) for key in item.absent):
            tools_ok = False
            why = why or f"inherited {item.absent}: {call['arguments']}"
    if any("error" in call for call in calls):
        tools_ok = False
        why = why or f"tool error {[c.get('error') for c in calls]}"
    missing = [f for f in (_fact(t) for t in item.facts) if f not in answer.response]
    answer_ok = tools_ok and not missing
    if missing:
        why = why or f"missing {missing}"
    return Outcome(item, tools_ok, answer_ok, answer.response, calls, why)
