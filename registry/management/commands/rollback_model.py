"""Roll a target back to its previous production version (same service as the API and admin)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bms.errors import ApplicationError
from programs.models import TARGETS
from registry import services


class Command(BaseCommand):
    help = "Roll back the production model of a target to the previous production version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("target", choices=TARGETS)
        parser.add_argument("--reason", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            restored = services.model_version_rollback(target=options["target"], actor=None, reason=options["reason"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"{restored} is back in production"))
