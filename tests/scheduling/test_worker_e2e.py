"""End to end through a real Celery worker: POST -> broker (Redis) -> worker subprocess -> GET the result.

The worker shares the test database (PostgreSQL; the test commits its rows) and the test's Redis.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.scheduling.factories import catalogue_factory, channel_factory

pytestmark = [pytest.mark.postgres, pytest.mark.celery_worker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
QUEUE = "celery"


def _worker_env() -> dict[str, str]:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"  # the test database
    drop = {
        "DJANGO_SETTINGS_MODULE",
        "DATABASE_URL",
        "DATABASE_TEST_NAME",
        "PYTEST_CURRENT_TEST",
        "CELERY_TASK_ALWAYS_EAGER",
    }
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "bms.settings",
            "DATABASE_URL": url,
            "DATABASE_POOL": "0",
            "REDIS_URL": settings.REDIS_URL,
            "SECRET_KEY": "e2e-worker-secret-not-used-elsewhere",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


@pytest.mark.django_db(transaction=True)
def test_a_job_runs_in_a_real_worker_and_its_result_is_served(analyst_client: APIClient, tmp_path: Path) -> None:
    channel = channel_factory(code="e2e")
    catalogue_factory(channel=channel, n=10)
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.scheduling.worker_app",
            "worker",
            "-Q",
            QUEUE,
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"sched-e2e-{os.getpid()}@%h",
            "-l",
            "info",
        ],
        cwd=ROOT,
        env=_worker_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        response = analyst_client.post(
            "/api/v1/schedules/optimize",
            {
                "channel": "e2e",
                "date": "2025-03-08",
                "daypart": "prime_time",
                "time_budget": 5,
                "generations": 20,
                "population": 8,
            },
            format="json",
        )
        assert response.status_code == 202
        job_id = response.json()["id"]
        data: dict[str, Any] = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            data = analyst_client.get(f"/api/v1/schedules/jobs/{job_id}").json()
            if data["status"] in ("succeeded", "failed"):
                break
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.5)
        assert data["status"] == "succeeded", (data.get("error"), (tmp_path / "worker.log").read_text()[-3000:])
        result = data["result"]
        assert len(result["schedules"][0]["entries"]) == 6
        assert result["constraint_report"]["hard"]["violations"] == 0
        assert data["progress"]["generation"] >= 1
        assert "Task scheduling.optimization_job_run[" in (tmp_path / "worker.log").read_text()
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
