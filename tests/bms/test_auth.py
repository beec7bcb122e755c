"""Authentication: JWT pair/refresh/expiry/blacklist, API keys, session auth, audit events, admin."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from bms.errors import InvalidStateError
from bms.models import ApiKey, AuditEvent
from bms.services import api_key_create, api_key_revoke, hash_api_key
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _token(client: APIClient, username: str, password: str) -> Any:
    return client.post(
        "/api/v1/auth/token",
        data=json.dumps({"username": username, "password": password}),
        content_type="application/json",
    )


def _refresh(client: APIClient, refresh: str) -> Any:
    return client.post(
        "/api/v1/auth/token/refresh", data=json.dumps({"refresh": refresh}), content_type="application/json"
    )


def _programs(access: str) -> int:
    return APIClient().get("/api/v1/programs", HTTP_AUTHORIZATION=f"Bearer {access}").status_code


def test_token_pair_for_good_credentials_is_audited(viewer: User) -> None:
    response = _token(APIClient(), "viewer", "pw-viewer")
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    assert _programs(response.json()["access"]) == 200
    event = AuditEvent.objects.get(action="token")
    assert (event.actor, event.actor_name, event.details, event.ip_address) == (
        viewer,
        "viewer",
        {"grant": "password"},
        "127.0.0.1",
    )


def test_bad_credentials_are_401_and_audited_as_failed_login(viewer: User) -> None:
    response = _token(APIClient(), "viewer", "wrong")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "no_active_account"
    assert response.json()["error"]["message"] == "No active account found with the given credentials"
    assert list(AuditEvent.objects.values_list("action", "target")) == [("login_failed", "viewer")]


def test_token_request_without_password_is_400(viewer: User) -> None:
    response = APIClient().post("/api/v1/auth/token", data={"username": "viewer"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"password": ["This field is required."]}
    assert AuditEvent.objects.count() == 0


def test_access_token_expires_after_its_lifetime(viewer: User) -> None:
    with time_machine.travel(T0, tick=False):
        access = _token(APIClient(), "viewer", "pw-viewer").json()["access"]
    with time_machine.travel(T0 + timedelta(minutes=14), tick=False):
        assert _programs(access) == 200
    with time_machine.travel(T0 + timedelta(minutes=16), tick=False):
        response = APIClient().get("/api/v1/programs", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"


def test_refresh_rotates_and_blacklists_the_old_refresh_token(viewer: User) -> None:
    client = APIClient()
    with time_machine.travel(T0, tick=False):
        pair = _token(client, "viewer", "pw-viewer").json()
    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        rotated = _refresh(client, pair["refresh"])
        assert rotated.status_code == 200
        new = rotated.json()
        assert set(new) == {"access", "refresh"}
        assert new["refresh"] != pair["refresh"]
        assert _programs(new["access"]) == 200
        assert _programs(pair["access"]) == 401  # the old access token expired meanwhile
        reused = _refresh(client, pair["refresh"])
        assert reused.status_code == 401
        assert reused.json()["error"]["code"] == "token_not_valid"
        assert _refresh(client, new["refresh"]).status_code == 200
    grants = list(AuditEvent.objects.filter(action="token").order_by("id").values_list("details__grant", flat=True))
    assert grants == ["password", "refresh", "refresh"]


def test_refresh_token_expires_after_a_day(viewer: User) -> None:
    with time_machine.travel(T0, tick=False):
        refresh = _token(APIClient(), "viewer", "pw-viewer").json()["refresh"]
    with time_machine.travel(T0 + timedelta(days=1, minutes=1), tick=False):
        response = _refresh(APIClient(), refresh)
    assert response.status_code == 401
    assert AuditEvent.objects.filter(details__grant="refresh").count() == 0


def test_garbage_bearer_token_is_401_in_the_error_format(viewer: User) -> None:
    response = APIClient().get("/api/v1/programs", HTTP_AUTHORIZATION="Bearer not.a.jwt")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_api_key_from_the_command_authenticates_and_is_stored_hashed(viewer: User) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "viewer", "--name", "grafana", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    assert raw.startswith("bms_")
    assert "Store it now" in err.getvalue()
    key = ApiKey.objects.get()
    assert (key.name, key.user, key.prefix, key.key_hash) == ("grafana", viewer, raw[:12], hash_api_key(raw))
    assert raw not in json.dumps(list(ApiKey.objects.values()), default=str)
    response = APIClient().get("/api/v1/programs", HTTP_X_API_KEY=raw)
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert AuditEvent.objects.get(action="api_key").details == {"created": key.prefix, "user": "viewer"}


def test_api_key_role_is_its_users_role(viewer: User, analyst: User) -> None:
    _, viewer_key = api_key_create(user=viewer, name="v")
    _, analyst_key = api_key_create(user=analyst, name="a")
    body = json.dumps({"format": "json", "dataset": "programs"})
    assert (
        APIClient().post("/api/v1/export", body, content_type="application/json", HTTP_X_API_KEY=viewer_key).status_code
        == 403
    )
    assert (
        APIClient()
        .post("/api/v1/export", body, content_type="application/json", HTTP_X_API_KEY=analyst_key)
        .status_code
        == 200
    )


def test_revoked_and_unknown_api_keys_are_401(viewer: User) -> None:
    key, raw = api_key_create(user=viewer, name="etl")
    api_key_revoke(key=key, actor=viewer)
    for value in (raw, "bms_made-up", raw + "x"):
        response = APIClient().get("/api/v1/programs", HTTP_X_API_KEY=value)
        assert response.status_code == 401
        assert response.json()["error"] == {
            "code": "authentication_failed",
            "message": "Invalid or revoked API key.",
            "details": {},
        }
    assert AuditEvent.objects.filter(action="api_key", details__revoked=key.prefix).count() == 1


def test_revoking_twice_is_an_invalid_state(viewer: User) -> None:
    key, _ = api_key_create(user=viewer, name="etl")
    api_key_revoke(key=key)
    first = ApiKey.objects.get().revoked_at
    with pytest.raises(InvalidStateError):
        api_key_revoke(key=key)
    assert ApiKey.objects.get().revoked_at == first


def test_api_key_of_an_inactive_user_is_refused(viewer: User) -> None:
    _, raw = api_key_create(user=viewer, name="etl")
    viewer.is_active = False
    viewer.save(update_fields=["is_active"])
    assert APIClient().get("/api/v1/programs", HTTP_X_API_KEY=raw).status_code == 401


def test_create_api_key_command_rejects_unknown_users(db: Any) -> None:
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("create_api_key", "ghost", "--name", "x", stdout=io.StringIO())
    assert ApiKey.objects.count() == 0


def test_user_without_a_role_is_forbidden(db: Any) -> None:
    make_user("nobody", None)
    access = _token(APIClient(), "nobody", "pw-nobody").json()["access"]
    response = APIClient().get("/api/v1/programs", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_session_login_is_audited_and_works_for_the_api(viewer: User) -> None:
    # Through the sign-in form: django-axes needs the request that every real login has.
    client = Client()
    assert client.post("/login/", {"username": "viewer", "password": "pw-viewer"}).status_code == 302
    assert client.get("/api/v1/programs").status_code == 200
    assert AuditEvent.objects.filter(action="login", actor=viewer).count() == 1
    assert Client().post("/login/", {"username": "viewer", "password": "nope"}).status_code == 200
    assert AuditEvent.objects.filter(action="login_failed", target="viewer").count() == 1


def test_session_auth_needs_a_csrf_token_for_writes(analyst: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(analyst)
    response = client.post("/api/v1/export", data={"format": "csv"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "CSRF" in response.json()["error"]["message"]
    assert AuditEvent.objects.filter(action="export").count() == 0


# --- admin ----------------------------------------------------------------------------------


@pytest.fixture
def superuser_client(db: Any) -> Client:
    su = User.objects.create_superuser("root", "root@example.com", "pw-root")
    client = Client()
    client.force_login(su)
    return client


def test_admin_creates_a_key_and_shows_it_once(superuser_client: Client, viewer: User) -> None:
    response = superuser_client.post("/admin/bms/apikey/add/", {"name": "grafana", "user": viewer.pk}, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    key = ApiKey.objects.get()
    raw = next(m.split(": ")[-1] for m in shown if "will not be shown again" in m)
    assert hash_api_key(raw) == key.key_hash
    assert APIClient().get("/api/v1/programs", HTTP_X_API_KEY=raw).status_code == 200
    page = superuser_client.get(f"/admin/bms/apikey/{key.pk}/change/")
    assert raw not in page.content.decode()
    event = AuditEvent.objects.get(action="api_key")
    assert event.actor_name == "root"


def test_admin_revoke_action(superuser_client: Client, viewer: User) -> None:
    key, raw = api_key_create(user=viewer, name="etl")
    response = superuser_client.post(
        "/admin/bms/apikey/", {"action": "revoke", "_selected_action": [key.pk]}, follow=True
    )
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert APIClient().get("/api/v1/programs", HTTP_X_API_KEY=raw).status_code == 401


def test_audit_events_are_read_only_in_admin(superuser_client: Client, viewer: User) -> None:
    api_key_create(user=viewer, name="etl")
    event = AuditEvent.objects.get(action="api_key")
    assert superuser_client.get("/admin/bms/auditevent/").status_code == 200
    assert superuser_client.get("/admin/bms/auditevent/add/").status_code == 403
    superuser_client.post(f"/admin/bms/auditevent/{event.pk}/change/", {"target": "forged"})
    superuser_client.post(f"/admin/bms/auditevent/{event.pk}/delete/", {"post": "yes"})
    event.refresh_from_db()
    assert event.target == "etl"


def test_every_admin_change_is_audited(superuser_client: Client) -> None:
    from programs.models import Channel

    superuser_client.post(
        "/admin/programs/channel/add/",
        {"code": "abc", "name": "ABC", "universe_households": 1000, "time_zone": "America/New_York"},
        follow=True,
    )
    channel = Channel.objects.get()
    superuser_client.post(
        f"/admin/programs/channel/{channel.pk}/change/",
        {"code": "abc", "name": "ABC East", "universe_households": 1000, "time_zone": "America/Chicago"},
        follow=True,
    )
    superuser_client.post(
        "/admin/programs/channel/", {"action": "delete_selected", "_selected_action": [channel.pk], "post": "yes"}
    )
    assert not Channel.objects.exists()
    events = list(AuditEvent.objects.filter(action="admin").order_by("id").values_list("target", "details__op"))
    label = f"programs.Channel:{channel.pk}"
    assert events == [(label, "add"), (label, "change"), ("programs.Channel", "delete")]
    assert AuditEvent.objects.filter(action="admin").values_list("actor_name", flat=True).first() == "root"


def test_admin_actions_are_audited(superuser_client: Client, viewer: User) -> None:
    key, _ = api_key_create(user=viewer, name="etl")
    superuser_client.post("/admin/bms/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    event = AuditEvent.objects.get(action="admin")
    assert event.target == "bms.ApiKey"
    assert event.details == {"op": "action", "name": "revoke", "count": 1, "pks": [str(key.pk)]}
