"""Chat history behind one interface: Django models (default) or MongoDB through pymongo.

``get_store()`` returns the MongoDB store when ``settings.MONGO_URL`` is set, else the Django store.
Both keep the same contract (tests/chat/test_history.py runs the same tests against each): a user
only ever reaches their own sessions; any other session id is "not found".
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol, TypeAlias, TypedDict, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone

from bms.errors import NotFoundError
from bms.jsontypes import JSONObject

if TYPE_CHECKING:
    from pymongo import MongoClient
    from pymongo.collection import Collection

    from chat.models import ChatSession

SessionKey: TypeAlias = str | uuid.UUID
"""A session id as callers hold it: the URL's or the request's text, or the model's UUID. Anything
that does not parse as a UUID is "not found"."""


class Grounding(TypedDict):
    replaced: bool
    problems: list[str]


class Fallback(TypedDict):
    reason: str
    failures: list[str]


class AnswerMeta(TypedDict, total=False):
    """An answer's metadata, as returned to the caller and stored with the assistant's message (the
    user's message stores an empty one). Every key is optional: older rows and cached answers may
    lack the newer ones."""

    provider: str
    model_used: str
    cache_hit: bool
    tokens_used: int
    tokens_saved: int
    input_tokens: int
    output_tokens: int
    latency_ms: float
    tool_calls: list[JSONObject]  # ``ToolCall.as_dict()``
    usage: dict[str, list[int]]  # provider -> [input, output] tokens
    tool_calls_capped: bool
    provider_failures: list[str]
    refused_tools: list[str]
    refused: str
    fallback: Fallback
    grounding: Grounding
    clarification: bool
    question: str
    follow_up: bool
    unavailable: dict[str, str]


@dataclass(frozen=True)
class SessionRecord:
    id: str
    owner_id: int
    title: str
    created_at: datetime


@dataclass(frozen=True)
class MessageRecord:
    role: str
    content: str
    created_at: datetime
    metadata: AnswerMeta = field(default_factory=lambda: AnswerMeta())

    def as_dict(self) -> dict[str, object]:
        return {
            "role": self.role,
            "content": self.content,
            "metadata": self.metadata,
            "created_at": self.created_at.isoformat(),
        }


ROLES = ("user", "assistant")


def _session_uuid(session_id: SessionKey) -> str:
    try:
        return str(uuid.UUID(str(session_id)))
    except (TypeError, ValueError, AttributeError):
        raise NotFoundError("Chat session not found.") from None


class HistoryStore(Protocol):
    name: str

    def session_create(self, *, owner_id: int, title: str = "") -> SessionRecord: ...

    def session_get(self, *, session_id: SessionKey, owner_id: int) -> SessionRecord: ...

    def session_title(self, *, session_id: SessionKey, owner_id: int) -> tuple[str, str]:
        """``(session id, title)`` of the owner's session: ``session_get`` for the chat's hot path
        (the one lookup every question pays), which needs no more than that."""
        ...

    def session_list(self, *, owner_id: int, limit: int) -> list[SessionRecord]:
        """The owner's sessions, newest first."""
        ...

    def message_add(
        self, *, session_id: SessionKey, role: str, content: str, metadata: AnswerMeta
    ) -> MessageRecord: ...

    def message_list(self, *, session_id: SessionKey, limit: int | None = None) -> list[MessageRecord]: ...

    def exchange_add(
        self, *, session_id: SessionKey, question: str, answer: str, metadata: AnswerMeta, titled: bool = False
    ) -> None:
        """A user message and the assistant's answer, written together (one round trip).

        ``session_id`` comes from ``session_get`` (ownership already checked). A session without a
        title takes its first question as its title (``title_from``); ``titled``: the caller's session
        record already has one, so that write is skipped.
        """
        ...


TITLE_LENGTH = 80


def title_from(question: str) -> str:
    """A session title from a question: its first line, cut at a word within TITLE_LENGTH characters."""
    line = " ".join(question.strip().splitlines()[0].split()) if question.strip() else ""
    if len(line) <= TITLE_LENGTH:
        return line
    cut = line[: TITLE_LENGTH - 1].rsplit(" ", 1)[0] or line[: TITLE_LENGTH - 1]
    return cut + "…"


_MESSAGE_FIELDS = ("session", "role", "content", "metadata", "created_at")


_MessageRow: TypeAlias = tuple[uuid.UUID, str, str, AnswerMeta, datetime]


def _messages_insert(rows: list[_MessageRow]) -> None:
    """Insert chat messages ``(session id, role, content, metadata, created_at)`` in one statement.

    Every question pays this write, so it is a single INSERT (``bulk_create`` inside ``atomic`` cost
    four round trips on PostgreSQL: BEGIN, SET LOCAL, INSERT, COMMIT). The values are prepared by the
    model's own fields, as ``bulk_create`` does. On PostgreSQL the statement also turns off
    ``synchronous_commit`` for its own transaction: the history is a log of answers already given, so a
    crash may lose its last few messages (never corrupt them) and the commit does not wait for the WAL
    flush (a few milliseconds on a slow disk). Inside an outer transaction that setting lasts until it
    ends, as ``SET LOCAL`` did.
    """
    from chat.models import ChatMessage

    fields = [cast("Field[object, object]", ChatMessage._meta.get_field(name)) for name in _MESSAGE_FIELDS]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in fields)
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    values = ", ".join([row_sql] * len(rows))
    params = [f.get_db_prep_save(v, connection) for row in rows for f, v in zip(fields, row, strict=True)]
    table = quote(ChatMessage._meta.db_table)
    if connection.vendor == "postgresql":
        async_commit = "WITH _async AS (SELECT set_config('synchronous_commit', 'off', true)) "
        sql = f"{async_commit}INSERT INTO {table} ({columns}) SELECT v.* FROM (VALUES {values}) AS v CROSS JOIN _async"  # noqa: S608  # nosec B608 - the model's names; values bound
    else:
        sql = f"INSERT INTO {table} ({columns}) VALUES {values}"  # noqa: S608  # nosec B608 - the model's names; values bound
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


class DjangoHistoryStore:
    """The relational store (PostgreSQL in production, SQLite embedded)."""

    name = "django"

    @staticmethod
    def _record(row: ChatSession) -> SessionRecord:
        return SessionRecord(id=str(row.id), owner_id=row.owner_id, title=row.title, created_at=row.created_at)

    def session_create(self, *, owner_id: int, title: str = "") -> SessionRecord:
        from chat.models import ChatSession

        row = ChatSession.objects.create(owner_id=owner_id, title=title[:200])
        return self._record(row)

    def session_get(self, *, session_id: SessionKey, owner_id: int) -> SessionRecord:
        from chat.models import ChatSession

        row = ChatSession.objects.filter(pk=_session_uuid(session_id), owner_id=owner_id).first()
        if row is None:
            raise NotFoundError("Chat session not found.")
        return self._record(row)

    def session_title(self, *, session_id: SessionKey, owner_id: int) -> tuple[str, str]:
        from chat.models import ChatSession

        # One indexed lookup paid by every question: plain SQL (the ORM spends more building this
        # statement than the database spends answering it).
        sid = uuid.UUID(_session_uuid(session_id))
        table = connection.ops.quote_name(ChatSession._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT title FROM {table} WHERE id = %s AND owner_id = %s",  # noqa: S608  # nosec B608 - the model's table
                [ChatSession._meta.pk.get_db_prep_value(sid, connection), owner_id],
            )
            row = cursor.fetchone()
        if row is None:
            raise NotFoundError("Chat session not found.")
        return str(sid), row[0]

    def session_list(self, *, owner_id: int, limit: int) -> list[SessionRecord]:
        from chat.models import ChatSession

        rows = ChatSession.objects.filter(owner_id=owner_id).order_by("-created_at")[:limit]
        return [self._record(r) for r in rows]

    def message_add(self, *, session_id: SessionKey, role: str, content: str, metadata: AnswerMeta) -> MessageRecord:
        from chat.models import ChatMessage

        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        row = ChatMessage.objects.create(
            session_id=uuid.UUID(_session_uuid(session_id)), role=role, content=content, metadata=metadata
        )
        return MessageRecord(role=role, content=content, created_at=row.created_at, metadata=metadata)

    def exchange_add(
        self, *, session_id: SessionKey, question: str, answer: str, metadata: AnswerMeta, titled: bool = False
    ) -> None:
        from chat.models import ChatSession

        sid = uuid.UUID(_session_uuid(session_id))
        now = timezone.now()
        rows: list[_MessageRow] = [(sid, "user", question, {}, now), (sid, "assistant", answer, metadata, now)]
        if titled:
            _messages_insert(rows)  # one statement, atomic on its own: one round trip
            return
        with transaction.atomic():
            _messages_insert(rows)
            ChatSession.objects.filter(pk=sid, title="").update(title=title_from(question))

    def message_list(self, *, session_id: SessionKey, limit: int | None = None) -> list[MessageRecord]:
        from chat.models import ChatMessage

        qs = ChatMessage.objects.filter(session_id=uuid.UUID(_session_uuid(session_id))).order_by("-created_at", "-id")
        rows = list(qs[:limit] if limit else qs)
        rows.reverse()
        return [
            # the JSON column holds what this store wrote: an answer's metadata
            MessageRecord(
                role=r.role, content=r.content, created_at=r.created_at, metadata=cast(AnswerMeta, r.metadata or {})
            )
            for r in rows
        ]


class _SessionDoc(TypedDict):
    _id: str
    owner_id: int
    title: str
    created_at: datetime
    order: int  # breaks ties between sessions created within the same millisecond
    seq: int  # the session's message counter


class _MessageDoc(TypedDict):
    session_id: str
    seq: int
    role: str
    content: str
    metadata: AnswerMeta
    created_at: datetime


MongoDoc: TypeAlias = dict[str, object]


class MongoHistoryStore:
    """MongoDB store through the official driver. ``client`` is injectable (mongomock in tests)."""

    name = "mongo"

    def __init__(self, *, client: MongoClient[MongoDoc], db_name: str) -> None:
        self.db = client[db_name]
        # The documents' shapes are this store's own (it alone writes these collections).
        self.sessions = cast("Collection[_SessionDoc]", self.db["chat_sessions"])
        self.messages = cast("Collection[_MessageDoc]", self.db["chat_messages"])
        self.messages.create_index([("session_id", 1), ("seq", 1)])
        self.sessions.create_index([("owner_id", 1), ("created_at", -1), ("order", -1)])

    @classmethod
    def _record(cls, doc: _SessionDoc) -> SessionRecord:
        return SessionRecord(
            id=doc["_id"], owner_id=doc["owner_id"], title=doc["title"], created_at=cls._aware(doc["created_at"])
        )

    @staticmethod
    def _now() -> datetime:
        # Mongo keeps milliseconds only: truncate so a record equals what a later read returns.
        now = timezone.now()
        return now.replace(microsecond=now.microsecond // 1000 * 1000)

    @staticmethod
    def _aware(value: datetime) -> datetime:
        # pymongo returns naive UTC datetimes unless tz_aware; normalise so both stores agree.
        return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)

    def session_create(self, *, owner_id: int, title: str = "") -> SessionRecord:
        now = self._now()
        sid, title = str(uuid.uuid4()), title[:200]
        # "order" breaks ties between sessions created within the same millisecond (newest first).
        self.sessions.insert_one(
            {"_id": sid, "owner_id": owner_id, "title": title, "created_at": now, "order": time.time_ns(), "seq": 0}
        )
        return SessionRecord(id=sid, owner_id=owner_id, title=title, created_at=now)

    def session_get(self, *, session_id: SessionKey, owner_id: int) -> SessionRecord:
        doc = self.sessions.find_one({"_id": _session_uuid(session_id), "owner_id": owner_id})
        if doc is None:
            raise NotFoundError("Chat session not found.")
        return self._record(doc)

    def session_title(self, *, session_id: SessionKey, owner_id: int) -> tuple[str, str]:
        sid = _session_uuid(session_id)
        doc = self.sessions.find_one({"_id": sid, "owner_id": owner_id}, {"title": 1})
        if doc is None:
            raise NotFoundError("Chat session not found.")
        return sid, doc["title"]

    def session_list(self, *, owner_id: int, limit: int) -> list[SessionRecord]:
        docs = self.sessions.find({"owner_id": owner_id}).sort([("created_at", -1), ("order", -1)]).limit(limit)
        return [self._record(d) for d in docs]

    def message_add(self, *, session_id: SessionKey, role: str, content: str, metadata: AnswerMeta) -> MessageRecord:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        sid = _session_uuid(session_id)
        # A per-session counter orders messages written within the same millisecond.
        seq = self.sessions.find_one_and_update({"_id": sid}, {"$inc": {"seq": 1}}, return_document=True)
        if seq is None:
            raise NotFoundError("Chat session not found.")
        now = self._now()
        self.messages.insert_one(
            {
                "session_id": sid,
                "seq": seq["seq"],
                "role": role,
                "content": content,
                "metadata": metadata,
                "created_at": now,
            }
        )
        return MessageRecord(role=role, content=content, created_at=now, metadata=metadata)

    def exchange_add(
        self, *, session_id: SessionKey, question: str, answer: str, metadata: AnswerMeta, titled: bool = False
    ) -> None:
        sid = _session_uuid(session_id)
        counter = self.sessions.find_one_and_update({"_id": sid}, {"$inc": {"seq": 2}}, return_document=True)
        if counter is None:
            raise NotFoundError("Chat session not found.")
        now = self._now()
        self.messages.insert_many(
            [
                _MessageDoc(
                    session_id=sid, seq=counter["seq"] - 1, role="user", content=question, metadata={}, created_at=now
                ),
                _MessageDoc(
                    session_id=sid,
                    seq=counter["seq"],
                    role="assistant",
                    content=answer,
                    metadata=metadata,
                    created_at=now,
                ),
            ]
        )
        if not titled:
            self.sessions.update_one({"_id": sid, "title": ""}, {"$set": {"title": title_from(question)}})

    def message_list(self, *, session_id: SessionKey, limit: int | None = None) -> list[MessageRecord]:
        cursor = self.messages.find({"session_id": _session_uuid(session_id)}).sort("seq", -1)
        if limit:
            cursor = cursor.limit(limit)
        docs = list(cursor)
        docs.reverse()
        return [
            MessageRecord(
                role=d["role"],
                content=d["content"],
                created_at=self._aware(d["created_at"]),
                metadata=d.get("metadata") or {},
            )
            for d in docs
        ]


@lru_cache(maxsize=1)
def mongo_client() -> MongoClient[MongoDoc]:
    """The one MongoDB client of the process, with explicit timeouts."""
    import pymongo

    client: MongoClient[MongoDoc] = pymongo.MongoClient(
        settings.MONGO_URL,
        serverSelectionTimeoutMS=2000,
        connectTimeoutMS=2000,
        socketTimeoutMS=5000,
        tz_aware=True,
    )
    return client


def mongo_ping() -> None:
    """Raise if the configured MongoDB does not answer (used by /health/deep)."""
    mongo_client().admin.command("ping")


@lru_cache(maxsize=1)
def _mongo_store(url: str, db_name: str) -> MongoHistoryStore:
    return MongoHistoryStore(client=mongo_client(), db_name=db_name)


def get_store() -> HistoryStore:
    if settings.MONGO_URL:
        return _mongo_store(settings.MONGO_URL, settings.MONGO_DB)
    return DjangoHistoryStore()
