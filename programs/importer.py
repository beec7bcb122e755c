"""CSV import of airings: canonical columns, or a JSON column mapping for foreign files.

The contract (columns, mapping language, error handling) is documented in ``docs/data.md``.
All or nothing by default: every row is validated before anything is written, every bad row is
reported with its line number, and one bad row means nothing is written. Re-importing a file adds
nothing: an airing is identified by its natural key (program, channel, start); an existing airing
is updated only when a value differs. ``DataVersion`` is bumped only when rows changed.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import islice
from pathlib import Path
from sys import intern
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils.text import slugify

from bms.db import rows_insert
from bms.errors import ApplicationError
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
_TRUE = frozenset({"1", "true", "t", "yes", "y"})
_FALSE = frozenset({"0", "false", "f", "no", "n"})
_RATING_ALIASES = {"PG13": "PG-13", "TV-G": "G", "TV-Y": "G", "TV-PG": "PG", "TV-14": "PG-13", "TV-MA": "R"}


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


@dataclass
class _Chunk:
    rows: list[list[str]]
    lines: list[int]  # the physical line each row starts on (quoted newlines respected)
    offset: int  # index of the chunk's first row in the file


def _unreadable_reason(row: list[str], encoding: str) -> str | None:
    text = "".join(row)
    found = _UNREADABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL byte"
    return f"not valid {encoding} text (byte 0x{ord(found.group()) - 0xDC00:02x})"


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
    reader = csv.reader(handle, delimiter=mapping.delimiter)
    state = {"next_line": 1}

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for row in reader:
                line = state["next_line"]
                state["next_line"] = reader.line_num + 1
                if row:
                    yield line, row
        except (csv.Error, UnicodeDecodeError) as exc:  # a codec that cannot escape (e.g. a cut UTF-16 pair)
            raise ImportValidationError(f"line {state['next_line']}: unreadable CSV ({exc}).") from exc

    stream = rows()
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
            offset, produced = 0, False
            while True:
                batch = list(islice(stream, CHUNK_ROWS))
                if not batch and produced:
                    return
                yield _Chunk(rows=[r for _, r in batch], lines=[n for n, _ in batch], offset=offset)
                produced, offset = True, offset + len(batch)

    return header, chunks()


def _canonical_frame(header: tuple[str, ...], rows: list[list[str]], mapping: ColumnMapping) -> pd.DataFrame:
    width = len(header)
    padded = [r if len(r) == width else (r + [""] * width)[:width] for r in rows]
    src = pd.DataFrame(padded, columns=list(header), dtype="object")
    na = set(mapping.na_values)
    src = src.map(lambda v: None if v.strip() in na else v)

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
def _genre_lookup() -> dict[str, str]:
    lookup = {value: value for value in Genre.values}
    lookup.update({str(label).lower(): value for value, label in Genre.choices})
    lookup.update(
        {"talk show": "talk", "game show": "game", "films": "movie", "film": "movie", "reality tv": "reality"}
    )
    return lookup


def _parse_bool(value: Any) -> bool | None:
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE or text == "":
        return False
    return None


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


def _validate(frame: pd.DataFrame, lines: list[int], mapping: ColumnMapping) -> tuple[list[_Row], dict[int, str], int]:
    """Parse every row; return the good rows, {index: reason} for the bad ones, rows skipped."""
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

    default_tz = ZoneInfo(settings.TIME_ZONE)
    tz_cache: dict[str, ZoneInfo | None] = {}
    # A naive start is read in the row's time_zone, else its (existing) channel's, else TIME_ZONE.
    channel_zones: dict[str, str] = {}
    for code, name, zone_name in Channel.objects.values_list("code", "name", "time_zone"):
        channel_zones[code] = channel_zones[name.lower()] = zone_name
    ranges: dict[str, tuple[float, float]] = settings.TARGET_RANGES
    genres = _genre_lookup()
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
            external_id = slugify(series_name)[:64] if series_name else _derived_id(channel, title)
        if len(external_id) > 64:
            reasons.append("external_id: longer than 64 characters")
        raw_genre = (rec.get("genre") or "other").strip().lower()
        genre = genres.get(raw_genre)
        if genre is None:
            reasons.append(f"genre: unknown {raw_genre!r} (allowed: {', '.join(Genre.values)})")
        raw_cr = (rec.get("content_rating") or "PG").strip().upper()
        content_rating = _RATING_ALIASES.get(raw_cr, raw_cr)
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
            parsed = _parse_bool(rec.get(flag))
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


def _out_of_range(target: str, raw: Any, value: float, bounds: tuple[float, float], mapping: ColumnMapping) -> str:
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


@lru_cache(maxsize=4096)
def _derived_id(channel: str, title: str) -> str:
    return slugify(f"{channel}-{title}")[:64]


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


def _dedupe(rows: list[_Row], bad: dict[int, str], stack: bool) -> list[_Row]:
    """Same program+channel+start twice in one file: an error, or (stack_same_start) run them back to back."""
    seen: dict[tuple[str, str, datetime], _Row] = {}
    out: list[_Row] = []
    for row in rows:
        key = (row.external_id, row.channel.lower(), row.start)
        while stack and key in seen:
            row.start = seen[key].start + timedelta(minutes=seen[key].duration)
            key = (row.external_id, row.channel.lower(), row.start)
        if key in seen:
            bad[row.index] = f"duplicate: same program, channel and start as line {seen[key].line}"
            continue
        seen[key] = row
        out.append(row)
    return out


# --- the service --------------------------------------------------------------------------------
def _chunks(items: list[int], size: int = 500) -> Iterable[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _micros(dt: datetime) -> int:
    return round(dt.timestamp() * 1_000_000)


def airings_import(
    *, path: str | Path, mapping: ColumnMapping | None = None, skip_invalid: bool = False
) -> ImportResult:
    """Import airings from a CSV file (see module docstring and docs/data.md).

    Raises ``ImportValidationError`` (nothing written) when the file, the mapping or any row is bad,
    unless ``skip_invalid``: then the good rows are imported and the bad ones returned as rejects.
    The file is read and validated ``CHUNK_ROWS`` rows at a time; only the validated rows are kept.
    """
    started = time.perf_counter()
    mapping = mapping or ColumnMapping()
    header, chunks = _read_chunks(Path(path), mapping)
    result = ImportResult(header=header)
    good: list[_Row] = []
    bad: dict[int, str] = {}
    bad_rows: dict[int, tuple[int, tuple[str, ...]]] = {}  # index -> (line, raw) of every rejected row
    for chunk in chunks:
        frame = _canonical_frame(header, chunk.rows, mapping)
        chunk_good, chunk_bad, skipped = _validate(frame, chunk.lines, mapping)
        result.rows_read += len(chunk.rows)
        result.skipped_without_start += skipped
        for i, raw in enumerate(chunk.rows):
            reason = _unreadable_reason(raw, mapping.encoding)
            if reason is not None:
                chunk_bad[i] = reason
            elif len(raw) != len(header):
                chunk_bad[i] = f"expected {len(header)} fields, got {len(raw)}"
        chunk_good = [r for r in chunk_good if r.index not in chunk_bad]
        for row in chunk_good:
            row.index += chunk.offset
            # Kept until the write: one string per distinct value, not one per row (programs air many times).
            row.channel, row.external_id, row.title = intern(row.channel), intern(row.external_id), intern(row.title)
            row.content_rating, row.description = intern(row.content_rating), intern(row.description)
        chunk_bad = {i + chunk.offset: reason for i, reason in chunk_bad.items()}
        good.extend(chunk_good)
        for i, reason in chunk_bad.items():
            bad[i] = reason
            bad_rows[i] = (chunk.lines[i - chunk.offset], tuple(chunk.rows[i - chunk.offset]))
    # DST placement and duplicates look at every row of a channel, so they run once all chunks are in.
    _wall_clock_place(good)
    good = _dedupe(good, bad, mapping.stack_same_start)
    duplicates = {i for i in bad if i not in bad_rows}
    if duplicates:  # their raw rows are gone with their chunk: read them again (rare)
        for chunk in _read_chunks(Path(path), mapping)[1]:
            for j, raw in enumerate(chunk.rows):
                if chunk.offset + j in duplicates:
                    bad_rows[chunk.offset + j] = (chunk.lines[j], tuple(raw))
    result.rejects = [
        Reject(line=bad_rows[i][0], reason=reason, raw=bad_rows[i][1]) for i, reason in sorted(bad.items())
    ]
    if result.rejects and not skip_invalid:
        raise ImportValidationError(
            f"{len(result.rejects)} invalid row(s) in {Path(path).name}; nothing was imported.",
            details={"errors": [{"line": r.line, "reason": r.reason} for r in result.rejects]},
        )
    with transaction.atomic():
        _write(good, result)
    result.seconds = time.perf_counter() - started
    return result


def _write(rows: list[_Row], result: ImportResult) -> None:
    # Channels: matched by code (slug of the value) or by name; unknown ones created from the row.
    channels = {c.code: c for c in Channel.objects.all()}
    by_name = {c.name.lower(): c for c in channels.values()}
    channel_of: dict[str, Channel] = {}
    new_channels: dict[str, Channel] = {}
    for row in rows:
        key = row.channel.lower()
        if key in channel_of:
            continue
        code = slugify(row.channel)[:32]
        found = channels.get(code) or by_name.get(key) or new_channels.get(code)
        if found is None:
            found = Channel(
                code=code,
                name=row.channel[:100],
                universe_households=row.universe or DEFAULT_UNIVERSE,
                time_zone=row.time_zone or settings.TIME_ZONE,
            )
            new_channels[code] = found
        channel_of[key] = found
    if new_channels:
        Channel.objects.bulk_create(new_channels.values())
        ids = dict(Channel.objects.filter(code__in=list(new_channels)).values_list("code", "id"))
        for ch in new_channels.values():
            ch.pk = ids[ch.code]
    result.channels_created = len(new_channels)

    # Programs: matched by external_id; unknown ones created from their first row.
    wanted = sorted({r.external_id for r in rows})
    programs: dict[str, int] = {}
    for chunk in _chunks(list(range(len(wanted)))):
        keys = [wanted[i] for i in chunk]
        programs.update(Program.objects.filter(external_id__in=keys).values_list("external_id", "id"))
    existing_program_ids = sorted(programs.values())
    new_programs: dict[str, Program] = {}
    for row in rows:
        if row.external_id not in programs and row.external_id not in new_programs:
            new_programs[row.external_id] = Program(
                external_id=row.external_id,
                title=row.title[:255],
                channel_id=channel_of[row.channel.lower()].pk,
                genre=row.genre,
                content_rating=row.content_rating,
                duration_minutes=row.duration,
                is_live=row.is_live,
                description=row.description,
            )
    if new_programs:
        Program.objects.bulk_create(new_programs.values(), batch_size=BATCH_SIZE)
        keys = list(new_programs)
        for i in range(0, len(keys), 500):
            programs.update(Program.objects.filter(external_id__in=keys[i : i + 500]).values_list("external_id", "id"))
    result.programs_created = len(new_programs)

    # Airings: natural key (program, channel, start). Only programs that existed can have airings.
    fields = ("duration_minutes", "is_premiere", "is_finale", "season", "episode", *TARGETS)
    existing: dict[tuple[int, int, int], tuple[Any, ...]] = {}
    if existing_program_ids and rows:
        lo = min(r.start for r in rows)
        hi = max(r.start for r in rows)
        for chunk in _chunks(existing_program_ids):
            for pk, program_id, channel_id, start, *values in Airing.objects.filter(
                program_id__in=chunk, start__gte=lo, start__lte=hi
            ).values_list("id", "program_id", "channel_id", "start", *fields):
                existing[(program_id, channel_id, _micros(start))] = (pk, *values)
    to_create: list[tuple[Any, ...]] = []
    to_update: list[Airing] = []
    for row in rows:
        program_id = programs[row.external_id]
        channel_id = channel_of[row.channel.lower()].pk
        values = (
            row.duration,
            row.is_premiere,
            row.is_finale,
            row.season,
            row.episode,
            *(row.targets[t] for t in TARGETS),
        )
        current = existing.get((program_id, channel_id, _micros(row.start)))
        if current is None:
            to_create.append((program_id, channel_id, row.start, *values))
        elif tuple(current[1:]) != values:
            to_update.append(Airing(pk=current[0], **dict(zip(fields, values, strict=True))))
        else:
            result.unchanged += 1
    result.created, result.updated = len(to_create), len(to_update)
    if not result.changed:
        return
    version = data_version_bump(
        source=DataVersion.Source.IMPORT,
        description=f"import_airings: {result.created} created, {result.updated} updated",
        rows_affected=result.changed,
    )
    result.data_version = version.pk
    for airing in to_update:
        airing.data_version = version.pk
    airings_bulk_insert([(*values, version.pk) for values in to_create])
    Airing.objects.bulk_update(to_update, [*fields, "data_version"], batch_size=BATCH_SIZE)


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


def airings_bulk_insert(rows: list[tuple[Any, ...]]) -> None:
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
