"""The nightly drift report on stored airings: flags, gauges, accuracy drift and retraining."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from prometheus_client import REGISTRY

from predictions.drift import drift_check, drift_report_create
from predictions.models import DriftReport
from predictions.tasks import drift_check_task
from programs.models import Airing
from registry.models import TrainingRun

pytestmark = pytest.mark.django_db


def _recent(report):
    return Airing.objects.filter(start__gt=report.window_start, start__lte=report.window_end)


def test_unshifted_data_is_not_flagged(world):
    report = drift_report_create(target="rating")
    assert report.n_recent > 100
    assert report.n_reference > report.n_recent
    assert report.window_end - report.window_start == timedelta(days=7)
    assert not [f for f, v in report.features.items() if v["flagged"]]
    assert report.model_version_id == world.production["rating"].pk
    assert report.recent_rmse is not None
    assert report.accuracy_drift is not None


def test_a_shifted_feature_is_flagged_and_the_others_are_not(world):
    baseline = drift_report_create(target="audience")
    _recent(baseline).update(duration_minutes=F("duration_minutes") + 90)
    report = drift_report_create(target="audience")
    assert [f for f, v in report.features.items() if v["flagged"]] == ["duration_minutes"]
    assert report.features["duration_minutes"]["kind"] == "numeric"
    assert report.features["duration_minutes"]["score"] > 0.5
    assert report.features["genre"]["score"] == baseline.features["genre"]["score"]
    assert report.flagged
    sample = REGISTRY.get_sample_value("bms_drift_score", {"target": "audience", "feature": "duration_minutes"})
    assert sample == report.features["duration_minutes"]["score"]


def test_worse_recent_errors_are_accuracy_drift(world, settings):
    settings.DRIFT_ACCURACY_THRESHOLD = 0.25
    baseline = drift_report_create(target="engagement")
    _recent(baseline).update(engagement=F("engagement") * 0.3)
    report = drift_report_create(target="engagement")
    assert report.accuracy_drift is not None
    assert report.accuracy_drift > 0.25
    assert baseline.accuracy_drift is not None
    assert report.accuracy_drift > baseline.accuracy_drift
    assert report.flagged
    gauge = REGISTRY.get_sample_value("bms_model_accuracy_drift_ratio", {"target": "engagement"})
    assert gauge == report.accuracy_drift


def test_flagged_drift_starts_a_retraining_run_only_when_enabled(world, settings):
    first = drift_report_create(target="rating")
    _recent(first).update(duration_minutes=F("duration_minutes") + 120)
    settings.DRIFT_RETRAIN_ENABLED = False
    runs = TrainingRun.objects.count()
    drift_check()
    assert TrainingRun.objects.count() == runs
    settings.DRIFT_RETRAIN_ENABLED = True
    reports = {r.target: r for r in drift_check()}
    run = TrainingRun.objects.latest("id")
    assert run.trigger == "drift"
    flagged = [t for t, r in reports.items() if r.flagged]
    assert "rating" in flagged
    assert run.targets == flagged
    assert DriftReport.objects.get(pk=reports["rating"].pk).retrain_run_id == run.pk


def test_nightly_task_stores_one_report_per_target(world):
    result = drift_check_task()
    assert set(result) == {"rating", "revenue", "audience", "engagement"}
    assert DriftReport.objects.count() == 4
