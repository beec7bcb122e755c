"""Exports of airings and programs as JSON, CSV or Excel, streamed so memory stays flat.

Rows come from ``queryset.iterator(chunk_size=...)`` and are encoded a chunk at a time; nothing holds
the whole table. Excel needs a finished zip, so the workbook is written (openpyxl write-only mode) to
a temporary file that is then streamed and deleted.

Spreadsheet formula injection: a text cell starting with ``= + - @`` tab or CR would be run as a
formula by Excel/LibreOffice, so such cells get a leading ``'`` in CSV and XLSX. JSON is data, not a
spreadsheet, and is left exact.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeAlias

from django.conf import settings
from django.db.models import Avg, Count, F, Max, Min, Q, QuerySet
from django.db.models.functions import Coalesce, NullIf
from django.http import HttpRequest
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from bms.errors import ApplicationError, NotFoundError
from bms.jsontypes import JSONObject
from bms.models import AuditEvent
from bms.services import audit_event_record
from bms.users import User
from programs.models import TARGETS, Airing, Channel, Genre, Program
from programs.selectors import program_get

FORMATS = ("json", "csv", "xlsx")
DATASETS = ("airings", "programs")
FILTER_KEYS = ("channel", "genre", "program", "start", "end", "targets")
CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CHUNK_ROWS = 2000  # rows per database fetch and per encoded chunk
FILE_CHUNK_BYTES = 256 * 1024
XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit minus the header row
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Free text that may come from imported files (escaped), and aware datetimes (localised).
TEXT_COLUMNS = frozenset({"program_id", "program_title", "title", "channel", "genre", "content_rating"})
TIME_COLUMNS = frozenset({"start", "first_airing", "last_airing"})


@dataclass(frozen=True)
class ExportFilters:
    channel: str | None = None
    genre: str | None = None
    program: Program | None = None
    start: date | None = None
    end: date | None = None
    targets: tuple[str, ...] = TARGETS

    def as_dict(self) -> JSONObject:
        return {
            "channel": self.channel,
            "genre": self.genre,
            "program": self.program.external_id if self.program else None,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "targets": list(self.targets),
        }


Row: TypeAlias = tuple[object, ...]
"""One exported row: python values from the database (aware datetimes), in the columns' order."""


@dataclass
class ExportRows:
    """Column names and a lazy iterator of row tuples (python values, aware datetimes)."""

    dataset: str
    columns: list[str]
    rows: Iterator[Row]
    queryset: QuerySet[Any] = field(repr=False)

    @property
    def text_columns(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.columns) if c in TEXT_COLUMNS)

    @property
    def time_columns(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.columns) if c in TIME_COLUMNS)


def _date(name: str, value: object, errors: dict[str, str]) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        errors[name] = "Use an ISO date (YYYY-MM-DD)."
        return None


def export_filters_parse(raw: Mapping[str, object] | None) -> ExportFilters:
    """Validate the ``filters`` object of an export; every problem is reported at once (400)."""
    if raw is None:
        return ExportFilters()
    if not isinstance(raw, Mapping):
        raise ApplicationError("filters must be an object.", details={"filters": "Expected an object."})
    errors: dict[str, str] = {}
    unknown = sorted(set(raw) - set(FILTER_KEYS))
    for key in unknown:
        errors[key] = f"Unknown filter; use {', '.join(FILTER_KEYS)}."
    channel = raw.get("channel") or None
    if channel is not None and (not isinstance(channel, str) or not Channel.objects.filter(code=channel).exists()):
        errors["channel"] = "Unknown channel code."
        channel = None
    genre = raw.get("genre") or None
    if genre is not None and (not isinstance(genre, str) or genre not in Genre.values):
        errors["genre"] = f"Unknown genre; use one of {', '.join(Genre.values)}."
        genre = None
    program = None
    program_key = raw.get("program")
    if program_key not in (None, ""):
        if not isinstance(program_key, (str, int)) or isinstance(program_key, bool):
            errors["program"] = "Give a program id or external id."
        else:
            try:
                program = program_get(key=program_key)
            except NotFoundError:
                errors["program"] = "Unknown program."
    start = _date("start", raw.get("start"), errors)
    end = _date("end", raw.get("end"), errors)
    if start and end and start > end:
        errors["end"] = "end is before start."
    targets: tuple[str, ...] = TARGETS
    raw_targets = raw.get("targets")
    if raw_targets is not None:
        if not isinstance(raw_targets, list) or not all(isinstance(t, str) for t in raw_targets):
            errors["targets"] = "Give a list of target names."
        elif bad := [t for t in raw_targets if t not in TARGETS]:
            errors["targets"] = f"Unknown targets {bad}; use {', '.join(TARGETS)}."
        else:
            # Keep the canonical column order whatever order the caller used.
            targets = tuple(t for t in TARGETS if t in raw_targets)
    if errors:
        first = next(iter(errors))
        raise ApplicationError(f"filters.{first}: {errors[first]}", details={"filters": errors}, code="invalid_filter")
    return ExportFilters(channel=channel, genre=genre, program=program, start=start, end=end, targets=targets)


def _bounds(filters: ExportFilters) -> tuple[datetime | None, datetime | None]:
    start = timezone.make_aware(datetime.combine(filters.start, time.min)) if filters.start else None
    end = timezone.make_aware(datetime.combine(filters.end + timedelta(days=1), time.min)) if filters.end else None
    return start, end


def _airing_queryset(filters: ExportFilters) -> QuerySet[Airing]:
    qs = Airing.objects.all()
    if filters.channel:
        qs = qs.filter(channel__code=filters.channel)
    if filters.genre:
        qs = qs.filter(program__genre=filters.genre)
    if filters.program is not None:
        qs = qs.filter(program=filters.program)
    start, end = _bounds(filters)
    if start:
        qs = qs.filter(start__gte=start)
    if end:
        qs = qs.filter(start__lt=end)
    return qs.order_by("start", "pk")


def export_rows(*, dataset: str, filters: ExportFilters | Mapping[str, object] | None) -> ExportRows:
    """The rows of an export, lazily. ``filters`` may be raw (validated here) or already parsed."""
    if dataset not in DATASETS:
        raise ApplicationError(
            f"Unknown dataset {dataset!r}; use {', '.join(DATASETS)}.",
            details={"dataset": list(DATASETS)},
            code="invalid_dataset",
        )
    parsed = filters if isinstance(filters, ExportFilters) else export_filters_parse(filters)
    if dataset == "airings":
        columns = [
            "airing_id",
            "program_id",
            "program_title",
            "channel",
            "genre",
            "start",
            "duration_minutes",
            "is_premiere",
            "is_finale",
            *parsed.targets,
        ]
        fields = [
            "pk",
            "program__external_id",
            "program__title",
            "channel__code",
            "program__genre",
            "start",
            "duration_minutes",
            "is_premiere",
            "is_finale",
            *parsed.targets,
        ]
        qs: QuerySet[Any] = _airing_queryset(parsed).values_list(*fields)
    else:
        columns = [
            "program_id",
            "title",
            "channel",
            "genre",
            "content_rating",
            "duration_minutes",
            "is_live",
            "airings",
            "first_airing",
            "last_airing",
            *(f"avg_{t}" for t in parsed.targets),
        ]
        # Aggregates cover only the airings inside the filters (dates, channel).
        start, end = _bounds(parsed)
        airing_q = Q()
        if start:
            airing_q &= Q(airings__start__gte=start)
        if end:
            airing_q &= Q(airings__start__lt=end)
        if parsed.channel:
            airing_q &= Q(airings__channel__code=parsed.channel)
        programs = Program.objects.all()
        if parsed.channel:
            programs = programs.filter(channel__code=parsed.channel)
        if parsed.genre:
            programs = programs.filter(genre=parsed.genre)
        if parsed.program is not None:
            programs = programs.filter(pk=parsed.program.pk)
        if airing_q:
            annotated = programs.annotate(
                n_airings=Count("airings", filter=airing_q, distinct=True),
                first=Min("airings__start", filter=airing_q),
                last=Max("airings__start", filter=airing_q),
                **{f"avg_{t}": Avg(f"airings__{t}", filter=airing_q) for t in parsed.targets},
            )
        else:  # every airing counts: the maintained per-program summary, no airing read
            annotated = programs.annotate(
                n_airings=Coalesce(F("stats__airing_count"), 0),
                first=F("stats__first_airing"),
                last=F("stats__last_airing"),
                **{f"avg_{t}": F(f"stats__{t}_sum") / NullIf(F(f"stats__{t}_count"), 0) for t in parsed.targets},
            )
        qs = annotated.order_by("external_id").values_list(
            "external_id",
            "title",
            "channel__code",
            "genre",
            "content_rating",
            "duration_minutes",
            "is_live",
            "n_airings",
            "first",
            "last",
            *(f"avg_{t}" for t in parsed.targets),
        )
    return ExportRows(dataset=dataset, columns=columns, rows=qs.iterator(chunk_size=CHUNK_ROWS), queryset=qs)


# --- encoders --------------------------------------------------------------------------------


def escape_formula(value: str) -> str:
    """Make a text cell inert in spreadsheets (OWASP CSV injection advice: prefix a quote)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _prepare(table: ExportRows, *, escape: bool, naive: bool = False) -> Callable[[Row], list[object]]:
    """A row converter touching only the columns that need it (hot path: 100k rows x 13 cells).

    Datetimes become local ISO strings (or naive local datetimes for Excel); with ``escape`` text
    cells that look like formulas get a leading quote.
    """
    tz = timezone.get_current_timezone()  # looked up once: it costs a context-local read per call
    text_idx = table.text_columns if escape else ()
    time_idx = table.time_columns

    def convert(row: Row) -> list[object]:
        out = list(row)
        for i in text_idx:
            value = out[i]
            if isinstance(value, str) and value.startswith(_FORMULA_START):
                out[i] = "'" + value
        for i in time_idx:
            value = out[i]
            if isinstance(value, datetime):  # or None
                local = value.astimezone(tz)
                out[i] = local.replace(tzinfo=None) if naive else local.isoformat()
        return out

    return convert


def _chunked(rows: Iterator[Row]) -> Iterator[list[Row]]:
    size = CHUNK_ROWS
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _encode_csv(table: ExportRows) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(table.columns)
    convert = _prepare(table, escape=True)
    for batch in _chunked(table.rows):
        writer.writerows([convert(row) for row in batch])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def _encode_json(table: ExportRows) -> Iterator[bytes]:
    columns = table.columns
    convert = _prepare(table, escape=False)
    yield b"["
    first = True
    for batch in _chunked(table.rows):
        parts = [json.dumps(dict(zip(columns, convert(row), strict=True))) for row in batch]
        text = ",\n".join(parts)
        yield ((("\n" if first else ",\n") + text).encode())
        first = False
    yield b"\n]\n"


def _encode_xlsx(table: ExportRows) -> Iterator[bytes]:
    if table.queryset.count() > XLSX_MAX_ROWS:
        raise ApplicationError(
            f"Too many rows for one Excel sheet (max {XLSX_MAX_ROWS}); narrow the filters or use csv.",
            code="too_many_rows",
        )
    return _xlsx_bytes(table)


def _xlsx_bytes(table: ExportRows) -> Iterator[bytes]:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=table.dataset)
    sheet.append(table.columns)
    # Excel has no time zones (local wall-clock time); openpyxl refuses control characters, and a
    # string starting with "=" would be written as a formula.
    convert = _prepare(table, escape=False, naive=True)
    text_idx = table.text_columns
    for row in table.rows:
        cells = convert(row)
        for i in text_idx:
            text = cells[i]
            if isinstance(text, str):
                cells[i] = escape_formula(ILLEGAL_CHARACTERS_RE.sub("", text))
        sheet.append(cells)
    fd, name = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    try:
        workbook.save(name)
        with open(name, "rb") as handle:
            while chunk := handle.read(FILE_CHUNK_BYTES):
                yield chunk
    finally:
        os.unlink(name)


_ENCODERS = {"csv": _encode_csv, "json": _encode_json, "xlsx": _encode_xlsx}


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ApplicationError(
            f"Unknown format {fmt!r}; use {', '.join(FORMATS)}.",
            details={"format": list(FORMATS)},
            code="invalid_format",
        )


def export_stream(
    *,
    dataset: str,
    fmt: str,
    filters: ExportFilters | Mapping[str, object] | None,
    user: User | None = None,
    request: HttpRequest | None = None,
) -> tuple[Iterator[bytes], str, str]:
    """(chunks of bytes, content type, filename). Validates everything before the first byte.

    With a ``user`` the export is recorded as an audit event (the API passes it).
    """
    _check_format(fmt)
    parsed = filters if isinstance(filters, ExportFilters) else export_filters_parse(filters)
    table = export_rows(dataset=dataset, filters=parsed)
    chunks = _ENCODERS[fmt](table)
    filename = f"bms-{dataset}-{timezone.localtime():%Y%m%d-%H%M%S}.{fmt}"
    if user is not None:
        _audit(user=user, dataset=dataset, fmt=fmt, filters=parsed, request=request, filename=filename)
    return chunks, CONTENT_TYPES[fmt], filename


def _audit(
    *, user: User, dataset: str, fmt: str, filters: ExportFilters, request: HttpRequest | None, filename: str
) -> None:
    audit_event_record(
        action=AuditEvent.Action.EXPORT,
        actor=user,
        target=filename,
        details={"dataset": dataset, "format": fmt, "filters": filters.as_dict()},
        request=request,
    )


def _write(chunks: Iterable[bytes], path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    with open(tmp, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
    tmp.replace(path)


def export_to_file(*, user: User, dataset: str, fmt: str, filters: ExportFilters | Mapping[str, object] | None) -> Path:
    """Write an export under ``settings.EXPORT_ROOT`` (a fresh, unguessable name) and return its path.

    Used by the chat tool, which hands out an expiring signed link to the file.
    """
    chunks, _, filename = export_stream(dataset=dataset, fmt=fmt, filters=filters, user=user)
    root = Path(settings.EXPORT_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{uuid.uuid4().hex}-{filename}"
    _write(chunks, path)
    return path
