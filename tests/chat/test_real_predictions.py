"""End to end with the real prediction service: a tiny trained model, the offline agent, the API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chat import offline
from chat.offline import fmt_value
from predictions.logbuffer import get_buffer
from predictions.lookups import reset_lookups
from predictions.predictor import reset_predictor
from programs.generator import generate
from programs.models import Program
from registry.models import ModelVersion
from registry.services import model_version_promote
from tests.chat.fakes import result_of
from tests.predictions.factories import train


@pytest.fixture
def trained(db: Any) -> Iterator[Program]:
    reset_predictor()
    reset_lookups()
    generate(seed=3, channels=1, programs=24, days=20)
    run = train(targets=("revenue",), algorithms=("random_forest",))
    model_version_promote(
        version=ModelVersion.objects.get(run=run), actor=None, reason="chat tests: tiny model", force=True
    )
    yield Program.objects.order_by("id").first()  # type: ignore[misc]
    get_buffer()._take()
    reset_predictor()
    reset_lookups()


@pytest.mark.slow
def test_predicted_revenue_equals_the_predict_api(trained: Program, analyst: Any, analyst_client: Any) -> None:
    question = f"What's the predicted revenue for program {trained.external_id}?"
    answer = offline.answer(user=analyst, question=question)
    call = answer.tool_calls[0]
    assert (call.name, call.arguments) == ("predict_values", {"program": trained.external_id, "target": "revenue"})
    api = analyst_client.post(
        "/api/v1/predict", {"program_id": trained.external_id, "target": "revenue"}, format="json"
    ).json()
    assert call.result is not None
    assert result_of(call)["predictions"][0]["prediction"] == pytest.approx(api["prediction"])
    assert fmt_value("revenue", api["prediction"]) in answer.text
    assert "random_forest" in answer.text
