"""The drift metrics read at each scrape, from the newest drift report of each target."""

from __future__ import annotations

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily

from bms.metrics import DatabaseCollector
from predictions.selectors import drift_report_latest_per_target

_Families = tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]


class DriftCollector(DatabaseCollector[_Families]):
    """``bms_drift_score`` per feature, ``bms_model_accuracy_drift_ratio`` and the calibrated threshold it
    is flagged above (``bms_model_accuracy_drift_threshold``), per target: two small queries."""

    def families(self) -> _Families:
        return (
            GaugeMetricFamily(
                "bms_drift_score",
                "Drift score (PSI or KS statistic) per target and feature, newest drift report.",
                labels=["target", "feature"],
            ),
            GaugeMetricFamily(
                "bms_model_accuracy_drift_ratio",
                "Relative increase of recent error over the holdout error, per target (0.1 = 10% worse).",
                labels=["target"],
            ),
            GaugeMetricFamily(
                "bms_model_accuracy_drift_threshold",
                "Accuracy drift above which the newest report flags, calibrated per model (docs/predictions.md).",
                labels=["target"],
            ),
        )

    def fill(self, families: _Families) -> None:
        drift, accuracy, threshold = families
        for report in drift_report_latest_per_target():
            for feature, values in sorted((report.features or {}).items()):
                drift.add_metric([report.target, feature], float(values.get("score", 0.0)))
            if report.accuracy_drift is not None:
                accuracy.add_metric([report.target], report.accuracy_drift)
                # Reports from before the calibration carry none: the setting applied to them.
                limit = report.accuracy_threshold
                threshold.add_metric([report.target], settings.DRIFT_ACCURACY_THRESHOLD if limit is None else limit)
