"""bms.metrics.DatabaseCollector: the apps' scrape-time metrics, registered once by bms/wiring.py."""

from __future__ import annotations

import pytest
from prometheus_client.core import GaugeMetricFamily

from bms import metrics
from predictions.metrics import DriftCollector
from registry.metrics import RegistryCollector


class _Broken(metrics.DatabaseCollector[tuple[GaugeMetricFamily]]):
    def families(self) -> tuple[GaugeMetricFamily]:
        return (GaugeMetricFamily("bms_test_broken", "A collector whose database is down.", labels=["x"]),)

    def fill(self, families: tuple[GaugeMetricFamily]) -> None:
        families[0].add_metric(["a"], 1.0)
        raise ConnectionError("database down")


def test_the_wiring_registered_the_registry_and_drift_collectors_once() -> None:
    assert [type(c) for c in metrics.COLLECTORS] == [RegistryCollector, DriftCollector]
    metrics.collector_register(RegistryCollector())
    assert len(metrics.COLLECTORS) == 2


def test_describe_names_the_families_without_a_query() -> None:  # no django_db mark: a query would fail
    assert [f.name for f in RegistryCollector().describe()] == ["bms_model_r2", "bms_training_runs"]
    assert [f.name for f in DriftCollector().describe()] == [
        "bms_drift_score",
        "bms_model_accuracy_drift_ratio",
        "bms_model_accuracy_drift_threshold",
    ]


def test_a_failing_collector_still_answers_with_what_it_filled(caplog: pytest.LogCaptureFixture) -> None:
    families = list(_Broken().collect())
    assert [f.name for f in families] == ["bms_test_broken"]
    assert [s.value for s in families[0].samples] == [1.0]
    assert "_Broken unavailable" in caplog.text
