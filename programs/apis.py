"""Programs API: list, detail, trends and exports. Thin views over programs.selectors/export."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bms.pagination import PAGE_PARAMETERS, page_response, paginated
from bms.permissions import IsAnalyst, IsViewer
from bms.response_cache import cached_response
from bms.users import AuthenticatedRequest
from programs import selectors
from programs.export import CONTENT_TYPES, DATASETS, FORMATS, export_stream
from programs.models import TARGETS, Airing, Genre, Program
from programs.selectors import ProgramDetail, TrendPoint, TrendSeries


class ProgramListApi(APIView):
    permission_classes = [IsViewer]

    class FilterSerializer(serializers.Serializer[None]):
        search = serializers.CharField(required=False, allow_blank=True, max_length=100)
        channel = serializers.CharField(required=False, allow_blank=True, max_length=32)
        genre = serializers.ChoiceField(choices=Genre.choices, required=False, allow_blank=True)
        ordering = serializers.ChoiceField(
            choices=[p + k for k in selectors.PROGRAM_ORDERINGS for p in ("", "-")], required=False
        )

    class OutputSerializer(serializers.Serializer[Program]):
        id = serializers.IntegerField()
        external_id = serializers.CharField()
        title = serializers.CharField()
        channel = serializers.CharField(source="channel.code")
        channel_name = serializers.CharField(source="channel.name")
        genre = serializers.CharField()
        content_rating = serializers.CharField()
        duration_minutes = serializers.IntegerField()
        is_live = serializers.BooleanField()
        airing_count = serializers.IntegerField()
        last_airing = serializers.DateTimeField(allow_null=True)
        avg_rating = serializers.FloatField(allow_null=True)
        avg_revenue = serializers.FloatField(allow_null=True)
        avg_audience = serializers.FloatField(allow_null=True)
        avg_engagement = serializers.FloatField(allow_null=True)

        def to_representation(self, instance: Program) -> dict[str, object]:
            """What the fields above render, read directly: DRF's per-field machinery over a page of 50 rows
            was about half the CPU of a list built without the response cache (tests compare the two)."""
            row: Any = instance  # the selector's annotations are not Program attributes to mypy
            last_airing = row.last_airing
            return {
                "id": row.id,
                "external_id": row.external_id,
                "title": row.title,
                "channel": row.channel.code,
                "channel_name": row.channel.name,
                "genre": row.genre,
                "content_rating": row.content_rating,
                "duration_minutes": row.duration_minutes,
                "is_live": row.is_live,
                "airing_count": row.airing_count,
                "last_airing": None
                if last_airing is None
                else self.fields["last_airing"].to_representation(last_airing),
                **{f"avg_{t}": _float_or_none(getattr(row, f"avg_{t}")) for t in TARGETS},
            }

    error_statuses = (404,)  # a page past the end

    @extend_schema(
        operation_id="v1_programs_list",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses=paginated("ProgramPage", OutputSerializer(many=True)),
    )
    def get(self, request: Request) -> HttpResponse | Response:
        return cached_response(
            request,
            scope="programs",
            versions=(selectors.DATA_VERSION,),
            build=lambda: self._build(request),
        )

    def _build(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        programs = selectors.program_list(**{k: v or None for k, v in filters.validated_data.items()})
        return page_response(request, self, programs, self.OutputSerializer)


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


class _TargetStatsSerializer(serializers.Serializer[Mapping[str, object]]):
    mean = serializers.FloatField(allow_null=True)
    min = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    count = serializers.IntegerField()


class _AiringSerializer(serializers.Serializer[Airing]):
    id = serializers.IntegerField()
    start = serializers.DateTimeField()
    channel = serializers.CharField(source="channel.code")
    duration_minutes = serializers.IntegerField()
    is_premiere = serializers.BooleanField()
    is_finale = serializers.BooleanField()
    rating = serializers.FloatField(allow_null=True)
    revenue = serializers.FloatField(allow_null=True)
    audience = serializers.FloatField(allow_null=True)
    engagement = serializers.FloatField(allow_null=True)


class _TrendPointSerializer(serializers.Serializer[TrendPoint]):
    period_start = serializers.DateField()
    mean = serializers.FloatField()
    count = serializers.IntegerField()

    def to_representation(self, instance: TrendPoint) -> dict[str, object]:
        # What the three fields above render, written out: a decade of weeks is 500+ points, and the
        # field-by-field path cost more CPU than the query that computed them.
        return {"period_start": instance.period_start.isoformat(), "mean": instance.mean, "count": instance.count}


class ProgramDetailApi(APIView):
    permission_classes = [IsViewer]

    class OutputSerializer(serializers.Serializer[ProgramDetail]):
        id = serializers.IntegerField(source="program.id")
        external_id = serializers.CharField(source="program.external_id")
        title = serializers.CharField(source="program.title")
        channel = serializers.CharField(source="program.channel.code")
        channel_name = serializers.CharField(source="program.channel.name")
        genre = serializers.CharField(source="program.genre")
        content_rating = serializers.CharField(source="program.content_rating")
        duration_minutes = serializers.IntegerField(source="program.duration_minutes")
        is_live = serializers.BooleanField(source="program.is_live")
        description = serializers.CharField(source="program.description")
        airing_count = serializers.IntegerField()
        first_airing = serializers.DateTimeField(allow_null=True)
        last_airing = serializers.DateTimeField(allow_null=True)
        targets = serializers.DictField(child=_TargetStatsSerializer())
        recent_airings = _AiringSerializer(many=True)

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, key: str) -> Response:
        detail = selectors.program_detail(program=selectors.program_get(key=key))
        return Response(self.OutputSerializer(detail).data)


class ProgramTrendsApi(APIView):
    permission_classes = [IsViewer]

    class FilterSerializer(serializers.Serializer[None]):
        target = serializers.ChoiceField(choices=TARGETS, default="rating")
        period = serializers.ChoiceField(choices=("week", "month"), default="week")
        start = serializers.DateField(required=False)
        end = serializers.DateField(required=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if attrs.get("start") and attrs.get("end") and attrs["start"] > attrs["end"]:
                raise serializers.ValidationError({"end": "end is before start."})
            return attrs

    class OutputSerializer(serializers.Serializer[TrendSeries]):
        target = serializers.CharField()
        period = serializers.CharField()
        points = _TrendPointSerializer(many=True)
        change_pct = serializers.FloatField(allow_null=True)
        direction = serializers.CharField()

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer)
    def get(self, request: Request, key: str) -> Response:
        program = selectors.program_get(key=key)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        series = selectors.trend_series(program=program, **filters.validated_data)
        return Response({"program": program.external_id, **self.OutputSerializer(series).data})


class _FileNegotiation(DefaultContentNegotiation):
    """The export answers with a file whatever ``Accept`` says (``Accept: text/csv`` must not be 406)."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


# A JSON export is an array of row objects (their columns depend on the dataset).
EXPORT_JSON_SCHEMA = {"type": "array", "items": {"type": "object", "additionalProperties": True}}


class ExportApi(APIView):
    permission_classes = [IsAnalyst]
    content_negotiation_class = _FileNegotiation

    class InputSerializer(serializers.Serializer[None]):
        format = serializers.ChoiceField(choices=FORMATS)
        dataset = serializers.ChoiceField(choices=DATASETS, default="airings")
        filters = serializers.DictField(required=False, default=dict)

    @extend_schema(
        request=InputSerializer,
        responses={
            (200, media.split(";")[0]): OpenApiResponse(
                EXPORT_JSON_SCHEMA if fmt == "json" else OpenApiTypes.BINARY, description="The file, as an attachment."
            )
            for fmt, media in CONTENT_TYPES.items()
        },
    )
    def post(self, request: AuthenticatedRequest) -> StreamingHttpResponse:
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        chunks, content_type, filename = export_stream(
            dataset=data["dataset"], fmt=data["format"], filters=data["filters"], user=request.user, request=request
        )
        # gunicorn's worker writes the chunks as they come; Django's ASGI handler (uvicorn, `make run` only)
        # reads a synchronous iterator whole before it sends.
        response = StreamingHttpResponse(chunks, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response
