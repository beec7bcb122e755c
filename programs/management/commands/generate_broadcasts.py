"""``manage.py generate_broadcasts``: write the synthetic broadcast data (see docs/data.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bms.errors import ApplicationError
from programs.generator import GeneratorConfig, days_for_airings, generate, simulate, simulation_summary
from programs.models import TARGETS


class Command(BaseCommand):
    help = "Generate synthetic channels, programs and airings (deterministic for a seed)."

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = GeneratorConfig()
        parser.add_argument("--seed", type=int, default=defaults.seed)
        parser.add_argument("--channels", type=int, default=defaults.channels)
        parser.add_argument("--programs", type=int, default=defaults.programs)
        parser.add_argument("--days", type=int, default=defaults.days)
        parser.add_argument(
            "--airings", type=int, help="generate exactly this many airings (the days follow from the channels)"
        )
        parser.add_argument("--report", action="store_true", help="print the best R² any model can reach per target")
        parser.add_argument("--replace", action="store_true", help="delete existing broadcast data first")
        parser.add_argument("--dry-run", action="store_true", help="simulate only (with --report); write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = GeneratorConfig(
                seed=options["seed"], channels=options["channels"], programs=options["programs"], days=options["days"]
            )
            if options["airings"] is not None:
                config = days_for_airings(config, options["airings"])
            if options["dry_run"]:
                summary = simulation_summary(simulate(config))
                self.stdout.write(
                    f"Simulated {summary['channels']} channels, {summary['programs']} programs, "
                    f"{summary['airings']} airings (nothing written)."
                )
                ceilings = summary["ceilings"]
            else:
                stats = generate(config, replace_existing=options["replace"])
                self.stdout.write(
                    self.style.SUCCESS(
                        f"Generated {stats.channels} channels, {stats.programs} programs, {stats.airings} airings "
                        f"in {stats.seconds:.1f} s (data version {stats.data_version})."
                    )
                )
                ceilings = stats.ceilings
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if options["report"]:
            self.stdout.write("Best R² any model can reach on the latest 20% of airings (noise ceiling):")
            for target in TARGETS:
                self.stdout.write(f"  {target:<11} {ceilings[target]:.3f}")
