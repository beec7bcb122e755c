"""A/B tests of a challenger against its target's production model: start, stop, expire, score.

The maths (deterministic arm assignment, paired bootstrap scoring) is in ``predictions.ab``; the
serving side (both arms predicted and logged, one served) is in ``predictions.predict``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from bms.errors import ApplicationError, ConflictError
from bms.events import BroadcastDataChanged, ProductionModelChanged
from bms.jsontypes import JSONObject
from bms.users import RequestUser, User
from predictions.ab import CHALLENGER, CHAMPION, ab_score
from predictions.models import ABTest, PredictionLog
from predictions.predict import prediction_log_flush
from predictions.predictor import AB_GENERATION_KEY
from programs.models import Airing, DataVersion
from registry.models import ModelVersion

logger = logging.getLogger(__name__)


def _ab_changed() -> None:
    try:
        cache.incr(AB_GENERATION_KEY)
    except ValueError:
        cache.set(AB_GENERATION_KEY, 1, timeout=None)


def ab_test_check(
    *,
    challenger: ModelVersion,
    traffic_share: float,
    mode: str,
    starts_at: datetime,
    ends_at: datetime | None,
    now: datetime | None = None,
) -> ModelVersion:
    """Validate a new A/B test; returns the champion (the target's production version).

    ``ends_at`` must be in the future (and after ``starts_at``). A test of the target whose ``ends_at``
    passed is ended first (``ab_tests_expire``), so an expired test never blocks the next one.
    """
    from registry.selectors import production_models

    now = now or timezone.now()
    target = challenger.target
    champion = production_models().get(target)
    if champion is None:
        raise ConflictError(f"There is no production model for {target!r} to test against.", code="no_production_model")
    if champion.pk == challenger.pk:
        raise ApplicationError("The challenger is the production model already.", code="same_model")
    if not 0.0 <= float(traffic_share) <= 1.0:
        raise ApplicationError("traffic_share must be between 0 and 1.", code="invalid_share")
    if mode not in ABTest.Mode.values:
        raise ApplicationError(f"Unknown mode {mode!r}.", code="invalid_mode")
    if ends_at is not None and ends_at <= now:
        raise ApplicationError(
            f"ends_at ({ends_at.isoformat()}) must be in the future.", code="bad_date", details={"ends_at": "past"}
        )
    if ends_at is not None and ends_at <= starts_at:
        raise ApplicationError("ends_at must be after starts_at.", code="bad_date")
    ab_tests_expire(now=now)
    if ABTest.objects.filter(target=target, status=ABTest.Status.ACTIVE).exists():
        raise ConflictError(f"An A/B test for {target!r} is active already; stop it first.", code="ab_test_active")
    return champion


@transaction.atomic
def ab_test_create(
    *,
    name: str,
    challenger: ModelVersion,
    traffic_share: float,
    mode: str = ABTest.Mode.SPLIT,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    actor: RequestUser | None = None,
) -> ABTest:
    """Start an A/B test of ``challenger`` (a ModelVersion) against its target's production model.

    At most one active test per target (also a DB constraint, which settles a race).
    """
    starts_at = starts_at or timezone.now()
    champion = ab_test_check(
        challenger=challenger, traffic_share=traffic_share, mode=mode, starts_at=starts_at, ends_at=ends_at
    )
    test = ABTest.objects.create(
        name=name,
        target=challenger.target,
        champion=champion,
        challenger=challenger,
        traffic_share=float(traffic_share),
        mode=mode,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=actor if isinstance(actor, User) and actor.pk else None,
    )
    transaction.on_commit(_ab_changed)
    return test


def _ab_score_later(test_id: int) -> None:
    """After commit: score an ended test a last time (a Celery task); a broker outage only logs."""
    from predictions.tasks import ab_test_score_task

    try:
        ab_test_score_task.delay(test_id)
    except Exception:  # the test has ended either way; the nightly scoring is not needed for that
        logger.exception("could not enqueue the last scoring of A/B test %s", test_id)


def _ab_tests_end(tests: Sequence[ABTest], *, reason: str, now: datetime) -> list[ABTest]:
    """ACTIVE -> STOPPED with the reason; each is scored a last time after commit."""
    ended = []
    for test in tests:
        updated = ABTest.objects.filter(pk=test.pk, status=ABTest.Status.ACTIVE).update(
            status=ABTest.Status.STOPPED, ended_at=now, end_reason=reason[:2000]
        )
        if not updated:
            continue
        test.status, test.ended_at, test.end_reason = ABTest.Status.STOPPED, now, reason[:2000]
        ended.append(test)
        test_id = test.pk
        transaction.on_commit(lambda test_id=test_id: _ab_score_later(test_id))  # type: ignore[misc]
    if ended:
        # Now (this process stops splitting at once) and after commit (other processes re-read then).
        _ab_changed()
        transaction.on_commit(_ab_changed)
    return ended


def ab_test_stop(*, test: ABTest, reason: str = "stopped by hand") -> ABTest:
    """End an active test now (admin action, ``manage.py ab_test stop``); scored a last time."""
    with transaction.atomic():
        ended = _ab_tests_end([test], reason=reason, now=timezone.now())
    if not ended:
        raise ConflictError("The A/B test is not active.", code="invalid_state")
    return ended[0]


def ab_tests_end_for_target(*, target: str, reason: str) -> list[ABTest]:
    """The target's production model changed (promotion, rollback): end its active test.

    The rule (docs/predictions.md): a test compares a challenger with the production model it started
    with; once production changes that comparison no longer describes what callers get, so the test
    ends with ``reason`` (the registry puts the same note in its ledger) and is scored a last time.
    Called inside the promotion's transaction by ``registry.services``.
    """
    active = list(ABTest.objects.select_for_update().filter(target=target, status=ABTest.Status.ACTIVE))
    return _ab_tests_end(active, reason=reason, now=timezone.now())


def ab_tests_expire(*, now: datetime | None = None) -> list[ABTest]:
    """End every active test whose ``ends_at`` passed (periodic task, and before a new test)."""
    now = now or timezone.now()
    with transaction.atomic():
        overdue = list(
            ABTest.objects.select_for_update().filter(status=ABTest.Status.ACTIVE, ends_at__lte=now).order_by("id")
        )
        ended = []
        for test in overdue:
            assert test.ends_at is not None
            ended += _ab_tests_end([test], reason=f"ended at its ends_at ({test.ends_at.isoformat()})", now=now)
    return ended


def ab_tests_end_on_production_change(change: ProductionModelChanged) -> JSONObject:
    """``PRODUCTION_MODEL_CHANGED`` subscriber: end the target's active test; the ledger event's note of it."""
    ended = ab_tests_end_for_target(target=change.target, reason=change.reason)
    if not ended:
        return {}
    return {"ab_tests_ended": [{"id": t.pk, "name": t.name, "reason": change.reason} for t in ended]}


def ab_tests_score_on_import(change: BroadcastDataChanged) -> None:
    """``BROADCAST_DATA_CHANGED`` subscriber: after an import commits, score every active test (a Celery task).

    Only imports bring actual values; a test with nothing to match yet just records ``no_actuals``.
    """
    if change.source != DataVersion.Source.IMPORT or not ABTest.objects.filter(status=ABTest.Status.ACTIVE).exists():
        return
    from predictions.tasks import ab_tests_score_task

    transaction.on_commit(ab_tests_score_task.delay)


def ab_test_score(*, test: ABTest, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Score both arms on the logged requests whose airing has an actual value now.

    Logs are matched to airings on (program, channel, start). Both arms are logged for every request
    in a test, so the comparison is paired; ``served`` figures use only the answers really returned.
    Stores the result on the test and returns it.
    """
    prediction_log_flush()
    logs = pd.DataFrame.from_records(
        list(
            PredictionLog.objects.filter(ab_test=test)
            .exclude(arm="")
            .values_list("request_id", "arm", "served", "output", "program_id", "channel_id", "slot_start")
        ),
        columns=["request_id", "arm", "served", "output", "program_id", "channel_id", "slot_start"],
    )
    # A batch request logs many predictions under one request id: count both, and say which is which.
    served_rows = logs[logs["served"]] if len(logs) else logs
    result: dict[str, Any] = {
        "target": test.target,
        "n_requests": int(logs["request_id"].nunique()) if len(logs) else 0,
        "n_predictions": len(served_rows),
    }
    actuals = pd.DataFrame(columns=["program_id", "channel_id", "slot_start", "actual"])
    if len(logs):
        rows = (
            Airing.objects.filter(
                program_id__in=set(logs["program_id"].dropna().astype(int)),
                start__in=set(logs["slot_start"]),
            )
            .exclude(**{f"{test.target}__isnull": True})
            .values_list("program_id", "channel_id", "start", test.target)
        )
        actuals = pd.DataFrame.from_records(list(rows), columns=["program_id", "channel_id", "slot_start", "actual"])
    if len(actuals):
        merged = logs.merge(actuals, on=["program_id", "channel_id", "slot_start"], how="inner")
    else:
        merged = logs.iloc[0:0].assign(actual=pd.Series(dtype=float))
    key = ["request_id", "program_id", "channel_id", "slot_start"]
    wide = merged.pivot_table(index=key, columns="arm", values="output", aggfunc="first")
    actual_of = merged.groupby(key)["actual"].first()
    if CHAMPION in wide and CHALLENGER in wide:
        wide = wide.dropna(subset=[CHAMPION, CHALLENGER])
    result["n_matched"] = len(wide) if CHAMPION in wide and CHALLENGER in wide else 0
    if result["n_matched"] == 0:
        result["status"] = "no_actuals"
    else:
        y = actual_of.loc[wide.index].to_numpy(dtype=float)
        score = ab_score(
            actual=y,
            champion=wide[CHAMPION].to_numpy(dtype=float),
            challenger=wide[CHALLENGER].to_numpy(dtype=float),
            n_boot=n_boot,
            seed=seed,
        )
        result.update(score.as_dict())
        result["status"] = "scored"
        served = merged[merged["served"]]
        result["served"] = {arm: _rmse_mae(served[served["arm"] == arm]) for arm in (CHAMPION, CHALLENGER)}
    ABTest.objects.filter(pk=test.pk).update(result=result, scored_at=timezone.now())
    test.result = result
    return result


def _rmse_mae(part: pd.DataFrame) -> dict[str, float | int | None]:
    if not len(part):
        return {"n": 0, "rmse": None, "mae": None}
    err = part["output"].to_numpy(dtype=float) - part["actual"].to_numpy(dtype=float)
    return {"n": len(part), "rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}
