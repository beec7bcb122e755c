"""The offline agent against the evaluation set (tests/chat/eval): the right tools with the right
arguments, and answers that carry the expected facts. Held-out target: 97% tools, 95% answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.core.cache import cache

from tests.chat.eval import dev, heldout
from tests.chat.eval.runner import Outcome, run_item
from tests.chat.eval.world import NOW, eval_world
from tests.chat.factories import model_version_factory


@pytest.fixture
def eval_setup(db: Any, fake_predict: Any, fake_optimizer: Any, analyst: Any, settings: Any, tmp_path: Any) -> Iterator[Any]:
    settings.EXPORT_ROOT = str(tmp_path)
    cache.clear()
    eval_world()
    for target in ("rating", "revenue", "audience", "engagement"):
        model_version_factory(target=target)
    with time_machine.travel(NOW, tick=False):
        yield analyst


def _score(items: list[Any], user: Any) -> tuple[float, float, list[Outcome]]:
    outcomes = []
    for item in items:
        cache.clear()
        outcomes.append(run_item(item, user))
    tools = sum(o.tools_ok for o in outcomes) / len(outcomes)
    answers = sum(o.answer_ok for o in outcomes) / len(outcomes)
    return tools, answers, outcomes


def _report(outcomes: list[Outcome]) -> str:
    return "\n".join(f"- {o.item.question!r}: {o.why}\n    {o.response[:300]!r}" for o in outcomes if not o.answer_ok)


def test_the_evaluation_set_has_150_questions_with_a_held_out_part() -> None:
    assert len(heldout.ITEMS) + len(dev.ITEMS) >= 150
    assert len(heldout.ITEMS) >= 75
    assert not {i.question for i in heldout.ITEMS} & {i.question for i in dev.ITEMS}


def test_held_out_questions_meet_the_targets(eval_setup: Any) -> None:
    tools, answers, outcomes = _score(heldout.ITEMS, eval_setup)
    assert tools >= 0.97 and answers >= 0.95, f"tools {tools:.1%}, answers {answers:.1%}\n{_report(outcomes)}"


def test_development_questions_meet_the_targets(eval_setup: Any) -> None:
    tools, answers, outcomes = _score(dev.ITEMS, eval_setup)
    assert tools >= 0.97 and answers >= 0.95, f"tools {tools:.1%}, answers {answers:.1%}\n{_report(outcomes)}"
