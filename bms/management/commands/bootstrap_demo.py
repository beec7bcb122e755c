"""Make the embedded platform usable at once: demo data, trained models, demo users.

Each step is skipped when its result already exists, so ``make run`` is quick the second time.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand

from programs.models import Airing
from registry.selectors import production_models

DEMO_USERS = (("admin", "admin"), ("analyst", "analyst"), ("viewer", "viewer"))


class Command(BaseCommand):
    help = "Generate demo data, train the models and create demo users when they are missing."

    def handle(self, *args: object, **options: object) -> None:
        if not Airing.objects.exists():
            self.stdout.write("Generating demo broadcast data (seed 42)…")
            call_command("generate_broadcasts", seed=42)
        if not production_models():
            self.stdout.write("Training the 24 models on the demo data…")
            call_command("train_models")
        if settings.DEMO_USERS:
            self._demo_users()

    def _demo_users(self) -> None:
        for username, role in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@bms.local"})
            if created:
                user.set_password(f"{username}-demo")
                user.is_staff = role == "admin"
                user.is_superuser = role == "admin"
                user.save()
                user.groups.add(Group.objects.get(name=role))
        self.stdout.write(
            self.style.SUCCESS(
                "Demo logins (embedded mode only): admin / admin-demo, analyst / analyst-demo, viewer / viewer-demo"
            )
        )
        self.stdout.write(self.style.SUCCESS(f"Open {settings.SITE_URL}/"))
