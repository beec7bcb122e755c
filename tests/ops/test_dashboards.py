"""Grafana dashboards: every panel query names a metric that really exists.

App metrics (``bms_*``, ``django_*``, ``process_*``) are checked against a live /metrics scrape taken
after exercising the API. Exporter metrics cannot be scraped here (node/postgres/redis exporters do not
run on this machine), so they are checked against the list below, taken from the exporters' docs for
the versions pinned in docker/docker-compose.yml.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.ops.live import LiveStack

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "docker" / "grafana" / "dashboards").glob("*.json"))

# node_exporter v1.8, postgres_exporter v0.15 (default collectors), redis_exporter v1.62; "up" is Prometheus's.
EXPORTER_METRICS = frozenset(
    {
        "up",
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
        "node_filesystem_avail_bytes",
        "node_filesystem_size_bytes",
        "node_disk_read_bytes_total",
        "node_disk_written_bytes_total",
        "node_network_receive_bytes_total",
        "node_network_transmit_bytes_total",
        "pg_up",
        "pg_database_size_bytes",
        "pg_settings_max_connections",
        "pg_stat_database_numbackends",
        "pg_stat_database_blks_hit",
        "pg_stat_database_blks_read",
        "pg_stat_database_xact_commit",
        "pg_stat_database_xact_rollback",
        "pg_stat_database_tup_fetched",
        "pg_stat_database_tup_returned",
        "pg_stat_database_tup_inserted",
        "pg_stat_database_deadlocks",
        "pg_stat_database_conflicts",
        "pg_stat_activity_count",
        "pg_stat_activity_max_tx_duration",
        "redis_up",
        "redis_memory_used_bytes",
        "redis_connected_clients",
        "redis_keyspace_hits_total",
        "redis_keyspace_misses_total",
        "redis_commands_processed_total",
        "redis_db_keys",
    }
)
EXPORTER_PREFIXES = ("node_", "pg_", "redis_")

_PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
)


def metric_names(expr: str) -> set[str]:
    """Metric names used by a PromQL expression (label matchers, grouping labels, functions removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables ($__rate_interval)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?", text):
        name, is_call = match.group(1), match.group(2)
        if is_call or name in _PROMQL_WORDS or re.fullmatch(r"\d+[smhdwy]", name):
            continue
        names.add(name)
    return names


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def prometheus_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every Prometheus target."""
    rows = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                if target.get("datasource", panel.get("datasource", {})).get("type") == "prometheus":
                    rows.append((path.name, panel["title"], target["expr"]))
    return rows


def test_metric_name_extraction() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, view) (rate(django_http_requests_latency_seconds_by_view_method_bucket"
        '{status=~"5..", view!="x"}[$__rate_interval]))) / ignoring(job) sum(up{job="a"}) or vector(0)'
    )
    assert metric_names(expr) == {"django_http_requests_latency_seconds_by_view_method_bucket", "up"}
    assert metric_names("topk(10, max by (target, feature) (bms_drift_score)) > 0.1") == {"bms_drift_score"}
    assert metric_names("1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes") == {
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
    }


def test_the_four_dashboards_are_provisioned_with_unique_uids_and_known_datasources() -> None:
    dashboards = {p.name: json.loads(p.read_text()) for p in DASHBOARDS}
    assert sorted(dashboards) == ["bms-application.json", "bms-database.json", "bms-ml.json", "bms-system.json"]
    assert sorted(d["uid"] for d in dashboards.values()) == ["bms-application", "bms-database", "bms-ml", "bms-system"]
    for name, dashboard in dashboards.items():
        panels = [p for p in _panels(dashboard) if p["type"] != "row"]
        assert panels, name
        ids = [p["id"] for p in _panels(dashboard)]
        assert len(ids) == len(set(ids)), name
        for panel in panels:
            assert panel["datasource"]["uid"] in {"prometheus", "loki"}, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])


def test_every_dashboard_query_is_valid_promql_shaped() -> None:
    queries = prometheus_queries()
    assert len(queries) >= 50
    for dashboard, title, expr in queries:
        assert expr.count("(") == expr.count(")"), (dashboard, title, expr)
        assert metric_names(expr), (dashboard, title, expr)


@pytest.mark.live_server
def test_every_dashboard_metric_is_exported_by_the_app_or_a_listed_exporter(live_stack: LiveStack) -> None:
    # Exercise the API so the request metrics have samples, not just declarations.
    token = live_stack.token("live_analyst")
    assert live_stack.request("GET", "/api/v1/programs", token=token)[0] == 200
    assert live_stack.request("GET", "/api/v1/programs/NOPE", token=token)[0] == 404
    assert live_stack.request("GET", "/health")[0] == 200
    scrape = live_stack.scrape_web()

    missing = []
    used = set()
    for dashboard, title, expr in prometheus_queries():
        for name in metric_names(expr):
            used.add(name)
            if name.startswith(EXPORTER_PREFIXES) or name == "up":
                ok = name in EXPORTER_METRICS
            else:
                ok = scrape.exports(name)
            if not ok:
                missing.append((dashboard, title, name))

    assert missing == []
    # The dashboards cover the metrics that matter (seed lists): spot-check a few from each family.
    assert {
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "bms_prediction_latency_seconds_bucket",
        "bms_llm_tokens_total",
        "bms_model_accuracy_drift_ratio",
        "bms_celery_queue_depth",
        "pg_stat_activity_count",
        "node_filesystem_avail_bytes",
        "process_cpu_seconds_total",
    } <= used
