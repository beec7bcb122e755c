from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from predictions import lookups
from predictions.logbuffer import get_buffer
from predictions.lookups import reset_lookups
from predictions.predictor import reset_predictor
from registry.features import HistoryState
from tests.predictions.factories import World, build_world, clear_world


@pytest.fixture(scope="module")
def world(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any) -> Iterator[World]:
    """Generated data and tiny trained models, committed once per module and deleted afterwards.

    Artifacts go to a directory of this run: concurrent test runs must not overwrite each other's
    ``<target>/<algorithm>/v1`` files (the sha256 check would refuse them).
    """
    with override_settings(ARTIFACT_ROOT=tmp_path_factory.mktemp("artifacts")):
        with django_db_blocker.unblock():
            built = build_world()
        yield built
        with django_db_blocker.unblock():
            clear_world()


@pytest.fixture(autouse=True)
def _fresh_predictor() -> Iterator[None]:
    reset_predictor()
    reset_lookups()
    get_buffer()._take()  # drop rows another test left unflushed
    yield
    get_buffer()._take()
    reset_predictor()
    reset_lookups()


@pytest.fixture
def history_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the full builds of the history states from the airings (``lookups._history_states_each``) from here on."""
    calls: list[int] = []
    original = lookups._history_states_each

    def counted() -> Iterator[tuple[str, HistoryState]]:
        calls.append(1)
        return original()

    monkeypatch.setattr(lookups, "_history_states_each", counted)
    return calls


@pytest.fixture
def store(settings: Any, tmp_path: Path) -> Path:
    """A history-state store of this test's own (``HISTORY_STATE_ROOT``)."""
    root = tmp_path / "history-states"
    settings.HISTORY_STATE_ROOT = str(root)
    return root


@pytest.fixture
def prebuild(settings: Any, eager_tasks: None) -> None:
    """The job that builds a new data version's history states after its commit runs (inline: eager)."""
    settings.HISTORY_PREBUILD = True
