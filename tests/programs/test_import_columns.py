"""Importer: the column-by-column validation takes well-formed rows and leaves every other row to the
row parser, so an import gives the same airings, programs, channels and line errors either way."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.db import transaction

from programs.import_columns import valid_by_column
from programs.importer import CANONICAL_COLUMNS, ColumnMapping, _canonical_frame, airings_import
from programs.models import TARGETS, Airing, Channel, Program
from tests.programs.factories import canonical_row, write_csv

pytestmark = pytest.mark.django_db

HEADER = CANONICAL_COLUMNS


_row = canonical_row


# Each row differs from the one before in one way: a spelling both paths accept, or a value to report.
ROWS: list[dict[str, Any]] = [
    _row(),
    _row(start="2025-03-02 20:00-05:00", genre=" Talk Show ", content_rating="tv-14", is_premiere="YES"),
    _row(start="2025-03-03T01:00:00Z", is_live="1", is_finale="t", season="3", episode=" 12 "),
    _row(start="2025-03-04T20:00:00.250000+01:00", season="3.0", episode="7", channel_universe="2500000"),
    _row(external_id="", series="Harbor Lights Saga", start="2025-03-05T20:00:00-05:00"),
    _row(external_id="", title="Night Desk", channel="Metro Seven", start="2025-03-05T21:00:00-05:00"),
    _row(external_id="", title="", series="", start="2025-03-05T22:00:00-05:00"),  # all missing
    _row(start="2025-03-06T20:00:00", time_zone="Europe/Paris"),  # naive: the row parser places it
    _row(start="2025-03-07T20:00:00-05:00", time_zone="Mars/Olympus"),  # unknown zone
    _row(start="2025-03-08T20:00:00-05:00", time_zone=" America/Chicago "),
    _row(start="2025-03-09T20:00:00-05:00", duration_minutes="0"),
    _row(start="2025-03-10T20:00:00-05:00", duration_minutes="90.0"),  # the row parser accepts it
    _row(start="2025-03-11T20:00:00-05:00", duration_minutes="1_0"),  # Python's float() reads 10
    _row(start="2025-03-12T20:00:00-05:00", duration_minutes=""),
    _row(start="2025-13-12T20:00:00-05:00"),  # no such month
    _row(start="1850-03-12T20:00:00-05:00"),
    _row(start="2025-03-14T25:00:00-05:00"),
    _row(start=""),
    _row(start="2025-03-15T20:00:00-05:00", genre="polka"),
    _row(start="2025-03-16T20:00:00-05:00", genre=""),  # other
    _row(start="2025-03-17T20:00:00-05:00", content_rating="X"),
    _row(start="2025-03-18T20:00:00-05:00", is_premiere="maybe"),
    _row(start="2025-03-19T20:00:00-05:00", rating="-1"),
    _row(start="2025-03-20T20:00:00-05:00", audience="410500"),  # out of range, another unit
    _row(start="2025-03-21T20:00:00-05:00", engagement="lots"),
    _row(start="2025-03-22T20:00:00-05:00", revenue="", rating=""),
    _row(start="2025-03-23T20:00:00-05:00", season="-1"),
    _row(start="2025-03-24T20:00:00-05:00", channel_universe="0"),
    _row(start="2025-03-25T20:00:00-05:00", channel_universe="1.5e6", channel="New Channel"),
    _row(start="2025-03-26T20:00:00-05:00", channel="!!!"),
    _row(start="2025-03-27T20:00:00-05:00", external_id="X" * 65),
    _row(start="2025-03-28T20:00:00-05:00", description="  a nul \x00 byte "),
    _row(start="2025-03-29T20:00:00-05:00", description="  spaced out  "),
    _row(),  # a duplicate of the first row
    _row(start="2025-03-01T20:00:00-05:00", external_id="abc123"),
    _row(start=" 2025-03-30T20:00:00-04:00 "),
    _row(start="2025-03-31T20:00:00.5+05:30", is_finale="No"),
]


def _state(path: Path, mapping: ColumnMapping | None = None) -> tuple[Any, ...]:
    """What an import leaves (rolled back afterwards): the counts, the line errors and every row written."""
    with transaction.atomic():
        result = airings_import(path=path, mapping=mapping, skip_invalid=True)
        state = (
            (result.rows_read, result.created, result.updated, result.unchanged, result.skipped_without_start),
            [(r.line, r.reason, r.raw) for r in result.rejects],
            sorted(
                Airing.objects.values_list(
                    "program__external_id",
                    "channel__code",
                    "start",
                    "duration_minutes",
                    "is_premiere",
                    "is_finale",
                    "season",
                    "episode",
                    *TARGETS,
                )
            ),
            sorted(
                Program.objects.values_list(
                    "external_id", "title", "channel__code", "genre", "content_rating", "is_live", "description"
                )
            ),
            sorted(Channel.objects.values_list("code", "name", "universe_households", "time_zone")),
        )
        transaction.set_rollback(True)
    return state


def _rows_only(
    frame: pd.DataFrame, lines: list[int], offset: int, *, stripped: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    empty, _ = valid_by_column(frame.iloc[:0], [], offset)
    return empty, np.ones(len(frame), bool)


@pytest.mark.parametrize("chunk_rows", [20_000, 7])
def test_the_column_checks_give_what_the_row_parser_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int
) -> None:
    monkeypatch.setattr("programs.importer.CHUNK_ROWS", chunk_rows)
    path = write_csv(tmp_path / "mixed.csv", ROWS, header=HEADER)
    by_column = _state(path)
    monkeypatch.setattr("programs.importer.valid_by_column", _rows_only)
    by_row = _state(path)
    assert by_column == by_row
    counts, rejects, airings, _, _ = by_column
    assert counts[1] == len(airings) == 16  # the comparison covers real rows...
    assert len(rejects) > 15  # ...and real line errors
    assert (35, "duplicate: same program, channel and start as line 2") in [r[:2] for r in rejects]


def test_well_formed_rows_skip_the_row_parser_and_bad_ones_do_not(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "mixed.csv", ROWS, header=HEADER)
    mapping = ColumnMapping()
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    frame = _canonical_frame(HEADER, rows, mapping)
    valid, left = valid_by_column(frame, list(range(2, len(rows) + 2)), offset=100)
    # line = position + 2 (after the header); a NUL byte (line 33) is found on the raw row, not here
    assert set(valid["line"].tolist()) == {2, 3, 4, 6, 7, 11, 21, 27, 33, 34, 35, 36, 37, 38}
    assert valid["index"].tolist() == [line - 2 + 100 for line in valid["line"].tolist()]
    assert len(valid) + int(left.sum()) == len(rows)
    first = valid.iloc[0]
    assert str(first["start"]) == "2025-03-02 01:00:00+00:00"
    assert (first["genre"], first["content_rating"], first["season"]) == ("drama", "PG-13", None)
    second = valid.iloc[1]
    assert (second["genre"], second["content_rating"], bool(second["is_premiere"])) == ("talk", "PG-13", True)


def test_a_canonical_generated_file_is_validated_by_column_alone(tmp_path: Path) -> None:
    rows = [
        _row(external_id=f"P{i % 40}", start=f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00-05:00")
        for i in range(500)
    ]
    path = write_csv(tmp_path / "canonical.csv", rows, header=HEADER)
    frame = _canonical_frame(HEADER, [[r.get(c, "") for c in HEADER] for r in rows], ColumnMapping())
    valid, left = valid_by_column(frame, list(range(2, 502)), offset=0)
    assert not left.any()
    assert len(valid) == 500
    assert airings_import(path=path).created == len({(r["external_id"], r["start"]) for r in rows})
