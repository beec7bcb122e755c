"""Raw frames, lead-in, slot frames, the time split and leakage of the encoders."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from bms.errors import ApplicationError, NotFoundError
from programs.models import Airing, Channel, Program
from registry.algorithms import ModelSpec, build_model, hyperparameters_for, unwrap
from registry.features import NO_LEAD_IN, RAW_COLUMNS, RawEncoder, airings_frame, derive, slot_frame
from registry.training import clean_target, time_split, training_dataset
from tests.registry.factories import TINY_HYPERPARAMETERS, raw_frame

# Features read each channel's time zone from the database (registry.features.local_wall_clock).
pytestmark = pytest.mark.django_db

NY = ZoneInfo("America/New_York")


def _setup() -> tuple[Channel, Program, Program]:
    channel = Channel.objects.create(code="one", name="One", universe_households=1_000_000)
    other = Channel.objects.create(code="two", name="Two", universe_households=1_000_000)
    news = Program.objects.create(external_id="N1", title="News", channel=channel, genre="news", duration_minutes=60)
    drama = Program.objects.create(
        external_id="D1", title="Drama", channel=channel, genre="drama", content_rating="PG-13", duration_minutes=60
    )
    # 20:00 news, 21:00 drama on "one"; 01:00 (same broadcast day) drama; next day 07:00 news; "two" 21:00 news.
    rows = [
        (news, channel, datetime(2024, 3, 1, 20, 0, tzinfo=NY), 100.0),
        (drama, channel, datetime(2024, 3, 1, 21, 0, tzinfo=NY), 200.0),
        (drama, channel, datetime(2024, 3, 2, 1, 0, tzinfo=NY), 50.0),
        (news, channel, datetime(2024, 3, 2, 7, 0, tzinfo=NY), None),
        (news, other, datetime(2024, 3, 1, 21, 0, tzinfo=NY), 80.0),
    ]
    for program, ch, start, audience in rows:
        Airing.objects.create(
            program=program, channel=ch, start=start, duration_minutes=60, audience=audience, rating=1.0
        )
    return channel, news, drama


def test_airings_frame_has_raw_columns_and_lead_in_from_the_same_channel_and_broadcast_day(django_assert_num_queries):
    _, news, drama = _setup()
    with django_assert_num_queries(2):  # the airings, and the channels' time zones (kept for a minute)
        frame = airings_frame(Airing.objects.all())
    assert list(frame.columns) == [*RAW_COLUMNS, "rating", "revenue", "audience", "engagement"]
    assert [ts.strftime("%m-%d %H:%M") for ts in frame["start"]] == [
        "03-01 20:00",
        "03-01 21:00",
        "03-01 21:00",
        "03-02 01:00",
        "03-02 07:00",
    ]
    assert str(frame["start"].dt.tz) == "America/New_York"
    by_start = {
        (channel, start): lead_in
        for channel, start, lead_in in zip(
            frame["channel"], frame["start"].dt.strftime("%d %H"), frame["lead_in_program_id"], strict=True
        )
    }
    assert by_start == {
        ("one", "01 20"): NO_LEAD_IN,
        ("one", "01 21"): news.pk,
        ("two", "01 21"): NO_LEAD_IN,
        ("one", "02 01"): drama.pk,  # 01:00 still belongs to the 1 March broadcast day
        ("one", "02 07"): NO_LEAD_IN,  # a new broadcast day
    }
    assert frame["audience"].isna().sum() == 1


def test_slot_frame_is_program_major_and_takes_the_lead_in_from_the_stored_schedule():
    _channel, news, drama = _setup()
    starts = [datetime(2024, 3, 1, 22, 0, tzinfo=NY), datetime(2024, 3, 1, 20, 0, tzinfo=NY)]
    frame = slot_frame(programs=[news, drama.pk], starts=starts, channel="one")
    assert list(frame.columns) == list(RAW_COLUMNS)
    assert list(frame["program_id"]) == [news.pk, news.pk, drama.pk, drama.pk]
    assert [ts.hour for ts in frame["start"]] == [22, 20, 22, 20]
    # 22:00 follows the 21:00 drama; 20:00 is the first airing of the day on "one".
    assert list(frame["lead_in_program_id"]) == [drama.pk, NO_LEAD_IN, drama.pk, NO_LEAD_IN]
    assert list(frame["genre"]) == ["news", "news", "drama", "drama"]

    paired = slot_frame(programs=[news], starts=starts[:1], paired=True, overrides={"is_premiere": True})
    assert len(paired) == 1
    assert bool(paired["is_premiere"].iloc[0]) is True


def test_slot_frame_rejects_unknown_programs_and_features():
    _, news, _ = _setup()
    start = [datetime(2024, 3, 1, 22, 0, tzinfo=NY)]
    with pytest.raises(NotFoundError):
        slot_frame(programs=[999_999], starts=start)
    with pytest.raises(ApplicationError):
        slot_frame(programs=[news], starts=start, overrides={"colour": "red"})
    with pytest.raises(ApplicationError):
        slot_frame(programs=[news, news], starts=start, paired=True)


def test_derive_computes_local_calendar_features():
    frame, _ = raw_frame(3)
    frame["start"] = pd.Series(
        pd.to_datetime(["2024-12-25 20:30", "2024-07-06 01:15", "2024-03-11 09:00"]).tz_localize(NY)
    )
    cols = derive(frame)
    assert list(cols["hour"]) == [20.5, 1.25, 9.0]
    assert list(cols["weekday"]) == [2.0, 5.0, 0.0]  # Wednesday, Saturday, Monday
    assert list(cols["month"]) == [12.0, 7.0, 3.0]
    assert list(cols["is_holiday"]) == [1.0, 0.0, 0.0]
    assert list(cols["daypart"]) == ["prime_time", "late_night", "daytime"]


def test_time_split_cuts_train_validation_and_the_latest_fifth_as_test_in_time_order():
    frame, y = raw_frame(500)
    frame["audience"] = y
    shuffled = frame.sample(frac=1.0, random_state=3)
    split = time_split(shuffled)
    assert (len(split.train), len(split.validation), len(split.test)) == (350, 50, 100)
    assert split.train["start"].max() < split.validation["start"].min()
    assert split.validation["start"].max() < split.test["start"].min()
    assert split.validation_start == split.validation["start"].min()
    assert split.test_start == split.test["start"].min()


@pytest.mark.parametrize("algorithm", ["elasticnet", "random_forest"])
def test_validation_and_test_rows_never_reach_the_encoders_or_scalers(algorithm):
    frame, y = raw_frame(500)
    frame["audience"] = y
    split = time_split(frame)
    holdout_index = split.validation.index.append(split.test.index)
    poisoned = frame.copy()
    poisoned.loc[holdout_index, "audience"] *= 1000.0  # the holdout's targets change wildly
    poisoned.loc[holdout_index, "duration_minutes"] = 999.0  # and so do its features

    def fit(data: pd.DataFrame) -> tuple[RawEncoder, Any, np.ndarray]:
        split = time_split(data)
        spec = ModelSpec(algorithm, "engagement", hyperparameters_for(algorithm, TINY_HYPERPARAMETERS), seed=1)
        model = build_model(spec, n_jobs=1).fit(split.train, split.train["audience"].to_numpy())
        prep = unwrap(model).named_steps["prep"]
        return prep.named_steps["encode"], prep, model.predict(split.train)

    clean_encoder, clean_prep, clean_pred = fit(frame)
    poisoned_encoder, poisoned_prep, poisoned_pred = fit(poisoned)
    for name in clean_encoder.te_values_:
        assert np.array_equal(clean_encoder.te_values_[name], poisoned_encoder.te_values_[name])
    assert clean_encoder.prior_ == poisoned_encoder.prior_
    assert np.array_equal(clean_encoder.medians_, poisoned_encoder.medians_)
    if "scale" in clean_prep.named_steps:
        assert np.array_equal(clean_prep.named_steps["scale"].mean_, poisoned_prep.named_steps["scale"].mean_)
    assert np.array_equal(clean_pred, poisoned_pred)


def test_target_encodings_are_smoothed_means_of_the_training_rows():
    frame, y = raw_frame(500)
    encoder = RawEncoder(kind="tree", seed=1).fit(frame, y)
    assert encoder.prior_ == pytest.approx(float(y.mean()))
    program = str(frame["program_id"].iloc[0])
    rows = frame["program_id"].astype(str).to_numpy() == program
    expected = (y[rows].sum() + 10.0 * y.mean()) / (rows.sum() + 10.0)
    position = list(encoder.te_categories_["program_id"]).index(program)
    assert encoder.te_values_["program_id"][position] == pytest.approx(expected)
    unseen = frame.iloc[:1].copy()
    unseen["program_id"] = 424242
    assert encoder.transform(unseen)[0, 0] == pytest.approx(float(y.mean()))


def test_training_encodings_are_out_of_fold():
    frame, y = raw_frame(500)
    encoder = RawEncoder(kind="tree", seed=1)
    in_fold = encoder.fit(frame, y).transform(frame)
    out_of_fold = RawEncoder(kind="tree", seed=1).fit_transform(frame, y)
    assert not np.allclose(in_fold[:, 0], out_of_fold[:, 0])  # program encodings differ: no own-target leak
    assert np.array_equal(in_fold[:, 4:], out_of_fold[:, 4:])  # everything else is identical


def test_training_encodings_come_from_earlier_rows_only():
    frame, y = raw_frame(300)
    shuffled = frame.sample(frac=1.0, random_state=3)  # rows given out of time order
    encoded = RawEncoder(kind="tree").fit_transform(shuffled, y[shuffled.index.to_numpy()])
    encoder = RawEncoder(kind="tree").fit(frame, y)
    programs = frame["program_id"].to_numpy()
    at = {label: i for i, label in enumerate(shuffled.index)}
    for row in (0, 1, 150, 299):
        earlier = programs[:row] == programs[row]
        expected = (y[:row][earlier].sum() + 10.0 * encoder.prior_) / (earlier.sum() + 10.0)
        assert encoded[at[row], 0] == pytest.approx(expected)
    later = y.copy()
    later[200:] *= 50.0  # the later rows' targets change: no earlier row's encodings may
    changed = RawEncoder(kind="tree").fit_transform(frame, later)
    unchanged = RawEncoder(kind="tree").fit_transform(frame, y)
    prior_shift = changed[:200, :4] - unchanged[:200, :4]  # only through the prior (the mean of all rows)
    first = RawEncoder(kind="tree").fit(frame, later).prior_ - encoder.prior_
    counts_before = np.array([(programs[:row] == programs[row]).sum() for row in range(200)])
    assert prior_shift[:, 0] == pytest.approx(first * 10.0 / (counts_before + 10.0))


def test_bad_target_values_are_counted_and_dropped():
    frame, _y = raw_frame(10)
    frame["audience"] = [1.0, np.nan, -2.0, np.inf, 5.0, 6.0, np.nan, 8.0, 9.0, 10.0]
    clean, dropped = clean_target(frame, "audience")
    assert dropped == {"missing": 2, "infinite": 1, "negative": 1, "out_of_range": 0}
    assert list(clean["audience"]) == [1.0, 5.0, 6.0, 8.0, 9.0, 10.0]
    frame["engagement"] = [50.0, 101.0, 20.0, 0.0, 100.0, -1.0, 3.0, 4.0, 5.0, 6.0]
    _, dropped_e = clean_target(frame, "engagement")
    assert dropped_e == {"missing": 0, "infinite": 0, "negative": 1, "out_of_range": 1}


def test_training_drops_values_outside_the_target_range_setting(settings):
    settings.TARGET_RANGES = {**settings.TARGET_RANGES, "audience": (2.0, 8.5)}
    frame, _y = raw_frame(6)
    frame["audience"] = [1.0, 2.0, 5.0, 8.5, 9.0, 10.0]
    clean, dropped = clean_target(frame, "audience")
    assert dropped == {"missing": 0, "infinite": 0, "negative": 0, "out_of_range": 3}
    assert list(clean["audience"]) == [2.0, 5.0, 8.5]


def test_fingerprint_depends_on_the_rows_not_their_order():
    frame, y = raw_frame(50)
    frame["audience"] = y
    a = training_dataset(target="audience", frame=frame)
    b = training_dataset(target="audience", frame=frame.sample(frac=1.0, random_state=1))
    assert a.fingerprint == b.fingerprint
    assert a.rows == 50
    frame.loc[frame.index[0], "audience"] += 1.0
    assert training_dataset(target="audience", frame=frame).fingerprint != a.fingerprint


def test_the_holiday_flag_is_exactly_membership_in_the_holiday_list() -> None:
    from registry.features import _HOLIDAYS, _is_holiday

    days = np.arange(np.datetime64("1990-01-01"), np.datetime64("2060-01-01"))  # past both ends of the list
    flags = _is_holiday(days)
    assert np.array_equal(flags, np.isin(days, _HOLIDAYS))
    assert flags[days == np.datetime64("2024-12-25")].all()
    assert not flags[days == np.datetime64("2024-12-26")].any()
