from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from programs.models import Airing, DataVersion
from tests.programs.factories import airing, channel, program

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client() -> Client:
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", ["channel", "program", "airing", "dataversion"])
def test_every_changelist_renders_with_search_and_filters(staff_client: Client, model: str) -> None:
    ch = channel(code="metro-seven", name="Metro Seven")
    for n in range(3):
        airing(program_obj=program(external_id=f"ABC10{n}", channel_obj=ch, title=f"Harbor {n}"))
    DataVersion.objects.create(source="import", description="test import", rows_affected=3)
    url = reverse(f"admin:programs_{model}_changelist")
    assert staff_client.get(url).status_code == 200
    assert staff_client.get(url, {"q": "Harbor"}).status_code == 200
    if model == "airing":
        response = staff_client.get(
            url, {"program__genre": "drama", "is_premiere__exact": "0", "channel__id__exact": str(ch.pk)}
        )
        assert response.status_code == 200
        assert response.context["cl"].result_count == 3


def test_airing_changelist_query_count_does_not_grow_with_rows(staff_client: Client) -> None:
    ch = channel()
    url = reverse("admin:programs_airing_changelist")
    airing(program_obj=program(channel_obj=ch))
    with CaptureQueriesContext(connection) as few:
        staff_client.get(url)
    for _ in range(10):
        airing(program_obj=program(channel_obj=ch))
    with CaptureQueriesContext(connection) as many:
        staff_client.get(url)
    assert len(many) == len(few)


def test_editing_an_airing_in_admin_bumps_the_data_version(staff_client: Client) -> None:
    row = airing(program_obj=program())
    url = reverse("admin:programs_airing_change", args=[row.pk])
    form = {
        "program": row.program_id,
        "channel": row.channel_id,
        "start_0": "2025-03-01",
        "start_1": "20:00:00",
        "duration_minutes": 60,
        "rating": "3.0",
        "audience": "250",
    }
    response = staff_client.post(url, form)
    assert response.status_code == 302
    version = DataVersion.objects.get()
    assert (version.source, version.rows_affected) == ("edit", 1)
    row.refresh_from_db()
    assert (row.rating, row.data_version) == (3.0, version.pk)
    assert Airing.objects.count() == 1
