"""Chat API: sessions, questions, history, cache statistics, token usage, export downloads."""

from __future__ import annotations

import mimetypes
import uuid
from collections.abc import Mapping

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from bms.permissions import IsAnalyst, IsViewer
from bms.throttling import ScopedRateThrottle, UserRateThrottle
from bms.users import AuthenticatedRequest
from chat import cache as chat_cache
from chat.services import chat_answer, chat_history, chat_session_create
from chat.tools import export_file_for
from programs.apis import EXPORT_JSON_SCHEMA


class ChatRateThrottle(ScopedRateThrottle):
    """Messages per minute per user (scope ``chat``), read at request time so tests can lower it."""

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(str(self.scope))
        return rate if isinstance(rate, str) else None


class SessionCreateApi(APIView):
    permission_classes = [IsAnalyst]

    class InputSerializer(serializers.Serializer[None]):
        title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    class OutputSerializer(serializers.Serializer[Mapping[str, object]]):
        session_id = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data or {})
        data.is_valid(raise_exception=True)
        session = chat_session_create(user=request.user, title=data.validated_data["title"])
        out = self.OutputSerializer({"session_id": session.id, "created_at": session.created_at})
        return Response(out.data, status=201)


def plain_chat_input(data: object) -> tuple[str, uuid.UUID] | None:
    """``(message, session id)`` of a body ``ChatApi.InputSerializer`` accepts as it is, else None.

    Every question (a cache hit too) pays the input check, and the serializer's machinery costs more
    than the rest of a hit's view code: the usual body, a string message and a string UUID, is read
    here by the serializer's own rules (trimmed, not blank, at most CHAT_MAX_MESSAGE_CHARS, no NUL
    or lone surrogate characters; a UUID in any form ``uuid.UUID`` reads). None: let the serializer
    decide (numbers as messages, integer UUIDs, every error and its wording).
    """
    if not isinstance(data, dict):
        return None
    message, session_id = data.get("message"), data.get("session_id")
    if type(message) is not str or type(session_id) is not str:
        return None
    text = message.strip()
    if not text or len(text) > settings.CHAT_MAX_MESSAGE_CHARS or "\x00" in text:
        return None
    try:
        text.encode()  # a lone surrogate cannot be encoded
        return text, uuid.UUID(hex=session_id)
    except (UnicodeEncodeError, ValueError):
        return None


class ChatApi(APIView):
    permission_classes = [IsAnalyst]
    error_statuses = (404,)  # not one of the caller's sessions
    throttle_classes = [UserRateThrottle, ChatRateThrottle]
    throttle_scope = "chat"

    class InputSerializer(serializers.Serializer[None]):
        message = serializers.CharField(trim_whitespace=True)
        session_id = serializers.UUIDField()

        def validate_message(self, value: str) -> str:
            if len(value) > settings.CHAT_MAX_MESSAGE_CHARS:
                raise serializers.ValidationError(
                    f"Ensure this field has no more than {settings.CHAT_MAX_MESSAGE_CHARS} characters."
                )
            return value

    class OutputSerializer(serializers.Serializer[Mapping[str, object]]):
        """The answer's shape (the metadata may carry more keys: fallback, clarification, tokens_saved...)."""

        class MetadataSerializer(serializers.Serializer[Mapping[str, object]]):
            model_used = serializers.CharField()
            provider = serializers.CharField()
            cache_hit = serializers.BooleanField()
            tokens_used = serializers.IntegerField()
            input_tokens = serializers.IntegerField()
            output_tokens = serializers.IntegerField()
            latency_ms = serializers.FloatField()
            tool_calls = serializers.ListField(child=serializers.DictField())
            grounding = serializers.DictField(required=False)

        response = serializers.CharField()
        session_id = serializers.CharField()
        metadata = MetadataSerializer()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        plain = plain_chat_input(request.data)
        if plain is None:  # anything else goes through the serializer, which also words the 400
            data = self.InputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            plain = data.validated_data["message"], data.validated_data["session_id"]
        message, session_id = plain
        answer = chat_answer(user=request.user, session_id=session_id, message=message)
        return Response(answer.as_dict())


class ChatHistoryApi(APIView):
    permission_classes = [IsAnalyst]
    error_statuses = (404,)  # not one of the caller's sessions

    class InputSerializer(serializers.Serializer[None]):
        session_id = serializers.UUIDField()

    class OutputSerializer(serializers.Serializer[Mapping[str, object]]):
        class MessageSerializer(serializers.Serializer[Mapping[str, object]]):
            role = serializers.ChoiceField(choices=["user", "assistant"])
            content = serializers.CharField()
            metadata = serializers.DictField()
            created_at = serializers.DateTimeField()

        session_id = serializers.CharField()
        title = serializers.CharField(allow_blank=True)
        created_at = serializers.DateTimeField()
        messages = MessageSerializer(many=True)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session, messages = chat_history(user=request.user, session_id=data.validated_data["session_id"])
        return Response(
            {
                "session_id": session.id,
                "title": session.title,
                "created_at": session.created_at.isoformat(),
                "messages": [m.as_dict() for m in messages],
            }
        )


class CacheStatsApi(APIView):
    permission_classes = [IsViewer]

    class OutputSerializer(serializers.Serializer[Mapping[str, object]]):
        hit_rate = serializers.FloatField()
        total_requests = serializers.IntegerField()
        cache_hits = serializers.IntegerField()
        cache_misses = serializers.IntegerField()
        cost_savings = serializers.FloatField()
        tokens_saved = serializers.IntegerField()
        avg_latency_cached_ms = serializers.FloatField(allow_null=True)
        avg_latency_uncached_ms = serializers.FloatField(allow_null=True)
        ttl_seconds = serializers.IntegerField()

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: Request) -> Response:
        s = chat_cache.stats()
        return Response(
            {
                "hit_rate": s.hit_rate,
                "total_requests": s.total_requests,
                "cache_hits": s.cache_hits,
                "cache_misses": s.cache_misses,
                "cost_savings": s.cost_savings,
                "tokens_saved": s.tokens_saved,
                "avg_latency_cached_ms": s.avg_latency_cached_ms,
                "avg_latency_uncached_ms": s.avg_latency_uncached_ms,
                "ttl_seconds": settings.CHAT_CACHE_TTL_SECONDS,
            }
        )


class TokenUsageApi(APIView):
    permission_classes = [IsViewer]

    class OutputSerializer(serializers.Serializer[Mapping[str, object]]):
        class UsageSerializer(serializers.Serializer[Mapping[str, object]]):
            provider = serializers.CharField()
            model = serializers.CharField()
            requests = serializers.IntegerField()
            errors = serializers.IntegerField()  # type: ignore[assignment]  # a field, for the schema only
            input_tokens = serializers.IntegerField()
            output_tokens = serializers.IntegerField()
            total_tokens = serializers.IntegerField()
            estimated_cost_usd = serializers.FloatField()

        usage = UsageSerializer(many=True)
        total_tokens = serializers.IntegerField()
        total_requests = serializers.IntegerField()
        estimated_cost_usd = serializers.FloatField()

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: Request) -> Response:
        rows = chat_cache.usage()
        return Response(
            {
                "usage": rows,
                "total_tokens": sum(r["total_tokens"] for r in rows),
                "total_requests": sum(r["requests"] for r in rows),
                "estimated_cost_usd": round(sum(r["estimated_cost_usd"] for r in rows), 6),
            }
        )


EXPORT_MEDIA_TYPES = (
    "text/csv",
    "application/json",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/octet-stream",
)


class ExportDownloadApi(APIView):
    """The file behind a chat export link: only for the user it was made for, until it expires."""

    permission_classes = [IsViewer]

    @extend_schema(
        responses={
            (200, media): OpenApiResponse(
                EXPORT_JSON_SCHEMA if media == "application/json" else OpenApiTypes.BINARY,
                description="The exported file, as an attachment.",
            )
            for media in EXPORT_MEDIA_TYPES
        }
    )
    def get(self, request: AuthenticatedRequest, token: str) -> FileResponse:
        path = export_file_for(user=request.user, token=token)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path.open("rb"), as_attachment=True, filename=path.name, content_type=content_type)
