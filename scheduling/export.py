"""A proposed schedule of a finished job as CSV (the page's download; cells are made formula-safe)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping

from bms.errors import NotFoundError
from bms.jsontypes import JSONObject, JSONValue, json_object, json_objects
from programs.export import escape_formula
from scheduling.models import OptimizationJob

SCHEDULE_CSV_COLUMNS = (
    "position",
    "start",
    "end",
    "length_minutes",
    "program_id",
    "external_id",
    "title",
    "genre",
    "content_rating",
    "revenue",
    "audience",
)


def schedule_entries(result: Mapping[str, object], index: int = 0) -> list[JSONObject]:
    """The entries of the ``index``-th proposal of a job's result (0 = the best); [] if there is none."""
    schedules = result.get("schedules")
    if not isinstance(schedules, list) or index < 0 or index >= len(schedules):
        return []
    return [dict(e) for e in json_objects(json_object(schedules[index]).get("entries"))]


def schedule_csv(*, job: OptimizationJob, index: int = 0) -> str:
    """The ``index``-th proposal as CSV: the known columns in a fixed order (JSONB does not keep key
    order), then any scalar column a newer optimiser adds. Raises NotFoundError without a proposal."""
    entries = schedule_entries(dict(job.result or {}), index)
    if not entries:
        raise NotFoundError("This job has no schedule to export.", details={"id": job.pk, "index": index})
    present = {k for e in entries for k in e if not isinstance(e[k], dict | list)}
    columns = [c for c in SCHEDULE_CSV_COLUMNS if c in present] + sorted(present - set(SCHEDULE_CSV_COLUMNS))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for entry in entries:
        writer.writerow([_cell(entry.get(c, "")) for c in columns])
    return buffer.getvalue()


def _cell(value: JSONValue) -> JSONValue:
    return escape_formula(value) if isinstance(value, str) else value
