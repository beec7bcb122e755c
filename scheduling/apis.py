"""Schedule optimisation API: one view per operation, thin over scheduling.services/selectors."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bms.permissions import IsAnalyst
from programs.calendar import DAYPART_NAMES
from scheduling import selectors, services
from scheduling.build import GENRES
from scheduling.optimizer import GAParams
from scheduling.problem import RATINGS


class _Strict(serializers.Serializer):
    """Refuses fields it does not declare (a typo must not be silently ignored)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            extra = sorted(set(data) - set(self.fields))
            if extra:
                raise serializers.ValidationError({name: ["Unknown field."] for name in extra})
        return super().to_internal_value(data)


class _SlotInput(_Strict):
    start = serializers.DateTimeField()
    length = serializers.IntegerField(min_value=5, max_value=480)


class _FixedInput(_Strict):
    start = serializers.DateTimeField()
    program = serializers.CharField(max_length=64, help_text="Program id or external id.")


class _UnavailableInput(_Strict):
    program = serializers.CharField(max_length=64)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class _RatingWindowInput(_Strict):
    start = serializers.RegexField(r"^\d{2}:\d{2}$")
    end = serializers.RegexField(r"^\d{2}:\d{2}$")
    ratings = serializers.ListField(child=serializers.ChoiceField(choices=RATINGS), allow_empty=False)


class _GoalInput(_Strict):
    name = serializers.CharField(max_length=100, required=False)
    genre = serializers.ChoiceField(choices=GENRES)
    daypart = serializers.ChoiceField(choices=DAYPART_NAMES, required=False)
    weekday = serializers.IntegerField(min_value=0, max_value=6, required=False, help_text="0 = Monday.")
    weight = serializers.FloatField(min_value=0, max_value=10)


class _WeightsInput(_Strict):
    revenue = serializers.FloatField(min_value=0, default=1.0)
    audience = serializers.FloatField(min_value=0, default=0.0)
    balance = serializers.FloatField(min_value=0, default=1.0)


class OptimizationJobCreateApi(APIView):
    permission_classes = [IsAnalyst]
    error_statuses = (404,)  # unknown channel or program

    class InputSerializer(_Strict):
        channel = serializers.CharField(max_length=32, help_text="Channel code.")
        date = serializers.DateField(required=False, allow_null=True, help_text="First broadcast day (local).")
        days = serializers.IntegerField(min_value=1, max_value=7, default=1)
        daypart = serializers.ChoiceField(choices=DAYPART_NAMES, required=False, allow_null=True)
        start_time = serializers.RegexField(r"^\d{2}:\d{2}$", required=False, allow_null=True)
        end_time = serializers.RegexField(r"^\d{2}:\d{2}$", required=False, allow_null=True)
        slot_minutes = serializers.IntegerField(
            min_value=5, max_value=240, default=30, help_text="Grid of airing starts (timeline) or the slot length."
        )
        slots = _SlotInput(many=True, required=False)
        candidates = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=4000)
        weights = _WeightsInput(required=False)
        max_per_day = serializers.IntegerField(min_value=1, max_value=48, default=2)
        max_per_week = serializers.IntegerField(
            min_value=1, max_value=336, required=False, allow_null=True, help_text="Airings of a program in the window."
        )
        gap_penalty = serializers.FloatField(
            min_value=0,
            max_value=100,
            required=False,
            allow_null=True,
            help_text="Allow empty airtime at this cost per minute (slot-value units); default: no gaps.",
        )
        filler = serializers.CharField(
            max_length=64, required=False, allow_null=True, help_text="A program that may fill any leftover cell."
        )
        max_consecutive_genre = serializers.IntegerField(min_value=0, max_value=48, default=2)
        min_genres_per_daypart = serializers.IntegerField(min_value=0, max_value=12, default=0)
        min_fill = serializers.FloatField(min_value=0, max_value=1, default=0.5)
        rating_windows = _RatingWindowInput(many=True, required=False)
        fixed = _FixedInput(many=True, required=False)
        unavailable = _UnavailableInput(many=True, required=False)
        goals = _GoalInput(many=True, required=False)
        seed = serializers.IntegerField(min_value=0, default=0)
        time_budget = serializers.FloatField(min_value=0.1, required=False)
        generations = serializers.IntegerField(min_value=1, max_value=1000, default=GAParams.generations)
        population = serializers.IntegerField(min_value=4, max_value=200, default=GAParams.population)
        top_k = serializers.IntegerField(min_value=1, max_value=10, default=GAParams.top_k)
        selection = serializers.ChoiceField(choices=["tournament", "roulette"], default="tournament")
        crossover = serializers.ChoiceField(choices=["day_uniform", "uniform", "one_point"], default="day_uniform")
        mutation = serializers.ChoiceField(choices=["swap", "shuffle"], default="swap")
        pareto = serializers.BooleanField(default=True)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if not attrs.get("slots") and not attrs.get("date"):
                raise serializers.ValidationError("Give either a date or an explicit list of slots.")
            return attrs

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.optimization_job_create(user=request.user, params=dict(data.validated_data))
        return Response(self.OutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class _JobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    channel = serializers.CharField(source="channel.code")
    progress = serializers.SerializerMethodField()
    params = serializers.JSONField()
    result = serializers.JSONField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()

    def get_progress(self, job: Any) -> dict[str, int]:
        return {"generation": job.progress_generation, "max": job.progress_max}


class OptimizationJobDetailApi(APIView):
    permission_classes = [IsAnalyst]
    OutputSerializer = _JobOutput

    @extend_schema(responses={200: _JobOutput})
    def get(self, request: Request, job_id: int) -> Response:
        job = selectors.optimization_job_get(job_id=job_id, user=request.user)
        return Response(self.OutputSerializer(job).data)


class OptimizationJobCancelApi(APIView):
    permission_classes = [IsAnalyst]
    error_statuses = (409,)  # the job has ended
    OutputSerializer = _JobOutput

    @extend_schema(request=None, responses={200: _JobOutput})
    def post(self, request: Request, job_id: int) -> Response:
        job = selectors.optimization_job_get(job_id=job_id, user=request.user)
        job = services.optimization_job_cancel(job=job, user=request.user)
        return Response(self.OutputSerializer(job).data)


class ScheduleSaveApi(APIView):
    permission_classes = [IsAnalyst]
    error_statuses = (409,)  # the job has no result

    class InputSerializer(_Strict):
        name = serializers.CharField(max_length=200)
        index = serializers.IntegerField(min_value=0, default=0, help_text="0 = the best schedule.")

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        channel = serializers.CharField(source="channel.code")
        job = serializers.IntegerField(source="job_id")
        totals = serializers.JSONField()
        entries = serializers.IntegerField(source="entries.count")
        created_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request, job_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = selectors.optimization_job_get(job_id=job_id, user=request.user)
        schedule = services.schedule_save(
            job=job, user=request.user, name=data.validated_data["name"], index=data.validated_data["index"]
        )
        return Response(self.OutputSerializer(schedule).data, status=status.HTTP_201_CREATED)
