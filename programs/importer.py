"""CSV import of airings: canonical columns, or a JSON column mapping for foreign files.

The contract (columns, mapping language, error handling) is documented in ``docs/data.md``.
All or nothing by default: every row is validated before anything is written, every bad row is
reported with its line number, and one bad row means nothing is written. Re-importing a file adds
nothing: an airing is identified by its natural key (program, channel, start); an existing airing
is updated only when a value differs. ``DataVersion`` is bumped only when rows changed.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache, partial
from itertools import islice, repeat
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils.text import slugify
from psycopg import errors as psycopg_errors

from bms.db import rows_insert
from bms.errors import ApplicationError
from bms.events import AIRINGS_IMPORTED, AiringsImported
from programs.aggregates import aggregates_refresh_extremes, airings_aggregate, airings_aggregate_staged, frame_of
from programs.import_columns import (
    MAX_YEAR,
    MIN_YEAR,
    RATING_ALIASES,
    VALID_COLUMNS,
    derived_id,
    genre_lookup,
    parse_bool,
    valid_by_column,
)
from programs.models import TARGETS, Airing, Channel, ContentRating, DataVersion, Genre, Program
from programs.services import data_version_bump

CANONICAL_COLUMNS: tuple[str, ...] = (
    "external_id",
    "title",
    "series",
    "season",
    "episode",
    "channel",
    "genre",
    "content_rating",
    "start",
    "duration_minutes",
    "is_premiere",
    "is_finale",
    "is_live",
    *TARGETS,
    "description",
    "channel_universe",
    "time_zone",
)
# Pseudo-columns a mapping may fill instead of ``start``: joined with a space and parsed with start_format.
START_PARTS = ("start_date", "start_time")
DEFAULT_NA_VALUES = ("", "NA", "N/A", "NULL", "null", "None", "NaN", "nan")
DEFAULT_UNIVERSE = 1_000_000  # households, for channels an import creates without channel_universe
BATCH_SIZE = 5000


class ImportValidationError(ApplicationError):
    """Bad rows (or a bad file/mapping); ``details["errors"]`` lists ``{"line", "reason"}``."""

    code = "import_invalid"


@dataclass(frozen=True)
class Reject:
    line: int
    reason: str
    raw: tuple[str, ...]


@dataclass
class ImportResult:
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_without_start: int = 0
    channels_created: int = 0
    programs_created: int = 0
    data_version: int | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time (the database's own work is not in it)
    program_ids: list[int] = field(default_factory=list)  # programs whose airings were created or updated
    rejects: list[Reject] = field(default_factory=list)
    header: tuple[str, ...] = ()

    @property
    def changed(self) -> int:
        return self.created + self.updated


# --- mapping ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnMapping:
    """How to turn a foreign CSV into canonical columns (see docs/data.md, "Column mappings")."""

    header: bool = True
    names: tuple[str, ...] = ()
    delimiter: str = ","
    encoding: str = "utf-8-sig"
    na_values: tuple[str, ...] = DEFAULT_NA_VALUES
    columns: dict[str, str] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)
    transforms: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    start_format: str | None = None
    clock: dict[str, list[int]] | None = None
    skip_without_start: bool = False
    stack_same_start: bool = False

    @classmethod
    def from_dict(cls, raw: Any) -> ColumnMapping:
        if not isinstance(raw, dict):
            raise ImportValidationError("mapping: the JSON must be an object.")
        known = {
            "description",
            "csv",
            "columns",
            "constants",
            "templates",
            "transforms",
            "start_format",
            "clock",
            "skip_without_start",
            "stack_same_start",
        }
        unknown = set(raw) - known
        if unknown:
            raise ImportValidationError(f"mapping: unknown key(s) {', '.join(sorted(unknown))}.")
        csv_opts = raw.get("csv", {})
        allowed_targets = set(CANONICAL_COLUMNS) | set(START_PARTS)
        for section in ("columns", "constants", "templates", "transforms"):
            bad = set(raw.get(section, {})) - allowed_targets
            if bad:
                raise ImportValidationError(
                    f"mapping: {section} names unknown canonical column(s) {', '.join(sorted(bad))}."
                )
        for name, steps in raw.get("transforms", {}).items():
            if not isinstance(steps, list):
                raise ImportValidationError(f"mapping: transforms.{name} must be a list of steps.")
            for step in steps:
                if not isinstance(step, dict) or step.get("op") not in _OPS:
                    raise ImportValidationError(
                        f"mapping: transforms.{name}: unknown step {step!r} (ops: {', '.join(sorted(_OPS))})."
                    )
        return cls(
            header=bool(csv_opts.get("header", True)),
            names=tuple(csv_opts.get("names", ())),
            delimiter=str(csv_opts.get("delimiter", ",")),
            encoding=str(csv_opts.get("encoding", "utf-8-sig")),
            na_values=tuple(csv_opts.get("na_values", DEFAULT_NA_VALUES)),
            columns=dict(raw.get("columns", {})),
            constants=dict(raw.get("constants", {})),
            templates=dict(raw.get("templates", {})),
            transforms={k: list(v) for k, v in raw.get("transforms", {}).items()},
            start_format=raw.get("start_format"),
            clock=raw.get("clock"),
            skip_without_start=bool(raw.get("skip_without_start", False)),
            stack_same_start=bool(raw.get("stack_same_start", False)),
        )

    @classmethod
    def load(cls, path: str | Path) -> ColumnMapping:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ImportValidationError(f"mapping: cannot read {path}: {exc}") from exc
        return cls.from_dict(raw)


# Transform steps: each takes and returns a pandas Series of strings (NA = missing).
def _op_strip(s: pd.Series, step: dict[str, Any]) -> pd.Series:
    return s.str.strip()


def _op_replace(s: pd.Series, step: dict[str, Any]) -> pd.Series:
    return s.str.replace(step["pattern"], step.get("with", ""), regex=True)


def _op_extract(s: pd.Series, step: dict[str, Any]) -> pd.Series:
    return s.str.extract(step["pattern"], expand=False)


def _op_split(s: pd.Series, step: dict[str, Any]) -> pd.Series:
    return s.str.split(step.get("sep", "/"), regex=False).str[int(step.get("index", 0))].str.strip()


def _op_multiply(s: pd.Series, step: dict[str, Any]) -> pd.Series:
    num = pd.to_numeric(s, errors="coerce")
    scaled = (num * float(step["by"])).map(lambda v: repr(float(v)), na_action="ignore")
    return scaled.where(num.notna(), s)  # non-numbers stay as they are so validation reports them


def _op_map(s: pd.Series, step: dict[str, Any]) -> pd.Series:
    values = {str(k): v for k, v in step["values"].items()}
    out = s.map(lambda v: values.get(str(v), step.get("default", v)), na_action="ignore")
    return out.astype("object").where(out.notna(), None)


def _op_default(s: pd.Series, step: dict[str, Any]) -> pd.Series:
    return s.where(s.notna(), str(step["value"]))


def _op_na(s: pd.Series, step: dict[str, Any]) -> pd.Series:
    return s.where(~s.isin([str(v) for v in step["values"]]), None)


def _op_equals(s: pd.Series, step: dict[str, Any]) -> pd.Series:
    return (s.fillna("") == str(step["value"])).map({True: "true", False: "false"})


def _op_in(s: pd.Series, step: dict[str, Any]) -> pd.Series:
    return s.fillna("").isin([str(v) for v in step["values"]]).map({True: "true", False: "false"})


def _op_contains(s: pd.Series, step: dict[str, Any]) -> pd.Series:
    hit = s.fillna("").str.contains(step["pattern"], case=bool(step.get("case", False)), regex=True)
    return hit.map({True: "true", False: "false"})


def _op_lower(s: pd.Series, step: dict[str, Any]) -> pd.Series:
    return s.str.lower()


_OPS = {
    "strip": _op_strip,
    "replace": _op_replace,
    "extract": _op_extract,
    "split": _op_split,
    "multiply": _op_multiply,
    "map": _op_map,
    "default": _op_default,
    "na": _op_na,
    "equals": _op_equals,
    "in": _op_in,
    "contains": _op_contains,
    "lower": _op_lower,
}


# --- reading ------------------------------------------------------------------------------------
# Rows are read, mapped and validated CHUNK_ROWS at a time: the raw rows, the frame and its records
# exist for one chunk only, so reading and validation stay flat in memory whatever the file's length.
CHUNK_ROWS = 20_000
# Bytes that do not decode (surrogateescape turns each into one of these) and NUL, which no database
# column accepts: either one makes that line an error, not the whole file.
_UNREADABLE = re.compile("[\x00\udc80-\udcff]")


class _FrameRows:
    """The raw rows of a block read by ``_fast_block``, parsed again (as text, nothing missing) only when a
    row is looked at one by one: for a rejected row's values, which most blocks never need."""

    def __init__(self, block: bytes, width: int, delimiter: str, count: int) -> None:
        self.block, self.width, self.delimiter, self.count = block, width, delimiter, count
        self._table: pd.DataFrame | None = None

    def _parsed(self) -> pd.DataFrame:
        if self._table is None:
            self._table = _parse_block(self.block, self.width, self.delimiter, None)
        return self._table

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> list[str]:
        return [str(v) for v in self._parsed().iloc[i].tolist()]

    def __iter__(self) -> Iterator[list[str]]:
        return (list(r) for r in self._parsed().itertuples(index=False, name=None))


@dataclass
class _Chunk:
    rows: list[list[str]] | _FrameRows
    lines: list[int]  # the physical line each row starts on (quoted newlines respected)
    offset: int  # index of the chunk's first row in the file
    # A block read by ``_fast_block``: its source frame (header names, missing values None or NaN), and the
    # guarantee that every row decodes, has no NUL byte and has the header's field count.
    src: pd.DataFrame | None = None
    plain: bool = False  # no field of the block begins or ends with anything strip() removes


def _unreadable_reason(row: list[str], encoding: str) -> str | None:
    text = "".join(row)
    found = _UNREADABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL byte"
    return f"not valid {encoding} text (byte 0x{ord(found.group()) - 0xDC00:02x})"


def _csv_rows(handle: TextIO, delimiter: str, first_line: int) -> Iterator[tuple[int, list[str]]]:
    """(physical line, row) of each non-empty row, lines counted from ``first_line``."""
    reader = csv.reader(handle, delimiter=delimiter)
    next_line = first_line
    try:
        for row in reader:
            line, next_line = next_line, first_line + reader.line_num
            if row:
                yield line, row
    except (csv.Error, UnicodeDecodeError) as exc:  # a codec that cannot escape (e.g. a cut UTF-16 pair)
        raise ImportValidationError(f"line {next_line}: unreadable CSV ({exc}).") from exc


def _row_chunks(stream: Iterator[tuple[int, list[str]]], offset: int, produced: bool) -> Iterator[_Chunk]:
    while True:
        batch = list(islice(stream, CHUNK_ROWS))
        if not batch and produced:
            return
        yield _Chunk(rows=[r for _, r in batch], lines=[n for n, _ in batch], offset=offset)
        produced, offset = True, offset + len(batch)


def _read_chunks(path: Path, mapping: ColumnMapping) -> tuple[tuple[str, ...], Iterator[_Chunk]]:
    """The header and an iterator of row chunks (at least one, possibly empty)."""
    try:
        size = path.stat().st_size
        handle = path.open(newline="", encoding=mapping.encoding, errors="surrogateescape")
    except (OSError, LookupError) as exc:
        raise ImportValidationError(f"cannot open {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    if size > settings.IMPORT_MAX_BYTES:
        handle.close()
        raise ImportValidationError(
            f"{path.name} is {size:,} bytes; imports are limited to {settings.IMPORT_MAX_BYTES:,} (IMPORT_MAX_BYTES).",
            details={"bytes": size, "max_bytes": settings.IMPORT_MAX_BYTES},
        )
    fast = _fast_chunks(path, mapping)
    if fast is not None:
        handle.close()
        return fast
    stream = _csv_rows(handle, mapping.delimiter, 1)
    if mapping.header:
        first = next(stream, None)
        if first is None:
            handle.close()
            raise ImportValidationError("the file is empty (no header row).")
        reason = _unreadable_reason(first[1], mapping.encoding)
        if reason is not None:
            handle.close()
            raise ImportValidationError(f"line {first[0]}: the header row {reason}.")
        header = tuple(h.strip() for h in first[1])
    else:
        header = mapping.names
        if not header:
            handle.close()
            raise ImportValidationError("mapping: csv.names is required when csv.header is false.")

    def chunks() -> Iterator[_Chunk]:
        with handle:
            yield from _row_chunks(stream, 0, False)

    return header, chunks()


# --- reading in blocks ----------------------------------------------------------------------------
# A UTF-8 file without quotes is read CHUNK_ROWS lines at a time by pandas' C parser, with its
# physical lines, field counts and values checked on the bytes (numpy) so that a block is taken only
# where ``csv.reader`` would give the same rows: no quote character, no NUL, valid UTF-8, line ends
# "\n" or "\r\n", the header's field count on every non-empty line. The first block that is not so
# (a quoted field, a malformed row) and everything after it goes to the row reader, from that
# block's first byte: no quote was open there, since none came before.
_BLOCK_CODECS = ("utf-8", "utf-8-sig")
_BOM = b"\xef\xbb\xbf"


def _fast_chunks(path: Path, mapping: ColumnMapping) -> tuple[tuple[str, ...], Iterator[_Chunk]] | None:
    """The header and chunks read in blocks, or None when the file's header or options need the row reader."""
    codec = codecs.lookup(mapping.encoding).name
    delimiter = mapping.delimiter
    if codec not in _BLOCK_CODECS or len(delimiter) != 1 or delimiter in '"\r\n' or not delimiter.isascii():
        return None
    handle = path.open("rb")
    line = 1
    header: tuple[str, ...]
    if mapping.header:
        while True:
            raw = handle.readline()
            if line == 1 and codec == "utf-8-sig" and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            text = raw.rstrip(b"\r\n")
            line += 1
            if text or not raw:
                break
        if not text or b'"' in text or b"\x00" in text or b"\r" in text:
            handle.close()
            return None  # no header, or one the row reader reads (and reports)
        try:
            header = tuple(h.strip() for h in next(csv.reader([text.decode("utf-8")], delimiter=delimiter)))
        except UnicodeDecodeError:
            handle.close()
            return None
    else:
        header = mapping.names
        if not header:
            handle.close()
            return None
        if codec == "utf-8-sig" and handle.read(len(_BOM)) != _BOM:
            handle.seek(0)
    width = len(header)
    if width < 2:
        handle.close()
        return None

    def chunks() -> Iterator[_Chunk]:
        nonlocal line
        with handle:
            offset, produced, position = 0, False, handle.tell()
            while True:
                physical = list(islice(handle, CHUNK_ROWS))
                if not physical:
                    if not produced:
                        yield _Chunk(rows=[], lines=[], offset=offset)
                    return
                block = b"".join(physical)
                read = _fast_block(block, width, delimiter, mapping.na_values)
                if read is None:
                    handle.seek(position)
                    text = io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline="")
                    yield from _row_chunks(_csv_rows(text, delimiter, line), offset, produced)
                    return
                rows, src, positions, plain = read
                src.columns = pd.Index(list(header))
                yield _Chunk(rows=rows, lines=(positions + line).tolist(), offset=offset, src=src, plain=plain)
                produced, offset, line, position = True, offset + len(rows), line + len(physical), handle.tell()

    return header, chunks()


def _parse_block(block: bytes, width: int, delimiter: str, na_values: list[str] | None) -> pd.DataFrame:
    """pandas' C parser on a block ``_fast_block`` checked: text fields, the ``na_values`` spellings as NaN."""
    return pd.read_csv(
        io.BytesIO(block),
        header=None,
        names=list(range(width)),
        index_col=False,
        dtype=object,
        na_filter=na_values is not None,
        keep_default_na=False,
        na_values=na_values,
        sep=delimiter,
        quoting=csv.QUOTE_NONE,
        skip_blank_lines=True,
        encoding="utf-8",
        engine="c",
    )


def _fast_block(
    block: bytes, width: int, delimiter: str, na_values: tuple[str, ...]
) -> tuple[_FrameRows, pd.DataFrame, np.ndarray, bool] | None:
    """A block of whole lines as (raw rows, source frame, line of each row within the block, plain), or
    None when ``csv.reader`` could read it differently. Plain: nothing in it has anything to strip."""
    if b'"' in block or b"\x00" in block:
        return None
    returns = block.count(b"\r")
    if returns and returns != block.count(b"\r\n"):
        return None
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    if not block.endswith(b"\n"):
        ends = np.append(ends, len(data))
    starts = np.concatenate(([0], ends[:-1] + 1))
    stops = ends - ((ends > starts) & (data[np.maximum(ends - 1, 0)] == 13))  # "\r\n": the "\r" ends it too
    filled = stops > starts
    cuts = np.flatnonzero(data == ord(delimiter))
    per_line = np.searchsorted(cuts, stops[filled]) - np.searchsorted(cuts, starts[filled])
    if not np.all(per_line == width - 1):
        return None
    # A value is missing when its stripped text is a missing-value spelling. pandas matches the text as
    # it is, so that is the same only when no field begins or ends with anything strip() removes: check
    # the first and last byte of every field (separators and line ends there are empty fields).
    padded = np.append(data, np.uint8(10))
    last = np.concatenate((stops[filled], cuts)) - 1
    edges = np.concatenate((padded[np.concatenate((starts[filled], cuts + 1))], padded[last[last >= 0]]))
    empty = (edges == ord(delimiter)) | (edges == 10) | (edges == 13)
    plain = bool(np.all(empty | ((edges > 32) & (edges < 127))))
    if plain:
        src = _parse_block(block, width, delimiter, list(na_values))
    else:
        table = _parse_block(block, width, delimiter, None)
        src = table.mask(table.apply(lambda c: c.str.strip()).isin(list(na_values)), None)
    if len(src) != int(filled.sum()):
        return None
    return _FrameRows(block, width, delimiter, len(src)), src, np.flatnonzero(filled), plain


def _source_frame(header: tuple[str, ...], rows: Iterable[list[str]], mapping: ColumnMapping) -> pd.DataFrame:
    """Rows as a frame of the header's columns (short rows padded, long ones cut), missing values None."""
    width = len(header)
    padded = [r if len(r) == width else (r + [""] * width)[:width] for r in rows]
    na = frozenset(mapping.na_values)
    # Column by column with list comprehensions: several times faster than a per-cell DataFrame.map.
    by_column = list(zip(*padded, strict=True)) if padded else [()] * width
    src = pd.DataFrame(
        {
            i: pd.Series([None if v.strip() in na else v for v in col], dtype="object")
            for i, col in enumerate(by_column)
        },
        index=pd.RangeIndex(len(padded)),
    )
    src.columns = pd.Index(list(header))
    return src


def _canonical_frame(
    header: tuple[str, ...],
    rows: Iterable[list[str]],
    mapping: ColumnMapping,
    src: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The chunk's values under canonical column names (``src``: its source frame, when already made)."""
    src = src if src is not None else _source_frame(header, rows, mapping)

    identity = not (mapping.columns or mapping.constants or mapping.templates)
    out = pd.DataFrame(index=src.index)
    targets = (*CANONICAL_COLUMNS, *START_PARTS)
    missing_sources = sorted({c for c in mapping.columns.values() if c not in src.columns})
    if missing_sources:
        raise ImportValidationError(
            f"mapping: source column(s) {', '.join(missing_sources)} not in the file (columns: {', '.join(header)})."
        )
    for name in targets:
        if name in mapping.columns:
            out[name] = src[mapping.columns[name]]
        elif name in mapping.templates:
            template = mapping.templates[name]
            columns = [str(c) for c in src.columns]
            records = [dict(zip(columns, v, strict=True)) for v in src.fillna("").itertuples(index=False, name=None)]
            try:
                out[name] = [template.format(**rec) for rec in records]
            except (KeyError, ValueError, IndexError) as exc:
                raise ImportValidationError(f"mapping: template for {name} is invalid: {exc!r}.") from exc
        elif name in mapping.constants:
            out[name] = pd.Series([str(mapping.constants[name])] * len(src), index=src.index, dtype="object")
        elif identity and name in src.columns:
            out[name] = src[name]
        else:
            continue
        for step in mapping.transforms.get(name, []):
            out[name] = _OPS[step["op"]](out[name].astype("object"), step)
        out[name] = out[name].astype("object").where(out[name].notna(), None)
    return out


# --- validation ---------------------------------------------------------------------------------
def _apply_clock(date_text: str, time_text: str, clock: dict[str, list[int]]) -> tuple[str, int] | None:
    """12-hour clock without AM/PM: ``pm_hours`` get +12, ``next_day_hours`` are after midnight."""
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", time_text)
    if not m:
        return None
    hour, minute = int(m.group(1)), int(m.group(2))
    day_shift = 0
    if hour in clock.get("pm_hours", []):
        hour = hour % 12 + 12
    elif hour in clock.get("next_day_hours", []):
        hour, day_shift = hour % 12, 1
    return f"{date_text} {hour:02d}:{minute:02d}", day_shift


@dataclass(slots=True)  # one per valid row, kept until the write: no per-instance __dict__
class _Row:
    line: int
    index: int
    start: datetime  # UTC once _wall_clock_place ran
    naive: datetime | None  # the local wall-clock start, when the file gave no offset
    zone: ZoneInfo | None  # the zone ``naive`` is read in
    channel: str
    external_id: str
    title: str
    genre: str
    content_rating: str
    duration: int
    is_premiere: bool
    is_finale: bool
    is_live: bool
    targets: dict[str, float | None]
    description: str
    universe: int | None
    season: int | None
    episode: int | None
    time_zone: str | None  # for a channel the import creates
    moved: bool = False  # placed after the previous airing on a DST night


def _check_columns(frame: pd.DataFrame, mapping: ColumnMapping) -> None:
    """Refuse a file (or mapping) that lacks a column every row needs."""
    has_start = "start" in frame.columns
    has_parts = "start_date" in frame.columns
    required = ["channel", "duration_minutes"]
    missing = [c for c in required if c not in frame.columns]
    if not has_start and not has_parts:
        missing.insert(0, "start")
    if not {"external_id", "series", "title"} & set(frame.columns):
        missing.append("external_id, series or title")
    if missing:
        raise ImportValidationError(
            f"missing column(s): {', '.join(missing)}. Canonical columns: {', '.join(CANONICAL_COLUMNS)}."
        )
    if has_parts and not has_start and not mapping.start_format:
        raise ImportValidationError("mapping: start_format is required with start_date/start_time.")


def _validate(
    frame: pd.DataFrame, lines: list[int], mapping: ColumnMapping, channel_zones: dict[str, str]
) -> tuple[list[_Row], dict[int, str], int]:
    """Parse every row; return the good rows, {index: reason} for the bad ones, rows skipped.

    ``channel_zones``: time zone of each existing channel by code and lower-cased name."""
    _check_columns(frame, mapping)
    has_start = "start" in frame.columns
    default_tz = ZoneInfo(settings.TIME_ZONE)
    tz_cache: dict[str, ZoneInfo | None] = {}
    # A naive start is read in the row's time_zone, else its (existing) channel's, else TIME_ZONE.
    ranges: dict[str, tuple[float, float]] = settings.TARGET_RANGES
    genres = genre_lookup()
    ratings = set(ContentRating.values)
    numbers = {
        t: pd.to_numeric(frame[t], errors="coerce").to_numpy(dtype=float) if t in frame.columns else None
        for t in TARGETS
    }
    columns = [str(c) for c in frame.columns]
    records = [dict(zip(columns, v, strict=True)) for v in zip(*(frame[c].tolist() for c in columns), strict=True)]
    slug_ok: dict[str, bool] = {}
    good: list[_Row] = []
    bad: dict[int, str] = {}
    skipped = 0

    for i, rec in enumerate(records):
        reasons: list[str] = []
        # start ------------------------------------------------------------------------------------
        start: datetime | None = None
        naive: datetime | None = None
        zone: ZoneInfo | None = None
        raw_start = rec.get("start") if has_start else rec.get("start_date")
        if raw_start is None:
            if mapping.skip_without_start:
                skipped += 1
                continue
            reasons.append("start: missing")
        else:
            try:
                if has_start:
                    start = datetime.fromisoformat(str(raw_start).strip())
                else:
                    text, shift = str(raw_start).strip(), 0
                    time_part = rec.get("start_time")
                    if time_part is not None and mapping.clock:
                        clocked = _apply_clock(text, str(time_part), mapping.clock)
                        if clocked is None:
                            raise ValueError(f"time {time_part!r} is not H:MM")
                        text, shift = clocked
                    elif time_part is not None:
                        text = f"{text} {str(time_part).strip()}"
                    start = datetime.strptime(text, str(mapping.start_format)) + timedelta(days=shift)
            except ValueError:
                shown = raw_start if has_start else f"{raw_start} {rec.get('start_time') or ''}".strip()
                expected = "ISO 8601, e.g. 2024-03-01T20:00:00-05:00" if has_start else mapping.start_format
                reasons.append(f"start: cannot parse {shown!r} (expected {expected})")
            if start is not None and not MIN_YEAR <= start.year <= MAX_YEAR:
                reasons.append(f"start: {raw_start!r} is not between the years {MIN_YEAR} and {MAX_YEAR}")
                start = None
        channel = (rec.get("channel") or "").strip()
        row_zone = (rec.get("time_zone") or "").strip() or None
        if row_zone is not None or (start is not None and start.tzinfo is None):
            tz_name = row_zone or channel_zones.get(slugify(channel)[:32]) or channel_zones.get(channel.lower())
            tz: ZoneInfo | None = default_tz
            if tz_name:
                if tz_name not in tz_cache:
                    try:
                        tz_cache[tz_name] = ZoneInfo(tz_name)
                    except (ZoneInfoNotFoundError, ValueError):
                        tz_cache[tz_name] = None
                tz = tz_cache[tz_name]
            if tz is None:
                reasons.append(f"time_zone: unknown {tz_name!r} (an IANA name such as America/New_York)")
            elif start is not None and start.tzinfo is None:
                naive, zone = start, tz
        # program and channel ---------------------------------------------------------------------
        if not channel:
            reasons.append("channel: missing")
        elif not (slug_ok[channel] if channel in slug_ok else slug_ok.setdefault(channel, bool(slugify(channel)))):
            reasons.append(f"channel: cannot derive a code from {channel!r}")
        external_id = (rec.get("external_id") or "").strip()
        series_name = (rec.get("series") or "").strip()
        title = (rec.get("title") or "").strip() or series_name
        if not external_id and not title:
            reasons.append("external_id, series or title: all missing")
        if not external_id:
            # A series is one program across its seasons and channels; a title is one per channel.
            external_id = slugify(series_name)[:64] if series_name else derived_id(channel, title)
        if len(external_id) > 64:
            reasons.append("external_id: longer than 64 characters")
        raw_genre = (rec.get("genre") or "other").strip().lower()
        genre = genres.get(raw_genre)
        if genre is None:
            reasons.append(f"genre: unknown {raw_genre!r} (allowed: {', '.join(Genre.values)})")
        raw_cr = (rec.get("content_rating") or "PG").strip().upper()
        content_rating = RATING_ALIASES.get(raw_cr, raw_cr)
        if content_rating not in ratings:
            reasons.append(f"content_rating: unknown {raw_cr!r} (allowed: {', '.join(ContentRating.values)})")
        duration = 0
        raw_duration = rec.get("duration_minutes")
        try:
            value = float(str(raw_duration))
            if not value.is_integer() or not 1 <= value <= 1440:
                raise ValueError
            duration = int(value)
        except ValueError:
            reasons.append(
                "duration_minutes: missing"
                if raw_duration is None
                else f"duration_minutes: {raw_duration!r} is not a whole number of minutes between 1 and 1440"
            )
        flags: dict[str, bool] = {}
        for flag in ("is_premiere", "is_finale", "is_live"):
            parsed = parse_bool(rec.get(flag))
            if parsed is None:
                reasons.append(f"{flag}: {rec.get(flag)!r} is not a boolean (true/false/1/0/yes/no)")
            flags[flag] = bool(parsed)
        target_values: dict[str, float | None] = {}
        for target in TARGETS:
            raw = rec.get(target)
            series = numbers[target]
            if raw is None or series is None:
                target_values[target] = None
                continue
            num = float(series[i])
            if math.isnan(num) or math.isinf(num):
                reasons.append(f"{target}: {raw!r} is not a number")
            elif num < 0:
                reasons.append(f"{target}: {raw!r} is negative")
            elif not ranges[target][0] <= num <= ranges[target][1]:
                reasons.append(_out_of_range(target, raw, num, ranges[target], mapping))
            target_values[target] = num
        counts: dict[str, int | None] = {}
        for name in ("season", "episode"):
            raw_count = rec.get(name)
            counts[name] = None
            if raw_count is None:
                continue
            try:
                count = float(str(raw_count))
                if not count.is_integer() or not 0 <= count <= 32767:
                    raise ValueError
                counts[name] = int(count)
            except ValueError:
                reasons.append(f"{name}: {raw_count!r} is not a whole number between 0 and 32767")
        universe: int | None = None
        raw_universe = rec.get("channel_universe")
        if raw_universe is not None:
            try:
                universe = int(float(str(raw_universe)))
                if universe <= 0:
                    raise ValueError
            except ValueError:
                reasons.append(f"channel_universe: {raw_universe!r} is not a positive number of households")
        if reasons or start is None or genre is None:
            bad[i] = "; ".join(reasons)
            continue
        good.append(
            _Row(
                line=lines[i],
                index=i,
                start=start,
                naive=naive,
                zone=zone,
                channel=channel,
                external_id=external_id,
                title=title or external_id,
                genre=genre,
                content_rating=content_rating,
                duration=duration,
                is_premiere=flags["is_premiere"],
                is_finale=flags["is_finale"],
                is_live=flags["is_live"],
                targets=target_values,
                description=(rec.get("description") or "").strip(),
                universe=universe,
                season=counts["season"],
                episode=counts["episode"],
                time_zone=row_zone,
            )
        )
    return good, bad, skipped


_TARGET_UNITS = {
    "rating": "household rating points",
    "revenue": "USD per airing",
    "audience": "thousands of viewers",
    "engagement": "a 0-100 score",
}


def _out_of_range(target: str, raw: object, value: float, bounds: tuple[float, float], mapping: ColumnMapping) -> str:
    """The reason for a target outside TARGET_RANGES, naming the transform (or the setting) that fixes it."""
    lo, hi = bounds
    side = f"above {hi:g}" if value > hi else f"below {lo:g}"
    reason = (
        f"{target}: {raw!r} is {side}, outside TARGET_RANGES[{target!r}] = {lo:g}..{hi:g} ({_TARGET_UNITS[target]})"
    )
    if value >= 10 * hi > 0:
        # Ten times the range or more: a column in another unit (a count instead of thousands,
        # thousands instead of millions). Suggest the power of 1,000 that brings it into the range.
        factor = 1000.0 ** -math.ceil(math.log(value / hi, 1000))
        steps = [s for s in mapping.transforms.get(target, []) if s.get("op") == "multiply"]
        scaled = f" (the mapping already multiplies it by {steps[0]['by']})" if steps else ""
        reason += (
            f"; if the column is in another unit, scale it in the mapping{scaled}: "
            f'transforms.{target} [{{"op": "multiply", "by": {factor:g}}}], or widen TARGET_RANGES'
        )
    return reason


# A broadcast night runs from noon to noon local, so a DST night's airings group together.
_NIGHT_SHIFT = timedelta(hours=12)


def _is_dst_edge(naive: datetime, zone: ZoneInfo) -> bool:
    """True when ``naive`` is ambiguous (fall back) or does not exist (spring forward) in ``zone``."""
    early, late = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    return early.utcoffset() != late.utcoffset()


def _wall_clock_place(rows: list[_Row]) -> None:
    """Turn local wall-clock starts into UTC instants so that a DST night never stacks two airings.

    A wall-clock time seen again on the same channel during the fall-back hour is its second
    occurrence (the later offset); a time the spring-forward jump skipped is read with the offset
    before the jump (02:30 -> 03:30 daylight time). Then, on each channel's night with such a time,
    airings are taken in broadcast order (by instant after a fall back, by the listed wall clock
    after a spring forward) and one that would start before the previous one ends is moved to that
    end. Other nights keep their instants: an overlap no DST edge caused is the file's own.
    """
    seen: dict[tuple[str, datetime], int] = {}
    nights: dict[tuple[str, date], list[_Row]] = defaultdict(list)
    edged: dict[tuple[str, date], bool] = {}  # night -> it has a skipped (spring-forward) time
    for row in rows:
        if row.naive is None or row.zone is None:
            row.start = row.start.astimezone(UTC)
            wall = row.start.replace(tzinfo=None)
        else:
            wall = row.naive
            fold = 0
            if _is_dst_edge(row.naive, row.zone):
                row.moved = True  # marks a DST-edge row for the sweep below
                key = (row.channel.lower(), row.naive)
                fold = min(seen.get(key, 0), 1)
                seen[key] = seen.get(key, 0) + 1
            row.start = row.naive.replace(tzinfo=row.zone, fold=fold).astimezone(UTC)
            if row.moved:
                night = (row.channel.lower(), (wall - _NIGHT_SHIFT).date())
                # A skipped time does not come back from UTC as itself (02:30 -> 03:30); a repeated one does.
                skipped = row.start.astimezone(row.zone).replace(tzinfo=None) != row.naive
                edged[night] = edged.get(night, False) or skipped
        nights[(row.channel.lower(), (wall - _NIGHT_SHIFT).date())].append(row)
    for night, spring in edged.items():
        if spring:  # the listed wall clock is the broadcast order; instants tie across the jump
            ordered = sorted(nights[night], key=lambda r: (r.naive or r.start.replace(tzinfo=None), r.index))
        else:
            ordered = sorted(nights[night], key=lambda r: (r.start, r.index))
        previous: _Row | None = None
        for row in ordered:
            if previous is not None and (row.moved or previous.moved):
                end = previous.start + timedelta(minutes=previous.duration)
                if row.start < end and row.external_id != previous.external_id:
                    row.start, row.moved = end, True
            previous = row


# --- the service --------------------------------------------------------------------------------
# Validated rows travel in columnar frames of one chunk (``import_columns.VALID_COLUMNS``, made by
# ``valid_by_column`` or ``_frame_of``), plus the ids the resolution adds (``program_id``, ``channel_id``).
# What an airing row holds, in the order the writers stage it (the natural key first).
_KEY = ("program_id", "channel_id", "start")
_VALUES = ("duration_minutes", "is_premiere", "is_finale", "season", "episode", *TARGETS)
_STAGED = (*_KEY, *_VALUES)
# The delta table the PostgreSQL writer fills: +1 rows (new values), -1 rows (values replaced).
_DELTA_COLUMNS = (
    ("program_id", "integer"),
    ("channel_id", "integer"),
    ("start", "timestamptz"),
    ("sign", "integer"),
    *((t, "double precision") for t in TARGETS),
)


def _frame_of(rows: list[_Row]) -> pd.DataFrame:
    """Validated rows (starts already in UTC) as one chunk's frame."""
    frame = pd.DataFrame(
        {
            "index": [r.index for r in rows],
            "line": [r.line for r in rows],
            "external_id": [r.external_id for r in rows],
            "title": [r.title for r in rows],
            "channel": [r.channel for r in rows],
            "genre": [r.genre for r in rows],
            "content_rating": [r.content_rating for r in rows],
            "start": pd.to_datetime([r.start for r in rows], utc=True),
            "duration_minutes": pd.Series([r.duration for r in rows], dtype="int64"),
            "is_premiere": pd.Series([r.is_premiere for r in rows], dtype=bool),
            "is_finale": pd.Series([r.is_finale for r in rows], dtype=bool),
            "is_live": pd.Series([r.is_live for r in rows], dtype=bool),
            "season": pd.Series([r.season for r in rows], dtype="object"),
            "episode": pd.Series([r.episode for r in rows], dtype="object"),
            **{t: pd.Series([r.targets[t] for r in rows], dtype="float64") for t in TARGETS},
            "description": [r.description for r in rows],
            "universe": pd.Series([r.universe for r in rows], dtype="object"),
            "time_zone": pd.Series([r.time_zone for r in rows], dtype="object"),
        },
        columns=list(VALID_COLUMNS),
    )
    return frame


def _python_column(series: pd.Series) -> list[Any]:
    """A column as plain Python values (NaN/NaT -> None), the form both drivers take."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return [None if v is None else v for v in series.dt.to_pydatetime().tolist()]
    if pd.api.types.is_float_dtype(series):
        return [None if v != v else v for v in series.tolist()]
    return series.tolist()


_Checked = tuple[pd.DataFrame, pd.DataFrame, np.ndarray]  # canonical frame, rows taken, rows left


def _checked(header: tuple[str, ...], chunk: _Chunk, mapping: ColumnMapping) -> _Checked:
    """The database-free part of a chunk's validation: its canonical frame and the column checks."""
    frame = _canonical_frame(header, chunk.rows, mapping, chunk.src)
    _check_columns(frame, mapping)
    as_read = not (mapping.columns or mapping.constants or mapping.templates or mapping.transforms)
    fast, left = valid_by_column(frame, chunk.lines, chunk.offset, stripped=chunk.plain and as_read)
    return frame, fast, left


def _prefetched(
    header: tuple[str, ...], chunks: Iterator[_Chunk], mapping: ColumnMapping
) -> Iterator[tuple[_Chunk, _Checked]]:
    """The chunks with their column checks, the next chunk read and checked on a worker thread while
    the caller writes the current one (the thread never touches the database; a database wait
    releases the GIL, so reading overlaps writing). At most two chunks are in memory."""

    def read_next() -> tuple[_Chunk, _Checked] | None:
        chunk = next(chunks, None)
        return None if chunk is None else (chunk, _checked(header, chunk, mapping))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-read") as pool:
        pending = pool.submit(read_next)
        while (item := pending.result()) is not None:
            pending = pool.submit(read_next)
            yield item


def _in_file_order(*frames: pd.DataFrame) -> pd.DataFrame:
    """Validated frames of one chunk as one, in the file's row order."""
    parts = [f for f in frames if not f.empty]
    if not parts:
        return frames[0]
    if len(parts) == 1:
        return parts[0].reset_index(drop=True)
    return pd.concat(parts, ignore_index=True).sort_values("index", kind="stable").reset_index(drop=True)


def _malformed(header: tuple[str, ...], rows: Iterable[list[str]], encoding: str) -> dict[int, str]:
    """{position: reason} for rows with bytes that do not decode, a NUL byte, or the wrong field count."""
    bad: dict[int, str] = {}
    width = len(header)
    for i, raw in enumerate(rows):
        reason = _unreadable_reason(raw, encoding)
        if reason is not None:
            bad[i] = reason
        elif len(raw) != width:
            bad[i] = f"expected {width} fields, got {len(raw)}"
    return bad


def _staged_rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    return list(zip(*(_python_column(frame[c]) for c in _STAGED), strict=True))


def _micros(dt: datetime) -> int:
    return round(dt.timestamp() * 1_000_000)


@lru_cache(maxsize=65536)
def _dst_night(zone: ZoneInfo, night: date) -> bool:
    """True when ``zone`` changes its clock during the broadcast night that starts at noon of ``night``."""
    noon = datetime.combine(night, datetime.min.time()) + _NIGHT_SHIFT
    return noon.replace(tzinfo=zone).utcoffset() != (noon + timedelta(days=1)).replace(tzinfo=zone).utcoffset()


class _Seen:
    """The natural keys this import has placed so far, in a temporary table: duplicates across chunks
    are found without holding every key in memory (``line`` and ``duration`` of the first holder)."""

    def __init__(self) -> None:
        self.vendor = connection.vendor
        start = "timestamptz" if self.vendor == "postgresql" else "text"
        with connection.cursor() as cursor:
            for name in ("_import_seen", "_import_keys"):
                cursor.execute(f"DROP TABLE IF EXISTS {name}")
            columns = f"program_id integer NOT NULL, channel_id integer NOT NULL, start {start} NOT NULL, line integer, duration integer"
            cursor.execute(f"CREATE TEMP TABLE _import_seen ({columns}, PRIMARY KEY (program_id, channel_id, start))")
            cursor.execute(f"CREATE TEMP TABLE _import_keys ({columns}, idx bigint)")

    def _adapt(self, value: datetime) -> Any:
        return value if self.vendor == "postgresql" else connection.ops.adapt_datetimefield_value(value)

    def check_and_add(self, frame: pd.DataFrame) -> dict[int, int]:
        """Record the frame's keys; return {index: line of the earlier holder} for keys seen before."""
        if frame.empty:
            return {}
        starts = [self._adapt(v) for v in frame["start"].dt.to_pydatetime().tolist()]
        rows = list(
            zip(
                frame["program_id"].tolist(),
                frame["channel_id"].tolist(),
                starts,
                frame["line"].tolist(),
                frame["duration_minutes"].tolist(),
                frame["index"].tolist(),
                strict=True,
            )
        )
        names = "program_id, channel_id, start, line, duration, idx"
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM _import_keys")
            if self.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY _import_keys ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                sql = f"INSERT INTO _import_keys ({names}) VALUES (%s, %s, %s, %s, %s, %s)"  # noqa: S608  # nosec B608 - fixed names
                cursor.executemany(sql, rows)
            cursor.execute(
                "SELECT k.idx, s.line FROM _import_keys k JOIN _import_seen s"
                " ON s.program_id = k.program_id AND s.channel_id = k.channel_id AND s.start = k.start"
            )
            earlier = {int(i): int(line) for i, line in cursor.fetchall()}
            cursor.execute(
                "INSERT INTO _import_seen (program_id, channel_id, start, line, duration)"
                " SELECT program_id, channel_id, start, line, duration FROM _import_keys WHERE true ON CONFLICT DO NOTHING"
            )
        return earlier

    def holder(self, program_id: int, channel_id: int, start: datetime) -> tuple[int, int] | None:
        """(line, duration) of the row that holds this key, if any (stack_same_start, row by row)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT line, duration FROM _import_seen WHERE program_id = %s AND channel_id = %s AND start = %s",
                [program_id, channel_id, self._adapt(start)],
            )
            found = cursor.fetchone()
        return None if found is None else (int(found[0]), int(found[1]))

    def close(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS _import_seen")
            cursor.execute("DROP TABLE IF EXISTS _import_keys")


class _Import:
    """One import inside its transaction: chunks are validated, resolved, de-duplicated and written as
    they come, so what is held is one chunk plus the channel and program ids (and the few wall-clock
    rows of DST nights, placed at the end)."""

    def __init__(self, result: ImportResult, mapping: ColumnMapping, path: Path, skip_invalid: bool) -> None:
        self.result, self.mapping, self.path, self.skip_invalid = result, mapping, path, skip_invalid
        self.bad: dict[int, str] = {}
        self.bad_rows: dict[int, tuple[int, tuple[str, ...]]] = {}  # index -> (line, raw) of a rejected row
        self.held: list[_Row] = []  # wall-clock rows on a DST night: placed once the whole file is read
        self.version: int | None = None
        self.program_ids: set[int] = set()  # programs whose airings changed
        # A naive start is read in its channel's zone as it was before the import (not in a zone an
        # earlier chunk gave a channel it created): the same reading as when the file was one piece.
        self.channel_zones: dict[str, str] = {}
        self.channel_ids: dict[str, int] = {}  # code and lower-cased name -> id
        for pk, code, name, zone in Channel.objects.values_list("id", "code", "name", "time_zone"):
            self.channel_zones[code] = self.channel_zones[name.lower()] = zone
            self.channel_ids.setdefault(code, pk)
            self.channel_ids.setdefault(name.lower(), pk)
        self.channel_of: dict[str, int] = {}  # a row's channel value, lower-cased -> id
        self.program_of: dict[str, int] = {}  # external_id -> id
        self.writer: _BulkWriter | _PostgresWriter | _OrmWriter
        self.seen: _Seen | None
        bulk = _BulkWriter.open(self) if connection.vendor == "postgresql" and not mapping.stack_same_start else None
        if bulk is not None:
            self.writer, self.seen = bulk, None  # the writer finds keys an earlier chunk holds
        else:
            self.writer = _PostgresWriter(self) if connection.vendor == "postgresql" else _OrmWriter(self)
            self.seen = _Seen()

    # -- per chunk ---------------------------------------------------------------------------------
    def chunk(self, header: tuple[str, ...], chunk: _Chunk, checked: _Checked | None = None) -> None:
        """Validate one chunk (column by column, the rows that fail a column check row by row), then
        resolve its ids and write it. ``checked``: the column checks, when already run (``_checked``)."""
        frame, fast, left = checked or _checked(header, chunk, self.mapping)
        self.result.rows_read += len(chunk.rows)
        good, bad = self._validate_rows(frame, left, chunk)
        del frame
        if chunk.src is None:  # a block read by pandas has none (_fast_block checked)
            bad.update(_malformed(header, chunk.rows, self.mapping.encoding))
        for i, reason in bad.items():
            self._reject(chunk.offset + i, reason, (chunk.lines[i], tuple(chunk.rows[i])))
        if bad:
            fast = fast[~fast["index"].isin([chunk.offset + i for i in bad])]
        rows: list[_Row] = []
        placed: list[_Row] = []
        for row in good:
            if row.index in bad:
                continue
            row.index += chunk.offset
            rows.append(row)
            if (
                row.naive is not None
                and row.zone is not None
                and _dst_night(row.zone, (row.naive - _NIGHT_SHIFT).date())
            ):
                self.held.append(row)  # its night is re-laid with the file's other rows of that night
            else:
                row.start = (row.start if row.naive is None else row.naive.replace(tzinfo=row.zone)).astimezone(UTC)
                placed.append(row)
        if not rows and fast.empty:
            return
        # Held rows too: a program is created from its first row in the file.
        self._resolve(_in_file_order(fast, _frame_of(rows)))
        self._place(
            _in_file_order(fast, _frame_of(placed)),
            raw_of=lambda i: (chunk.lines[i - chunk.offset], tuple(chunk.rows[i - chunk.offset])),
        )

    def _validate_rows(self, frame: pd.DataFrame, left: np.ndarray, chunk: _Chunk) -> tuple[list[_Row], dict[int, str]]:
        """The row parser on the rows the column checks left: good rows and {position: reason}, by
        position in the chunk."""
        positions = np.flatnonzero(left)
        if not len(positions):
            return [], {}
        subset = frame.iloc[positions].reset_index(drop=True)
        good, bad, skipped = _validate(subset, [chunk.lines[p] for p in positions], self.mapping, self.channel_zones)
        self.result.skipped_without_start += skipped
        for row in good:
            row.index = int(positions[row.index])
        return good, {int(positions[i]): reason for i, reason in bad.items()}

    def finish(self) -> None:
        """Place the held DST-night rows (they need their whole night), then close the writer."""
        if self.held:
            _wall_clock_place(self.held)
            self.held.sort(key=lambda r: r.index)
            self._place(_frame_of(self.held), raw_of=None)
            self.held = []
        self.writer.finish(doomed=bool(self.bad) and not self.skip_invalid)
        if self.seen is not None:
            self.seen.close()
        missing = {i for i in self.bad if i not in self.bad_rows}
        if missing:  # duplicates among the held rows: their raw rows went with their chunk (rare)
            for chunk in _read_chunks(self.path, self.mapping)[1]:
                for j, raw in enumerate(chunk.rows):
                    if chunk.offset + j in missing:
                        self.bad_rows[chunk.offset + j] = (chunk.lines[j], tuple(raw))
        self.result.rejects = [
            Reject(line=self.bad_rows[i][0], reason=reason, raw=self.bad_rows[i][1])
            for i, reason in sorted(self.bad.items())
        ]
        if self.version is not None:
            DataVersion.objects.filter(pk=self.version).update(
                description=f"import_airings: {self.result.created} created, {self.result.updated} updated"[:255],
                rows_affected=self.result.changed,
            )

    def version_for_writes(self) -> int:
        """The import's DataVersion, bumped when the first chunk changes something (then reused)."""
        if self.version is None:
            self.version = data_version_bump(source=DataVersion.Source.IMPORT, description="import_airings").pk
            self.result.data_version = self.version
        return self.version

    # -- steps -------------------------------------------------------------------------------------
    def _reject(self, index: int, reason: str, raw: tuple[int, tuple[str, ...]] | None) -> None:
        self.bad[index] = reason
        if raw is not None:
            self.bad_rows[index] = raw

    def _resolve(self, frame: pd.DataFrame) -> None:
        """Channel and program ids for the chunk's rows; unknown ones created from their first row."""
        firsts = frame.assign(key=frame["channel"].str.lower()).drop_duplicates("key")
        new_channels: dict[str, Channel] = {}
        pending: dict[str, str] = {}  # channel key -> code of a channel created here
        for rec in firsts[~firsts["key"].isin(list(self.channel_of))].to_dict("records"):
            code = slugify(rec["channel"])[:32]
            found = self.channel_ids.get(code) or self.channel_ids.get(rec["key"])
            if found is not None:
                self.channel_of[rec["key"]] = found
                continue
            if code not in new_channels:
                new_channels[code] = Channel(
                    code=code,
                    name=rec["channel"][:100],
                    universe_households=rec["universe"] or DEFAULT_UNIVERSE,
                    time_zone=rec["time_zone"] or settings.TIME_ZONE,
                )
            pending[rec["key"]] = code
        if new_channels:
            Channel.objects.bulk_create(new_channels.values())
            ids = dict(Channel.objects.filter(code__in=list(new_channels)).values_list("code", "id"))
            for code, ch in new_channels.items():
                self.channel_ids.setdefault(code, ids[code])
                self.channel_ids.setdefault(ch.name.lower(), ids[code])
            self.result.channels_created += len(new_channels)
        for key, code in pending.items():
            self.channel_of[key] = self.channel_ids[code]

        unknown = [k for k in frame["external_id"].unique().tolist() if k not in self.program_of]
        for i in range(0, len(unknown), 500):
            self.program_of.update(
                Program.objects.filter(external_id__in=unknown[i : i + 500]).values_list("external_id", "id")
            )
        missing = [k for k in unknown if k not in self.program_of]
        if missing:
            first = frame[frame["external_id"].isin(missing)].drop_duplicates("external_id")
            Program.objects.bulk_create(
                [
                    Program(
                        external_id=rec["external_id"],
                        title=rec["title"][:255],
                        channel_id=self.channel_of[rec["channel"].lower()],
                        genre=rec["genre"],
                        content_rating=rec["content_rating"],
                        duration_minutes=int(rec["duration_minutes"]),
                        is_live=bool(rec["is_live"]),
                        description=rec["description"],
                    )
                    for rec in first.to_dict("records")
                ],
                batch_size=BATCH_SIZE,
            )
            for i in range(0, len(missing), 500):
                self.program_of.update(
                    Program.objects.filter(external_id__in=missing[i : i + 500]).values_list("external_id", "id")
                )
            self.result.programs_created += len(missing)

    def _ids(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(
            program_id=frame["external_id"].map(self.program_of).astype("int64"),
            channel_id=frame["channel"].str.lower().map(self.channel_of).astype("int64"),
        )

    def _place(self, frame: pd.DataFrame, raw_of: Callable[[int], tuple[int, tuple[str, ...]]] | None) -> None:
        """Drop (or stack) rows whose natural key this import already placed, then write the rest."""
        if frame.empty:
            return
        frame = self._ids(frame)
        if self.mapping.stack_same_start:
            frame = self._stacked(frame)
        else:
            dup = frame.duplicated(list(_KEY), keep="first")
            if dup.any():
                first_line = frame.groupby(list(_KEY))["line"].transform("first")
                for index, line in zip(frame.loc[dup, "index"].tolist(), first_line[dup].tolist(), strict=True):
                    self._duplicate(index, line, raw_of)
                frame = frame[~dup]
            earlier = self.seen.check_and_add(frame) if self.seen is not None else {}
            if earlier:
                for index, line in earlier.items():
                    self._duplicate(index, line, raw_of)
                frame = frame[~frame["index"].isin(list(earlier))]
        if self.bad and not self.skip_invalid:
            return  # the import will be refused: validation goes on, writing stops
        # The bulk writer finds the keys an earlier chunk wrote as it writes (the others found none left).
        for index, line in self.writer.write(frame.reset_index(drop=True)).items():
            self._duplicate(index, line, raw_of)

    def _duplicate(self, index: int, line: int, raw_of: Callable[[int], tuple[int, tuple[str, ...]]] | None) -> None:
        self._reject(
            index, f"duplicate: same program, channel and start as line {line}", raw_of(index) if raw_of else None
        )

    def _stacked(self, frame: pd.DataFrame) -> pd.DataFrame:
        """stack_same_start: a second airing of a program at the same start begins when the first ends
        (row by row: mappings that stack are small files with dates only)."""
        if self.seen is None:  # stacking imports never take the bulk writer
            raise RuntimeError("stack_same_start needs the keys table")
        starts = frame["start"].dt.to_pydatetime().tolist()
        for pos, (pid, cid) in enumerate(zip(frame["program_id"].tolist(), frame["channel_id"].tolist(), strict=True)):
            while (held := self.seen.holder(pid, cid, starts[pos])) is not None:
                starts[pos] = starts[pos] + timedelta(minutes=held[1])
            self.seen.check_and_add(frame.iloc[[pos]].assign(start=pd.to_datetime([starts[pos]], utc=True)))
        return frame.assign(start=pd.to_datetime(starts, utc=True))


class _OrmWriter:
    """Any database (the embedded SQLite): existing airings of the chunk read back by key, new ones
    inserted, changed ones updated, the summaries moved by the chunk's deltas."""

    def __init__(self, job: _Import) -> None:
        self.job = job

    def write(self, frame: pd.DataFrame) -> dict[int, int]:
        if frame.empty:
            return {}
        result = self.job.result
        rows = _staged_rows(frame)
        existing: dict[tuple[int, int, int], tuple[Any, ...]] = {}
        lo, hi = min(r[2] for r in rows), max(r[2] for r in rows)
        program_ids = sorted(set(frame["program_id"].tolist()))
        for i in range(0, len(program_ids), 500):
            for pk, program_id, channel_id, start, *values in Airing.objects.filter(
                program_id__in=program_ids[i : i + 500], start__gte=lo, start__lte=hi
            ).values_list("id", *_STAGED):
                existing[(program_id, channel_id, _micros(start))] = (pk, *values)
        to_create: list[tuple[Any, ...]] = []
        to_update: list[Airing] = []
        removed: list[tuple[Any, ...]] = []
        for row in rows:
            current = existing.get((row[0], row[1], _micros(row[2])))
            if current is None:
                to_create.append(row)
            elif tuple(current[1:]) != row[3:]:
                to_update.append(Airing(pk=current[0], **dict(zip(_VALUES, row[3:], strict=True))))
                removed.append((*row[:3], *current[1:]))
            else:
                result.unchanged += 1
        if not to_create and not to_update:
            return {}
        version = self.job.version_for_writes()
        result.created += len(to_create)
        result.updated += len(to_update)
        for airing in to_update:
            airing.data_version = version
        airings_bulk_insert([(*row, version) for row in to_create])
        Airing.objects.bulk_update(to_update, [*_VALUES, "data_version"], batch_size=BATCH_SIZE)
        changed_keys = {(r[0], r[1], r[2]) for r in removed}
        added = to_create + [r for r in rows if (r[0], r[1], r[2]) in changed_keys]
        airings_aggregate(added=frame_of(added, _STAGED), removed=frame_of(removed, _STAGED))
        self.job.program_ids.update(r[0] for r in added)
        return {}

    def finish(self, *, doomed: bool) -> None:
        return


class _PostgresWriter:
    """PostgreSQL: each chunk is COPYed into a temporary staging table and written with one
    ``INSERT ... ON CONFLICT DO UPDATE``; the old values of the rows it changes and the new values of
    the rows it writes go to a delta table the summaries are moved by, set-based
    (``programs.aggregates.airings_aggregate_staged``)."""

    def __init__(self, job: _Import) -> None:
        self.job = job
        self.removed_programs: set[int] = set()
        with connection.cursor() as cursor:
            for name in ("_import_stage", "_import_delta"):
                cursor.execute(f"DROP TABLE IF EXISTS {name}")
            cursor.execute(
                "CREATE TEMP TABLE _import_stage (program_id integer NOT NULL, channel_id integer NOT NULL,"
                " start timestamptz NOT NULL, duration_minutes smallint NOT NULL, is_premiere boolean NOT NULL,"
                " is_finale boolean NOT NULL, season smallint, episode smallint, rating double precision,"
                " revenue double precision, audience double precision, engagement double precision)"
            )
            cursor.execute(f"CREATE TEMP TABLE _import_delta ({', '.join(f'{c} {t}' for c, t in _DELTA_COLUMNS)})")

    def write(self, frame: pd.DataFrame) -> dict[int, int]:
        if frame.empty:
            return {}
        result = self.job.result
        rows = _staged_rows(frame)
        names = ", ".join(_STAGED)
        key = " AND ".join(f"a.{c} = s.{c}" for c in _KEY)
        differs = f"({', '.join(f'a.{c}' for c in _VALUES)}) IS DISTINCT FROM ({', '.join(f's.{c}' for c in _VALUES)})"
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE _import_stage")
            with cursor.cursor.copy(f"COPY _import_stage ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            if self.job.version is None:
                # Bump the data version only for a chunk that changes something (a re-import changes nothing).
                exists = f"SELECT EXISTS (SELECT 1 FROM _import_stage s LEFT JOIN programs_airing a ON {key} WHERE a.id IS NULL OR {differs})"  # noqa: S608  # nosec B608 - the model's column names
                cursor.execute(exists)
                if not cursor.fetchone()[0]:
                    result.unchanged += len(rows)
                    return {}
            version = self.job.version_for_writes()
            delta = ", ".join(c for c, _ in _DELTA_COLUMNS)
            aggregate = ", ".join(TARGETS)
            sets = ", ".join(f"{c} = excluded.{c}" for c in (*_VALUES, "data_version"))
            # One statement: every CTE sees the table as it was before it, so ``old`` holds the values
            # the upsert replaces. Rows equal to the stored ones are not written (the WHERE) and count as unchanged.
            cursor.execute(
                f"""
                WITH old AS MATERIALIZED (
                    SELECT a.program_id, a.channel_id, a.start, {", ".join(f"a.{c}" for c in TARGETS)}
                    FROM _import_stage s JOIN programs_airing a ON {key} WHERE {differs}
                ), up AS (
                    INSERT INTO programs_airing ({names}, data_version)
                    SELECT {names}, %s FROM _import_stage ORDER BY program_id, channel_id, start
                    ON CONFLICT (program_id, channel_id, start) DO UPDATE SET {sets}
                    WHERE ({", ".join(f"programs_airing.{c}" for c in _VALUES)})
                          IS DISTINCT FROM ({", ".join(f"excluded.{c}" for c in _VALUES)})
                    RETURNING (xmax = 0) AS created, program_id, channel_id, start, {aggregate}
                ), removed AS (
                    INSERT INTO _import_delta ({delta}) SELECT program_id, channel_id, start, -1, {aggregate} FROM old
                ), added AS (
                    INSERT INTO _import_delta ({delta}) SELECT program_id, channel_id, start, 1, {aggregate} FROM up
                )
                SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created) FROM up
                """,  # noqa: S608  # nosec B608 - column names are the model's; values are COPYed or bound
                [version],
            )
            created, updated = cursor.fetchone()
            result.created += created
            result.updated += updated
            result.unchanged += len(rows) - created - updated
            cursor.execute("SELECT DISTINCT program_id, sign FROM _import_delta")
            for program_id, sign in cursor.fetchall():
                self.job.program_ids.add(program_id)
                if sign < 0:
                    self.removed_programs.add(program_id)
        airings_aggregate_staged(table="_import_delta")
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE _import_delta")
        return {}

    def finish(self, *, doomed: bool) -> None:
        if self.removed_programs:
            aggregates_refresh_extremes(program_ids=sorted(self.removed_programs))
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS _import_stage")
            cursor.execute("DROP TABLE IF EXISTS _import_delta")


# A file this large (about 400k canonical rows) into an empty airings table is loaded without the table's
# secondary indexes and foreign keys, which are rebuilt once at the end (see ``_BulkWriter``).
BULK_REBUILD_BYTES = 48 * 1024 * 1024


# The server memory one sort or hash may take while the bulk writer builds indexes and summaries over
# the whole table (PostgreSQL's defaults, 4 MB and 64 MB, spill a 5M-row GROUP BY to disk).
BULK_SORT_MEMORY = "256MB"


@contextmanager
def _memory_for_sorts() -> Iterator[None]:
    """``work_mem`` and ``maintenance_work_mem`` raised for the block, then set back (``SET LOCAL``:
    this transaction only, whatever happens)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('work_mem'), current_setting('maintenance_work_mem')")
        work, maintenance = cursor.fetchone()
        cursor.execute(
            "SELECT set_config('work_mem', %s, true), set_config('maintenance_work_mem', %s, true)",
            [BULK_SORT_MEMORY, BULK_SORT_MEMORY],
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('work_mem', %s, true), set_config('maintenance_work_mem', %s, true)",
                [work, maintenance],
            )


class _BulkWriter:
    """PostgreSQL, into an empty airings table: every row is new, so each chunk is COPYed straight into
    ``programs_airing`` (no staging table, no upsert, no delta rows) and the summaries are computed
    once at the end from the airings, set-based.

    The table is locked against other writers (``SHARE ROW EXCLUSIVE``: readers go on) from the check
    that finds it empty until the import commits, so every row in it is this import's. A key an
    earlier chunk wrote makes a chunk's COPY fail on the natural-key constraint inside a savepoint;
    the chunk's keys are then looked up and those rows rejected as duplicates (the earlier line comes
    from ``_import_lines``, the keys and lines written so far), and the rest is written again.

    A large file (``BULK_REBUILD_BYTES``) also drops the table's secondary indexes and its foreign
    keys first and re-creates them at the end (in the same transaction: a failure rolls the drop back
    too). Building an index once is several times cheaper than maintaining it row by row, and adding a
    foreign key checks every row with one join instead of a deferred per-row trigger at commit. That
    takes ``ACCESS EXCLUSIVE`` locks (the airings, programs and channels tables) until the commit:
    readers of those tables wait for the import, which is why small imports do not do it.
    """

    def __init__(self, job: _Import, *, rebuild: bool) -> None:
        self.job = job
        self.table = connection.ops.quote_name(Airing._meta.db_table)
        self.indexes: list[str] = []  # CREATE INDEX statements of the indexes dropped for the load
        self.foreign_keys: list[tuple[str, str]] = []  # (name, definition) of the constraints dropped
        with connection.cursor() as cursor:
            cursor.execute("DROP VIEW IF EXISTS _import_all")
            cursor.execute("DROP TABLE IF EXISTS _import_lines, _import_keys")
            cursor.execute(
                "CREATE TEMP TABLE _import_lines (program_id integer NOT NULL, channel_id integer NOT NULL,"
                " start timestamptz NOT NULL, line integer NOT NULL)"
            )
            cursor.execute(
                "CREATE TEMP TABLE _import_keys (program_id integer NOT NULL, channel_id integer NOT NULL,"
                " start timestamptz NOT NULL, idx bigint NOT NULL)"
            )
        if rebuild:
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    self._drop_for_load(cursor)
            except OperationalError:  # the caller's transaction has trigger events pending on the table
                self.indexes, self.foreign_keys = [], []  # load with them then

    @classmethod
    def open(cls, job: _Import) -> _BulkWriter | None:
        """The bulk writer when the airings table is empty (checked again under the lock), else None."""
        table = connection.ops.quote_name(Airing._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")  # noqa: S608  # nosec B608 - the model's table
            if cursor.fetchone()[0]:
                return None
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")  # noqa: S608  # nosec B608 - the model's table
            if cursor.fetchone()[0]:
                return None
        return cls(job, rebuild=job.path.stat().st_size >= BULK_REBUILD_BYTES)

    def _drop_for_load(self, cursor: CursorWrapper) -> None:
        """Drop the secondary indexes and foreign keys of the airings table, noting how to re-create them."""
        cursor.execute(
            "SELECT pg_get_indexdef(i.indexrelid), i.indexrelid::regclass::text FROM pg_index i"
            " WHERE i.indrelid = %s::regclass AND NOT i.indisunique AND NOT i.indisprimary"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            [Airing._meta.db_table],
        )
        found = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            [Airing._meta.db_table],
        )
        self.foreign_keys = [(str(name), str(definition)) for name, definition in cursor.fetchall()]
        for name, _ in self.foreign_keys:
            cursor.execute(f"ALTER TABLE {self.table} DROP CONSTRAINT {connection.ops.quote_name(name)}")
        for definition, name in found:
            cursor.execute(f"DROP INDEX {name}")  # regclass text: already quoted where it needs to be
            self.indexes.append(str(definition))

    def write(self, frame: pd.DataFrame) -> dict[int, int]:
        """Write the chunk's rows; return {index: line of the earlier holder} for the rows refused."""
        if frame.empty:
            return {}
        version = self.job.version_for_writes()
        earlier: dict[int, int] = {}
        try:
            with transaction.atomic():  # a savepoint: a key an earlier chunk wrote fails this chunk only
                self._copy(frame, version)
        except psycopg_errors.UniqueViolation:  # the driver's own error: COPY goes past Django's wrapper
            earlier = self._earlier(frame)
            frame = frame[~frame["index"].isin(list(earlier))]
            if not frame.empty:
                self._copy(frame, version)
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy("COPY _import_lines (program_id, channel_id, start, line) FROM STDIN") as copy,
        ):
            for row in zip(*(_python_column(frame[c]) for c in (*_KEY, "line")), strict=True):
                copy.write_row(row)
        self.job.result.created += len(frame)
        self.job.program_ids.update(int(p) for p in frame["program_id"].unique().tolist())
        return earlier

    def _copy(self, frame: pd.DataFrame, version: int) -> None:
        names = ", ".join((*_STAGED, "data_version"))
        with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {self.table} ({names}) FROM STDIN") as copy:
            for row in zip(*(_python_column(frame[c]) for c in _STAGED), repeat(version, len(frame)), strict=True):
                copy.write_row(row)

    def _earlier(self, frame: pd.DataFrame) -> dict[int, int]:
        """{index: line} of the chunk's rows whose key an earlier chunk wrote."""
        key = " AND ".join(f"l.{c} = k.{c}" for c in _KEY)
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE _import_keys")
            with cursor.cursor.copy("COPY _import_keys (program_id, channel_id, start, idx) FROM STDIN") as copy:
                for row in zip(*(_python_column(frame[c]) for c in (*_KEY, "index")), strict=True):
                    copy.write_row(row)
            cursor.execute(f"SELECT k.idx, l.line FROM _import_keys k JOIN _import_lines l ON {key}")  # noqa: S608  # nosec B608 - fixed names
            return {int(i): int(line) for i, line in cursor.fetchall()}

    def finish(self, *, doomed: bool) -> None:
        """The summaries from the airings (every one is this import's), the dropped indexes and foreign
        keys back. ``doomed``: the import is refused and rolls back, so none of that is needed."""
        with connection.cursor() as cursor:
            if not doomed:
                with _memory_for_sorts():
                    for definition in self.indexes:
                        cursor.execute(definition)
                for name, definition in self.foreign_keys:
                    cursor.execute(
                        f"ALTER TABLE {self.table} ADD CONSTRAINT {connection.ops.quote_name(name)} {definition}"
                    )
                cursor.execute(
                    "CREATE TEMP VIEW _import_all AS SELECT program_id, channel_id, start, 1 AS sign, "  # noqa: S608  # nosec B608 - the model's names
                    f"{', '.join(TARGETS)} FROM {self.table}"
                )
            cursor.execute("DROP TABLE IF EXISTS _import_lines")
            cursor.execute("DROP TABLE IF EXISTS _import_keys")
        if not doomed:
            with _memory_for_sorts():
                airings_aggregate_staged(table="_import_all")
            with connection.cursor() as cursor:
                cursor.execute("DROP VIEW _import_all")
                if self.indexes:
                    cursor.execute(f"ANALYZE {self.table}")  # the planner's figures for the loaded table


def airings_import(
    *, path: str | Path, mapping: ColumnMapping | None = None, skip_invalid: bool = False
) -> ImportResult:
    """Import airings from a CSV file (see module docstring and docs/data.md).

    Raises ``ImportValidationError`` (nothing written) when the file, the mapping or any row is bad,
    unless ``skip_invalid``: then the good rows are imported and the bad ones returned as rejects.
    The file is read, validated and written ``CHUNK_ROWS`` rows at a time inside one transaction, so
    memory stays flat with the file's length and a bad row anywhere rolls every chunk back.
    After the transaction commits, :func:`airings_import_committed` runs (once, when rows changed).
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    mapping = mapping or ColumnMapping()
    header, chunks = _read_chunks(Path(path), mapping)
    result = ImportResult(header=header)
    with transaction.atomic():
        job = _Import(result, mapping, Path(path), skip_invalid)
        for chunk, checked in _prefetched(header, chunks, mapping):
            job.chunk(header, chunk, checked)
        job.finish()
        if result.rejects and not skip_invalid:
            raise ImportValidationError(  # raised inside the transaction: every chunk written is rolled back
                f"{len(result.rejects)} invalid row(s) in {Path(path).name}; nothing was imported.",
                details={"errors": [{"line": r.line, "reason": r.reason} for r in result.rejects]},
            )
        result.program_ids = sorted(job.program_ids)
        if result.changed:
            transaction.on_commit(partial(airings_import_committed, result=result))
    result.seconds = time.perf_counter() - started
    result.cpu_seconds = time.process_time() - cpu_started
    return result


def airings_import_committed(*, result: ImportResult) -> None:
    """Runs once an import that changed airings has committed (``transaction.on_commit``).

    The place for work that must see the committed airings and must not run when the import rolls
    back: ``result.data_version`` is the version the created and updated rows carry and
    ``result.program_ids`` the programs whose airings changed. Sends ``AIRINGS_IMPORTED`` (its
    subscribers are listed in ``bms/wiring.py``: the serving history state folds the import in).
    """
    if result.data_version is not None:
        AIRINGS_IMPORTED.send(AiringsImported(version_id=result.data_version, program_ids=tuple(result.program_ids)))


AIRING_INSERT_COLUMNS = (
    "program_id",
    "channel_id",
    "start",
    "duration_minutes",
    "is_premiere",
    "is_finale",
    "season",
    "episode",
    *TARGETS,
    "data_version",
)


def airings_bulk_insert(rows: Sequence[tuple[object, ...]]) -> None:
    """Insert new airings, given as tuples in ``AIRING_INSERT_COLUMNS`` order (``bms.db.rows_insert``:
    COPY on PostgreSQL, executemany elsewhere; 5-10x faster than ``bulk_create`` for 50k-row imports)."""
    rows_insert(Airing, AIRING_INSERT_COLUMNS, rows)


def rejects_write(*, result: ImportResult, path: str | Path) -> None:
    """Write the rejected rows (original values plus ``line`` and ``reason``) as CSV."""
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*result.header, "line", "reason"])
        for reject in result.rejects:
            writer.writerow([*reject.raw, reject.line, reject.reason])
