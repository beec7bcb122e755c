"""``manage.py rebuild_aggregates``: recompute the maintained summaries of airings from scratch."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from programs.aggregates import aggregates_rebuild


class Command(BaseCommand):
    help = "Recompute the per-program and per-period summaries from the airings (normally kept by every write)."

    def handle(self, *args: object, **options: object) -> None:
        started = time.perf_counter()
        airings = aggregates_rebuild()
        self.stdout.write(
            self.style.SUCCESS(f"Rebuilt the summaries of {airings} airings in {time.perf_counter() - started:.1f} s.")
        )
