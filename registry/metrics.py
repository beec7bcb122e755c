"""The registry's metrics read at each scrape: production models' holdout R², finished training runs."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from bms.metrics import DatabaseCollector
from registry.selectors import production_models, training_run_counts


class RegistryCollector(DatabaseCollector[tuple[GaugeMetricFamily, CounterMetricFamily]]):
    """``bms_model_r2`` (per production model) and ``bms_training_runs_total`` (by status): two queries."""

    def families(self) -> tuple[GaugeMetricFamily, CounterMetricFamily]:
        return (
            GaugeMetricFamily(
                "bms_model_r2", "Holdout R2 of the production model per target.", labels=["target", "algorithm"]
            ),
            CounterMetricFamily("bms_training_runs", "Training runs finished, by status.", labels=["status"]),
        )

    def fill(self, families: tuple[GaugeMetricFamily, CounterMetricFamily]) -> None:
        r2, runs = families
        for target, version in sorted(production_models().items()):
            if version.r2 is not None:
                r2.add_metric([target, version.algorithm], version.r2)
        for status, count in sorted(training_run_counts().items()):
            runs.add_metric([status], count)
