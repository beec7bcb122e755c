"""Registry API: model versions, production models, promotion, rollback, training runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bms.errors import NotFoundError
from bms.pagination import PAGE_PARAMETERS, page_response, paginated
from bms.permissions import IsAdmin, IsViewer
from bms.response_cache import cached_response
from bms.serializers import StrictSerializer
from programs.models import TARGETS
from registry import selectors, services
from registry.algorithms import ALGORITHMS
from registry.models import ModelVersion, TrainingRun


class MetricsField(serializers.JSONField):
    """A version's metrics without the bulky calibration data kept for drift (stored, not served)."""

    HIDDEN = frozenset({"daily_errors"})

    def to_representation(self, value: Any) -> Any:
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in self.HIDDEN}
        return super().to_representation(value)


class ModelVersionOutput(serializers.Serializer[ModelVersion]):
    """``metrics``: see registry.training (test r2/rmse, val_r2, conformal, interval_coverage, sane_range,
    rejected, baselines and best_baseline of the run on the same test part); ``daily_errors`` is not served."""

    id = serializers.IntegerField()
    target = serializers.CharField()
    algorithm = serializers.CharField()
    version = serializers.IntegerField()
    status = serializers.CharField()
    metrics = MetricsField()
    hyperparameters = serializers.JSONField()
    training_seconds = serializers.FloatField()
    artifact_format = serializers.CharField()
    artifact_size = serializers.IntegerField()
    artifact_sha256 = serializers.CharField()
    dataset_fingerprint = serializers.CharField()
    seed = serializers.IntegerField()
    run_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class ModelVersionDetailOutput(ModelVersionOutput):
    feature_importance = serializers.JSONField()
    library_versions = serializers.JSONField()


class ModelVersionListApi(APIView):
    permission_classes = [IsViewer]

    class FilterSerializer(serializers.Serializer[None]):
        target = serializers.ChoiceField(choices=TARGETS, required=False)
        algorithm = serializers.ChoiceField(choices=ALGORITHMS, required=False)
        status = serializers.ChoiceField(choices=ModelVersion.Status.choices, required=False)

    error_statuses = (404,)  # a page past the end

    @extend_schema(
        operation_id="v1_models_list",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses=paginated("ModelVersionPage", ModelVersionOutput(many=True)),
    )
    def get(self, request: Request) -> HttpResponse | Response:
        return cached_response(
            request,
            scope="models",
            versions=selectors.MODEL_VERSIONS_GENERATION,
            build=lambda: self._build(request),
        )

    def _build(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        versions = selectors.model_version_list(**filters.validated_data)
        return page_response(request, self, versions, ModelVersionOutput)


class ProductionModelsApi(APIView):
    permission_classes = [IsViewer]

    class OutputSerializer(serializers.Serializer[Mapping[str, object]]):
        class ModelsSerializer(serializers.Serializer[Mapping[str, object]]):
            rating = ModelVersionDetailOutput(allow_null=True)
            revenue = ModelVersionDetailOutput(allow_null=True)
            audience = ModelVersionDetailOutput(allow_null=True)
            engagement = ModelVersionDetailOutput(allow_null=True)

        models = ModelsSerializer(help_text="The production version of each target (null: none yet).")
        generation = serializers.IntegerField(help_text="Bumped by every promotion and rollback.")

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        production = selectors.production_models()
        data = dict.fromkeys(TARGETS)
        for target, version in production.items():
            data[target] = ModelVersionDetailOutput(version).data
        return Response({"models": data, "generation": selectors.registry_generation()})


class BestModelApi(APIView):
    permission_classes = [IsViewer]
    error_statuses = (400,)  # unknown target

    @extend_schema(responses=ModelVersionDetailOutput)
    def get(self, request: Request, target: str) -> Response:
        version = selectors.best_model(target=target)
        if version is None:
            raise NotFoundError(f"No model has been trained for {target} yet.")
        return Response(ModelVersionDetailOutput(version).data)


class ReasonInput(serializers.Serializer[None]):
    reason = serializers.CharField(max_length=1000, trim_whitespace=True)


class ModelVersionPromoteApi(APIView):
    """Hand promotion. Refused (409 ``promotion_refused``, the figures in ``details``) when the version does
    not beat production or the best naive baseline on the same test data, unless ``force`` is true."""

    permission_classes = [IsAdmin]
    error_statuses = (409,)  # not a candidate

    class InputSerializer(ReasonInput):
        force = serializers.BooleanField(
            required=False, default=False, help_text="Promote even if a guard refuses; the ledger records it."
        )

    @extend_schema(request=InputSerializer, responses=ModelVersionDetailOutput)
    def post(self, request: Request, version_id: int) -> Response:
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        version = selectors.model_version_get(version_id=version_id)
        promoted = services.model_version_promote(
            version=version,
            actor=request.user,
            reason=payload.validated_data["reason"],
            force=payload.validated_data["force"],
        )
        return Response(ModelVersionDetailOutput(promoted).data)


class ModelRollbackApi(APIView):
    permission_classes = [IsAdmin]
    error_statuses = (400, 409)  # unknown target; nothing to roll back to

    @extend_schema(request=ReasonInput, responses=ModelVersionDetailOutput)
    def post(self, request: Request, target: str) -> Response:
        payload = ReasonInput(data=request.data)
        payload.is_valid(raise_exception=True)
        restored = services.model_version_rollback(
            target=target, actor=request.user, reason=payload.validated_data["reason"]
        )
        return Response(ModelVersionDetailOutput(restored).data)


class TrainingRunOutput(serializers.Serializer[TrainingRun]):
    id = serializers.IntegerField()
    status = serializers.CharField()
    trigger = serializers.CharField()
    targets = serializers.JSONField()
    algorithms = serializers.JSONField()
    progress = serializers.SerializerMethodField()
    models_total = serializers.IntegerField()
    models_done = serializers.IntegerField()
    models_failed = serializers.IntegerField()
    seed = serializers.IntegerField()
    code_version = serializers.CharField()
    library_versions = serializers.JSONField()
    data_version = serializers.IntegerField()
    dataset_fingerprint = serializers.CharField()
    dataset_rows = serializers.IntegerField()
    dataset = serializers.JSONField()
    baselines = serializers.JSONField(help_text="Per target: the naive forecasts' test metrics and the best one.")
    selection = serializers.JSONField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.FloatField(allow_null=True)

    def get_progress(self, run: TrainingRun) -> str:
        return f"{run.models_done}/{run.models_total}"


class TrainingRunCreateApi(APIView):
    permission_classes = [IsAdmin]
    error_statuses = (409,)  # a run is already going

    class InputSerializer(StrictSerializer):
        targets = serializers.ListField(
            child=serializers.ChoiceField(choices=TARGETS), required=False, allow_empty=False, max_length=4
        )
        algorithms = serializers.ListField(
            child=serializers.ChoiceField(choices=ALGORITHMS), required=False, allow_empty=False, max_length=6
        )

    @extend_schema(request=InputSerializer, responses={202: TrainingRunOutput})
    def post(self, request: Request) -> Response:
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        run = services.training_run_start(
            trigger=TrainingRun.Trigger.API,
            actor=request.user,
            targets=payload.validated_data.get("targets"),
            algorithms=payload.validated_data.get("algorithms"),
        )
        return Response(TrainingRunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunDetailApi(APIView):
    permission_classes = [IsViewer]

    @extend_schema(responses=TrainingRunOutput)
    def get(self, request: Request, run_id: int) -> Response:
        return Response(TrainingRunOutput(selectors.training_run_get(run_id=run_id)).data)
