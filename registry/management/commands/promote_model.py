"""Promote a model version to production (same service as the API and admin)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bms.errors import ApplicationError
from registry import selectors, services


class Command(BaseCommand):
    help = "Promote a model version (by id) to production for its target."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version_id", type=int)
        parser.add_argument("--reason", required=True)
        parser.add_argument(
            "--force",
            action="store_true",
            help="promote even if it does not beat production or the best baseline (recorded in the ledger)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            version = selectors.model_version_get(version_id=options["version_id"])
            promoted = services.model_version_promote(
                version=version, actor=None, reason=options["reason"], force=options["force"]
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"{promoted} is now in production"))
