"""The number filters of the pages: formatting, and "—" for what is missing or not a number."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from web.templatetags.web_ui import DASH, dash, money, num, pct


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (1234.5, 0, "1,234"),
        (1234.5678, 2, "1,234.57"),
        ("42", 1, "42.0"),
        (7, "2", "7.00"),
        (Decimal("0.5"), 1, "0.5"),
        (True, 0, "1"),
    ],
)
def test_num_formats_numbers_and_their_text(value, digits, expected):
    assert num(value, digits) == expected


@pytest.mark.parametrize("value", [None, "", "abc", float("nan"), math.inf, -math.inf, object(), [1]])
def test_each_number_filter_shows_a_dash_for_what_is_not_a_number(value):
    assert num(value) == DASH
    assert pct(value) == DASH
    assert money(value) == DASH


def test_pct_shows_a_ratio_as_a_percentage():
    assert pct(0.4234) == "42.3%"
    assert pct("0.5", 0) == "50%"
    assert pct(-0.015, 2) == "-1.50%"


def test_money_has_a_dollar_sign_and_thousands_separators():
    assert money(1234567.891) == "$1,234,568"
    assert money("12.5", 2) == "$12.50"


def test_dash_keeps_zero_and_false():
    assert dash(0) == 0
    assert dash(False) is False
    assert dash(None) == DASH
    assert dash(float("nan")) == DASH
