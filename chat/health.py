"""Chat's deep health checks (registered by bms/wiring.py): LLM providers and the Mongo history."""

from __future__ import annotations

from django.conf import settings

from bms.health import Details
from chat.history import mongo_ping
from chat.providers import breaker_states


def llm_check() -> Details:
    providers = [
        name
        for name, key in (
            ("groq", settings.GROQ_API_KEY),
            ("gemini", settings.GEMINI_API_KEY),
            ("openrouter", settings.OPENROUTER_API_KEY),
        )
        if key
    ]
    # Keys are checked for presence only; the offline agent always answers. Circuit breakers are
    # those of this process (each web worker keeps its own).
    return {"providers": providers, "offline_agent": True, "circuits": breaker_states()}


def mongo_check() -> Details:
    if not settings.MONGO_URL:
        return {"configured": False}
    mongo_ping()
    return {"configured": True}
