"""Fixtures of the chat tests: the fixed world, registry rows, and fakes for the services that
need trained models or a GA run (their owners test those; chat only needs their contract)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from predictions.predict import Answer
from tests.chat.factories import World, model_version_factory, world_factory
from tests.predictions.factories import prediction_answer


@pytest.fixture(autouse=True)
def _fresh_breakers() -> Iterator[None]:
    """Circuit breakers are per process: each test starts with every provider's closed."""
    from chat.providers import breakers_reset

    breakers_reset()
    yield
    breakers_reset()


@pytest.fixture
def world(db: Any) -> World:
    return world_factory()


@pytest.fixture
def best_models(db: Any) -> dict[str, Any]:
    return {t: model_version_factory(target=t) for t in ("rating", "revenue", "audience", "engagement")}


def fake_prediction(program: Any, target: str) -> float:
    """A deterministic stand-in for a trained model: depends on the program and the target."""
    base = {"rating": 2.75, "revenue": 31250.0, "audience": 287.5, "engagement": 54.25}[target]
    return base + program.pk % 7


@pytest.fixture
def fake_predict(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def predict(*, program: Any, target: str, features: Any = None, user_key: Any = None) -> Answer:
        from programs.selectors import program_get

        prog = program if hasattr(program, "pk") else program_get(key=program)
        calls.append({"program": prog.external_id, "target": target, "features": dict(features or {})})
        if target == "all":
            answers = [predict(program=prog, target=t) for t in ("rating", "revenue", "audience", "engagement")]
            calls[-4:] = []
            return Answer(target="all", program_id=prog.pk, predictions=tuple(a.predictions[0] for a in answers))
        return prediction_answer(program_id=prog.pk, target=target, value=fake_prediction(prog, target))

    monkeypatch.setattr("predictions.predict.predict", predict)
    return calls


@pytest.fixture
def fake_optimizer(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """scheduling.services.optimization_job_create as documented, finishing at once (eager Celery)."""
    calls: list[dict[str, Any]] = []

    def optimization_job_create(*, user: Any, request: Any) -> Any:
        calls.append({"user": user.pk, "request": request})
        result = {
            "schedules": [
                {
                    "entries": [
                        {"start": f"{request.date}T20:00:00-05:00", "title": "Night Watch", "program": "NWT001"},
                        {"start": f"{request.date}T21:00:00-05:00", "title": "City Lights", "program": "CTL005"},
                    ],
                    "totals": {"revenue": 97000.0, "audience": 740.0},
                }
            ],
            "gap": 0.004,
        }
        return SimpleNamespace(pk=41, status="succeeded", result=result, refresh_from_db=lambda: None)

    import scheduling.services as services

    monkeypatch.setattr(services, "optimization_job_create", optimization_job_create)
    return calls
