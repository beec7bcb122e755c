"""``manage.py create_api_key USERNAME --name NAME``: make a service key; the key is printed once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from bms.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key (sent as the X-API-Key header) for a user. The key is shown only once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="What the key is for, e.g. 'grafana' or 'etl'.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        if not user.is_active:
            raise CommandError(f"User {options['username']!r} is inactive.")
        name = options["name"].strip()
        if not name:
            raise CommandError("--name must not be empty.")
        key, raw = api_key_create(user=user, name=name)
        self.stderr.write(f"API key {key.name!r} for {user.get_username()} (prefix {key.prefix}). Store it now:")
        self.stdout.write(raw)
