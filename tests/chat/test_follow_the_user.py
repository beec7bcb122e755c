"""Tools follow the user, not the data; writes are refused plainly; savings are priced at the provider
that answered; a broken model artifact is named in the answer; follow-ups show what they kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from bms.errors import ApplicationError
from bms.jsontypes import json_object
from chat import services
from chat.offline import CANT_CHANGE
from chat.services import chat_answer, chat_session_create
from programs.models import Airing, Channel, Program
from tests.chat.fakes import final, scripted, tool_call


def test_a_hostile_title_cannot_make_the_agent_export(world: Any, analyst: Any, settings: Any, tmp_path: Any) -> None:
    settings.EXPORT_ROOT = str(tmp_path)
    # The model "obeys" the instruction in the program title and asks for an export.
    model = scripted(
        tool_call("get_program_details", {"program": "INJ004"}),
        tool_call("export_data", {"dataset": "airings", "format": "xlsx"}, call_id="call_2"),
        final("INJ004 has one airing."),
    )
    session = chat_session_create(user=analyst)
    answer = chat_answer(
        user=analyst, session_id=session.id, message="tell me about INJ004", models=[("groq", "llama", model)]
    )
    assert [c["name"] for c in answer.metadata["tool_calls"]] == ["get_program_details"]
    assert answer.metadata["refused_tools"] == ["export_data"]
    assert list(tmp_path.iterdir()) == []  # nothing was written
    assert "not run: the user did not ask for export_data" in model.seen[2][-1].content


def test_an_export_the_user_asked_for_runs(world: Any, analyst: Any, settings: Any, tmp_path: Any) -> None:
    settings.EXPORT_ROOT = str(tmp_path)
    model = scripted(
        tool_call("export_data", {"dataset": "airings", "format": "csv"}),
        final("Your CSV export of airings is ready."),
    )
    session = chat_session_create(user=analyst)
    answer = chat_answer(
        user=analyst, session_id=session.id, message="export the airings as csv", models=[("groq", "llama", model)]
    )
    assert [c["name"] for c in answer.metadata["tool_calls"]] == ["export_data"]
    assert len(list(tmp_path.rglob("*.csv"))) == 1


@pytest.mark.parametrize(
    "message",
    ["delete all programs", "Please remove Night Watch from the database", "rename City Lights to City Nights"],
)
def test_a_request_to_change_data_is_refused_plainly_and_changes_nothing(
    world: Any, analyst: Any, message: str
) -> None:
    model = scripted(final("Done, I deleted them."))
    before = (Program.objects.count(), Airing.objects.count())
    session = chat_session_create(user=analyst)
    answer = chat_answer(user=analyst, session_id=session.id, message=message, models=[("groq", "llama", model)])
    assert answer.response == CANT_CHANGE
    assert answer.response.startswith("I can't change data")
    assert answer.metadata["tool_calls"] == []
    assert model.seen == []  # the LLM was not asked
    assert (Program.objects.count(), Airing.objects.count()) == before


def test_savings_are_priced_at_the_provider_that_answered(
    world: Any, analyst: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat.cache import stats

    broken = scripted(final("never"), fail_with=RuntimeError("down"))
    gemini = scripted(
        tool_call("get_programs", {"target": "rating", "n": 1}, tokens=(1000, 0)),
        final("Night Watch (NWT001) has the best average rating, 4.50.", tokens=(0, 0)),
    )
    monkeypatch.setattr(services, "default_models", lambda: [("groq", "llama", broken), ("gemini", "flash", gemini)])
    session = chat_session_create(user=analyst)
    for _ in range(2):
        answer = chat_answer(user=analyst, session_id=session.id, message="best show by rating")
    assert answer.metadata["cache_hit"] is True
    assert stats().cost_savings == pytest.approx(1000 * 0.10 / 1_000_000)  # gemini's price, not groq's


def test_a_model_the_predictor_cannot_use_is_named_in_the_answer(
    world: Any, analyst: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def predict(**kwargs: Any) -> Any:
        raise ApplicationError(
            "The revenue model is unavailable: its artifact failed its check.", code="model_unavailable"
        )

    monkeypatch.setattr("predictions.predict.predict", predict)
    session = chat_session_create(user=analyst)
    answer = chat_answer(user=analyst, session_id=session.id, message="predict revenue for Night Watch")
    assert (
        "- revenue: not available (The revenue model is unavailable: its artifact failed its check.)" in answer.response
    )


def test_a_follow_up_shows_what_it_kept_and_a_new_question_starts_fresh(
    world: Any, analyst: Any, fake_predict: Any
) -> None:
    session = chat_session_create(user=analyst)
    chat_answer(user=analyst, session_id=session.id, message="predict rating for Night Watch on 2025-03-14 at 9pm")
    follow = chat_answer(user=analyst, session_id=session.id, message="and for revenue?")
    assert follow.metadata["tool_calls"][0]["arguments"] == {
        "program": "NWT001",
        "target": "revenue",
        "start": "2025-03-14T21:00:00-04:00",
    }
    assert "(Following on from your last question, I kept its program, day, time.)" in follow.response
    fresh = chat_answer(user=analyst, session_id=session.id, message="top 3 comedies by revenue")
    assert fresh.metadata["tool_calls"][0]["arguments"] == {"target": "revenue", "n": 3, "genre": "comedy"}
    assert "Following on" not in fresh.response


def test_after_a_clarification_nothing_is_inherited_silently(world: Any, analyst: Any) -> None:
    session = chat_session_create(user=analyst)
    chat_answer(user=analyst, session_id=session.id, message="top 3 dramas on kbs by revenue")
    asked = chat_answer(user=analyst, session_id=session.id, message="which model is best?")
    assert asked.metadata["clarification"] is True
    chat_answer(user=analyst, session_id=session.id, message="rating")
    listing = chat_answer(user=analyst, session_id=session.id, message="list programs")
    assert listing.metadata["tool_calls"][0]["arguments"] == {"n": 10}


def test_a_slot_is_read_and_stated_in_the_channels_time_zone(world: Any, analyst: Any, fake_predict: Any) -> None:

    Channel.objects.filter(code="kbs").update(time_zone="America/Los_Angeles")
    with time_machine.travel(datetime(2025, 3, 12, 10, 0, tzinfo=ZoneInfo("America/New_York")), tick=False):
        session = chat_session_create(user=analyst)
        answer = chat_answer(user=analyst, session_id=session.id, message="predict revenue for Night Watch friday 9pm")
    assert json_object(answer.metadata["tool_calls"][0]["arguments"])["start"] == "2025-03-14T21:00:00-07:00"
    assert answer.response.startswith("Scope: program Night Watch (NWT001, id ")
    assert "slot Fri 2025-03-14 21:00 PDT, America/Los_Angeles." in answer.response
