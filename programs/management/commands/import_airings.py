"""``manage.py import_airings FILE [--mapping map.json] [--skip-invalid --rejects rejects.csv]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bms.jsontypes import json_objects
from programs.importer import ColumnMapping, ImportValidationError, airings_import, rejects_write

MAX_ERRORS_SHOWN = 200


class Command(BaseCommand):
    help = "Import airings from a CSV file (canonical columns, or a JSON column mapping). See docs/data.md."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--mapping", help="JSON column mapping for a foreign file (docs/mappings/*.json)")
        parser.add_argument("--skip-invalid", action="store_true", help="import the good rows and report the bad ones")
        parser.add_argument("--rejects", help="with --skip-invalid: write rejected rows with line and reason here")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["rejects"] and not options["skip_invalid"]:
            raise CommandError("--rejects needs --skip-invalid.")
        try:
            mapping = ColumnMapping.load(options["mapping"]) if options["mapping"] else None
            result = airings_import(path=options["file"], mapping=mapping, skip_invalid=options["skip_invalid"])
        except ImportValidationError as exc:
            errors = json_objects(exc.details.get("errors"))
            for error in errors[:MAX_ERRORS_SHOWN]:
                self.stderr.write(f"line {error['line']}: {error['reason']}")
            if len(errors) > MAX_ERRORS_SHOWN:
                self.stderr.write(f"... and {len(errors) - MAX_ERRORS_SHOWN} more")
            raise CommandError(exc.message) from exc
        for reject in result.rejects[:MAX_ERRORS_SHOWN]:
            self.stderr.write(f"line {reject.line}: {reject.reason}")
        if options["rejects"]:
            rejects_write(result=result, path=options["rejects"])
        version = f"data version {result.data_version}" if result.data_version else "data version unchanged"
        self.stdout.write(
            self.style.SUCCESS(
                f"Read {result.rows_read} rows: {result.created} airings created, {result.updated} updated, "
                f"{result.unchanged} unchanged, {len(result.rejects)} rejected, "
                f"{result.skipped_without_start} skipped without a start; {result.channels_created} channels and "
                f"{result.programs_created} programs created; {version} ({result.seconds:.1f} s)."
            )
        )
