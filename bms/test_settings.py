"""Test settings: the real settings plus what makes tests fast and hermetic (pytest's
DJANGO_SETTINGS_MODULE). Every test-only switch lives here; bms/settings.py does not know about tests.
Subprocesses that tests start (live servers, workers) use bms.settings with explicit environment values.
"""

import os

# bms.settings refuses the public default key when DATABASE_URL is set (production-like); a test run
# against PostgreSQL without SECRET_KEY gets a key of its own instead. The environment still wins.
os.environ.setdefault("SECRET_KEY", "test-only-not-secret")

from bms.settings import *  # noqa: F403
from bms.settings import BASE_DIR, REST_FRAMEWORK

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ARTIFACT_ROOT = BASE_DIR / "var" / "test-artifacts"
EXPORT_ROOT = BASE_DIR / "var" / "test-exports"
HISTORY_STATE_ROOT = str(BASE_DIR / "var" / "test-history-states")
# Throttles are exercised by their own test with a low rate; the rest of the suite must not trip them.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"anon": "100000/minute", "user": "100000/minute", "chat": "100000/minute"},
}
# No provider keys in tests: the LLM path is exercised only against fakes and a loopback stub.
GROQ_API_KEY = ""
GEMINI_API_KEY = ""
OPENROUTER_API_KEY = ""
LOG_JSON = False
# The test client speaks plain HTTP: with DATABASE_URL set (CI) the production HTTPS redirect would answer
# every request with 301. tests/bms/test_deploy_checks.py checks the production values in a subprocess.
SECURE_SSL_REDIRECT = False
# Work that production does on background threads runs inline, so a test sees its effect at once.
JOBS_IN_BACKGROUND = False  # bms.jobs: eager tasks run in the caller
PREDICTION_LOG_BACKGROUND = False  # predictions.logbuffer flushes synchronously
SERVER_WARM_UP = False  # tests import the ASGI application without serving from it
# The history-state job after each generation/import: off, as a test run against Redis has no worker to read
# the queue (the messages would pile up there); tests of the job turn it on (tests/predictions/conftest.py).
HISTORY_PREBUILD = False
