"""Training at scale: the dataset is read in chunks (same frame as one read) and limited to a window."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from django.test import override_settings

from programs.generator import GeneratorConfig, generate
from programs.models import Airing
from registry import features, training
from registry.features import airings_frame
from registry.training import training_airings

pytestmark = pytest.mark.django_db
CONFIG = GeneratorConfig(seed=7, channels=2, programs=60, days=40)


def test_a_frame_read_in_chunks_equals_the_frame_read_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    generate(CONFIG)
    whole = airings_frame()
    monkeypatch.setattr(features, "FRAME_CHUNK", 97)  # many chunks, the last one partial
    chunked = airings_frame()
    assert len(whole) == Airing.objects.count()
    pd.testing.assert_frame_equal(chunked, whole)


@override_settings(TRAINING_WINDOW_DAYS=10)
def test_training_reads_only_the_latest_window_of_airings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training, "WINDOW_MIN_AIRINGS", 50)
    generate(CONFIG)
    latest = Airing.objects.order_by("-start").values_list("start", flat=True).first()
    assert latest is not None
    expected = set(Airing.objects.filter(start__gt=latest - timedelta(days=10)).values_list("pk", flat=True))
    assert 0 < len(expected) < Airing.objects.count()
    assert set(training_airings().values_list("pk", flat=True)) == expected


@override_settings(TRAINING_WINDOW_DAYS=10)
def test_a_window_that_would_leave_too_few_airings_is_not_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    generate(CONFIG)
    latest = Airing.objects.order_by("-start").values_list("start", flat=True).first()
    assert latest is not None
    inside = Airing.objects.filter(start__gt=latest - timedelta(days=10)).count()
    assert 0 < inside < Airing.objects.count()
    monkeypatch.setattr(training, "WINDOW_MIN_AIRINGS", inside + 1)
    assert training_airings().count() == Airing.objects.count()
    monkeypatch.setattr(training, "WINDOW_MIN_AIRINGS", inside)
    assert training_airings().count() == inside


@override_settings(TRAINING_WINDOW_DAYS=0)
def test_a_zero_window_trains_on_every_airing() -> None:
    generate(CONFIG)
    assert training_airings().count() == Airing.objects.count()
