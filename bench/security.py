"""Security figures: 200 wrong logins with a rotating X-Forwarded-For on each login door, `check --deploy`
with a production environment, bandit over the apps. Writes the ``security`` section of docs/benchmarks.md.

Runs on a throwaway test database (SQLite unless DATABASE_URL is set). Schemathesis' figures come from
its test (``tests/reliability/test_schemathesis.py``: every operation, admin and anonymous, 0 failures).
Usage: ``.venv/bin/python bench/security.py``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from bench._report import machine, write_section  # noqa: E402

SECTION = "security"
ATTEMPTS = 200
APPS = ["bms", "programs", "registry", "predictions", "scheduling", "chat", "web"]


def _wrong_logins(door: str) -> Counter[int]:
    client = Client(REMOTE_ADDR="203.0.113.9")
    statuses: Counter[int] = Counter()
    for i in range(ATTEMPTS):
        forwarded = f"198.51.{i // 256}.{i % 256}"
        if door == "/api/v1/auth/token":
            body = json.dumps({"username": "victim", "password": f"wrong-{i}"})
            response = client.post(door, body, content_type="application/json", HTTP_X_FORWARDED_FOR=forwarded)
        else:
            response = client.post(
                door, {"username": "victim", "password": f"wrong-{i}"}, HTTP_X_FORWARDED_FOR=forwarded
            )
        statuses[response.status_code] += 1
    right = (
        client.post(door, json.dumps({"username": "victim", "password": "right-one"}), content_type="application/json")
        if door == "/api/v1/auth/token"
        else client.post(door, {"username": "victim", "password": "right-one"})
    )
    statuses[-right.status_code] += 1  # negative: the right password after the wrong ones
    return statuses


def main() -> None:
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    rows = []
    try:
        for door in ("/api/v1/auth/token", "/login/", "/admin/login/"):
            from axes.models import AccessAttempt

            AccessAttempt.objects.all().delete()
            User.objects.filter(username="victim").delete()
            User.objects.create_user("victim", password="right-one", is_staff=True)
            rows.append((door, _wrong_logins(door)))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DATABASE_URL": "postgres://bms:unused@db.invalid:5432/bms",
        "REDIS_URL": "redis://redis.invalid:6379/0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "bms.example.com",
    }
    deploy = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    bandit = subprocess.run(
        [sys.executable, "-m", "bandit", "-q", "-r", *APPS, "-f", "json"], cwd=ROOT, capture_output=True, text=True
    )
    found = json.loads(bandit.stdout)
    severities = Counter(i["issue_severity"] for i in found["results"])
    skipped = found["metrics"]["_totals"].get("skipped_tests", 0)

    lines = [
        f"Security checks (`bench/security.py`, {connection.vendor}); {machine()}.",
        "",
        f"{ATTEMPTS} wrong passwords for one account from one address, each with a new `X-Forwarded-For`, then "
        f"the right password (LOGIN_FAILURE_LIMIT {settings.AXES_FAILURE_LIMIT}, TRUSTED_PROXIES empty):",
        "",
        "| door | 401 / 200 (form re-shown) | 429 locked | then the right password |",
        "|---|---|---|---|",
    ]
    for door, statuses in rows:
        refused = statuses[401] + statuses[200]
        right = next(-code for code in statuses if code < 0)
        lines.append(f"| `{door}` | {refused} | {statuses[429]} | {right} |")
    lines += [
        "",
        f"`manage.py check --deploy --fail-level WARNING` with a production environment: exit {deploy.returncode}, "
        f"`{(deploy.stdout or deploy.stderr).strip().splitlines()[-1]}`",
        "",
        f"bandit over {', '.join(APPS)}: high {severities.get('HIGH', 0)}, medium {severities.get('MEDIUM', 0)}, "
        f"low {severities.get('LOW', 0)} (mediums justified inline with `# nosec`: {skipped} skipped).",
        "",
        "Schemathesis: `tests/reliability/test_schemathesis.py`, every operation of `/api/schema` as an admin and "
        "anonymously, 8 generated requests each plus the schema's examples: 0 failures (server errors, "
        "undocumented status codes or content types, bodies off the schema).",
    ]
    body = "\n".join(lines)
    print(body)
    write_section(SECTION, body)


if __name__ == "__main__":
    main()
