"""What a web process does once, before it serves: import the URLconf (every view module: about a
second), load the production models and build the history-feature state, so no client's first request
pays for them; then freeze.

``gc.freeze()`` moves every object alive at that point (Django, the apps, the loaded models with
their hundreds of thousands of objects) out of the collector's generations. Without it each full
collection walks them all: about 85 ms on this machine, which showed up as the p99 of
``/api/v1/predict`` (bench/predict.py). The predictor freezes again after it loads new models.
"""

from __future__ import annotations

import gc
import logging
from concurrent.futures import Executor

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)


def _warm_up() -> None:
    from django.urls import get_resolver

    from predictions.lookups import get_lookups
    from predictions.predictor import get_predictor

    get_resolver().url_patterns  # noqa: B018 (imports the views)
    try:
        get_predictor().refresh()
        get_lookups().history_warm()
    except Exception:  # a database not migrated yet, an unreadable artifact: the first request retries
        logger.warning("could not load the production models at start; the first prediction will", exc_info=True)
    finally:
        connections.close_all()


def serving_process_ready(executor: Executor | None = None) -> None:
    """Warm up (on ``executor`` when the caller runs inside an event loop), then freeze the heap.

    Off with ``SERVER_WARM_UP=0`` (tests import the ASGI application without serving from it).
    """
    if not settings.SERVER_WARM_UP:
        return
    if executor is not None:
        executor.submit(_warm_up).result()
    else:
        _warm_up()
    gc.freeze()
