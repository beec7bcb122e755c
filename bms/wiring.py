"""Project wiring: what the kernel is told about the apps, in one place; ``connect()`` runs once at
start-up from ``bms.apps.BmsConfig.ready``.

Who reacts to the cross-app events (``bms.events``). Each subscriber runs inside the sender's
transaction, in the order listed here:

- ``BROADCAST_DATA_CHANGED`` (programs: generation, import, edit)
  1. ``predictions.ab_tests.ab_tests_score_on_import``: imported airings bring actual values, so the
     running A/B tests are scored again after commit.
  2. ``predictions.lookups.history_prebuild_on_generation``: a generation's serving history states are
     built by a job right after its commit (``predictions.history_prebuild``).
- ``AIRINGS_IMPORTED`` (programs: an import that wrote airings, after its commit)
  1. ``predictions.lookups.history_refresh_on_import``: this process's serving history state folds the
     imported airings in and writes them to the store, or (an import that edited earlier airings, a
     process without states) a job builds them (``predictions.history_prebuild``), so the first
     prediction after the import builds nothing; other processes map the stored states in.
- ``PRODUCTION_MODEL_CHANGED`` (registry: promotion, rollback)
  1. ``predictions.ab_tests.ab_tests_end_on_production_change``: the target's active A/B test ends (its
     champion is no longer what callers get); the ledger event names it.
  2. ``predictor_reload_after_commit``: this process's predictor looks at the registry again after
     commit (other processes notice within ``PREDICTOR_GENERATION_CHECK_MS``).

The apps' deep health checks (``bms.health``, after the kernel's): llm and mongo (chat), models
(predictions). The collectors that read an app's tables at each scrape (``bms.metrics``): registry
(production R², training runs) and predictions (drift).
"""

from __future__ import annotations

from django.db import transaction

from bms.events import AIRINGS_IMPORTED, BROADCAST_DATA_CHANGED, PRODUCTION_MODEL_CHANGED, ProductionModelChanged
from bms.health import check_register
from bms.jsontypes import JSONObject
from bms.metrics import collector_register
from chat.health import llm_check, mongo_check
from predictions.ab_tests import ab_tests_end_on_production_change, ab_tests_score_on_import
from predictions.health import models_check
from predictions.lookups import history_prebuild_on_generation, history_refresh_on_import
from predictions.metrics import DriftCollector
from predictions.predictor import invalidate_predictor
from registry.metrics import RegistryCollector


def predictor_reload_after_commit(change: ProductionModelChanged) -> JSONObject:
    transaction.on_commit(invalidate_predictor)
    return {}


def connect() -> None:
    BROADCAST_DATA_CHANGED.subscribe(ab_tests_score_on_import)
    BROADCAST_DATA_CHANGED.subscribe(history_prebuild_on_generation)
    AIRINGS_IMPORTED.subscribe(history_refresh_on_import)
    PRODUCTION_MODEL_CHANGED.subscribe(ab_tests_end_on_production_change)
    PRODUCTION_MODEL_CHANGED.subscribe(predictor_reload_after_commit)

    check_register("llm", llm_check)
    check_register("mongo", mongo_check)
    check_register("models", models_check)

    collector_register(RegistryCollector())
    collector_register(DriftCollector())
