"""One tampered production artifact disables its target only: 503 ``model_unavailable`` with the reason,
the three other targets keep answering, /health/deep and ``bms_model_available`` name it.

Self-contained (tests/reliability/conftest.py belongs to the reliability suite): its own data, tiny
models and artifact directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from predictions.logbuffer import get_buffer
from predictions.lookups import reset_lookups
from predictions.predictor import reset_predictor
from programs.generator import generate
from programs.models import TARGETS, Program
from registry.models import ModelVersion, PromotionEvent
from registry.services import TrainingOptions, model_version_promote, training_run_execute_inline, training_run_start

pytestmark = pytest.mark.django_db
TAMPERED = "revenue"


@pytest.fixture
def production(settings: Any, tmp_path: Path) -> Iterator[dict[str, ModelVersion]]:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    settings.TRAINING_N_JOBS = 1
    generate(seed=11, channels=1, programs=30, days=21)
    with override_settings(PROMOTION_MIN_R2=1.5):  # the test decides what is production
        run = training_run_start(
            trigger="manual",
            algorithms=["random_forest"],
            options=TrainingOptions(
                hyperparameters={"random_forest": {"n_estimators": 4, "max_depth": 5}}, cv_splits=0
            ),
            dispatch=False,
        )
        training_run_execute_inline(run=run)
    live = {
        v.target: model_version_promote(version=v, actor=None, reason="reliability setup", force=True)
        for v in ModelVersion.objects.filter(run=run)
    }
    reset_predictor()
    reset_lookups()
    yield live
    get_buffer()._take()
    reset_predictor()
    reset_lookups()


def _predict(client: Any, program: Program, target: str) -> Any:
    return client.post(
        "/api/v1/predict",
        {"program_id": program.pk, "target": target, "features": {"start": "2024-02-01T20:00:00-05:00"}},
        format="json",
    )


def test_one_tampered_artifact_leaves_three_targets_answering(production, analyst_client, settings):
    version = production[TAMPERED]
    path = Path(settings.ARTIFACT_ROOT) / version.artifact_path
    path.write_bytes(path.read_bytes() + b"tampered")
    program = Program.objects.order_by("id").first()
    assert program is not None

    answers = {target: _predict(analyst_client, program, target) for target in TARGETS}

    assert {t: r.status_code for t, r in answers.items()} == {
        "rating": 200,
        "revenue": 503,
        "audience": 200,
        "engagement": 200,
    }
    for target in ("rating", "audience", "engagement"):
        assert answers[target].json()["model"]["id"] == production[target].pk
    error = answers[TAMPERED].json()["error"]
    reason = f"{version.label}: Artifact sha256 does not match the registry; refusing to load."
    assert error == {
        "code": "model_unavailable",
        "message": f"The production model for 'revenue' is unavailable: {reason}",
        "details": {"target": "revenue", "reason": reason},
    }

    deep = Client(REMOTE_ADDR="127.0.0.1").get("/health/deep")
    assert deep.status_code == 200  # readiness stays: the pod still serves three targets
    body = deep.json()
    assert body["status"] == "degraded"
    assert body["checks"]["models"]["ok"] is True
    assert body["checks"]["models"]["serving"] == ["rating", "audience", "engagement"]
    assert body["checks"]["models"]["unavailable"] == {"revenue": reason}

    scrape = Client().get("/metrics").content.decode()
    available = {
        s.labels["target"]: s.value
        for family in text_string_to_metric_families(scrape)
        if family.name == "bms_model_available"
        for s in family.samples
    }
    assert available == {"rating": 1.0, "revenue": 0.0, "audience": 1.0, "engagement": 1.0}


def test_restoring_the_file_brings_the_target_back_and_nothing_was_promoted(production, analyst_client, settings):
    version = production[TAMPERED]
    path = Path(settings.ARTIFACT_ROOT) / version.artifact_path
    good = path.read_bytes()
    path.unlink()
    program = Program.objects.order_by("id").first()
    assert program is not None
    missing = _predict(analyst_client, program, TAMPERED)
    assert missing.status_code == 503
    assert "Artifact file cannot be read" in missing.json()["error"]["details"]["reason"]
    events = PromotionEvent.objects.count()
    path.write_bytes(good)
    reset_predictor()  # a process retries a broken target every 30 s; a fresh one loads at once
    back = _predict(analyst_client, program, TAMPERED)
    assert back.status_code == 200
    assert back.json()["model"]["id"] == version.pk
    assert PromotionEvent.objects.count() == events
