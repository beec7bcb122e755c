"""Reads of A/B tests, prediction logs and drift reports."""

from __future__ import annotations

from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from bms.errors import ApplicationError, NotFoundError
from predictions.models import ABTest, DriftReport, PredictionLog
from programs.models import TARGETS


def ab_test_active_list() -> list[ABTest]:
    """Tests that are active and inside their time window now."""
    now = timezone.now()
    return list(
        ABTest.objects.filter(status=ABTest.Status.ACTIVE, starts_at__lte=now)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .order_by("id")
    )


def _check_target(target: str | None) -> None:
    if target is not None and target not in TARGETS:
        raise ApplicationError(f"Unknown target {target!r}.", code="unknown_target", details={"allowed": list(TARGETS)})


def ab_test_list(*, target: str | None = None, status: str | None = None) -> QuerySet[ABTest]:
    _check_target(target)
    qs = ABTest.objects.select_related("champion", "challenger").order_by("-created_at", "-id")
    if target:
        qs = qs.filter(target=target)
    if status:
        qs = qs.filter(status=status)
    return qs


def ab_test_get(*, test_id: int) -> ABTest:
    test = ABTest.objects.select_related("champion", "challenger").filter(pk=test_id).first()
    if test is None:
        raise NotFoundError(f"A/B test {test_id} not found.")
    return test


def drift_report_list(*, target: str | None = None, flagged: bool | None = None) -> QuerySet[DriftReport]:
    _check_target(target)
    qs = DriftReport.objects.order_by("-created_at", "-id")
    if target:
        qs = qs.filter(target=target)
    if flagged is not None:
        qs = qs.filter(flagged=flagged)
    return qs


def drift_report_get(*, report_id: int) -> DriftReport:
    report = DriftReport.objects.filter(pk=report_id).first()
    if report is None:
        raise NotFoundError(f"Drift report {report_id} not found.")
    return report


def prediction_log_list(*, target: str | None = None, ab_test: ABTest | None = None) -> QuerySet[PredictionLog]:
    qs = PredictionLog.objects.all()
    if target:
        qs = qs.filter(target=target)
    if ab_test is not None:
        qs = qs.filter(ab_test=ab_test)
    return qs


def drift_report_latest(*, target: str) -> DriftReport | None:
    return DriftReport.objects.filter(target=target).order_by("-created_at", "-id").first()


def drift_report_latest_per_target() -> list[DriftReport]:
    """The newest report of each target (two small queries, however many reports are stored)."""
    newest = DriftReport.objects.values("target").annotate(last=Max("id")).order_by().values_list("last", flat=True)
    return list(
        DriftReport.objects.filter(pk__in=list(newest))
        .only("target", "features", "accuracy_drift", "accuracy_threshold", "flagged", "created_at")
        .order_by("target")
    )
