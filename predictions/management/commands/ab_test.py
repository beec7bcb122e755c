"""Start, stop or show A/B tests (same services as the admin)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from bms.errors import ApplicationError
from predictions import ab_tests, selectors
from predictions.models import ABTest
from registry.selectors import model_version_get


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"--{name}: use ISO 8601, e.g. 2025-03-01T20:00:00-05:00")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


class Command(BaseCommand):
    help = "A/B tests: start (challenger version vs the target's production model), stop, show."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        start = sub.add_parser("start", help="start a test of a challenger version against production")
        start.add_argument("challenger_id", type=int, help="ModelVersion id of the challenger")
        start.add_argument("--name", required=True)
        start.add_argument("--share", type=float, default=0.1, help="challenger's share of callers (0-1)")
        start.add_argument("--mode", choices=ABTest.Mode.values, default=ABTest.Mode.SPLIT)
        start.add_argument("--starts-at", help="ISO 8601; default now")
        start.add_argument("--ends-at", help="ISO 8601, in the future; default open-ended")
        stop = sub.add_parser("stop", help="end an active test now (scored a last time)")
        stop.add_argument("test_id", type=int)
        stop.add_argument("--reason", required=True)
        show = sub.add_parser("show", help="one test with its last scoring, or every test")
        show.add_argument("test_id", type=int, nargs="?")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc

    def _start(self, options: dict[str, Any]) -> None:
        test = ab_tests.ab_test_create(
            name=options["name"],
            challenger=model_version_get(version_id=options["challenger_id"]),
            traffic_share=options["share"],
            mode=options["mode"],
            starts_at=_when(options["starts_at"], "starts-at"),
            ends_at=_when(options["ends_at"], "ends-at"),
        )
        self.stdout.write(self.style.SUCCESS(f"started A/B test {test.pk}: {test}"))

    def _stop(self, options: dict[str, Any]) -> None:
        test = ab_tests.ab_test_stop(test=selectors.ab_test_get(test_id=options["test_id"]), reason=options["reason"])
        self.stdout.write(self.style.SUCCESS(f"stopped A/B test {test.pk}: {test.end_reason}"))

    def _show(self, options: dict[str, Any]) -> None:
        if options["test_id"] is None:
            for test in selectors.ab_test_list():
                self.stdout.write(
                    f"{test.pk}\t{test.status}\t{test.target}\t{test.champion.label} vs {test.challenger.label}"
                    f"\tshare {test.traffic_share}\t{test.mode}\t{test.name}"
                )
            return
        test = selectors.ab_test_get(test_id=options["test_id"])
        for label, value in (
            ("test", f"{test.pk} {test.name!r} ({test.target}, {test.mode}, share {test.traffic_share})"),
            ("arms", f"champion {test.champion.label}, challenger {test.challenger.label}"),
            (
                "status",
                test.status + (f" at {test.ended_at:%Y-%m-%d %H:%M}: {test.end_reason}" if test.ended_at else ""),
            ),
            ("window", f"{test.starts_at:%Y-%m-%d %H:%M} .. {test.ends_at or 'open'}"),
            ("scored", test.scored_at or "never"),
        ):
            self.stdout.write(f"{label}: {value}")
        self.stdout.write(json.dumps(test.result, indent=2, default=str))
