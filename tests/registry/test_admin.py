"""Admin: the algorithm x target matrix, promotion and rollback actions with confirmation and reason."""

from __future__ import annotations

import pytest
from django.test import Client

from registry.models import ModelVersion, PromotionEvent
from tests.registry.factories import version_factory


@pytest.fixture
def admin_browser(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.mark.django_db
def test_the_changelist_shows_the_algorithm_by_target_matrix(admin_browser):
    version_factory(r2=0.8123, status=ModelVersion.Status.PRODUCTION)
    response = admin_browser.get("/admin/registry/modelversion/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Algorithm x target" in body
    assert "R² 0.812" in body
    assert "<strong>production</strong>" in body


@pytest.mark.django_db
def test_promote_action_asks_for_confirmation_and_a_reason_first(admin_browser, admin_user):
    version = version_factory(r2=0.8)
    data = {"action": "promote", "_selected_action": [str(version.pk)]}
    confirm = admin_browser.post("/admin/registry/modelversion/", data)
    assert confirm.status_code == 200
    assert "Promote to production" in confirm.content.decode()
    assert ModelVersion.objects.get(pk=version.pk).status == "candidate"
    missing_reason = admin_browser.post("/admin/registry/modelversion/", {**data, "apply": "1", "reason": ""})
    assert missing_reason.status_code == 200
    assert PromotionEvent.objects.count() == 0
    done = admin_browser.post("/admin/registry/modelversion/", {**data, "apply": "1", "reason": "looks good"})
    assert done.status_code == 302
    assert ModelVersion.objects.get(pk=version.pk).status == "production"
    event = PromotionEvent.objects.get()
    assert (event.actor, event.reason) == (admin_user, "looks good")


@pytest.mark.django_db
def test_rollback_action_reports_a_refusal_without_changing_anything(admin_browser):
    version = version_factory(r2=0.8, status=ModelVersion.Status.PRODUCTION)
    data = {"action": "rollback_target", "_selected_action": [str(version.pk)], "apply": "1", "reason": "bad"}
    response = admin_browser.post("/admin/registry/modelversion/", data, follow=True)
    assert "no previous production version" in response.content.decode()
    assert ModelVersion.objects.get(pk=version.pk).status == "production"
    assert PromotionEvent.objects.count() == 0


@pytest.mark.django_db
def test_promotion_events_are_read_only_in_the_admin(admin_browser):
    version = version_factory(r2=0.8)
    from registry import services

    services.model_version_promote(version=version, actor=None, reason="x")
    event = PromotionEvent.objects.get()
    assert admin_browser.get(f"/admin/registry/promotionevent/{event.pk}/delete/").status_code == 403
    assert admin_browser.get("/admin/registry/promotionevent/add/").status_code == 403
