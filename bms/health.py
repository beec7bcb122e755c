"""Liveness (/health), deep checks (/health/deep: database, Redis, broker, disk, memory, the apps' checks)
and the Prometheus scrape (/metrics)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from typing import TypeAlias

import psutil
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rest_framework.exceptions import AuthenticationFailed

from bms import broker
from bms.cache import shared_cache_unavailable
from bms.client_ip import address_in
from bms.errors import error_body
from bms.metrics import exposition_registry

Details: TypeAlias = Mapping[str, object]
"""What a deep check returns: details for the JSON page (it raises to fail)."""
Check: TypeAlias = Callable[[], Details]


def _timed(check: Check) -> dict[str, object]:
    started = time.perf_counter()
    result: dict[str, object]
    try:
        result = {"ok": True, **check()}
    except Exception as exc:  # a failing dependency is reported, never raised
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _database() -> Details:
    """``SELECT 1``; with the psycopg pool, its use too. An exhausted pool fails the check at once,
    without queueing for a connection (requests would get 503 ``database_unavailable`` meanwhile)."""
    out: dict[str, object] = {"vendor": connection.vendor}
    pool = getattr(connection, "pool", None)  # the postgresql backend's psycopg pool, None when unpooled
    if pool is not None:
        stats = pool.get_stats()
        in_use = stats.get("pool_size", 0) - stats.get("pool_available", 0)
        waiting = stats.get("requests_waiting", 0)
        out["pool"] = {"max": pool.max_size, "in_use": in_use, "waiting": waiting}
        if in_use >= pool.max_size and waiting:
            raise RuntimeError(f"connection pool exhausted: {in_use}/{pool.max_size} in use, {waiting} waiting")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return out


def _redis() -> Details:
    """Asked directly: the cache itself would answer from memory while Redis is down (bms.cache)."""
    if not settings.REDIS_URL:
        return {"configured": False, "backend": "locmem"}
    from django_redis import get_redis_connection

    get_redis_connection("default").ping()
    return {"configured": True, "cache_fallback_active": shared_cache_unavailable()}


def _broker() -> Details:
    from bms.celery import app

    if app.conf.task_always_eager:
        return {"configured": False, "jobs": "in-process"}
    broker.broker_ping()
    return {"configured": True}


def _disk() -> Details:
    usage = shutil.disk_usage(settings.VAR_DIR if settings.VAR_DIR.exists() else settings.BASE_DIR)
    free_ratio = usage.free / usage.total
    if free_ratio < settings.HEALTH_DISK_MIN_FREE_RATIO:
        raise RuntimeError(f"only {free_ratio:.1%} disk free")
    return {"free_ratio": round(free_ratio, 4), "free_bytes": usage.free}


def _memory() -> Details:
    mem = psutil.virtual_memory()
    used = mem.percent / 100
    if used > settings.HEALTH_MEMORY_MAX_USED_RATIO:
        raise RuntimeError(f"{used:.1%} memory used")
    return {"used_ratio": round(used, 4), "available_bytes": mem.available}


# The kernel's checks; the apps' (llm, mongo: chat; models: predictions) are added by the project wiring
# (check_register in bms/wiring.py) and reported after these, in that order.
CHECKS: dict[str, Check] = {
    "database": _database,
    "redis": _redis,
    "broker": _broker,
    "disk": _disk,
    "memory": _memory,
}


def check_register(name: str, check: Check) -> None:
    """Add an app's deep check. It returns details or raises (reported as failed, 503). A check that
    names something ``unavailable`` (the models check: a target whose artifact did not load) makes the
    status "degraded" without a 503: one broken artifact must not take the pod out of service."""
    CHECKS[name] = check


def _is_internal(request: HttpRequest) -> bool:
    # REMOTE_ADDR as bms.client_ip resolved it: a forwarded header counts only from a trusted proxy.
    return address_in(request.META.get("REMOTE_ADDR", ""), settings.HEALTH_INTERNAL_NETWORKS)


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus scrape: this process's metrics, or all gunicorn workers' in multiprocess mode."""
    registry = exposition_registry(settings.PROMETHEUS_MULTIPROC_DIR)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _caller(request: HttpRequest) -> AbstractBaseUser | AnonymousUser | None:
    """The session user, else the user of a valid JWT / API key (this is a plain Django view)."""
    if request.user.is_authenticated:
        return request.user
    from bms.auth import ApiKeyAuthentication
    from bms.tokens import JWTAuthentication

    for authenticator in (JWTAuthentication(), ApiKeyAuthentication()):
        try:
            # Both read only request.META, which a Django request has as well as a DRF one.
            result = authenticator.authenticate(request)  # type: ignore[arg-type]
        except AuthenticationFailed:  # includes simplejwt's InvalidToken
            return None
        if result is not None:
            return result[0]
    return None


def health_deep(request: HttpRequest) -> JsonResponse:
    if not (_is_internal(request) or getattr(_caller(request), "is_staff", False)):
        return JsonResponse(
            error_body("permission_denied", "Deep health is for staff or internal callers."), status=403
        )
    checks = {name: _timed(check) for name, check in CHECKS.items()}
    healthy = all(c["ok"] for c in checks.values())
    degraded = not healthy or any(c.get("unavailable") for c in checks.values())
    return JsonResponse({"status": "degraded" if degraded else "ok", "checks": checks}, status=200 if healthy else 503)
