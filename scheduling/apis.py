"""Schedule optimisation API: one view per operation, thin over scheduling.services/selectors."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bms.permissions import IsAnalyst
from bms.serializers import StrictSerializer
from scheduling import selectors, services
from scheduling.models import OptimizationJob, Schedule
from scheduling.requests import ScheduleRequestSerializer


class OptimizationJobCreateApi(APIView):
    permission_classes = [IsAnalyst]
    error_statuses = (404,)  # unknown channel or program

    InputSerializer = ScheduleRequestSerializer

    class OutputSerializer(serializers.Serializer[OptimizationJob]):
        id = serializers.IntegerField()
        status = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.optimization_job_create(user=request.user, request=data.request())
        return Response(self.OutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class _JobOutput(serializers.Serializer[OptimizationJob]):
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

    def get_progress(self, job: OptimizationJob) -> dict[str, int]:
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

    class InputSerializer(StrictSerializer):
        name = serializers.CharField(max_length=200)
        index = serializers.IntegerField(min_value=0, default=0, help_text="0 = the best schedule.")

    class OutputSerializer(serializers.Serializer[Schedule]):
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
