"""The serving history state follows an import in the importing process: no rebuild on the next request."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from predictions import lookups, predict
from predictions.lookups import get_lookups
from programs.importer import airings_import
from programs.models import TARGETS, Airing, Program
from programs.selectors import data_version_current
from registry.features import HistoryState
from tests.predictions.factories import World
from tests.programs.factories import canonical_row, write_csv

pytestmark = pytest.mark.django_db


def _row(program: Program, start: datetime, audience: float) -> dict[str, Any]:
    return canonical_row(
        external_id=program.external_id, title=program.title, channel=program.channel.code, genre=program.genre,
        content_rating=program.content_rating, start=start.isoformat(), duration_minutes=str(program.duration_minutes),
        rating="2.5", revenue="120000", audience=f"{audience:.1f}", engagement="61",
    )  # fmt: skip


def _import(tmp_path: Path, rows: list[dict[str, Any]], capture: Any) -> None:
    with capture(execute=True):
        result = airings_import(path=write_csv(tmp_path / "import.csv", rows))
    assert result.changed == len(rows)


def _assert_equal_to_a_full_rebuild(served: dict[str, HistoryState]) -> None:
    rebuilt = lookups._history_states()
    for target in TARGETS:
        for field in fields(HistoryState):
            got, expected = getattr(served[target], field.name), getattr(rebuilt[target], field.name)
            if isinstance(expected, np.ndarray):
                np.testing.assert_array_equal(got, expected, err_msg=f"{target} {field.name}")
            else:
                assert got == expected, f"{target} {field.name}"


def _latest_start() -> datetime:
    latest = Airing.objects.order_by("-start").values_list("start", flat=True).first()
    assert latest is not None
    return latest


def test_an_import_of_later_airings_is_folded_in_and_the_next_request_builds_nothing(
    world: World, tmp_path: Path, django_capture_on_commit_callbacks: Any, history_builds: list[int]
) -> None:
    get_lookups().history_warm()
    before = dict(get_lookups()._history)
    history_builds.clear()
    programs = world.programs[:6]
    day = _latest_start().astimezone(UTC) + timedelta(days=1)
    rows = [
        _row(p, day + timedelta(days=k, hours=i), 400.0 + 10 * k + i) for i, p in enumerate(programs) for k in range(3)
    ]
    _import(tmp_path, rows, django_capture_on_commit_callbacks)
    assert history_builds == []  # folded in, not rebuilt
    served = dict(get_lookups()._history)
    assert served["audience"] is not before["audience"]
    answer = predict.predict(
        program=programs[0], target="audience", features={"start": (day + timedelta(days=9)).isoformat()}
    ).predictions[0]
    assert history_builds == []  # the first request after the import reads the state the import left
    assert answer.history_through == day + timedelta(days=2)  # the imported actuals are used
    _assert_equal_to_a_full_rebuild(served)


def test_an_import_that_edits_an_earlier_airing_rebuilds_at_once(
    world: World, tmp_path: Path, django_capture_on_commit_callbacks: Any, history_builds: list[int], prebuild: None
) -> None:
    get_lookups().history_warm()
    history_builds.clear()
    program = world.programs[0]
    earlier = Airing.objects.filter(program=program, audience__isnull=False).order_by("start").first()
    assert earlier is not None
    _import(
        tmp_path,
        [_row(program, earlier.start, float(earlier.audience or 0) + 50.0)],
        django_capture_on_commit_callbacks,
    )
    assert history_builds == [1]  # by the job right after the commit (inline here)
    predict.predict(
        program=program, target="audience", features={"start": (_latest_start() + timedelta(days=1)).isoformat()}
    )
    assert history_builds == [1]
    _assert_equal_to_a_full_rebuild(dict(get_lookups()._history))


def test_a_process_that_built_no_state_gets_the_imports_states_from_the_job(
    world: World, tmp_path: Path, django_capture_on_commit_callbacks: Any, history_builds: list[int], prebuild: None
) -> None:
    program = world.programs[1]
    _import(tmp_path, [_row(program, _latest_start() + timedelta(days=1), 300.0)], django_capture_on_commit_callbacks)
    assert history_builds == [1]  # the job after the commit (inline here: eager, no background threads)
    assert get_lookups()._token == data_version_current()
    predict.predict(
        program=program, target="audience", features={"start": (_latest_start() + timedelta(days=1)).isoformat()}
    )
    assert history_builds == [1]  # the first request found them
    _assert_equal_to_a_full_rebuild(dict(get_lookups()._history))


def test_a_failure_to_follow_the_import_drops_the_state_the_job_builds_it_and_the_import_stands(
    world: World,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
    history_builds: list[int],
    monkeypatch: pytest.MonkeyPatch,
    prebuild: None,
) -> None:
    get_lookups().history_warm()
    history_builds.clear()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(lookups, "_history_states_appended", broken)
    program = world.programs[2]
    _import(tmp_path, [_row(program, _latest_start() + timedelta(days=1), 300.0)], django_capture_on_commit_callbacks)
    assert history_builds == [1]  # dropped, then built again by the job
    predict.predict(
        program=program, target="audience", features={"start": (_latest_start() + timedelta(days=2)).isoformat()}
    )
    assert history_builds == [1]
    _assert_equal_to_a_full_rebuild(dict(get_lookups()._history))
