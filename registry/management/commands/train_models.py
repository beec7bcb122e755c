"""Train models in this process (same services as the Celery fan-out) with a progress bar."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from bms.errors import ApplicationError
from programs.models import TARGETS
from registry import services
from registry.algorithms import ALGORITHMS
from registry.models import TrainingJob, TrainingRun


class Command(BaseCommand):
    help = "Train (targets x algorithms) models on the airings in the database, then select and promote."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--targets", nargs="+", choices=TARGETS, help="default: all four")
        parser.add_argument("--algorithms", nargs="+", choices=ALGORITHMS, help="default: all six")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = services.training_run_start(
                trigger=TrainingRun.Trigger.MANUAL,
                targets=options["targets"],
                algorithms=options["algorithms"],
                dispatch=False,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        bar = tqdm(total=run.models_total, disable=options["no_progress"], unit="model", file=self.stderr)

        def progress(job: TrainingJob, outcome: services.JobOutcome) -> None:
            bar.set_postfix_str(f"{job.target}/{job.algorithm} {outcome.status}")
            bar.update(1)
            if outcome.error:
                self.stderr.write(f"{job.target}/{job.algorithm} failed: {outcome.error}")

        try:
            run = services.training_run_execute_inline(run=run, progress=progress)
        finally:
            bar.close()
        self.stdout.write(
            f"run {run.pk}: {run.status}, {run.models_done - run.models_failed}/{run.models_total} trained"
        )
        for target, entry in sorted(run.selection.items()):
            self.stdout.write(f"  {target}: {entry.get('reason', '')}")
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(run.error or "the run failed")
