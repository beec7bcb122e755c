"""A web process's start: views imported, production models loaded, heap frozen; a reload re-freezes."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from bms.startup import serving_process_ready
from predictions.predictor import Predictor, get_predictor
from programs.models import TARGETS
from registry.models import ModelVersion
from registry.services import model_version_promote

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_serving_process_loads_the_models_before_its_first_request(world, settings):
    settings.SERVER_WARM_UP = True
    with ThreadPoolExecutor(1) as pool:  # as bms.asgi does: the event loop may not touch the database
        serving_process_ready(pool)
    predictor = get_predictor()
    assert sorted(predictor._models) == sorted(TARGETS)
    assert {t: m.version_id for t, m in predictor._models.items()} == {t: v.pk for t, v in world.production.items()}
    assert gc.get_freeze_count() > 0


def test_a_promotion_loaded_later_is_frozen_too(world, settings):
    settings.SERVER_WARM_UP = True
    settings.PREDICTOR_GENERATION_CHECK_MS = 0
    with ThreadPoolExecutor(1) as pool:  # its own connection: the warm-up closes the connections it used
        serving_process_ready(pool)
    frozen = gc.get_freeze_count()
    other = ModelVersion.objects.filter(target="rating").exclude(pk=world.production["rating"].pk).first()
    assert other is not None
    model_version_promote(version=other, actor=None, reason="test", force=True)
    try:
        served = get_predictor().model_for("rating")
        assert served is not None
        assert served.version_id == other.pk
        assert gc.get_freeze_count() > frozen
    finally:
        model_version_promote(version=world.production["rating"], actor=None, reason="test: back", force=True)


def test_without_warm_up_nothing_is_loaded_or_frozen(world, settings):
    settings.SERVER_WARM_UP = False
    serving_process_ready()
    assert get_predictor()._generation is None
    assert gc.get_freeze_count() == 0


def test_a_failed_warm_up_is_logged_and_the_process_still_starts(world, settings, monkeypatch, caplog):
    settings.SERVER_WARM_UP = True

    def broken(self: Predictor, *, force: bool = False) -> None:
        raise RuntimeError("artifact unreadable")

    monkeypatch.setattr(Predictor, "refresh", broken)
    with caplog.at_level(logging.WARNING, logger="bms.startup"), ThreadPoolExecutor(1) as pool:
        serving_process_ready(pool)
    assert "could not load the production models at start" in caplog.text
    assert gc.get_freeze_count() > 0
