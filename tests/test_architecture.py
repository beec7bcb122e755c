"""The dependency rules between apps, read from the imports (tools/app_graph.py)."""

from __future__ import annotations

from tools import app_graph

WIRING = app_graph.WIRING
# The kernel: what every app may import. It imports no app (the apps' health checks, metric collectors
# and event subscribers are handed to it by bms.wiring). A new module of bms/ must be put in one set.
KERNEL = {
    "bms.access_log",
    "bms.admin",
    "bms.admin_site",
    "bms.api_key_cache",
    "bms.apis",
    "bms.gunicorn_conf",  # gunicorn's config for the HTTP workers: imports no app
    "bms.auth",
    "bms.beat",  # periodic task rows, written by the apps' migrations
    "bms.broker",
    "bms.cache",
    "bms.celery",  # the Celery app; the tasks are found by autodiscovery, by name
    "bms.celery_metrics",
    "bms.client_ip",
    "bms.db",
    "bms.errors",
    "bms.events",
    "bms.health",
    "bms.jobs",
    "bms.lockout",
    "bms.jsontypes",  # JSON value types and narrowing helpers: imports only typing
    "bms.logging",
    "bms.metrics",
    "bms.middleware",
    "bms.models",
    "bms.pagination",
    "bms.parsers",
    "bms.permissions",
    "bms.response_cache",
    "bms.roles",
    "bms.schema",
    "bms.serializers",
    "bms.services",
    "bms.throttling",
    "bms.tokens",
    "bms.versions",  # version marks of the apps' tables, read in one statement (the apps name the models)
    "bms.users",  # the User type and the authenticated request types: imports only Django and DRF
}
PACKAGES = {"bms", "bms.management", "bms.management.commands"}  # bms/__init__.py exposes the Celery app


def bms_modules() -> set[str]:
    return {app_graph.module_name(p) for p in app_graph.app_modules("bms")}


def test_the_app_graph_in_the_docs_is_the_one_the_imports_make() -> None:
    text = app_graph.DOC.read_text()
    assert app_graph.spliced(text, app_graph.render()) == text, "run: python tools/app_graph.py"


def test_every_module_of_bms_is_kernel_or_wiring() -> None:
    assert bms_modules() - PACKAGES == KERNEL | WIRING
    assert not KERNEL & WIRING


def test_the_kernel_imports_no_app() -> None:
    edges = app_graph.module_edges("bms")
    assert {m: edges[m] for m in sorted(KERNEL) if m in edges} == {}
    assert [m for m in KERNEL if app_graph.node_of(m) != "kernel"] == []


def test_the_kernel_imports_nothing_from_the_wiring_and_no_app_imports_the_wiring() -> None:
    edges = app_graph.graph()
    assert [a for (a, b) in edges if b == "wiring"] == []
    assert [b for (a, b) in edges if a == "kernel"] == []


def test_apps_depend_downward_only() -> None:
    edges = app_graph.graph()
    cycles = sorted((a, b) for (a, b) in edges if a < b and (b, a) in edges)
    assert cycles == []
    assert ("registry", "predictions") not in edges  # predictions serves the registry's models, not the reverse
    assert ("programs", "predictions") not in edges


def test_the_graph_reads_imports_made_inside_functions() -> None:
    edges = app_graph.module_edges("bms")
    assert "predictions" in edges["bms.startup"]  # imported inside _warm_up
    assert app_graph.app_of("programs.selectors") == "programs"
    assert app_graph.app_of("django.db") is None
