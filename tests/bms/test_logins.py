"""Logins and tokens on a bad day: lockouts per account and per client IP on every login door, a client IP
that a header cannot forge, tokens that end with a password change or a logout."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from bms.client_ip import resolve_client_ip
from bms.models import AuditEvent
from bms.tokens import access_tokens_end

pytestmark = pytest.mark.django_db
OUTSIDE = "203.0.113.9"  # TEST-NET-3: neither internal nor a trusted proxy
LIMIT = 10  # settings.AXES_FAILURE_LIMIT (LOGIN_FAILURE_LIMIT)


def _token(client: APIClient, username: str, password: str, **extra: Any) -> Any:
    body = json.dumps({"username": username, "password": password})
    return client.post("/api/v1/auth/token", data=body, content_type="application/json", **extra)


def _pair(username: str) -> dict[str, str]:
    response = _token(APIClient(), username, "pw-" + username)
    assert response.status_code == 200
    return dict(response.json())


def _programs(access: str) -> int:
    return APIClient().get("/api/v1/programs", HTTP_AUTHORIZATION=f"Bearer {access}").status_code


def _refresh(refresh: str) -> Any:
    return APIClient().post("/api/v1/auth/token/refresh", {"refresh": refresh}, format="json")


# --- client IP -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.9", "127.0.0.1", [], "203.0.113.9"),  # no trusted proxy: the header is ignored
        ("203.0.113.9", "127.0.0.1", ["10.0.0.0/8"], "203.0.113.9"),  # the peer is not a trusted proxy
        ("10.0.0.2", "198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", "127.0.0.1, 198.51.100.1, 10.0.0.3", ["10.0.0.0/8"], "198.51.100.1"),  # forged left part
        ("10.0.0.2", "garbage, not-an-ip", ["10.0.0.0/8"], "10.0.0.2"),
        ("10.0.0.2", None, ["10.0.0.0/8"], "10.0.0.2"),
        ("10.0.0.2", "10.0.0.7, 10.0.0.3", ["10.0.0.0/8"], "10.0.0.7"),  # all hops trusted: the first one
    ],
)
def test_client_ip_comes_from_forwarded_for_only_behind_a_trusted_proxy(
    peer: str, forwarded: str | None, trusted: list[str], expected: str
) -> None:
    assert resolve_client_ip(peer, forwarded, trusted) == expected


def test_a_forwarded_loopback_does_not_open_deep_health() -> None:
    response = Client(REMOTE_ADDR=OUTSIDE).get("/health/deep", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_a_trusted_proxy_forwards_the_real_client(settings: Any, viewer: User) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    proxy = APIClient(REMOTE_ADDR="10.0.0.2")
    for _ in range(LIMIT):
        _token(proxy, "nobody", "wrong", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert _token(proxy, "nobody", "wrong", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429
    # Another client behind the same proxy is not locked out, and its address is the one audited.
    assert _token(proxy, "viewer", "pw-viewer", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 200
    assert AuditEvent.objects.get(action="token").ip_address == "198.51.100.2"


# --- lockouts -------------------------------------------------------------------------------------
def test_200_wrong_logins_with_rotating_forwarded_for_are_locked_out(viewer: User) -> None:
    client = APIClient(REMOTE_ADDR=OUTSIDE)
    statuses = [
        _token(client, "viewer", f"wrong-{i}", HTTP_X_FORWARDED_FOR=f"198.51.{i // 256}.{i % 256}").status_code
        for i in range(200)
    ]
    assert statuses == [401] * (LIMIT - 1) + [429] * (200 - LIMIT + 1)
    # The right password does not get through a lockout either, from this address or from another one.
    locked = _token(client, "viewer", "pw-viewer")
    assert locked.status_code == 429
    error = locked.json()["error"]
    assert error["code"] == "login_locked"
    assert error["details"] == {"retry_after_seconds": 900}
    assert locked["Retry-After"] == "900"
    assert _token(APIClient(REMOTE_ADDR="198.51.100.200"), "viewer", "pw-viewer").status_code == 429
    assert not AuditEvent.objects.filter(action="token").exists()


def test_one_address_trying_many_accounts_is_locked_out(viewer: User) -> None:
    client = APIClient(REMOTE_ADDR=OUTSIDE)
    statuses = [_token(client, f"user-{i}", "wrong").status_code for i in range(LIMIT + 5)]
    assert statuses == [401] * (LIMIT - 1) + [429] * 6
    assert _token(client, "viewer", "pw-viewer").status_code == 429
    # The account itself is not locked: the same user elsewhere signs in.
    assert _token(APIClient(REMOTE_ADDR="198.51.100.7"), "viewer", "pw-viewer").status_code == 200


def test_the_sign_in_page_locks_out_even_the_right_password(viewer: User) -> None:
    client = Client(REMOTE_ADDR=OUTSIDE)
    statuses = [client.post("/login/", {"username": "viewer", "password": "bad"}).status_code for _ in range(LIMIT)]
    assert statuses == [200] * (LIMIT - 1) + [429]
    response = client.post("/login/", {"username": "viewer", "password": "pw-viewer"})
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert b"Too many failed logins" in response.content
    assert "_auth_user_id" not in client.session


def test_the_admin_sign_in_locks_out_even_the_right_password(admin_user: User) -> None:
    client = Client(REMOTE_ADDR=OUTSIDE, HTTP_X_FORWARDED_FOR="127.0.0.1")
    for i in range(LIMIT):
        client.post("/admin/login/", {"username": "admin", "password": f"bad-{i}"})
    response = client.post("/admin/login/", {"username": "admin", "password": "pw-admin"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.filter(ip_address=OUTSIDE).exists()


# --- tokens ---------------------------------------------------------------------------------------
def test_a_password_change_ends_earlier_access_and_refresh_tokens(viewer: User) -> None:
    pair = _pair("viewer")
    assert _programs(pair["access"]) == 200
    viewer.set_password("a-new-password")
    viewer.save(update_fields=["password"])
    assert _programs(pair["access"]) == 401
    refreshed = _refresh(pair["refresh"])
    assert refreshed.status_code == 401
    assert refreshed.json()["error"]["code"] == "password_changed"
    fresh = _token(APIClient(), "viewer", "a-new-password").json()
    assert _programs(fresh["access"]) == 200
    assert _refresh(fresh["refresh"]).status_code == 200


def test_api_logout_blacklists_the_refresh_token(viewer: User) -> None:
    pair = _pair("viewer")
    client = APIClient()
    assert _programs(pair["access"]) == 200
    response = client.post("/api/v1/auth/logout", {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == 204
    assert _refresh(pair["refresh"]).status_code == 401
    # The access token of the pair ends with it (not 15 minutes later).
    ended = APIClient().get("/api/v1/programs", HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert ended.status_code == 401
    assert ended.json()["error"]["code"] == "token_not_valid"
    again = client.post("/api/v1/auth/logout", {"refresh": pair["refresh"]}, format="json")
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "token_not_valid"
    assert client.post("/api/v1/auth/logout", {"refresh": "nonsense"}, format="json").status_code == 401
    assert client.post("/api/v1/auth/logout", {}, format="json").status_code == 400
    assert BlacklistedToken.objects.count() == 1


def test_signing_out_of_the_pages_revokes_the_users_refresh_tokens(viewer: User, analyst: User) -> None:
    first, second, other = _pair("viewer"), _pair("viewer"), _pair("analyst")
    client = Client()
    client.force_login(viewer)
    assert client.post("/logout/").status_code == 302
    assert _refresh(first["refresh"]).status_code == 401
    assert _refresh(second["refresh"]).status_code == 401
    assert _refresh(other["refresh"]).status_code == 200  # someone else's tokens are untouched
    assert BlacklistedToken.objects.filter(token__user=viewer).count() == 2


def test_a_web_sign_out_ends_the_users_access_tokens_and_no_one_elses(viewer: User, analyst: User) -> None:
    pair, other = _pair("viewer"), _pair("analyst")
    client = Client()
    client.force_login(viewer)
    assert client.post("/logout/").status_code == 302
    assert _programs(pair["access"]) == 401
    assert _programs(other["access"]) == 200


def test_only_access_tokens_issued_up_to_the_sign_out_second_are_refused(viewer: User) -> None:
    now = int(time.time())
    access_tokens_end(user_id=viewer.pk, at=now - 5)  # signed out 5 s ago
    before = RefreshToken.for_user(viewer).access_token
    before.set_iat(at_time=datetime.fromtimestamp(now - 5, tz=UTC))
    after = RefreshToken.for_user(viewer).access_token  # issued now
    assert _programs(str(before)) == 401
    assert _programs(str(after)) == 200


def test_signing_out_of_admin_revokes_the_users_refresh_tokens(admin_user: User) -> None:
    pair = _pair("admin")
    client = Client()
    client.force_login(admin_user)
    assert client.post("/admin/logout/").status_code == 302
    assert _refresh(pair["refresh"]).status_code == 401
    assert OutstandingToken.objects.filter(user=admin_user, blacklistedtoken__isnull=True).count() == 0
