"""Per-channel time zones in the features: hour, weekday, daypart, holiday and broadcast day are read in
the airing's channel's zone, the same way for training frames and served rows."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from predictions.fastpath import RawRows
from predictions.fastpath import derive as serving_derive
from programs.models import Airing, Channel, Program
from registry.features import airings_frame, derive, local_wall_clock, slot_frame

pytestmark = pytest.mark.django_db
SYDNEY = ZoneInfo("Australia/Sydney")
NY = ZoneInfo("America/New_York")


def _world() -> tuple[Program, Program]:
    au = Channel.objects.create(code="network-10", name="Network 10", universe_households=9_000_000,
                                time_zone="Australia/Sydney")  # fmt: skip
    us = Channel.objects.create(code="cbs", name="CBS", universe_households=120_000_000)
    survivor_au = Program.objects.create(external_id="survivor-au", title="Survivor AU", channel=au, genre="reality",
                                         duration_minutes=60)  # fmt: skip
    survivor_us = Program.objects.create(external_id="survivor-us", title="Survivor US", channel=us, genre="reality",
                                         duration_minutes=60)  # fmt: skip
    return survivor_au, survivor_us


def test_a_sydney_evening_airing_is_an_evening_airing() -> None:
    survivor_au, survivor_us = _world()
    # Same instant: 20:00 Monday in Sydney is 06:00 Monday in New York.
    start = datetime(2024, 7, 1, 20, 0, tzinfo=SYDNEY)
    Airing.objects.create(program=survivor_au, channel=survivor_au.channel, start=start, duration_minutes=60,
                          audience=700.0)  # fmt: skip
    Airing.objects.create(program=survivor_us, channel=survivor_us.channel, start=start, duration_minutes=60,
                          audience=9000.0)  # fmt: skip
    frame = airings_frame()
    cols = derive(frame)
    by_channel = {c: i for i, c in enumerate(frame["channel"])}
    au, us = by_channel["network-10"], by_channel["cbs"]
    assert (cols["hour"][au], cols["weekday"][au], cols["daypart"][au]) == (20.0, 0.0, "prime_time")
    assert (cols["hour"][us], cols["weekday"][us], cols["daypart"][us]) == (6.0, 0.0, "early_morning")


def test_serving_rows_and_training_frames_read_the_same_local_time() -> None:
    survivor_au, survivor_us = _world()
    starts = [datetime(2024, 12, 26, 9, 30, tzinfo=SYDNEY), datetime(2024, 12, 26, 9, 30, tzinfo=SYDNEY)]
    frame = slot_frame(programs=[survivor_au, survivor_us], starts=starts, paired=True)
    trained = derive(frame)
    served = serving_derive(RawRows.from_frame(frame))
    for name in ("hour", "weekday", "month", "is_holiday", "daypart", "trend_days"):
        assert list(served[name]) == list(trained[name]), name
    assert list(trained["is_holiday"]) == [0.0, 1.0]  # Boxing Day in Sydney is still Christmas in New York
    assert list(trained["hour"]) == [9.5, 17.5]


def test_the_lead_in_is_the_previous_airing_of_the_channel_local_broadcast_day() -> None:
    survivor_au, _ = _world()
    au = survivor_au.channel
    news = Program.objects.create(external_id="au-news", title="News", channel=au, genre="news", duration_minutes=60)
    # 19:00 and 20:00 Sydney: one broadcast day there (New York's 06:00 day boundary falls between them).
    Airing.objects.create(
        program=news, channel=au, start=datetime(2024, 7, 1, 19, 0, tzinfo=SYDNEY), duration_minutes=60
    )
    Airing.objects.create(program=survivor_au, channel=au, start=datetime(2024, 7, 1, 20, 0, tzinfo=SYDNEY),
                          duration_minutes=60)  # fmt: skip
    frame = airings_frame()
    assert list(frame["lead_in_program_id"]) == [-1, news.pk]
    slot = slot_frame(programs=[survivor_au], starts=[datetime(2024, 7, 1, 20, 0, tzinfo=SYDNEY)])
    assert list(slot["lead_in_program_id"]) == [news.pk]


def test_both_fall_back_hours_read_as_the_same_wall_clock() -> None:
    Channel.objects.create(code="metro", name="Metro", universe_households=1_000_000, time_zone="America/New_York")
    first = datetime(2024, 11, 3, 5, 30, tzinfo=ZoneInfo("UTC"))  # 01:30 EDT
    second = datetime(2024, 11, 3, 6, 30, tzinfo=ZoneInfo("UTC"))  # 01:30 EST
    local = local_wall_clock([first, second], ["metro", "metro"])
    assert list(local) == [np.datetime64("2024-11-03T01:30"), np.datetime64("2024-11-03T01:30")]
