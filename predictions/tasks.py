"""Jobs of the predictions app: drift reports, A/B scoring and the history states after a data change (thin:
they call services)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="predictions.drift_check", soft_time_limit=900, time_limit=1000)
def drift_check_task() -> dict[str, dict[str, int | bool]]:
    """One drift report per target (and a retraining run when flagged and DRIFT_RETRAIN_ENABLED)."""
    from predictions.drift import drift_check

    reports = drift_check()
    return {r.target: {"id": r.pk, "flagged": r.flagged} for r in reports}


@shared_task(name="predictions.ab_tests_score", soft_time_limit=600, time_limit=700)
def ab_tests_score_task() -> dict[str, object]:
    """Score every active A/B test on the actual values imported so far. Idempotent."""
    from predictions.ab_tests import ab_test_score, ab_tests_expire
    from predictions.selectors import ab_test_active_list

    ab_tests_expire()  # an expired test is scored a last time by its own task, not here
    out = {str(t.pk): ab_test_score(test=t).get("status") for t in ab_test_active_list()}
    return out


@shared_task(name="predictions.ab_test_score", soft_time_limit=600, time_limit=700)
def ab_test_score_task(test_id: int) -> str | None:
    from predictions.ab_tests import ab_test_score
    from predictions.models import ABTest

    test = ABTest.objects.filter(pk=test_id).first()
    if test is None:
        return None
    return str(ab_test_score(test=test).get("status"))


@shared_task(name="predictions.ab_tests_expire", soft_time_limit=120, time_limit=180)
def ab_tests_expire_task() -> list[int]:
    """End the A/B tests whose ends_at passed (each is then scored a last time). Idempotent."""
    from predictions.ab_tests import ab_tests_expire

    return [t.pk for t in ab_tests_expire()]


@shared_task(name="predictions.history_prebuild", soft_time_limit=1800, time_limit=1900)
def history_prebuild_task(version_id: int) -> str:
    """Build the serving history states of a data version right after its import or generation committed
    (``predictions.lookups.history_prebuild``: never raises; a stale version is skipped)."""
    from predictions.lookups import history_prebuild

    return history_prebuild(version_id=version_id)
