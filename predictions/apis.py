"""Prediction API: single and batch. Thin views over predictions.predict."""

from __future__ import annotations

import time
from collections.abc import Mapping

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bms.errors import PayloadTooLargeError
from bms.pagination import PAGE_PARAMETERS, page_response, paginated
from bms.permissions import IsAnalyst
from bms.serializers import StrictSerializer
from predictions import predict, selectors
from predictions.models import ABTest, DriftReport
from programs.models import TARGETS
from registry.models import ModelVersion


class FeaturesInput(StrictSerializer):
    start = serializers.DateTimeField(required=False, help_text="Slot start (ISO 8601); default: next hour.")
    channel = serializers.CharField(required=False, max_length=32, help_text="Channel code; default: program's.")
    is_premiere = serializers.BooleanField(required=False)
    is_finale = serializers.BooleanField(required=False)
    is_live = serializers.BooleanField(required=False)
    duration_minutes = serializers.IntegerField(required=False, min_value=1, max_value=24 * 60)


class PredictInput(StrictSerializer):
    program_id = serializers.CharField(max_length=64, help_text="Program id or external id.")
    target = serializers.ChoiceField(choices=predict.TARGET_CHOICES)
    features = FeaturesInput(required=False)
    request_key = serializers.CharField(
        required=False, max_length=128, help_text="A/B assignment key; default: the caller's user."
    )


class _ModelOutput(serializers.Serializer[Mapping[str, object]]):
    id = serializers.IntegerField()
    algorithm = serializers.CharField()
    version = serializers.IntegerField()


class _IntervalOutput(serializers.Serializer[Mapping[str, object]]):
    low = serializers.FloatField()
    high = serializers.FloatField()
    level = serializers.FloatField()


class _ABOutput(serializers.Serializer[Mapping[str, object]]):
    test_id = serializers.IntegerField()
    arm = serializers.CharField()


class _RangeOutput(serializers.Serializer[Mapping[str, object]]):
    low = serializers.FloatField()
    high = serializers.FloatField()


class PredictionOutput(serializers.Serializer[Mapping[str, object]]):
    prediction = serializers.FloatField()
    target = serializers.CharField()
    program_id = serializers.IntegerField()
    model = _ModelOutput()
    interval = _IntervalOutput()
    intervals = _IntervalOutput(many=True, help_text="Split-conformal intervals at 80, 90 and 95%.")
    history_through = serializers.DateTimeField(
        allow_null=True, help_text="Start of the latest airing with an actual that the history features used."
    )
    clipped = serializers.BooleanField(help_text="The model's value left the sane range and was clipped to it.")
    raw_prediction = serializers.FloatField(
        required=False, help_text="The value before clipping (absent when the model gave no finite number)."
    )
    sane_range = _RangeOutput(required=False, help_text="0 ... 3 x the largest training value of the target.")
    ab_test = _ABOutput(required=False)


class PredictOutput(serializers.Serializer[Mapping[str, object]]):
    """One target: the prediction fields. ``target="all"``: ``predictions`` holds one per target."""

    prediction = serializers.FloatField(required=False)
    target = serializers.CharField()
    program_id = serializers.IntegerField()
    model = _ModelOutput(required=False)
    interval = _IntervalOutput(required=False)
    intervals = _IntervalOutput(many=True, required=False)
    history_through = serializers.DateTimeField(allow_null=True, required=False)
    clipped = serializers.BooleanField(required=False)
    raw_prediction = serializers.FloatField(required=False)
    sane_range = _RangeOutput(required=False)
    ab_test = _ABOutput(required=False)
    predictions = PredictionOutput(many=True, required=False)
    latency_ms = serializers.FloatField(required=False)


def _interval_json(i: predict.Interval) -> dict[str, float]:
    return {"low": i.low, "high": i.high, "level": i.level}


def prediction_json(p: predict.TargetPrediction) -> dict[str, object]:
    """``PredictionOutput`` for one target's prediction, written out: rendering through the serializer cost
    more than the model call (a test holds the two equal)."""
    body: dict[str, object] = {
        "prediction": p.prediction,
        "target": p.target,
        "program_id": p.program_id,
        "model": {"id": p.model.id, "algorithm": p.model.algorithm, "version": p.model.version},
        "interval": _interval_json(p.interval),
        "intervals": [_interval_json(i) for i in p.intervals],
        "history_through": None if p.history_through is None else p.history_through.isoformat(),
        "clipped": p.clipped,
    }
    if p.raw_prediction is not None:
        body["raw_prediction"] = p.raw_prediction
    if p.sane_range is not None:
        body["sane_range"] = {"low": p.sane_range.low, "high": p.sane_range.high}
    if p.ab_test is not None:
        body["ab_test"] = {"test_id": p.ab_test.test_id, "arm": p.ab_test.arm}
    return body


def answer_json(answer: predict.Answer) -> dict[str, object]:
    """``PredictOutput`` without ``latency_ms``: the prediction's fields for one target, or the program's
    four predictions under ``predictions`` for ``target="all"``."""
    if answer.target != predict.ALL_TARGETS:
        return prediction_json(answer.predictions[0])
    through = answer.history_through
    return {
        "target": answer.target,
        "program_id": answer.program_id,
        "history_through": None if through is None else through.isoformat(),
        "predictions": [prediction_json(p) for p in answer.predictions],
    }


def _milliseconds_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


class PredictApi(APIView):
    permission_classes = [IsAnalyst]
    error_statuses = (404, 409)  # unknown program; no production model

    @extend_schema(request=PredictInput, responses=PredictOutput)
    def post(self, request: Request) -> Response:
        body = PredictInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        started = time.perf_counter()
        answer = predict.predict(
            program=data["program_id"],
            target=data["target"],
            features=data.get("features"),
            user_key=data.get("request_key") or f"user:{request.user.pk}",
        )
        return Response({**answer_json(answer), "latency_ms": _milliseconds_since(started)})


class PredictBatchApi(APIView):
    permission_classes = [IsAnalyst]
    error_statuses = (404, 409)  # unknown program; no production model

    class InputSerializer(StrictSerializer):
        items = PredictInput(many=True, allow_empty=False)

        def to_internal_value(self, data: object) -> dict[str, object]:
            # Refuse an oversized batch before validating thousands of items.
            items = data.get("items") if isinstance(data, dict) else None
            if isinstance(items, list) and len(items) > settings.PREDICT_BATCH_MAX_ITEMS:
                raise PayloadTooLargeError(
                    f"At most {settings.PREDICT_BATCH_MAX_ITEMS} items per batch (got {len(items)}).",
                    code="too_many_items",
                    details={"max_items": settings.PREDICT_BATCH_MAX_ITEMS, "items": len(items)},
                )
            validated: dict[str, object] = super().to_internal_value(data)
            return validated

    class OutputSerializer(serializers.Serializer[Mapping[str, object]]):
        results = PredictOutput(many=True)
        latency_ms = serializers.FloatField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request: Request) -> Response:
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user_key = f"user:{request.user.pk}"
        items = [
            predict.PredictItem(
                program=item["program_id"],
                target=item["target"],
                features=item.get("features"),
                request_key=item.get("request_key") or user_key,
            )
            for item in body.validated_data["items"]
        ]
        started = time.perf_counter()
        answers = predict.predict_batch(items=items, user_key=user_key)
        return Response({"results": [answer_json(a) for a in answers], "latency_ms": _milliseconds_since(started)})


class BenchEchoApi(APIView):
    """Bench-only (``BMS_BENCH_ENDPOINTS``): validates a predict body like PredictApi, predicts nothing.

    bench/predict.py compares /api/v1/predict with this to show what the prediction itself costs.
    """

    permission_classes = [IsAnalyst]  # same authentication and role check as PredictApi

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        body = PredictInput(data=request.data)
        body.is_valid(raise_exception=True)
        return Response({"ok": True, "target": body.validated_data["target"]})


# --- A/B tests and drift reports (read-only) ---------------------------------------------------------


class _VersionRef(serializers.Serializer[ModelVersion]):
    id = serializers.IntegerField()
    algorithm = serializers.CharField()
    version = serializers.IntegerField()


class ABTestOutput(serializers.Serializer[ABTest]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    target = serializers.CharField()
    champion = _VersionRef()
    challenger = _VersionRef()
    traffic_share = serializers.FloatField()
    mode = serializers.CharField()
    status = serializers.CharField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    end_reason = serializers.CharField()
    result = serializers.JSONField(
        help_text="Last scoring: n_requests, n_predictions (answered under the test), n_matched, per-arm "
        "RMSE/MAE, paired difference with its bootstrap interval, winner."
    )
    scored_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class ABTestListApi(APIView):
    permission_classes = [IsAnalyst]
    error_statuses = (404,)  # a page past the end

    class FilterSerializer(serializers.Serializer[None]):
        target = serializers.ChoiceField(choices=TARGETS, required=False)
        status = serializers.ChoiceField(choices=ABTest.Status.choices, required=False)

    @extend_schema(
        operation_id="v1_ab_tests_list",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses=paginated("ABTestPage", ABTestOutput(many=True)),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        tests = selectors.ab_test_list(**filters.validated_data)
        return page_response(request, self, tests, ABTestOutput)


class ABTestDetailApi(APIView):
    permission_classes = [IsAnalyst]

    @extend_schema(responses=ABTestOutput)
    def get(self, request: Request, test_id: int) -> Response:
        return Response(ABTestOutput(selectors.ab_test_get(test_id=test_id)).data)


class DriftReportOutput(serializers.Serializer[DriftReport]):
    id = serializers.IntegerField()
    target = serializers.CharField()
    model_version_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    reference_start = serializers.DateTimeField()
    reference_end = serializers.DateTimeField()
    n_reference = serializers.IntegerField()
    n_recent = serializers.IntegerField()
    features = serializers.JSONField(help_text="Per feature: kind, score (PSI or KS), flagged, p_value, wasserstein.")
    recent_rmse = serializers.FloatField(allow_null=True)
    holdout_rmse = serializers.FloatField(allow_null=True)
    accuracy_drift = serializers.FloatField(allow_null=True)
    accuracy_threshold = serializers.FloatField(
        allow_null=True, help_text="Calibrated on the model's own holdout spread (docs/predictions.md)."
    )
    accuracy_flagged = serializers.BooleanField()
    flagged = serializers.BooleanField()
    retrain_run_id = serializers.IntegerField(allow_null=True)


class DriftReportListApi(APIView):
    permission_classes = [IsAnalyst]
    error_statuses = (404,)  # a page past the end

    class FilterSerializer(serializers.Serializer[None]):
        target = serializers.ChoiceField(choices=TARGETS, required=False)
        flagged = serializers.BooleanField(required=False, allow_null=True, default=None)

    @extend_schema(
        operation_id="v1_drift_reports_list",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses=paginated("DriftReportPage", DriftReportOutput(many=True)),
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        reports = selectors.drift_report_list(**filters.validated_data)
        return page_response(request, self, reports, DriftReportOutput)


class DriftReportDetailApi(APIView):
    permission_classes = [IsAnalyst]

    @extend_schema(responses=DriftReportOutput)
    def get(self, request: Request, report_id: int) -> Response:
        return Response(DriftReportOutput(selectors.drift_report_get(report_id=report_id)).data)
