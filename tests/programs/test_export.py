"""Exports: the three formats, formula-injection escaping, filters, audit, errors, streaming."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook
from rest_framework.test import APIClient

from bms.errors import ApplicationError
from bms.models import AuditEvent
from programs.export import escape_formula, export_rows, export_stream, export_to_file
from tests.programs.factories_api import airing_factory, channel_factory, program_factory

NY = ZoneInfo("America/New_York")
pytestmark = pytest.mark.django_db

EVIL = '=HYPERLINK("http://evil.example","x")'


@pytest.fixture
def data() -> dict[str, Any]:
    abc = channel_factory(code="abc")
    nbc = channel_factory(code="nbc")
    evil = program_factory(external_id="EVIL01", title=EVIL, channel=abc, genre="drama")
    news = program_factory(external_id="NEWS01", title="Evening News", channel=nbc, genre="news")
    airing_factory(
        program=evil,
        start=datetime(2025, 1, 6, 21, tzinfo=NY),
        rating=5.5,
        revenue=12000.0,
        audience=800.0,
        engagement=61.0,
        is_premiere=True,
    )
    airing_factory(program=evil, start=datetime(2025, 1, 13, 21, tzinfo=NY), rating=4.5, revenue=None)
    airing_factory(program=news, start=datetime(2025, 1, 7, 18, tzinfo=NY), rating=2.0)
    return {"abc": abc, "nbc": nbc, "evil": evil, "news": news}


def _post(client: APIClient, body: Any, **extra: Any) -> Any:
    return client.post("/api/v1/export", data=json.dumps(body), content_type="application/json", **extra)


def _content(response: Any) -> bytes:
    assert response.streaming
    return b"".join(response.streaming_content)


def test_csv_export_escapes_formula_cells(analyst_client: APIClient, data: Any) -> None:
    response = _post(analyst_client, {"format": "csv", "dataset": "airings"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="bms-airings-')
    assert response["Content-Disposition"].endswith('.csv"')
    rows = list(csv.reader(io.StringIO(_content(response).decode())))
    assert rows[0] == [
        "airing_id",
        "program_id",
        "program_title",
        "channel",
        "genre",
        "start",
        "duration_minutes",
        "is_premiere",
        "is_finale",
        "rating",
        "revenue",
        "audience",
        "engagement",
    ]
    assert len(rows) == 4
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["program_title"] == "'" + EVIL
    assert first["program_id"] == "EVIL01"
    assert first["start"] == "2025-01-06T21:00:00-05:00"
    assert first["is_premiere"] == "True"
    assert (first["rating"], first["revenue"], first["audience"], first["engagement"]) == (
        "5.5",
        "12000.0",
        "800.0",
        "61.0",
    )
    assert [r[1] for r in rows[1:]] == ["EVIL01", "NEWS01", "EVIL01"]  # ordered by start
    assert rows[3][10] == ""  # missing revenue is an empty cell


def test_json_export_is_exact(analyst_client: APIClient, data: Any) -> None:
    response = _post(analyst_client, {"format": "json", "dataset": "airings", "filters": {"program": "EVIL01"}})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    rows = json.loads(_content(response))
    assert len(rows) == 2
    assert rows[0]["program_title"] == EVIL  # JSON is data, not a spreadsheet: unchanged
    assert rows[0]["start"] == "2025-01-06T21:00:00-05:00"
    assert rows[0]["rating"] == 5.5
    assert rows[1]["revenue"] is None


def test_xlsx_export_writes_text_not_formulas(analyst_client: APIClient, data: Any) -> None:
    response = _post(analyst_client, {"format": "xlsx", "dataset": "airings", "filters": {"targets": ["rating"]}})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(_content(response))).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][-2:] == ("is_finale", "rating")
    assert len(rows) == 4
    assert rows[1][2] == "'" + EVIL
    assert sheet.cell(row=2, column=3).data_type == "s"
    assert rows[1][5] == datetime(2025, 1, 6, 21, 0)  # local wall-clock time, Excel has no zones
    assert rows[1][-1] == 5.5


def test_programs_dataset_aggregates_inside_the_filters(analyst_client: APIClient, data: Any) -> None:
    response = _post(
        analyst_client,
        {"format": "json", "dataset": "programs", "filters": {"start": "2025-01-07", "targets": ["rating", "revenue"]}},
    )
    rows = json.loads(_content(response))
    assert [r["program_id"] for r in rows] == ["EVIL01", "NEWS01"]
    evil = rows[0]
    assert evil == {
        "program_id": "EVIL01",
        "title": EVIL,
        "channel": "abc",
        "genre": "drama",
        "content_rating": "PG",
        "duration_minutes": 60,
        "is_live": False,
        "airings": 1,
        "first_airing": "2025-01-13T21:00:00-05:00",
        "last_airing": "2025-01-13T21:00:00-05:00",
        "avg_rating": 4.5,
        "avg_revenue": None,
    }
    csv_rows = list(
        csv.reader(io.StringIO(_content(_post(analyst_client, {"format": "csv", "dataset": "programs"})).decode()))
    )
    assert csv_rows[1][1] == "'" + EVIL


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"channel": "nbc"}, ["NEWS01"]),
        ({"genre": "drama"}, ["EVIL01", "EVIL01"]),
        ({"program": "NEWS01"}, ["NEWS01"]),
        ({"start": "2025-01-07", "end": "2025-01-07"}, ["NEWS01"]),
        ({"end": "2025-01-06"}, ["EVIL01"]),
        ({"genre": "sports"}, []),
    ],
)
def test_airing_filters(data: Any, filters: dict[str, Any], expected: list[str]) -> None:
    table = export_rows(dataset="airings", filters=filters)
    assert [row[1] for row in table.rows] == expected


def test_program_filter_accepts_a_primary_key(data: Any) -> None:
    table = export_rows(dataset="airings", filters={"program": data["news"].pk})
    assert [row[1] for row in table.rows] == ["NEWS01"]


def test_each_export_is_audited(analyst_client: APIClient, analyst: Any, data: Any) -> None:
    _post(analyst_client, {"format": "csv", "dataset": "airings", "filters": {"genre": "drama"}})
    event = AuditEvent.objects.get()
    assert event.action == "export"
    assert event.actor == analyst
    assert event.target.startswith("bms-airings-")
    assert event.details == {
        "dataset": "airings",
        "format": "csv",
        "filters": {
            "channel": None,
            "genre": "drama",
            "program": None,
            "start": None,
            "end": None,
            "targets": ["rating", "revenue", "audience", "engagement"],
        },
    }
    assert event.ip_address == "127.0.0.1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"format": "pdf", "dataset": "airings"}, "format"),
        ({"format": "csv", "dataset": "viewers"}, "dataset"),
        ({"dataset": "airings"}, "format"),
        ({"format": "csv", "filters": "drama"}, "filters"),
        ({"format": "csv", "filters": {"colour": "red"}}, "filters"),
        ({"format": "csv", "filters": {"channel": "zzz"}}, "filters"),
        ({"format": "csv", "filters": {"genre": "opera"}}, "filters"),
        ({"format": "csv", "filters": {"program": "NOPE"}}, "filters"),
        ({"format": "csv", "filters": {"program": True}}, "filters"),
        ({"format": "csv", "filters": {"start": "06/01/2025"}}, "filters"),
        ({"format": "csv", "filters": {"start": "2025-02-01", "end": "2025-01-01"}}, "filters"),
        ({"format": "csv", "filters": {"targets": ["likes"]}}, "filters"),
        ({"format": "csv", "filters": {"targets": "rating"}}, "filters"),
        (["csv"], "non_field_errors"),
    ],
)
def test_bad_requests_are_400_and_nothing_is_recorded(
    analyst_client: APIClient, data: Any, body: Any, field: str
) -> None:
    response = _post(analyst_client, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] in ("validation_error", "invalid_filter")
    assert field in error["details"]
    assert AuditEvent.objects.count() == 0


def test_filter_error_names_the_filter(analyst_client: APIClient, data: Any) -> None:
    response = _post(analyst_client, {"format": "csv", "filters": {"genre": "opera", "channel": "zzz"}})
    assert response.json()["error"]["code"] == "invalid_filter"
    assert set(response.json()["error"]["details"]["filters"]) == {"genre", "channel"}


def test_viewers_cannot_export(viewer_client: APIClient, data: Any) -> None:
    response = _post(viewer_client, {"format": "csv"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert AuditEvent.objects.count() == 0


def test_accept_header_does_not_break_the_download(analyst_client: APIClient, data: Any) -> None:
    response = _post(analyst_client, {"format": "csv"}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert _content(response).startswith(b"airing_id,")


def test_escape_formula() -> None:
    for bad in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert escape_formula(bad) == "'" + bad
    assert escape_formula("Evening News") == "Evening News"
    assert escape_formula("") == ""


def test_stream_validates_before_the_first_byte(data: Any) -> None:
    with pytest.raises(ApplicationError):
        export_stream(dataset="airings", fmt="pdf", filters={})
    with pytest.raises(ApplicationError):
        export_stream(dataset="airings", fmt="csv", filters={"genre": "opera"})


def test_stream_is_chunked(data: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("programs.export.CHUNK_ROWS", 1)
    chunks, content_type, filename = export_stream(dataset="airings", fmt="csv", filters=None)
    parts = list(chunks)
    assert len(parts) == 3  # header goes out with the first row, then one chunk per row
    assert content_type == "text/csv; charset=utf-8"
    assert filename.endswith(".csv")


def test_export_to_file_writes_under_export_root(data: Any, analyst: Any, settings: Any, tmp_path: Path) -> None:
    settings.EXPORT_ROOT = tmp_path / "exports"
    path = export_to_file(user=analyst, dataset="programs", fmt="xlsx", filters={"channel": "abc"})
    assert path.parent == tmp_path / "exports"
    assert path.suffix == ".xlsx"
    sheet = load_workbook(path).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == ["EVIL01"]
    assert list(path.parent.iterdir()) == [path]  # no .part file left behind
    assert AuditEvent.objects.filter(action="export", actor=analyst).count() == 1


@given(st.text(max_size=20))
def test_escaped_cells_never_start_like_a_formula(text: str) -> None:
    escaped = escape_formula(text)
    assert not escaped.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert escaped in (text, "'" + text)
