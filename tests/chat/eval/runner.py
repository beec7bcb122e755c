"""Run evaluation items through the chat service (offline agent) and score them.

Used by ``tests/chat/test_eval.py`` and ``bench/chat.py``. Each item runs in a new session through
``chat_answer`` (so clarifications, follow-ups and the cache work as for a user), at ``world.NOW``.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from types import SimpleNamespace
from typing import Any
from unittest import mock

import time_machine
from django.conf import settings
from django.core.cache import cache

from chat.offline import fmt_value
from chat.services import chat_answer, chat_session_create
from predictions.predict import Answer
from programs import selectors
from programs.models import Program
from tests.chat.eval.items import Item
from tests.predictions.factories import prediction_answer


def fake_prediction(program: Any, target: str) -> float:
    """A deterministic stand-in for a trained model (the chat tests' own)."""
    base = {"rating": 2.75, "revenue": 31250.0, "audience": 287.5, "engagement": 54.25}[target]
    return base + program.pk % 7


def _predict(*, program: Any, target: str, features: Any = None, user_key: Any = None) -> Answer:
    return prediction_answer(program_id=program.pk, target=target, value=fake_prediction(program, target))


def _optimize(*, user: Any, request: Any) -> Any:
    entries = [{"start": f"{request.date}T20:00:00-04:00", "title": "Night Watch", "program": "NWT001"}]
    result = {"schedules": [{"entries": entries, "totals": {"revenue": 97000.0, "audience": 740.0}}], "gap": 0.004}
    return SimpleNamespace(pk=41, status="succeeded", result=result, refresh_from_db=lambda: None)


@contextmanager
def evaluation_conditions() -> Iterator[None]:
    """The evaluation's clock (world.NOW), deterministic predictions and optimiser, a scratch export dir."""
    from tests.chat.eval.world import NOW

    with (
        tempfile.TemporaryDirectory() as exports,
        mock.patch("predictions.predict.predict", _predict),
        mock.patch("scheduling.services.optimization_job_create", _optimize),
        mock.patch.object(settings, "EXPORT_ROOT", exports),
        time_machine.travel(NOW, tick=False),
    ):
        yield


def score(items: list[Item], user: Any) -> tuple[float, float, list[Outcome]]:
    """(share with the right tools and arguments, share with the right answer, each outcome)."""
    outcomes = []
    for item in items:
        cache.clear()
        outcomes.append(run_item(item, user))
    tools = sum(o.tools_ok for o in outcomes) / len(outcomes)
    answers = sum(o.answer_ok for o in outcomes) / len(outcomes)
    return tools, answers, outcomes


def _fact(template: str) -> str:
    def one(m: re.Match[str]) -> str:
        kind, *parts = m.group(1).split(":")
        if kind == "mean":
            period: dict[str, Any] = (
                {"start": date.fromisoformat(parts[2]), "end": date.fromisoformat(parts[3])} if len(parts) >= 4 else {}
            )
            ext, target = parts[0], parts[1]
            detail = selectors.program_detail(program=Program.objects.get(external_id=ext), **period)
            return fmt_value(target, detail.targets[target].mean)
        if kind == "group":
            group_by, target, key = parts[0], parts[1], parts[2]
            span = parts[3:5]
            since, until = (
                (date.fromisoformat(span[0]), date.fromisoformat(span[1])) if len(span) == 2 else (None, None)
            )
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
    calls: list[dict[str, Any]] = list(answer.metadata.get("tool_calls", []))
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
