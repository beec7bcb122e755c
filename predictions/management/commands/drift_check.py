"""Run the drift check now in this process (the nightly task's service): one report per target."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from predictions.drift import drift_check


class Command(BaseCommand):
    help = "Drift report per target (PSI / KS features, accuracy against the model's own spread)."

    def handle(self, *args: object, **options: object) -> None:
        for report in drift_check():
            flagged = [name for name, values in sorted(report.features.items()) if values.get("flagged")]
            if report.accuracy_flagged:
                flagged.append("accuracy")
            ratio = "-" if report.accuracy_drift is None else f"{report.accuracy_drift:+.3f}"
            limit = "-" if report.accuracy_threshold is None else f"{report.accuracy_threshold:.3f}"
            self.stdout.write(
                f"{report.target}: report {report.pk}, {report.n_recent} recent vs {report.n_reference} reference "
                f"airings, accuracy drift {ratio} (threshold {limit}), "
                + (f"FLAGGED: {', '.join(flagged)}" if flagged else "not flagged")
                + (f", retraining run {report.retrain_run_id}" if report.retrain_run_id else "")
            )
