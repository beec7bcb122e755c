"""Development evaluation questions (tuned on). Same world and clock as heldout.py."""

from __future__ import annotations

from tests.chat.eval.items import Q

ITEMS = [
    Q("top 5 programs by rating", ("get_programs", {"target": "rating", "n": 5})),
]
