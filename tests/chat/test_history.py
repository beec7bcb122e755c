"""One contract, run against every history store: Django (default), mongomock, and a real MongoDB
when MONGO_URL is set."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import mongomock
import pytest
from django.conf import settings

from bms.errors import NotFoundError
from chat.history import DjangoHistoryStore, MongoHistoryStore, get_store
from chat.models import ChatMessage, ChatSession
from tests.chat.factories import user_factory

STORES = ["django", "mongomock", "mongo"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, db: Any) -> Iterator[Any]:
    if request.param == "django":
        yield DjangoHistoryStore()
    elif request.param == "mongomock":
        yield MongoHistoryStore(client=mongomock.MongoClient(tz_aware=True), db_name="bms_test")
    else:
        if not settings.MONGO_URL:
            pytest.skip("needs MongoDB: set MONGO_URL")
        import pymongo

        client: Any = pymongo.MongoClient(settings.MONGO_URL, serverSelectionTimeoutMS=2000, tz_aware=True)
        name = f"bms_test_{uuid.uuid4().hex[:8]}"
        yield MongoHistoryStore(client=client, db_name=name)
        client.drop_database(name)


def test_a_created_session_is_found_by_its_owner(store: Any) -> None:
    owner = user_factory("owner")
    created = store.session_create(owner_id=owner.pk, title="Q1 review")
    found = store.session_get(session_id=created.id, owner_id=owner.pk)
    assert found == created
    assert uuid.UUID(found.id)
    assert found.title == "Q1 review"


def test_another_users_session_is_not_found(store: Any) -> None:
    owner, other = user_factory("owner"), user_factory("other")
    created = store.session_create(owner_id=owner.pk)
    with pytest.raises(NotFoundError):
        store.session_get(session_id=created.id, owner_id=other.pk)


@pytest.mark.parametrize("bad", ["nope", "", None, 12, str(uuid.uuid4())])
def test_unknown_or_malformed_session_ids_are_not_found(store: Any, bad: Any) -> None:
    owner = user_factory("owner")
    with pytest.raises(NotFoundError):
        store.session_get(session_id=bad, owner_id=owner.pk)


def test_messages_come_back_in_order_with_metadata(store: Any) -> None:
    owner = user_factory("owner")
    session = store.session_create(owner_id=owner.pk)
    for i in range(5):
        store.message_add(session_id=session.id, role="user", content=f"q{i}", metadata={})
        store.message_add(session_id=session.id, role="assistant", content=f"a{i}", metadata={"n": i, "x": [1.5]})
    messages = store.message_list(session_id=session.id)
    assert [m.content for m in messages] == [c for i in range(5) for c in (f"q{i}", f"a{i}")]
    assert [m.role for m in messages[:2]] == ["user", "assistant"]
    assert messages[-1].metadata == {"n": 4, "x": [1.5]}
    assert all(m.created_at.tzinfo is not None for m in messages)
    assert [m.content for m in store.message_list(session_id=session.id, limit=3)] == ["a3", "q4", "a4"]


def test_sessions_do_not_share_messages(store: Any) -> None:
    owner = user_factory("owner")
    first, second = store.session_create(owner_id=owner.pk), store.session_create(owner_id=owner.pk)
    store.message_add(session_id=first.id, role="user", content="only here", metadata={})
    assert store.message_list(session_id=second.id) == []
    assert [m.content for m in store.message_list(session_id=first.id)] == ["only here"]


def test_an_unknown_role_is_refused_and_nothing_is_written(store: Any) -> None:
    owner = user_factory("owner")
    session = store.session_create(owner_id=owner.pk)
    with pytest.raises(ValueError):
        store.message_add(session_id=session.id, role="system", content="x", metadata={})
    assert store.message_list(session_id=session.id) == []


def test_the_default_store_is_the_django_one_and_writes_rows(db: Any) -> None:
    owner = user_factory("owner")
    store = get_store()
    assert store.name == "django"
    session = store.session_create(owner_id=owner.pk)
    store.message_add(session_id=session.id, role="user", content="hi", metadata={"provider": "offline"})
    assert ChatSession.objects.filter(owner=owner).count() == 1
    assert list(ChatMessage.objects.values_list("content", "metadata")) == [("hi", {"provider": "offline"})]


def test_mongo_url_selects_the_mongo_store(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    import chat.history as history

    client: mongomock.MongoClient[dict[str, Any]] = mongomock.MongoClient(tz_aware=True)
    settings.MONGO_URL = "mongodb://127.0.0.1:1/"
    history._mongo_store.cache_clear()
    monkeypatch.setattr(history, "mongo_client", lambda: client)
    try:
        store = history.get_store()
        assert store.name == "mongo"
        history.mongo_ping()  # mongomock answers the ping
    finally:
        history._mongo_store.cache_clear()


def test_an_exchange_is_stored_as_a_question_and_its_answer(store: Any) -> None:
    owner = user_factory("owner")
    session = store.session_create(owner_id=owner.pk)
    store.message_add(session_id=session.id, role="user", content="first", metadata={})
    store.exchange_add(session_id=session.id, question="q", answer="a", metadata={"tool_calls": []})
    store.exchange_add(session_id=session.id, question="q2", answer="a2", metadata={})
    messages = store.message_list(session_id=session.id)
    assert [(m.role, m.content) for m in messages] == [
        ("user", "first"),
        ("user", "q"),
        ("assistant", "a"),
        ("user", "q2"),
        ("assistant", "a2"),
    ]
    assert messages[2].metadata == {"tool_calls": []}


def test_sessions_are_listed_for_their_owner_newest_first(store: Any) -> None:
    owner, other = user_factory("owner"), user_factory("other")
    made = [store.session_create(owner_id=owner.pk, title=f"s{i}") for i in range(4)]
    store.session_create(owner_id=other.pk, title="not mine")
    listed = store.session_list(owner_id=owner.pk, limit=3)
    assert [s.title for s in listed] == ["s3", "s2", "s1"]
    assert listed[0] == made[3]
    assert store.session_list(owner_id=user_factory("nobody").pk, limit=5) == []


def test_a_session_without_a_title_takes_its_first_question(store: Any) -> None:
    owner = user_factory("owner")
    blank = store.session_create(owner_id=owner.pk)
    named = store.session_create(owner_id=owner.pk, title="Kept")
    long = "Which programs had the best rating last week on every channel, and how did the share move " * 2
    store.exchange_add(session_id=blank.id, question=long, answer="a", metadata={})
    store.exchange_add(session_id=blank.id, question="a second question", answer="b", metadata={})
    store.exchange_add(session_id=named.id, question="ignored for the title", answer="c", metadata={})
    title = store.session_get(session_id=blank.id, owner_id=owner.pk).title
    assert title == "Which programs had the best rating last week on every channel, and how did the…"
    assert len(title) <= 80
    assert store.session_get(session_id=named.id, owner_id=owner.pk).title == "Kept"


def test_the_title_lookup_finds_only_the_owners_session(store: Any) -> None:
    owner, other = user_factory("owner"), user_factory("other")
    named = store.session_create(owner_id=owner.pk, title="Q1 review")
    blank = store.session_create(owner_id=owner.pk)
    assert store.session_title(session_id=named.id, owner_id=owner.pk) == (named.id, "Q1 review")
    assert store.session_title(session_id=uuid.UUID(blank.id).hex, owner_id=owner.pk) == (blank.id, "")
    for owner_id, session_id in ((other.pk, named.id), (owner.pk, str(uuid.uuid4())), (owner.pk, "nope")):
        with pytest.raises(NotFoundError):
            store.session_title(session_id=session_id, owner_id=owner_id)


def test_an_exchange_in_a_titled_session_writes_both_messages_and_keeps_the_title(store: Any) -> None:
    owner = user_factory("owner")
    session = store.session_create(owner_id=owner.pk, title="Kept")
    metadata = {"cache_hit": True, "tool_calls": [{"name": "get_programs", "arguments": {"n": 5}}], "latency_ms": 1.5}
    store.exchange_add(session_id=session.id, question="q ü 'quoted'", answer="a\nb", metadata=metadata, titled=True)
    messages = store.message_list(session_id=session.id)
    assert [(m.role, m.content, m.metadata) for m in messages] == [
        ("user", "q ü 'quoted'", {}),
        ("assistant", "a\nb", metadata),
    ]
    assert messages[0].created_at == messages[1].created_at
    assert store.session_get(session_id=session.id, owner_id=owner.pk).title == "Kept"


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_only_the_history_commit_skips_the_wal_wait() -> None:
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    store = DjangoHistoryStore()
    session = store.session_create(owner_id=user_factory("owner").pk, title="t")

    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return str(cursor.fetchone()[0])

    before = setting()
    store.exchange_add(session_id=session.id, question="q", answer="a", metadata={}, titled=True)
    assert setting() == before  # the statement's own transaction took it; the connection keeps its own
    with transaction.atomic():
        store.exchange_add(session_id=session.id, question="q2", answer="a2", metadata={}, titled=True)
        assert setting() == "off"  # the insert turned it off for the transaction it ran in
    assert setting() == before
    assert ChatMessage.objects.filter(session_id=uuid.UUID(session.id)).count() == 4
