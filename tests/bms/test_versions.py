"""Version marks (bms.versions): one statement for any set of marks, each changing with its table."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bms.versions import count, newest, versions_read
from programs.models import DataVersion
from programs.services import data_version_bump
from registry.models import PromotionEvent

pytestmark = pytest.mark.django_db


def test_empty_tables_read_as_zero() -> None:
    assert versions_read(newest(DataVersion), count(DataVersion), newest(PromotionEvent)) == (0, 0, 0)
    assert versions_read() == ()


def test_newest_is_the_last_inserted_id_and_count_sees_deletions(db: Any) -> None:
    first = data_version_bump(source="edit")
    second = data_version_bump(source="edit")
    marks = (newest(DataVersion), count(DataVersion))
    assert versions_read(*marks) == (second.pk, 2)
    DataVersion.objects.filter(pk=first.pk).delete()
    assert versions_read(*marks) == (second.pk, 1)


def test_any_set_of_marks_is_one_statement() -> None:
    data_version_bump(source="edit")
    with CaptureQueriesContext(connection) as ctx:
        values = versions_read(newest(DataVersion), newest(PromotionEvent), count(DataVersion))
    assert len(ctx.captured_queries) == 1
    assert values[1:] == (0, 1)
