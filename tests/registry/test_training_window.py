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


@override_settings(TRAINING_WINDOW_DAYS=0)
def test_the_row_cap_keeps_the_latest_airings_and_whole_start_times() -> None:
    generate(CONFIG)
    total = Airing.objects.count()
    cap = total // 3
    with override_settings(TRAINING_MAX_AIRINGS=cap):
        kept = training_airings()
        starts = list(kept.values_list("start", flat=True))
    earliest = min(starts)
    # Exactly the airings from the cap-th latest start on: the latest ones, and all that share that start.
    assert set(kept.values_list("pk", flat=True)) == set(
        Airing.objects.filter(start__gte=earliest).values_list("pk", flat=True)
    )
    newest_first = list(Airing.objects.order_by("-start").values_list("start", flat=True))
    assert earliest == newest_first[cap - 1]
    assert cap <= len(starts) < cap + newest_first.count(earliest)
    with override_settings(TRAINING_MAX_AIRINGS=0):
        assert training_airings().count() == total
    with override_settings(TRAINING_MAX_AIRINGS=total + 5):
        assert training_airings().count() == total


@override_settings(TRAINING_WINDOW_DAYS=10)
def test_the_row_cap_applies_inside_the_day_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training, "WINDOW_MIN_AIRINGS", 50)
    generate(CONFIG)
    latest = Airing.objects.order_by("-start").values_list("start", flat=True).first()
    assert latest is not None
    inside = Airing.objects.filter(start__gt=latest - timedelta(days=10)).count()
    with override_settings(TRAINING_MAX_AIRINGS=inside * 2):  # the window is the tighter bound
        assert training_airings().count() == inside
    with override_settings(TRAINING_MAX_AIRINGS=inside // 4):  # the cap is
        capped = training_airings()
        assert inside // 4 <= capped.count() < inside
        assert capped.filter(start__lte=latest - timedelta(days=10)).count() == 0
