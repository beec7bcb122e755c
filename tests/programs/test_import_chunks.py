"""Importer: rows are validated and written chunk by chunk inside one transaction (flat memory), the
summaries move with every chunk, and a bad row anywhere still leaves nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from programs.generator import generate
from programs.importer import ImportResult, ImportValidationError, airings_import
from programs.models import Airing, Channel, DataVersion, Program, ProgramPeriodStats, ProgramStats, SegmentPeriodStats
from tests.programs.factories import SMALL_CONFIG, canonical_row, canonical_row_of, write_csv
from tests.programs.test_aggregates import assert_summaries_exact

pytestmark = pytest.mark.django_db
TZ = ZoneInfo(settings.TIME_ZONE)


def _counts() -> tuple[int, ...]:
    return (
        Channel.objects.count(),
        Program.objects.count(),
        Airing.objects.count(),
        DataVersion.objects.count(),
        ProgramStats.objects.count(),
        ProgramPeriodStats.objects.count(),
        SegmentPeriodStats.objects.count(),
    )


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("programs.importer.CHUNK_ROWS", 2)


def _week(n: int, **overrides: Any) -> list[dict[str, Any]]:
    return [canonical_row(start=f"2025-03-{d:02d}T20:00:00-05:00", **overrides) for d in range(1, n + 1)]


@pytest.mark.usefixtures("small_chunks")
def test_a_bad_last_line_after_chunks_were_written_leaves_nothing(tmp_path: Path) -> None:
    generate(SMALL_CONFIG.__class__(seed=3, channels=1, programs=40, days=14))
    before = _counts()
    stats_before = list(ProgramStats.objects.order_by("program_id").values_list("program_id", "airing_count"))
    rows = [*_week(6), canonical_row(start="2025-03-07T20:00:00-05:00", duration_minutes="0")]
    with pytest.raises(ImportValidationError) as info:
        airings_import(path=write_csv(tmp_path / "late-error.csv", rows))
    assert info.value.details["errors"] == [
        {"line": 8, "reason": "duration_minutes: '0' is not a whole number of minutes between 1 and 1440"}
    ]
    assert _counts() == before
    assert list(ProgramStats.objects.order_by("program_id").values_list("program_id", "airing_count")) == stats_before


@pytest.mark.usefixtures("small_chunks")
def test_a_duplicate_three_chunks_later_is_reported_and_nothing_is_written(tmp_path: Path) -> None:
    rows = [*_week(6), canonical_row(start="2025-03-02T20:00:00-05:00")]  # line 8 repeats line 3
    with pytest.raises(ImportValidationError) as info:
        airings_import(path=write_csv(tmp_path / "dup.csv", rows))
    assert info.value.details["errors"] == [
        {"line": 8, "reason": "duplicate: same program, channel and start as line 3"}
    ]
    assert _counts() == (0, 0, 0, 0, 0, 0, 0)


@pytest.mark.usefixtures("small_chunks")
def test_two_spellings_of_one_channel_are_one_natural_key(tmp_path: Path) -> None:
    rows = [canonical_row(), canonical_row(channel="northstar-one")]
    result = airings_import(path=write_csv(tmp_path / "spellings.csv", rows), skip_invalid=True)
    assert [(r.line, r.reason) for r in result.rejects] == [(3, "duplicate: same program, channel and start as line 2")]
    assert (result.created, Channel.objects.count(), Airing.objects.count()) == (1, 1, 1)


@pytest.mark.usefixtures("small_chunks")
def test_chunked_imports_that_create_update_and_leave_rows_unchanged_keep_summaries_exact(tmp_path: Path) -> None:
    generate(SMALL_CONFIG.__class__(seed=5, channels=1, programs=40, days=21))
    existing = list(Airing.objects.select_related("program", "channel").order_by("start")[:5])
    rows = [
        canonical_row(external_id="NEW001", title="New Show", channel=existing[0].channel.name, start=f"2025-07-0{d}T21:00:00-04:00")
        for d in range(1, 4)
    ]  # fmt: skip
    for i, a in enumerate(existing):
        row = canonical_row_of(a, TZ)
        if i in (1, 3):
            row["rating"] = "59.5"  # the program's maximum moves up
        if i == 4:
            row["audience"] = ""  # a value removed
        rows.append(row)
    result = airings_import(path=write_csv(tmp_path / "mixed.csv", rows))
    assert (result.rows_read, result.created, result.updated, result.unchanged) == (8, 3, 3, 2)
    assert (result.programs_created, result.channels_created) == (1, 0)
    assert result.data_version is not None
    version = DataVersion.objects.get(pk=result.data_version)
    assert (version.rows_affected, version.description) == (6, "import_airings: 3 created, 3 updated")
    assert set(Airing.objects.filter(data_version=version.pk).values_list("program__external_id", flat=True)) == {
        "NEW001",
        *(existing[i].program.external_id for i in (1, 3, 4)),
    }
    assert_summaries_exact()

    rows[4]["rating"] = "0.25"  # the maximum comes down again: read back from the airings
    again = airings_import(path=write_csv(tmp_path / "lower.csv", rows))
    assert (again.created, again.updated, again.unchanged) == (0, 1, 7)
    assert_summaries_exact()
    unchanged = airings_import(path=write_csv(tmp_path / "same.csv", rows))
    assert (unchanged.created, unchanged.updated, unchanged.unchanged, unchanged.data_version) == (0, 0, 8, None)
    assert DataVersion.objects.count() == 3  # generate + two imports that changed rows
    assert_summaries_exact()


def test_a_start_outside_the_supported_years_is_a_line_error(tmp_path: Path) -> None:
    rows = [canonical_row(), canonical_row(start="2999-01-01T20:00:00-05:00")]
    with pytest.raises(ImportValidationError) as info:
        airings_import(path=write_csv(tmp_path / "far.csv", rows))
    assert info.value.details["errors"] == [
        {"line": 3, "reason": "start: '2999-01-01T20:00:00-05:00' is not between the years 1900 and 2200"}
    ]


def test_the_post_commit_hook_runs_once_after_a_committed_change_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    calls: list[ImportResult] = []
    monkeypatch.setattr("programs.importer.airings_import_committed", lambda *, result: calls.append(result))
    path = write_csv(tmp_path / "two.csv", _week(2))
    with django_capture_on_commit_callbacks(execute=True):
        result = airings_import(path=path)
    assert calls == [result]
    assert result.data_version == DataVersion.objects.get().pk
    assert result.program_ids == [Program.objects.get(external_id="ABC123").pk]
    with django_capture_on_commit_callbacks(execute=True):
        airings_import(path=path)  # nothing changes: nothing to tell
    bad = write_csv(tmp_path / "bad.csv", [canonical_row(start="2025-04-01T20:00:00-04:00"), canonical_row(genre="x")])
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ImportValidationError):
        airings_import(path=bad)
    assert calls == [result]
