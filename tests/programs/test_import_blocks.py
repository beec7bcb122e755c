"""Importer at scale: the block reader (pandas on quote-free UTF-8 blocks) reads what the row reader
reads, and on PostgreSQL an import into an empty airings table (COPY straight into the table, the
summaries computed at the end, a large file loaded without the table's secondary indexes and foreign
keys) leaves what the upsert writer leaves."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from programs import importer
from programs.generator import generate
from programs.importer import CANONICAL_COLUMNS, ColumnMapping, ImportValidationError, _read_chunks, airings_import
from programs.models import (
    Airing,
    ChannelPeriodStats,
    DataVersion,
    GenrePeriodStats,
    ProgramPeriodStats,
    ProgramStats,
    SegmentPeriodStats,
)
from tests.programs.factories import SMALL_CONFIG, canonical_row, write_csv
from tests.programs.test_aggregates import assert_summaries_exact
from tests.programs.test_import_columns import ROWS, _state

pytestmark = pytest.mark.django_db

HEADER = CANONICAL_COLUMNS
_CLEAN = [r for r in ROWS if "\x00" not in r.get("description", "")]  # the NUL row sends its block to the row reader


def _lines(rows: list[dict[str, Any]]) -> list[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([row.get(c, "") for c in HEADER])
    return buffer.getvalue().splitlines(keepends=True)


def _write(path: Path, body: list[str], *, newline: str = "\n", bom: bool = False) -> Path:
    text = ",".join(HEADER) + "\n" + "".join(body)
    data = text.replace("\n", newline).encode("utf-8")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def _rows_only_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("programs.importer._fast_chunks", lambda path, mapping: None)


def _blocks(path: Path) -> list[bool]:
    """For each chunk of the file: read by the block reader?"""
    return [chunk.src is not None for chunk in _read_chunks(path, ColumnMapping())[1]]


# Files the block reader must read as csv.reader does: quote-free ones it takes whole, and ones where
# a block (a quoted field, a bad byte, a short row, a lone carriage return) hands over to the row reader.
FILES: dict[str, tuple[list[str], dict[str, Any]]] = {
    "plain": (_lines(_CLEAN), {}),
    "crlf and a BOM": (_lines(_CLEAN), {"newline": "\r\n", "bom": True}),
    "blank lines": (["\n", *_lines(_CLEAN[:9]), "\n", "\n", *_lines(_CLEAN[9:]), "\n"], {}),
    "missing values spelled with spaces and Unicode edges": (
        _lines(
            [
                canonical_row(rating=" NA ", start="2025-04-01T20:00:00-05:00"),
                canonical_row(title="\u00a0Harbor Lights\u2003", start="2025-04-02T20:00:00-05:00"),
                canonical_row(title="Étoile", genre="\tnews", start="2025-04-03T20:00:00-05:00"),
                canonical_row(revenue="null", audience="None", start="2025-04-04T20:00:00-05:00"),
                *_CLEAN,
            ]
        ),
        {},
    ),
    "a quoted field in the middle": (
        [
            *_lines(_CLEAN[:20]),
            *_lines([canonical_row(title="Lights, Camera", start="2025-05-01T20:00:00Z")]),
            *_lines(_CLEAN[20:]),
        ],
        {},
    ),
    "a quoted newline late": (
        [*_lines(_CLEAN), *_lines([canonical_row(description="two\nlines", start="2025-05-02T20:00:00Z")])],
        {},
    ),
    "short and long rows": (
        [*_lines(_CLEAN[:12]), "ABC123,Harbor Lights,Northstar One\n", *_lines(_CLEAN[12:]), "x," * 25 + "x\n"],
        {},
    ),
    "a lone carriage return": ([*_lines(_CLEAN[:5]), "ABC123,Harbor\rLights\n", *_lines(_CLEAN[5:])], {}),
}


HANDOVER = {"a quoted field in the middle", "a quoted newline late", "short and long rows", "a lone carriage return"}


@pytest.mark.parametrize("chunk_rows", [20_000, 4])
@pytest.mark.parametrize("name", list(FILES))
def test_the_block_reader_gives_what_the_row_reader_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int, name: str
) -> None:
    monkeypatch.setattr("programs.importer.CHUNK_ROWS", chunk_rows)
    body, options = FILES[name]
    path = _write(tmp_path / "file.csv", body, **options)
    # The first chunk at least is read in blocks (in one chunk, a file that hands over is read row by row)...
    assert _blocks(path)[0] == (chunk_rows < 20_000 or name not in HANDOVER)
    by_blocks = _state(path)
    _rows_only_reader(monkeypatch)
    assert not any(_blocks(path))
    assert by_blocks == _state(path)  # ...and the import is the same line for line
    counts, _, airings, _, _ = by_blocks
    assert counts[1] == len(airings) > 10


def test_bad_bytes_late_in_a_file_are_reported_on_their_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("programs.importer.CHUNK_ROWS", 4)
    path = tmp_path / "bytes.csv"
    path.write_bytes(
        "".join([",".join(HEADER) + "\n", *_lines(_CLEAN[:10])]).encode()
        + b"ABC123,Harbor \xff Lights"
        + b"," * (len(HEADER) - 2)
        + b"\n"
        + "".join(_lines(_CLEAN[10:])).encode()
    )
    assert _blocks(path)[:2] == [True, True]
    assert not _blocks(path)[-1]
    result = airings_import(path=path, skip_invalid=True)
    assert (12, "not valid utf-8-sig text (byte 0xff)") in [(r.line, r.reason) for r in result.rejects]


def test_a_file_with_a_quoted_header_or_another_encoding_is_read_row_by_row(tmp_path: Path) -> None:
    quoted = write_csv(tmp_path / "quoted.csv", [canonical_row()], header=['"external_id"', *HEADER[1:]])
    assert _blocks(quoted) == [False]
    latin = tmp_path / "latin.csv"
    latin.write_bytes(",".join(HEADER).encode() + b"\n" + "".join(_lines([canonical_row()])).encode("latin-1"))
    assert _read_chunks(latin, ColumnMapping(encoding="latin-1"))[1].__next__().src is None


# --- PostgreSQL: the bulk writer --------------------------------------------------------------------
def _schema() -> tuple[list[str], list[tuple[str, str]]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'programs_airing' ORDER BY indexname")
        indexes = [r[0] for r in cursor.fetchall()]
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'programs_airing'::regclass ORDER BY conname"
        )
        return indexes, [(str(n), str(d)) for n, d in cursor.fetchall()]


def _sort_memory() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('work_mem'), current_setting('maintenance_work_mem')")
        work, maintenance = cursor.fetchone()
    return str(work), str(maintenance)


def _bulk_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("programs.importer._BulkWriter.open", classmethod(lambda cls, job: None))


@pytest.mark.postgres
@pytest.mark.parametrize("chunk_rows", [20_000, 3])
def test_an_import_into_an_empty_table_leaves_what_the_upsert_writer_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int
) -> None:
    monkeypatch.setattr("programs.importer.CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr("programs.importer.BULK_REBUILD_BYTES", 0)  # the load without indexes too
    path = write_csv(tmp_path / "mixed.csv", ROWS, header=HEADER)
    written: list[int] = []
    real_copy = importer._BulkWriter._copy

    def copy(self: importer._BulkWriter, frame: Any, version: int) -> None:
        real_copy(self, frame, version)
        written.append(len(frame))  # a COPY that met a key an earlier chunk wrote raised instead

    monkeypatch.setattr("programs.importer._BulkWriter._copy", copy)
    bulk = _state(path)
    assert sum(written) == 16  # the bulk writer wrote them
    _bulk_off(monkeypatch)
    assert bulk == _state(path)
    _, rejects, airings, _, _ = bulk
    assert len(airings) == 16
    assert (35, "duplicate: same program, channel and start as line 2") in [r[:2] for r in rejects]


@pytest.mark.postgres
@pytest.mark.parametrize("pending", [False, True])
def test_a_large_import_into_an_empty_table_puts_indexes_keys_and_summaries_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pending: bool
) -> None:
    monkeypatch.setattr("programs.importer.CHUNK_ROWS", 500)
    monkeypatch.setattr("programs.importer.BULK_REBUILD_BYTES", 0)
    generate(SMALL_CONFIG)
    stored = list(Airing.objects.select_related("program", "channel").order_by("pk"))
    rows = [
        canonical_row(
            external_id=a.program.external_id,
            title=a.program.title,
            channel=a.channel.name,
            genre=a.program.genre,
            start=a.start.isoformat(),
            duration_minutes=str(a.duration_minutes),
            rating="" if a.rating is None else repr(a.rating),
            revenue="" if a.revenue is None else repr(a.revenue),
            audience="" if a.audience is None else repr(a.audience),
            engagement="" if a.engagement is None else repr(a.engagement),
        )
        for a in stored
    ]
    path = write_csv(tmp_path / "all.csv", rows)
    Airing.objects.all().delete()
    for summary in (ProgramStats, ProgramPeriodStats, SegmentPeriodStats, ChannelPeriodStats, GenrePeriodStats):
        summary.objects.all().delete()  # what an empty airings table has
    schema = _schema()
    if not pending:
        with connection.cursor() as cursor:  # the deletes' deferred key checks, done (as a commit would)
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    rebuilt: list[int] = []
    real_finish = importer._BulkWriter.finish

    def finish(self: importer._BulkWriter, *, doomed: bool) -> None:
        rebuilt.append(len(self.indexes) + len(self.foreign_keys))
        real_finish(self, doomed=doomed)

    monkeypatch.setattr("programs.importer._BulkWriter.finish", finish)
    memory = _sort_memory()
    result = airings_import(path=path)
    assert _sort_memory() == memory  # raised for the indexes and summaries only
    # With the deletes' checks pending in the caller's transaction the table cannot be altered: it is loaded as it is.
    secondary = [i for i in schema[0] if " UNIQUE " not in i] + [c for c in schema[1] if "FOREIGN KEY" in c[1]]
    assert len(secondary) >= 5  # the model's indexes and foreign keys
    assert rebuilt == [0 if pending else len(secondary)]
    assert (result.created, result.updated, result.unchanged) == (len(stored), 0, 0)
    assert Airing.objects.count() == len(stored)
    assert _schema() == schema
    assert_summaries_exact()
    assert set(result.program_ids) == {a.program_id for a in stored}


@pytest.mark.postgres
def test_a_refused_bulk_import_leaves_the_table_its_indexes_and_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("programs.importer.CHUNK_ROWS", 2)
    monkeypatch.setattr("programs.importer.BULK_REBUILD_BYTES", 0)
    schema, versions = _schema(), DataVersion.objects.count()
    rows = [canonical_row(start=f"2025-03-{d:02d}T20:00:00-05:00") for d in range(1, 8)]
    rows.append(canonical_row(start="2025-03-02T20:00:00-05:00"))  # a duplicate four chunks later
    with pytest.raises(ImportValidationError) as info:
        airings_import(path=write_csv(tmp_path / "dup.csv", rows))
    assert info.value.details["errors"] == [
        {"line": 9, "reason": "duplicate: same program, channel and start as line 3"}
    ]
    assert (Airing.objects.count(), DataVersion.objects.count()) == (0, versions)
    assert _schema() == schema
