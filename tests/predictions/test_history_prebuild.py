"""The history states of a new data version are built right after its import or generation commits (a job),
never served for a version the data has moved past, and a failed build never fails the data change."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bms.metrics import HISTORY_STATE_BUILDS
from predictions import history_store, lookups, predict
from predictions.lookups import get_lookups, history_prebuild
from programs.generator import generate
from programs.models import TARGETS, Airing, DataVersion
from programs.selectors import data_version_current, data_version_stamp
from programs.services import data_version_bump
from registry.features import HistoryState
from tests.predictions.factories import World
from tests.predictions.test_history_refresh import _import, _row

pytestmark = pytest.mark.django_db


def _key(version: int) -> str:
    stamp = data_version_stamp(version)
    assert stamp is not None
    return history_store.states_key(stamp)


def _failed() -> float:
    return HISTORY_STATE_BUILDS.labels(outcome="failed")._value.get()


def test_a_generation_leaves_ready_states_for_its_version(
    store: Path, history_builds: list[int], django_capture_on_commit_callbacks: Any, prebuild: None
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        generate(seed=3, channels=2, programs=40, days=20, replace_existing=True)
    version = data_version_current()
    assert history_builds == [1]  # the job after the commit
    assert (store / _key(version)).is_dir()  # for every process
    assert get_lookups()._token == version  # and this process serves them
    assert set(get_lookups()._history) == set(TARGETS)
    lookups.reset_lookups()  # another process
    get_lookups().history("audience")
    assert history_builds == [1]  # mapped in, not built


def test_an_import_leaves_ready_states_in_the_store(
    world: World,
    store: Path,
    tmp_path: Path,
    history_builds: list[int],
    django_capture_on_commit_callbacks: Any,
    prebuild: None,
) -> None:
    latest = Airing.objects.order_by("-start").values_list("start", flat=True).first()
    assert latest is not None
    _import(tmp_path, [_row(world.programs[3], latest + timedelta(days=1), 250.0)], django_capture_on_commit_callbacks)
    assert history_builds == [1]
    assert (store / _key(data_version_current())).is_dir()
    lookups.reset_lookups()
    predict.predict(
        program=world.programs[3], target="audience", features={"start": (latest + timedelta(days=2)).isoformat()}
    )
    assert history_builds == [1]


def _overtaken_by_a_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next full build sees a data change commit while it reads the airings."""
    original = lookups._history_states_each

    def racing() -> Iterator[tuple[str, HistoryState]]:
        states = list(original())
        data_version_bump(source=DataVersion.Source.EDIT, description="an edit during the build")
        monkeypatch.setattr(lookups, "_history_states_each", original)
        yield from states

    monkeypatch.setattr(lookups, "_history_states_each", racing)


def test_a_build_the_data_changed_under_is_not_kept_for_its_version(
    world: World, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = data_version_current()
    _overtaken_by_a_change(monkeypatch)
    assert history_prebuild(version_id=version) == "stale"
    assert not (store / _key(version)).exists()  # it may hold the later change's airings
    assert get_lookups()._history == {}
    assert not store.exists() or not list(store.iterdir())  # nothing written, no partial directory left


def test_a_request_whose_build_the_data_changed_under_is_answered_but_does_not_keep_it(
    world: World, store: Path, monkeypatch: pytest.MonkeyPatch, history_builds: list[int], settings: Any
) -> None:
    settings.PREDICTOR_GENERATION_CHECK_MS = 0  # every call reads the data version
    _overtaken_by_a_change(monkeypatch)
    state = get_lookups().history("audience")  # built for the version current when it started
    assert len(state.values) > 0
    assert get_lookups()._history == {}  # not served as the (new) current version's
    get_lookups().history("audience")
    assert len(history_builds) == 2  # the next request built the current version's
    assert get_lookups()._token == data_version_current()
    assert (store / _key(data_version_current())).is_dir()


def test_a_job_for_a_version_the_data_moved_past_builds_nothing(world: World, history_builds: list[int]) -> None:
    version = data_version_current()
    data_version_bump(source=DataVersion.Source.EDIT, description="a later change")
    assert history_prebuild(version_id=version) == "stale"
    assert history_builds == []


def test_a_failing_build_does_not_fail_the_import(
    world: World,
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
    prebuild: None,
) -> None:
    def broken() -> Iterator[tuple[str, HistoryState]]:
        raise MemoryError("no room for the states")

    monkeypatch.setattr(lookups, "_history_states_each", broken)
    failed = _failed()
    latest = Airing.objects.order_by("-start").values_list("start", flat=True).first()
    assert latest is not None
    _import(tmp_path, [_row(world.programs[4], latest + timedelta(days=1), 260.0)], django_capture_on_commit_callbacks)
    assert Airing.objects.filter(program=world.programs[4], start=latest + timedelta(days=1)).exists()  # it stands
    assert _failed() == failed + 1  # logged and counted
    assert get_lookups()._history == {}
    monkeypatch.undo()
    answer = predict.predict(
        program=world.programs[4], target="audience", features={"start": (latest + timedelta(days=2)).isoformat()}
    ).predictions[0]
    assert answer.history_through == latest + timedelta(days=1)  # the first request built them
