"""Redis stopped and started under concurrent requests: no 500, health says so, recovery is automatic."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.reliability.conftest import NORMAL, Reliability, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.live_server, pytest.mark.slow]


def test_requests_survive_redis_stopping_and_starting(reliability: Reliability) -> None:
    with reliability.client() as client:
        session = client.post("/api/v1/sessions/create", json={}).json()["session_id"]
    chat = ("POST", "/api/v1/chat", {"session_id": session, "message": "top 3 programs by rating"})
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as background:
        during = background.submit(reliability.traffic, [*NORMAL, chat] * 1000, users=6, until=stop.is_set)
        time.sleep(2)
        reliability.redis.stop()
        time.sleep(1)
        down = reliability.deep_health()
        with reliability.client(reliability.admin) as admin:
            refused = admin.post("/api/v1/training-runs", json={"targets": ["rating"], "algorithms": ["elasticnet"]})
        with reliability.client() as client:
            answer = client.post("/api/v1/chat", json=chat[2])
        time.sleep(5)  # the outage goes on under traffic
        reliability.redis.start()
        recovered_in = wait_for(
            lambda: reliability.deep_health()["status"] == "ok", timeout=30, what="deep health ok after Redis returned"
        )
        time.sleep(2)
        stop.set()
        traffic = during.result()
    assert traffic.server_errors() == 0, traffic.errors[:5]
    assert set(traffic.statuses) <= {200}, dict(traffic.statuses)
    assert (down["status"], down["checks"]["redis"]["ok"], down["checks"]["broker"]["ok"]) == ("degraded", False, False)
    assert down["checks"]["database"]["ok"] is True
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "30"
    assert refused.json()["error"]["code"] == "broker_unavailable"
    assert answer.status_code == 200
    assert set(answer.json()["metadata"]["unavailable"]) == {"redis"}
    with reliability.client() as client:
        again = client.post("/api/v1/chat", json=chat[2]).json()["metadata"]
    assert "unavailable" not in again
    print(f"Redis down ~8 s under 6 users: {dict(traffic.statuses)}; deep health ok {recovered_in:.1f} s after restart")
