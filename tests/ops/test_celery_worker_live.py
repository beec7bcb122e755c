"""A real Celery worker next to the live web server: one training run through the Redis broker.

The run is started the way an operator would (``POST /api/v1/training-runs`` as an admin). Then:
- the web's scrape shows the dispatch task it published and the message waiting in the queue
  (``bms_celery_queue_depth``, read from Redis at scrape time);
- one prefork worker (multiprocess metrics, as compose runs it) executes dispatch -> job -> complete;
  its own /metrics shows each task's outcome and the training metrics; the web's queue is drained.
"""

from __future__ import annotations

import pytest

from tests.ops.live import LiveStack, wait_until

pytestmark = [pytest.mark.live_server, pytest.mark.celery_worker, pytest.mark.slow]

DISPATCH = "registry.training_run_dispatch"
JOB = "registry.training_job_run"
COMPLETE = "registry.training_run_complete"

_SMALL_DATA = (
    "from django.core.management import call_command\n"
    "call_command('generate_broadcasts', seed=7, channels=1, programs=40, days=30)\n"
)


def test_one_training_run_through_the_broker_is_seen_by_web_and_worker_scrapes(live_stack: LiveStack) -> None:
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.REDIS_URL).delete("celery")
    live_stack.manage("shell", "-c", _SMALL_DATA)
    before = live_stack.scrape_web()
    assert before.value("bms_celery_queue_depth", queue="celery") == 0

    admin = live_stack.token("live_admin")
    status, run = live_stack.request(
        "POST", "/api/v1/training-runs", token=admin, body={"targets": ["rating"], "algorithms": ["elasticnet"]}
    )
    assert status == 202, run

    web = live_stack.scrape_web()
    assert web.value("bms_celery_queue_depth", queue="celery") == 1
    published = web.value("bms_celery_tasks_published_total", task=DISPATCH)
    assert published - before.value("bms_celery_tasks_published_total", task=DISPATCH) == 1

    live_stack.start_worker()
    try:

        def completed() -> bool:
            return live_stack.scrape_worker().value("bms_celery_tasks_total", task=COMPLETE) >= 1

        wait_until(completed, timeout=240, what="training run completion in the worker scrape", interval=1)
        worker = live_stack.scrape_worker()
    finally:
        live_stack.stop_worker()

    for task in (DISPATCH, JOB, COMPLETE):
        assert worker.value("bms_celery_tasks_total", task=task, outcome="success") == 1, task
        assert worker.value("bms_celery_tasks_total", task=task, outcome="failure") == 0, task
    # Finished runs by status are read from the database at scrape time: the web process shows it too.
    runs = live_stack.scrape_web().value("bms_training_runs_total", status="succeeded")
    assert runs - before.value("bms_training_runs_total", status="succeeded") == 1
    assert worker.value("bms_training_duration_seconds_count") == 1
    assert worker.value("bms_model_training_duration_seconds_count", target="rating", algorithm="elasticnet") == 1
    # The worker's main process reports its own resources (dashboards: CPU / memory per service).
    assert worker.value("process_resident_memory_bytes") > 0
    assert live_stack.scrape_web().value("bms_celery_queue_depth", queue="celery") == 0
    status, detail = live_stack.request("GET", f"/api/v1/training-runs/{run['id']}", token=admin)
    assert status == 200
    assert detail["status"] == "succeeded"
