"""Is the Celery broker reachable? Asked before a job is created, so a Redis outage is a clear 503.

Services that queue work (a training run, an optimisation) call :func:`broker_require` before they
write anything: with the broker down the caller gets 503 ``broker_unavailable`` with ``Retry-After`` and
no row is left behind. The check is one connection attempt with ``REDIS_TIMEOUT_SECONDS`` (kombu's own
retry loop is not used: a request must not wait through it). Embedded mode (tasks run in-process) has
no broker to check.
"""

from __future__ import annotations

import logging

from django.conf import settings
from kombu.exceptions import OperationalError as KombuOperationalError

from bms.errors import ServiceUnavailableError

logger = logging.getLogger(__name__)

BROKER_RETRY_AFTER_SECONDS = 30


class BrokerUnavailableError(ServiceUnavailableError):
    code = "broker_unavailable"


def broker_ping() -> None:
    """Connect to the broker once; raises (kombu ``OperationalError`` / ``OSError``) when it is down."""
    from bms.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(
            max_retries=1,
            interval_start=0,
            interval_step=0,
            # kombu compares it with elapsed seconds, so a fraction works; its stubs say int.
            timeout=settings.REDIS_TIMEOUT_SECONDS,  # type: ignore[arg-type]
        )


def broker_require(*, what: str) -> None:
    """Raise :class:`BrokerUnavailableError` (503) if ``what`` could not be queued now."""
    from bms.celery import app

    if app.conf.task_always_eager:
        return
    try:
        broker_ping()
    except (KombuOperationalError, OSError) as exc:
        logger.warning("broker unavailable, refusing %s: %s", what, exc)
        raise BrokerUnavailableError(
            f"The job queue is unavailable, so {what} cannot start now; retry in a moment.",
            code="broker_unavailable",
            details={"retry_after_seconds": BROKER_RETRY_AFTER_SECONDS},
            retry_after_seconds=BROKER_RETRY_AFTER_SECONDS,
        ) from None
