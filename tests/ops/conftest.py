"""Fixtures of the ops tests: one live stack (uvicorn + optional Celery worker) for tests/ops."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.live import LiveStack


@pytest.fixture(scope="package")
def live_stack(tmp_path_factory: pytest.TempPathFactory, loopback: None) -> Iterator[LiveStack]:
    stack = LiveStack.prepare(Path(tmp_path_factory.mktemp("live")))
    try:
        stack.start_web()
        yield stack
    finally:
        stack.stop()
