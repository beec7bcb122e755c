"""Chat pages (sessions, history, escaping) and the monitoring page."""

from uuid import UUID

import pytest
from django.test import Client

from bms.models import AuditEvent
from chat.models import ChatMessage, ChatSession
from chat.services import chat_answer, chat_session_create


@pytest.mark.django_db
def test_new_conversation_is_created_and_opened(analyst_web, analyst):
    response = analyst_web.post("/chat/new")
    session = ChatSession.objects.get(owner=analyst)
    assert response.status_code == 302
    assert response["Location"] == f"/chat/{session.id}/"
    html = analyst_web.get(response["Location"]).content.decode()
    assert f'data-session="{session.id}"' in html
    assert '<label for="chat-input">Your question' in html
    assert 'name="csrfmiddlewaretoken"' in html


@pytest.mark.django_db
def test_history_is_rendered_as_text_with_its_metadata(analyst_web, analyst, broadcasts, django_assert_max_num_queries):
    session = chat_session_create(user=analyst)
    chat_answer(user=analyst, session_id=session.id, message="<b>top 3 programs by audience</b>")
    analyst_web.get(f"/chat/{session.id}/")
    with django_assert_max_num_queries(10):
        response = analyst_web.get(f"/chat/{session.id}/")
    html = response.content.decode()
    assert "<b>top 3 programs" not in html
    assert "&lt;b&gt;top 3 programs by audience&lt;/b&gt;" in html
    assistant = ChatMessage.objects.get(session_id=UUID(session.id), role="assistant")
    assert assistant.metadata["tool_calls"][0]["name"]  # the page hands this to chat.js via json_script
    assert '<script id="chat-history" type="application/json">' in html


@pytest.mark.django_db
def test_sessions_list_shows_only_the_users_own(analyst_web, analyst, admin_user):
    mine = chat_session_create(user=analyst, title="Mine")
    theirs = chat_session_create(user=admin_user, title="Theirs")
    html = analyst_web.get("/chat/").content.decode()
    assert f'href="/chat/{mine.id}/"' in html
    assert f'href="/chat/{theirs.id}/"' not in html
    assert analyst_web.get(f"/chat/{theirs.id}/").status_code == 404
    assert analyst_web.get("/chat/not-a-uuid/").status_code == 404


@pytest.mark.django_db
def test_a_viewer_cannot_chat(viewer_web):
    assert viewer_web.get("/chat/").status_code == 403
    assert viewer_web.post("/chat/new").status_code == 403
    assert ChatSession.objects.count() == 0


@pytest.mark.django_db
def test_monitoring_shows_health_stats_and_recent_errors(admin_web, analyst, django_assert_max_num_queries):
    Client().post("/login/", {"username": "analyst", "password": "wrong"})
    assert AuditEvent.objects.filter(action="login_failed").count() == 1
    admin_web.get("/monitoring/")
    with django_assert_max_num_queries(12):
        response = admin_web.get("/monitoring/")
    html = response.content.decode()
    assert response.status_code == 200
    for check in ("database", "redis", "disk", "memory", "llm", "mongo"):
        assert f"<tr><td>{check}</td>" in html
    assert 'href="/metrics"' in html
    assert 'href="http://127.0.0.1:3000"' in html
    assert "offline agent" in html
    assert "No chat question yet." in html
    recent = html.split('id="h-errors"')[1]
    assert "analyst" in recent.split("Failed logins")[1]


@pytest.mark.django_db
def test_worker_status_in_embedded_mode(admin_web, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert admin_web.get("/monitoring/workers").json() == {
        "ok": True,
        "mode": "eager",
        "workers": [],
        "detail": "tasks run in-process (embedded mode)",
    }


@pytest.mark.django_db
def test_monitoring_is_for_admins_only(analyst_web, viewer_web):
    assert analyst_web.get("/monitoring/").status_code == 403
    assert viewer_web.get("/monitoring/workers").status_code == 403


@pytest.mark.django_db
def test_the_sessions_list_reads_the_mongo_store_when_it_is_configured(analyst_web, analyst, monkeypatch):
    import mongomock

    from chat import history, services

    mongo = history.MongoHistoryStore(client=mongomock.MongoClient(tz_aware=True), db_name="bms_web_test")
    monkeypatch.setattr(services, "get_store", lambda: mongo)
    session = chat_session_create(user=analyst)
    chat_answer(user=analyst, session_id=session.id, message="top 3 programs by audience")
    assert ChatSession.objects.count() == 0  # nothing in the relational store
    html = analyst_web.get("/chat/").content.decode()
    assert f'href="/chat/{session.id}/"' in html
    assert "top 3 programs by audience" in html  # the first question is the session's title
