"""docker/.env.example documents every environment variable bms/settings.py reads."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_READ = re.compile(r'(?:env_(?:str|bool|int|float|list|ranges)|os\.environ\.get|os\.getenv)\(\s*"([A-Z][A-Z0-9_]*)"')
_DOCUMENTED = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def settings_env_names() -> set[str]:
    return set(_READ.findall((ROOT / "bms" / "settings.py").read_text()))


def documented_env_names() -> set[str]:
    return set(_DOCUMENTED.findall((ROOT / "docker" / ".env.example").read_text()))


def test_settings_reads_a_known_set_of_variables() -> None:
    names = settings_env_names()
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "MONGO_URL", "CELERY_METRICS_PORT", "LOG_JSON"} <= names


def test_every_setting_read_from_the_environment_is_in_env_example() -> None:
    assert sorted(settings_env_names() - documented_env_names()) == []


def test_env_example_holds_no_real_secret() -> None:
    text = (ROOT / "docker" / ".env.example").read_text()
    for key in ("SECRET_KEY", "POSTGRES_PASSWORD", "MONGO_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        value = re.search(rf"^{key}=(.*)$", text, re.MULTILINE)
        assert value is not None, key
        assert value.group(1).startswith("change-me"), key
    for key in ("GROQ_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY"):
        assert re.search(rf"^# {key}=$", text, re.MULTILINE), key
