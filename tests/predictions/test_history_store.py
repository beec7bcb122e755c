"""The serving history states on disk: one process history_builds a data version's states, the others map them in."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from predictions import history_store, lookups, predict
from predictions.lookups import get_lookups, reset_lookups
from programs.models import TARGETS, Airing
from programs.selectors import data_version_current, data_version_stamp
from registry.features import HistoryState, airings_frame
from registry.training import history_state
from tests.predictions.factories import World
from tests.predictions.test_history_refresh import _import, _row

pytestmark = pytest.mark.django_db


def _assert_same_states(got: dict[str, HistoryState], expected: dict[str, HistoryState]) -> None:
    assert set(got) == set(expected) == set(TARGETS)
    for target in TARGETS:
        for field in fields(HistoryState):
            a, b = getattr(got[target], field.name), getattr(expected[target], field.name)
            if isinstance(b, np.ndarray):
                assert a.dtype == b.dtype, f"{target} {field.name}"
                np.testing.assert_array_equal(a, b, err_msg=f"{target} {field.name}")
            else:
                assert a == b, f"{target} {field.name}"


def _key() -> str:
    stamp = data_version_stamp(data_version_current())
    assert stamp is not None
    return history_store.states_key(stamp)


def test_states_written_and_mapped_back_equal_the_built_ones(world: World, store: Path) -> None:
    built = lookups._history_states()
    path = history_store.states_save(built, key=_key())
    assert path is not None
    assert path.parent == store
    assert not list(path.glob("*.pkl"))
    assert all(f.suffix in (".npy", ".json") for f in path.iterdir())
    loaded = history_store.states_load(key=_key())
    assert loaded is not None
    _assert_same_states(loaded, built)
    assert isinstance(loaded["audience"].values, np.memmap)  # mapped, not read into this process


def test_the_states_read_in_chunks_equal_the_ones_built_from_the_training_frame(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lookups, "ACTUALS_CHUNK", 7)  # many chunks, the last one partial
    chunked = lookups._history_states()
    frame = airings_frame()  # the training side's read of every airing
    _assert_same_states(chunked, {t: history_state(frame, t) for t in TARGETS})


def test_a_second_process_maps_the_states_the_first_wrote_and_builds_nothing(
    world: World, store: Path, history_builds: list[int]
) -> None:
    get_lookups().history_warm()
    assert history_builds == [1]
    first = dict(get_lookups()._history)
    assert (store / _key()).is_dir()
    reset_lookups()  # another process (or this one restarted)
    get_lookups().history_warm()
    assert history_builds == [1]
    second = dict(get_lookups()._history)
    assert isinstance(second["rating"].program_keys, np.memmap)
    _assert_same_states(second, first)
    _assert_same_states(second, lookups._history_states())


def test_states_of_other_target_ranges_are_not_read(
    world: World, store: Path, history_builds: list[int], settings: Any
) -> None:
    get_lookups().history_warm()
    reset_lookups()
    low, high = settings.TARGET_RANGES["audience"]
    settings.TARGET_RANGES = {**settings.TARGET_RANGES, "audience": (low, high / 2)}
    get_lookups().history_warm()
    assert history_builds == [1, 1]
    assert len([d for d in store.iterdir() if not d.name.startswith(".")]) == 2


def test_an_unreadable_directory_is_built_again(world: World, store: Path, history_builds: list[int]) -> None:
    get_lookups().history_warm()
    (store / _key() / "audience.values.npy").write_bytes(b"not an array")
    reset_lookups()
    get_lookups().history_warm()
    assert history_builds == [1, 1]
    reset_lookups()
    get_lookups().history_warm()
    assert history_builds == [1, 1]  # the damaged directory was written again: the next process maps it in
    _assert_same_states(dict(get_lookups()._history), lookups._history_states())


def test_without_a_store_every_process_keeps_its_own_states(
    world: World, settings: Any, history_builds: list[int]
) -> None:
    settings.HISTORY_STATE_ROOT = ""
    get_lookups().history_warm()
    reset_lookups()
    get_lookups().history_warm()
    assert history_builds == [1, 1]
    assert not isinstance(get_lookups()._history["audience"].values, np.memmap)


def test_an_import_folded_in_is_written_for_the_new_version(
    world: World, store: Path, history_builds: list[int], tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    get_lookups().history_warm()
    history_builds.clear()
    day = Airing.objects.order_by("-start").values_list("start", flat=True).first()
    assert day is not None
    day = day.astimezone(UTC) + timedelta(days=1)
    rows = [_row(p, day + timedelta(hours=i), 500.0 + i) for i, p in enumerate(world.programs[:4])]
    _import(tmp_path, rows, django_capture_on_commit_callbacks)
    assert history_builds == []  # folded in
    assert (store / _key()).is_dir()  # ... and written for the import's version
    reset_lookups()
    answer = predict.predict(
        program=world.programs[0], target="audience", features={"start": (day + timedelta(days=3)).isoformat()}
    ).predictions[0]
    assert history_builds == []  # the other process mapped the folded states in
    assert answer.history_through == day
    _assert_same_states(dict(get_lookups()._history), lookups._history_states())


def test_only_the_newest_directories_are_kept(world: World, store: Path) -> None:
    built = lookups._history_states()
    for i in range(history_store.KEEP + 2):
        history_store.states_save(built, key=f"v{i}-test")
    assert len([d for d in store.iterdir() if not d.name.startswith(".")]) == history_store.KEEP
    assert (store / f"v{history_store.KEEP + 1}-test").is_dir()


def test_the_empty_states_round_trip(store: Path) -> None:
    empty = pd.DataFrame({"program_id": [], "channel": [], "start": pd.to_datetime([], utc=True), "audience": []})
    built = {"audience": history_state(empty, "audience")}
    history_store.states_save(built, key="v0-empty")
    loaded = history_store.states_load(key="v0-empty")
    assert loaded is not None
    assert loaded["audience"].through is None
    assert loaded["audience"].program_index == {}
    assert len(loaded["audience"].values) == 0
