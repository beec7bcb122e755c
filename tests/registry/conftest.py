from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _registry_settings(settings: Any, tmp_path: Path) -> None:
    """Artifacts in a per-test directory; one training thread (the machine is shared)."""
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    settings.TRAINING_N_JOBS = 1
    settings.PROMOTION_MIN_R2 = 0.7


@pytest.fixture(autouse=True)
def _no_run_data_held() -> Any:
    """No test sees a training run's data another test left in this process (registry.run_data)."""
    from registry import run_data

    run_data.forget()
    yield
    run_data.forget()
