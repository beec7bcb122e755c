"""Monitoring: health checks (bms.health), workers, LLM providers, cache/token stats, recent errors."""

from __future__ import annotations

from typing import TypedDict

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from bms import health
from bms.models import AuditEvent
from bms.roles import Role
from registry.models import TrainingRun
from scheduling.models import OptimizationJob
from web.views.base import PageView
from web.views.dashboard import llm_stats, prediction_stats

RECENT_LIMIT = 15
WORKER_PING_TIMEOUT_SECONDS = 1.0
# Checks that need no network round trip beyond the database / cache; workers are pinged separately.
PAGE_CHECKS = ("database", "redis", "disk", "memory", "llm", "mongo")


def health_checks() -> dict[str, dict[str, object]]:
    return {name: health._timed(health.CHECKS[name]) for name in PAGE_CHECKS if name in health.CHECKS}


class ProviderRow(TypedDict):
    name: str
    configured: bool
    model: str


class WorkerStatus(TypedDict):
    ok: bool
    mode: str  # eager (in-process) or broker
    workers: list[str]
    detail: str


class RecentFailures(TypedDict):
    audit: list[AuditEvent]
    training: list[TrainingRun]
    schedules: list[OptimizationJob]


def llm_providers() -> list[ProviderRow]:
    configured = {
        "groq": (bool(settings.GROQ_API_KEY), settings.GROQ_MODEL),
        "gemini": (bool(settings.GEMINI_API_KEY), settings.GEMINI_MODEL),
        "openrouter": (bool(settings.OPENROUTER_API_KEY), settings.OPENROUTER_MODEL),
    }
    rows: list[ProviderRow] = [
        {"name": name, "configured": ok, "model": model} for name, (ok, model) in configured.items()
    ]
    rows.append({"name": "offline agent", "configured": True, "model": "offline"})
    return rows


def worker_status() -> WorkerStatus:
    """Ping the Celery workers (embedded mode runs tasks in-process, so there is nothing to ping)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"ok": True, "mode": "eager", "workers": [], "detail": "tasks run in-process (embedded mode)"}
    from bms.celery import app

    try:
        replies = app.control.inspect(timeout=WORKER_PING_TIMEOUT_SECONDS).ping() or {}
    except Exception as exc:  # the broker being down is a status to show, not a page error
        return {"ok": False, "mode": "broker", "workers": [], "detail": f"{type(exc).__name__}: {exc}"[:200]}
    names = sorted(replies)
    return {
        "ok": bool(names),
        "mode": "broker",
        "workers": names,
        "detail": f"{len(names)} worker(s) answered" if names else "no worker answered",
    }


def recent_failures() -> RecentFailures:
    return {
        "audit": list(
            AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_FAILED).order_by("-created_at")[:RECENT_LIMIT]
        ),
        "training": list(TrainingRun.objects.filter(status=TrainingRun.Status.FAILED).order_by("-id")[:RECENT_LIMIT]),
        "schedules": list(
            OptimizationJob.objects.filter(status=OptimizationJob.Status.FAILED).order_by("-id")[:RECENT_LIMIT]
        ),
    }


class MonitoringPage(PageView):
    min_role = Role.ADMIN

    def get(self, request: HttpRequest) -> HttpResponse:
        cache_stats, token_usage = llm_stats()
        checks = health_checks()
        context = {
            "checks": checks,
            "healthy": all(c["ok"] for c in checks.values()),
            "providers": llm_providers(),
            "cache_stats": cache_stats,
            "token_usage": token_usage,
            "prediction_stats": prediction_stats(),
            "failures": recent_failures(),
            "grafana_url": settings.GRAFANA_URL,
            "eager": settings.CELERY_TASK_ALWAYS_EAGER,
        }
        return render(request, "web/monitoring.html", context)


class WorkerStatusJson(PageView):
    """Worker ping, fetched by the monitoring page after it rendered (a ping can take up to a second)."""

    min_role = Role.ADMIN

    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse(worker_status())
