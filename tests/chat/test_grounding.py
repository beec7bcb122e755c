"""Claim-level grounding of LLM answers: numbers bound to the entity and measure they are stated for."""

from __future__ import annotations

import pytest

from chat.grounding import claim_problems
from chat.tools import ToolCall

RANKING = ToolCall(
    name="get_programs",
    arguments={"target": "revenue", "n": 2},
    result={
        "ranked_by": "revenue",
        "programs": [
            {"external_id": "NWT001", "title": "Night Watch", "target": "revenue", "mean": 2_412_500.0, "airings": 2},
            {"external_id": "LTR003", "title": "Laugh Track", "target": "revenue", "mean": 28_000.0, "airings": 2},
        ],
    },
)
TREND = ToolCall(
    name="analyze_trends",
    arguments={"target": "rating", "period": "week", "program": "MBR002"},
    result={
        "target": "rating",
        "subject": {"program": {"external_id": "MBR002", "title": "Morning Brew"}},
        "series": {"points": [{"period_start": "2025-01-06", "mean": 1.5}], "change_pct": -41.6, "direction": "down"},
    },
)
EXPORT_FAILED = ToolCall(
    name="export_data",
    arguments={"dataset": "airings", "format": "xlsx"},
    error={"code": "unavailable", "message": "The export service is not available."},
)


@pytest.mark.parametrize(
    "answer",
    [
        "Night Watch (NWT001) leads with $2,412,500 per airing; Laugh Track (LTR003) follows with $28,000.",
        "Night Watch earns about $2.4M per airing, Laugh Track $28k.",
        "Night Watch averages 2.41 million dollars of revenue per airing.",
        "Night Watch: $2,412,500\nLaugh Track: $28,000",
    ],
)
def test_values_stated_for_their_own_program_at_their_precision_pass(answer: str) -> None:
    assert claim_problems(answer, [RANKING]) == []


def test_swapped_values_between_programs_fail() -> None:
    answer = "Night Watch (NWT001) averages $28,000 per airing; Laugh Track (LTR003) averages $2,412,500."
    assert claim_problems(answer, [RANKING]) == [
        "$28,000: not the value of nwt001 revenue (at the stated precision)",
        "$2,412,500: not the value of ltr003 revenue (at the stated precision)",
    ]


def test_a_flipped_sign_fails_and_the_right_direction_passes() -> None:
    assert claim_problems("Morning Brew's rating is up 41.6% over the period.", [TREND]) == [
        "41.6%: the direction does not match the sign of the value"
    ]
    assert claim_problems("Morning Brew's rating fell 41.6% over the period.", [TREND]) == []
    assert claim_problems("Morning Brew's rating changed by +41.6%.", [TREND]) == [
        "+41.6%: the direction does not match the sign of the value"
    ]


def test_spelled_out_numbers_are_read_and_checked() -> None:
    assert claim_problems("Night Watch brings in three million dollars per airing.", [RANKING]) == [
        "three million: not the value of night watch revenue (at the stated precision)"
    ]
    assert claim_problems("Laugh Track makes twenty-eight thousand dollars per airing.", [RANKING]) == []


def test_loosely_rounded_numbers_fail() -> None:
    assert claim_problems("Night Watch averages $2M in revenue.", [RANKING]) == [
        "$2M: not the value of night watch revenue (at the stated precision)"
    ]
    assert claim_problems("Night Watch averages $2.4M in revenue.", [RANKING]) == []


def test_claiming_success_after_a_tool_error_fails() -> None:
    assert claim_problems("Your Excel export is ready: download it from the link.", [EXPORT_FAILED]) == [
        "claims success although export_data failed"
    ]
    assert claim_problems("I could not export the data: the export service is not available.", [EXPORT_FAILED]) == []


def test_a_number_no_tool_gave_fails() -> None:
    assert claim_problems("Night Watch has 9.75 rating points.", [RANKING]) == ["9.75: no tool result has this number"]
