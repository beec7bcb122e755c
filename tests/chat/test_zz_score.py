from typing import Any
from tests.chat.test_eval import _score, eval_setup  # noqa: F401
from tests.chat.eval import heldout, dev
def test_print(eval_setup: Any) -> None:
    for name, items in (("heldout", heldout.ITEMS), ("dev", dev.ITEMS)):
        tools, answers, outcomes = _score(items, eval_setup)
        print(name, len(items), f"tools {tools:.1%} answers {answers:.1%}")
        if name == "dev":
            for o in outcomes:
                if not o.answer_ok: print("  FAIL", o.item.question, "|", o.why, "|", o.response[:400].replace("\n"," / "))
