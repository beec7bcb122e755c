"""The dependency rules between apps, read from the imports (tools/app_graph.py)."""

from __future__ import annotations

from tools import app_graph

# bms/ holds the project wiring and the shared kernel. Wiring may import any app: it assembles them.
WIRING = {
    "bms.settings",
    "bms.test_settings",
    "bms.urls",
    "bms.api_urls",
    "bms.asgi",
    "bms.asgi_handler",
    "bms.wsgi",
    "bms.celery",
    "bms.beat",
    "bms.apps",
    "bms.startup",  # the server's warm-up: loads the production models before the first request
    "bms.wiring",  # connects the apps' event subscribers to the kernel's events
    "bms.management.commands.bootstrap_demo",
    "bms.management.commands.create_api_key",
}
# Kernel modules that import an app today (issue 17 moves them out; this list may only shrink).
KNOWN_KERNEL_VIOLATIONS = {
    "bms.health": {"chat", "predictions"},  # asks chat (breakers, Mongo) and predictions for their checks
    "bms.metrics": {"predictions", "registry"},  # RegistryCollector reads models and drift at each scrape
}


def kernel_modules() -> list[str]:
    """Every module of bms/ that is not wiring: errors, roles, permissions, metrics, audit, db, cache..."""
    return [m for p in app_graph.app_modules("bms") if (m := app_graph.module_name(p)) not in WIRING]


def test_the_app_graph_in_the_docs_is_the_one_the_imports_make() -> None:
    text = app_graph.DOC.read_text()
    assert app_graph.spliced(text, app_graph.render()) == text, "run: python tools/app_graph.py"


def test_the_kernel_imports_no_app_beyond_the_known_violations() -> None:
    kernel = kernel_modules()
    assert {"bms.errors", "bms.roles", "bms.metrics"} <= set(kernel)
    assert "bms.settings" not in kernel
    edges = app_graph.module_edges("bms")
    found = {m: edges[m] for m in kernel if m in edges}
    assert found == KNOWN_KERNEL_VIOLATIONS


def test_the_graph_reads_imports_made_inside_functions() -> None:
    edges = app_graph.module_edges("bms")
    assert "predictions" in edges["bms.metrics"]  # imported inside RegistryCollector.collect
    assert app_graph.app_of("programs.selectors") == "programs"
    assert app_graph.app_of("django.db") is None
