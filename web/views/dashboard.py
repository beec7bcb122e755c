"""Dashboard: KPIs from every app (each "—" while its app has no data), trend charts, latest run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import Avg, Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from programs.models import TARGETS, Program
from programs.selectors import airings_total, data_version_current
from web import selectors, sources
from web.views.base import PageView


@dataclass(frozen=True)
class ProductionModel:
    target: str
    algorithm: str
    version: Any
    r2: float | None


def production_models() -> list[ProductionModel] | None:
    """Production model per target (None when the registry is not installed)."""
    func = sources.optional("registry.selectors", "production_models")
    if func is None:
        return None
    models = func()
    return [
        ProductionModel(
            target=target,
            algorithm=str(getattr(models[target], "algorithm", "")),
            version=getattr(models[target], "version", None),
            r2=sources.metric(models[target], "r2", "R2"),
        )
        for target in TARGETS
        if target in models
    ]


def latest_training_run() -> Any | None:
    model = sources.optional_model("registry", "TrainingRun")
    if model is None:
        return None
    return model.objects.order_by("-id").first()


def run_progress(run: Any) -> dict[str, Any]:
    """done / total / percent of a training run, whatever the registry calls its counters."""
    done = getattr(run, "models_done", None)
    if done is None:
        done = getattr(run, "progress_done", None)
    if done is None:
        done = getattr(run, "progress", 0)
    total = getattr(run, "models_total", None) or getattr(run, "progress_total", None) or 24
    done = int(done or 0)
    total = int(total or 0)
    return {"done": done, "total": total, "percent": round(100 * done / total) if total else 0}


def llm_stats() -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Chat cache statistics and token usage totals (None while the chat app has none)."""
    stats_func = sources.optional("chat.cache", "stats")
    usage_func = sources.optional("chat.cache", "usage")
    cache_stats = asdict(stats_func()) if stats_func is not None else None
    if cache_stats is not None and not cache_stats.get("total_requests"):
        cache_stats = None
    usage = None
    if usage_func is not None:
        rows = list(usage_func())
        if rows:
            usage = {
                "rows": rows,
                "total_tokens": sum(int(r.get("total_tokens") or 0) for r in rows),
                "requests": sum(int(r.get("requests") or 0) for r in rows),
                "estimated_cost_usd": sum(float(r.get("estimated_cost_usd") or 0.0) for r in rows),
            }
    return cache_stats, usage


def prediction_stats() -> dict[str, Any] | None:
    """Logged predictions and their mean model latency (one aggregate query)."""
    log_list = sources.optional("predictions.selectors", "prediction_log_list")
    if log_list is None:
        return None
    result = log_list().aggregate(requests=Count("id"), avg_latency_ms=Avg("latency_ms"))
    return result if result["requests"] else None


class DashboardPage(PageView):
    def get(self, request: HttpRequest) -> HttpResponse:
        run = latest_training_run()
        production = production_models()
        r2s = [m.r2 for m in production or [] if m.r2 is not None]
        cache_stats, token_usage = llm_stats()
        context = {
            "programs_count": Program.objects.count(),
            "airings_count": airings_total(),
            "data_version": data_version_current() or None,
            "production": production,
            "mean_r2": sum(r2s) / len(r2s) if r2s else None,
            "cache_stats": cache_stats,
            "token_usage": token_usage,
            "prediction_stats": prediction_stats(),
            "run": run,
            "run_progress": run_progress(run) if run is not None else None,
            "series": selectors.dashboard_series(),
        }
        return render(request, "web/dashboard.html", context)
