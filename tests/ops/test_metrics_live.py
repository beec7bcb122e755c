"""/metrics of a real uvicorn server: request metrics by view, every bms_* metric, the access log."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

import bms.metrics
from tests.ops.live import LiveStack

pytestmark = pytest.mark.live_server


def _bms_metric_names() -> set[str]:
    names: set[str] = set()
    for obj in vars(bms.metrics).values():
        describe = getattr(obj, "describe", None)
        if describe is not None and getattr(obj, "_name", "").startswith("bms_"):
            names.update(f.name for f in describe())
    # Read from the apps' tables at each scrape (the DatabaseCollectors bms/wiring.py registers).
    for collector in bms.metrics.COLLECTORS:
        names.update(f.name for f in collector.describe())
    return names


def test_every_bms_metric_is_declared_in_the_scrape(live_stack: LiveStack) -> None:
    scrape = live_stack.scrape_web()
    expected = _bms_metric_names()
    assert "bms_celery_queue_depth" in expected
    assert len(expected) >= 20
    assert sorted(n for n in expected if n not in scrape.families) == []


def test_requests_are_counted_by_view_method_and_status(live_stack: LiveStack) -> None:
    token = live_stack.token("live_viewer")
    before = live_stack.scrape_web()

    assert live_stack.request("GET", "/api/v1/programs", token=token)[0] == 200
    assert live_stack.request("GET", "/api/v1/programs", token=token)[0] == 200
    status, body = live_stack.request("GET", "/api/v1/programs/NOPE-404", token=token)
    assert status == 404
    assert body["error"]["code"] == "not_found"
    assert live_stack.request("GET", "/api/v1/programs")[0] == 401

    after = live_stack.scrape_web()

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    total = "django_http_requests_total_by_view_transport_method_total"
    by_status = "django_http_responses_total_by_status_view_method_total"
    assert delta(total, view="program-list", method="GET") == 3
    assert delta(total, view="program-detail", method="GET") == 1
    assert delta(by_status, view="program-list", method="GET", status="200") == 2
    assert delta(by_status, view="program-list", method="GET", status="401") == 1
    assert delta(by_status, view="program-detail", method="GET", status="404") == 1
    latency = "django_http_requests_latency_seconds_by_view_method_count"
    assert delta(latency, view="program-list", method="GET") == 3


def test_bad_input_is_a_4xx_and_never_counted_as_a_5xx(live_stack: LiveStack) -> None:
    token = live_stack.token("live_analyst")
    before = live_stack.scrape_web()

    status, body = live_stack.request("POST", "/api/v1/predict", token=token, raw=b"{not json")

    after = live_stack.scrape_web()
    assert status == 400
    assert set(body["error"]) == {"code", "message", "details"}
    by_status = "django_http_responses_total_by_status_view_method_total"
    errors_5xx = sum(v for (n, lbls), v in after.samples.items() if n == by_status and dict(lbls)["status"][0] == "5")
    errors_5xx_before = sum(
        v for (n, lbls), v in before.samples.items() if n == by_status and dict(lbls)["status"][0] == "5"
    )
    assert errors_5xx == errors_5xx_before


def test_queue_depth_is_read_from_the_broker_on_each_scrape(live_stack: LiveStack) -> None:
    from django.conf import settings

    if not settings.REDIS_URL:
        # No broker (memory://): the family is declared and carries no sample.
        assert live_stack.scrape_web().value("bms_celery_queue_depth") == 0
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("ops-probe")
    assert live_stack.scrape_web().value("bms_celery_queue_depth", queue="ops-probe") == 0
    client.rpush("ops-probe", b"{}", b"{}")
    try:
        assert live_stack.scrape_web().value("bms_celery_queue_depth", queue="ops-probe") == 2
    finally:
        client.delete("ops-probe")
    assert live_stack.scrape_web().value("bms_celery_queue_depth", queue="ops-probe") == 0


def test_access_log_has_request_id_user_id_status_and_latency(live_stack: LiveStack) -> None:
    token = live_stack.token("live_viewer")
    rid = uuid.uuid4().hex
    status, _ = live_stack.request("GET", "/api/v1/programs", token=token, headers={"X-Request-ID": rid})
    assert status == 200

    records = [r for r in live_stack.log_lines("web") if r.get("logger") == "bms.access" and r["request_id"] == rid]

    assert len(records) == 1
    record = records[0]
    assert record["level"] == "INFO"
    assert record["method"] == "GET"
    assert record["path"] == "/api/v1/programs"
    assert record["view"] == "program-list"
    assert record["status"] == 200
    assert isinstance(record["user_id"], int)
    assert isinstance(record["latency_ms"], float)
    assert record["latency_ms"] >= 0
    assert record["message"].startswith("GET /api/v1/programs 200 ")


def test_the_test_process_registry_holds_the_same_bms_metrics() -> None:
    # Sanity: the metric objects this test compares are the ones the default registry serves.
    served = {f.name for f in REGISTRY.collect()}
    assert _bms_metric_names() <= served
