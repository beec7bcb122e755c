"""Test settings: the real settings plus what makes tests fast and hermetic."""

from bms.settings import *  # noqa: F403
from bms.settings import BASE_DIR, REST_FRAMEWORK

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ARTIFACT_ROOT = BASE_DIR / "var" / "test-artifacts"
EXPORT_ROOT = BASE_DIR / "var" / "test-exports"
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
