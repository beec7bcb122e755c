"""Scheduling tests run the job task eagerly (on commit) unless a test starts a real worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _eager_tasks(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("celery_worker"):
        yield
        return
    request.getfixturevalue("eager_tasks")
    yield
