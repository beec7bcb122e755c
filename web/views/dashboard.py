"""Dashboard: KPIs from every app (each "—" while its app has no data), trend charts, latest run.

Every figure is a read of a maintained summary or a small table (programs, model versions, runs, the
chat cache counters, the prediction log aggregate): nothing here reads airings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, TypedDict

from django.db.models import Avg, Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from chat import cache as chat_cache
from predictions.selectors import prediction_log_list
from programs.models import TARGETS, Program
from programs.selectors import airings_total, data_version_current
from registry.models import TrainingRun
from registry.selectors import production_models
from web import selectors
from web.views.base import PageView


@dataclass(frozen=True)
class ProductionModel:
    target: str
    algorithm: str
    version: int
    r2: float | None


def production_list() -> list[ProductionModel]:
    """The production model of each target that has one, with its test R²."""
    models = production_models()
    out = []
    for target in TARGETS:
        if target in models:
            version = models[target]
            r2 = (version.metrics or {}).get("r2")
            out.append(
                ProductionModel(
                    target=target,
                    algorithm=version.algorithm,
                    version=version.version,
                    r2=float(r2) if isinstance(r2, int | float) else None,
                )
            )
    return out


class RunProgress(TypedDict):
    done: int
    total: int
    percent: int


def run_progress(run: TrainingRun) -> RunProgress:
    """done / total / percent of a training run."""
    done, total = int(run.models_done), int(run.models_total)
    return {"done": done, "total": total, "percent": round(100 * done / total) if total else 0}


def llm_stats() -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Chat cache statistics and token usage totals (None while there are none)."""
    stats = asdict(chat_cache.stats())
    cache_stats = stats if stats["total_requests"] else None
    rows = list(chat_cache.usage())
    usage = None
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
    result = prediction_log_list().aggregate(requests=Count("id"), avg_latency_ms=Avg("latency_ms"))
    return result if result["requests"] else None


class DashboardPage(PageView):
    def get(self, request: HttpRequest) -> HttpResponse:
        run = TrainingRun.objects.order_by("-id").first()
        production = production_list()
        r2s = [m.r2 for m in production if m.r2 is not None]
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
