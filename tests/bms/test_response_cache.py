"""The cached list responses (bms.response_cache): invalidated by imports, training and promotions,
one entry per role, hits that read no catalogue table, and the cache off with RESPONSE_CACHE_SECONDS=0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from programs.importer import airings_import
from programs.models import Program
from registry import services as registry_services
from registry.models import ModelVersion
from tests.programs.factories import canonical_row, write_csv
from tests.registry.factories import version_factory

pytestmark = pytest.mark.django_db


def _titles(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [p["title"] for p in response.json()["results"]]


def _import(tmp_path: Path, name: str, **row: Any) -> None:
    airings_import(path=write_csv(tmp_path / f"{name}.csv", [canonical_row(**row)]))


def test_a_cached_program_list_changes_after_an_import(viewer_client: APIClient, tmp_path: Path) -> None:
    _import(tmp_path, "one", external_id="A1", title="Alpha")
    assert _titles(viewer_client.get("/api/v1/programs")) == ["Alpha"]
    # A write no data version records (none of BMS's writers does this) is not seen while the entry lives...
    Program.objects.filter(external_id="A1").update(title="Alpha (renamed)")
    assert _titles(viewer_client.get("/api/v1/programs")) == ["Alpha"]
    # ...but an import bumps the data version, so the next list is built again from the database.
    _import(tmp_path, "two", external_id="B2", title="Bravo", start="2025-03-02T20:00:00-05:00")
    assert _titles(viewer_client.get("/api/v1/programs")) == ["Alpha (renamed)", "Bravo"]


def test_the_query_string_is_part_of_the_key(viewer_client: APIClient, tmp_path: Path) -> None:
    _import(tmp_path, "one", external_id="A1", title="Alpha")
    _import(tmp_path, "two", external_id="B2", title="Bravo", start="2025-03-02T20:00:00-05:00")
    assert _titles(viewer_client.get("/api/v1/programs", {"search": "alp"})) == ["Alpha"]
    assert _titles(viewer_client.get("/api/v1/programs", {"search": "bra"})) == ["Bravo"]
    assert _titles(viewer_client.get("/api/v1/programs", {"ordering": "-title"})) == ["Bravo", "Alpha"]


def test_a_hit_reads_no_catalogue_table(viewer_client: APIClient, tmp_path: Path) -> None:
    _import(tmp_path, "one", external_id="A1", title="Alpha")
    first = viewer_client.get("/api/v1/programs", {"page_size": 10})
    with CaptureQueriesContext(connection) as ctx:
        second = viewer_client.get("/api/v1/programs", {"page_size": 10})
    assert second.json() == first.json()
    sql = " ".join(q["sql"].lower() for q in ctx.captured_queries)
    for table in ("programs_airing", "programs_program", "programs_programstats", "programs_channel"):
        assert table not in sql
    assert "programs_dataversion" in sql  # the key's version was read


def test_viewer_and_admin_do_not_share_an_entry(
    viewer_client: APIClient, admin_client_api: APIClient, tmp_path: Path
) -> None:
    _import(tmp_path, "one", external_id="A1", title="Alpha")
    assert _titles(admin_client_api.get("/api/v1/programs")) == ["Alpha"]
    Program.objects.filter(external_id="A1").update(title="Alpha (renamed)")
    # The admin's entry is not the viewer's: the viewer's list is built for the viewer.
    assert _titles(viewer_client.get("/api/v1/programs")) == ["Alpha (renamed)"]
    assert _titles(admin_client_api.get("/api/v1/programs")) == ["Alpha"]


def test_errors_are_not_cached(viewer_client: APIClient, tmp_path: Path) -> None:
    assert viewer_client.get("/api/v1/programs", {"page": 2}).status_code == 404
    for i in range(3):
        _import(tmp_path, f"f{i}", external_id=f"P{i}", title=f"T{i}", start=f"2025-03-0{i + 1}T20:00:00-05:00")
    assert viewer_client.get("/api/v1/programs", {"genre": "nope"}).status_code == 400
    assert viewer_client.get("/api/v1/programs", {"page_size": 2, "page": 2}).status_code == 200


def test_the_cache_can_be_switched_off(viewer_client: APIClient, tmp_path: Path, settings: Any) -> None:
    settings.RESPONSE_CACHE_SECONDS = 0
    _import(tmp_path, "one", external_id="A1", title="Alpha")
    assert _titles(viewer_client.get("/api/v1/programs")) == ["Alpha"]
    Program.objects.filter(external_id="A1").update(title="Alpha (renamed)")
    assert _titles(viewer_client.get("/api/v1/programs")) == ["Alpha (renamed)"]


def _statuses(response: Any) -> dict[int, str]:
    assert response.status_code == 200, response.content
    return {v["id"]: v["status"] for v in response.json()["results"]}


def test_a_cached_model_list_changes_after_training_and_a_promotion(viewer_client: APIClient, admin_user: Any) -> None:
    first = version_factory(r2=0.8)
    assert _statuses(viewer_client.get("/api/v1/models")) == {first.pk: "candidate"}
    second = version_factory(algorithm="mlp", r2=0.85)  # a training run registers a new version
    assert _statuses(viewer_client.get("/api/v1/models")) == {first.pk: "candidate", second.pk: "candidate"}
    registry_services.model_version_promote(version=second, actor=admin_user, reason="better")
    assert _statuses(viewer_client.get("/api/v1/models")) == {first.pk: "candidate", second.pk: "production"}


def test_the_model_list_leaves_out_daily_errors_but_keeps_them_stored(viewer_client: APIClient) -> None:
    daily = {"first_day": "2025-01-01", "last_day": "2025-01-03", "sse": [1.0, 2.0, 3.0], "n": [4, 5, 6]}
    version = version_factory(metrics={"daily_errors": daily})
    served = viewer_client.get("/api/v1/models").json()["results"][0]["metrics"]
    assert "daily_errors" not in served
    assert served["r2"] == pytest.approx(0.8)
    assert ModelVersion.objects.get(pk=version.pk).metrics["daily_errors"] == daily
    best = viewer_client.get("/api/v1/models/audience/best")  # the detail output leaves them out too
    assert best.status_code == 200
    assert best.json()["id"] == version.pk
    assert "daily_errors" not in best.json()["metrics"]


def test_a_hit_is_the_stored_body_of_the_miss_and_the_negotiated_format_is_part_of_the_key(
    viewer_client: APIClient, tmp_path: Path
) -> None:
    _import(tmp_path, "one", external_id="A1", title="Alpha")
    miss = viewer_client.get("/api/v1/programs")
    hit = viewer_client.get("/api/v1/programs")
    assert (hit.status_code, hit["Content-Type"], hit.content) == (200, "application/json", miss.content)
    assert hit.json()["results"][0]["title"] == "Alpha"
    indented = viewer_client.get("/api/v1/programs", HTTP_ACCEPT="application/json; indent=2")
    assert indented.content.startswith(b'{\n  "count": 1,')
    assert viewer_client.get("/api/v1/programs").content == miss.content  # not the indented entry
    assert viewer_client.get("/api/v1/programs", HTTP_ACCEPT="text/html").status_code == 406


def test_a_cached_model_list_changes_after_a_version_is_deleted(viewer_client: APIClient) -> None:
    older, newer = version_factory(r2=0.8), version_factory(algorithm="mlp", r2=0.85)
    assert _statuses(viewer_client.get("/api/v1/models")) == {older.pk: "candidate", newer.pk: "candidate"}
    ModelVersion.objects.filter(pk=older.pk).delete()  # not the newest id: the version count marks it
    assert _statuses(viewer_client.get("/api/v1/models")) == {newer.pk: "candidate"}
