"""The offline agent against the evaluation set (tests/chat/eval): the right tools with the right
arguments, and answers that carry the expected facts. Held-out target: 97% tools, 95% answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.chat.eval import dev, heldout
from tests.chat.eval.runner import Outcome, evaluation_conditions, score
from tests.chat.eval.world import eval_world
from tests.chat.factories import model_version_factory


@pytest.fixture
def eval_setup(db: Any, analyst: Any) -> Iterator[Any]:
    eval_world()
    for target in ("rating", "revenue", "audience", "engagement"):
        model_version_factory(target=target)
    with evaluation_conditions():
        yield analyst


def _report(outcomes: list[Outcome]) -> str:
    return "\n".join(f"- {o.item.question!r}: {o.why}\n    {o.response[:300]!r}" for o in outcomes if not o.answer_ok)


def test_the_evaluation_set_has_150_questions_with_a_held_out_part() -> None:
    assert len(heldout.ITEMS) + len(dev.ITEMS) >= 150
    assert len(heldout.ITEMS) >= 75
    assert not {i.question for i in heldout.ITEMS} & {i.question for i in dev.ITEMS}


def test_held_out_questions_meet_the_targets(eval_setup: Any) -> None:
    tools, answers, outcomes = score(heldout.ITEMS, eval_setup)
    assert tools >= 0.97, f"tools {tools:.1%}, answers {answers:.1%}\n{_report(outcomes)}"
    assert answers >= 0.95, f"tools {tools:.1%}, answers {answers:.1%}\n{_report(outcomes)}"


def test_development_questions_meet_the_targets(eval_setup: Any) -> None:
    tools, answers, outcomes = score(dev.ITEMS, eval_setup)
    assert tools >= 0.97, f"tools {tools:.1%}, answers {answers:.1%}\n{_report(outcomes)}"
    assert answers >= 0.95, f"tools {tools:.1%}, answers {answers:.1%}\n{_report(outcomes)}"
