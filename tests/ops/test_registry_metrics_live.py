"""Registry-derived metrics come from the database at scrape time: a training run, a promotion and a drift
check done in other processes show on the web process's /metrics without any traffic."""

from __future__ import annotations

import pytest

from tests.ops.live import LiveStack

pytestmark = pytest.mark.live_server

# Another process (manage.py shell): tiny data, one tiny model trained in-process and forced live
# (tiny data need not pass the R² threshold), then the drift check. The web server does nothing meanwhile.
_ELSEWHERE = """
from programs.generator import generate
from programs.models import Airing
from registry.models import ModelVersion
from registry.services import TrainingOptions, model_version_promote, training_run_execute_inline, training_run_start
from predictions.drift import drift_check
if not Airing.objects.exists():  # the stack's other tests may have made data already
    generate(seed=4, channels=1, programs=20, days=30)
run = training_run_start(trigger="manual", targets=["revenue"], algorithms=["elasticnet"],
                         options=TrainingOptions(cv_splits=0), dispatch=False)
training_run_execute_inline(run=run)
version = ModelVersion.objects.get(run=run)
if version.status != "production":
    model_version_promote(version=version, actor=None, reason="ops live test", force=True)
drift_check()
"""


def test_a_run_a_promotion_and_a_drift_check_in_another_process_show_on_the_web_metrics(
    live_stack: LiveStack,
) -> None:
    before = live_stack.scrape_web()
    assert before.families["bms_training_runs"] == "counter"
    succeeded = before.value("bms_training_runs_total", status="succeeded")

    live_stack.manage("shell", "-c", _ELSEWHERE)

    after = live_stack.scrape_web()
    assert after.value("bms_training_runs_total", status="succeeded") == succeeded + 1
    viewer = live_stack.token("live_viewer")
    status, production = live_stack.request("GET", "/api/v1/models/production", token=viewer)
    assert status == 200
    revenue = production["models"]["revenue"]
    assert after.value("bms_model_r2", target="revenue", algorithm="elasticnet") == revenue["metrics"]["r2"]
    analyst = live_stack.token("live_analyst")
    status, reports = live_stack.request("GET", "/api/v1/drift-reports?target=revenue", token=analyst)
    assert status == 200
    report = reports["results"][0]
    for feature in ("genre", "duration_minutes", "hour"):
        assert after.value("bms_drift_score", target="revenue", feature=feature) == report["features"][feature]["score"]
    assert after.value("bms_model_accuracy_drift_ratio", target="revenue") == report["accuracy_drift"]
    assert after.value("bms_model_accuracy_drift_threshold", target="revenue") == report["accuracy_threshold"]
