"""History features: strictly earlier airings only, one formula for training and serving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from programs.models import TARGETS
from registry.features import (
    HISTORY_COLUMNS,
    RUN_GAP_DAYS,
    HistoryState,
    airings_frame,
    history_columns,
    local_minutes,
    utc_minutes,
    with_history,
)
from registry.training import history_state, history_state_appended, training_dataset
from tests.registry.factories import small_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored() -> pd.DataFrame:
    small_data(days=35)
    return airings_frame()


def _served(state: HistoryState, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    columns, _ = state.features(
        program_id=rows["program_id"].to_numpy(),
        channel=rows["channel"].to_numpy(),
        local_min=local_minutes(rows["start"], rows["channel"].to_numpy()),
        utc_min=utc_minutes(rows["start"]),
        lead_in_program_id=rows["lead_in_program_id"].to_numpy(),
    )
    return columns


def test_changing_or_deleting_every_airing_after_t_changes_no_feature_before_t(stored):
    cut = stored["start"].sort_values().iloc[len(stored) // 2]
    before = stored["start"] < cut
    after = stored.index[~before]
    changed = stored.copy()
    changed.loc[after, list(TARGETS)] *= 17.0
    deleted = stored.drop(index=after[::2])  # and half of them gone
    deleted.loc[after[1::2], list(TARGETS)] = 0.0
    for target in TARGETS:
        expected = history_columns(stored, target)[before]
        assert expected["h_last"].notna().sum() > 100  # the check has something to compare
        for other in (changed, deleted):
            got = history_columns(other, target).loc[expected.index]
            pd.testing.assert_frame_equal(got, expected)


def test_a_row_never_sees_its_own_or_a_later_value(stored):
    frame = stored.sort_values("start")
    features = history_columns(frame, "audience")
    program = frame["program_id"].value_counts().index[0]
    rows = frame[frame["program_id"] == program]
    values = rows["audience"].to_numpy()
    got = features.loc[rows.index]
    assert np.isnan(got["h_last"].iloc[0])
    np.testing.assert_array_equal(got["h_last"].to_numpy()[1:], values[:-1])
    np.testing.assert_array_equal(got["h_count"].to_numpy(), np.arange(len(rows), dtype=float))
    assert got["h_mean3"].iloc[4] == pytest.approx(values[1:4].mean())
    assert np.isnan(got["h_mean_all"].iloc[0])
    assert got["h_mean_all"].iloc[12] == pytest.approx(values[:12].mean())


def test_serving_features_equal_training_features_for_the_same_airing(stored):
    """The state holds only airings before T (an import up to T); the next airings are then served."""
    cut = stored["start"].sort_values().iloc[int(len(stored) * 0.7)]
    past = stored[stored["start"] < cut]
    for target in TARGETS:
        dataset = training_dataset(target=target, frame=stored).frame  # what the models were trained on
        state = history_state(past, target)
        # Each program's next airing after T, on T's local day (its slot's days before are all known),
        # whose lead-in aired before T: training saw exactly the information the state holds.
        upcoming = dataset[dataset["start"] >= cut]
        nxt = upcoming.groupby("program_id", sort=False).head(1)
        rows = nxt
        same_day = (rows["start"].dt.date == cut.date()).to_numpy()
        first_upcoming = nxt.set_index("program_id")["start"]
        lead_next = rows["lead_in_program_id"].map(first_upcoming)
        lead_known = (lead_next.isna() | (lead_next >= rows["start"])).to_numpy()
        assert same_day.sum() > 3
        assert lead_known.sum() > 3
        served = _served(state, rows)
        for column in (
            "h_last",
            "h_mean3",
            "h_mean8",
            "h_mean_all",
            "h_ewm",
            "h_count",
            "h_days_since",
            "h_episode",
            "h_slope",
        ):
            np.testing.assert_array_equal(served[column], rows[column].to_numpy(), err_msg=f"{target} {column}")
        on_day = rows[same_day]
        np.testing.assert_array_equal(_served(state, on_day)["s_last"], on_day["s_last"].to_numpy())
        np.testing.assert_array_equal(_served(state, on_day)["s_mean4"], on_day["s_mean4"].to_numpy())
        known = rows[lead_known]
        np.testing.assert_array_equal(_served(state, known)["li_last"], known["li_last"].to_numpy())
        # And for any rows, served from the state = training's implementation over the same past.
        every = upcoming.iloc[:300]
        trained = with_history(every.drop(columns=list(HISTORY_COLUMNS)), target, source=past)
        served_all = _served(state, every)
        for column in HISTORY_COLUMNS:
            np.testing.assert_array_equal(served_all[column], trained[column].to_numpy(), err_msg=column)


def test_conformal_intervals_cover_as_promised_on_a_case_with_known_noise():
    from registry.intervals import coverage, fit_conformal, interval_bounds

    rng = np.random.default_rng(11)
    sigma = 2.0
    level = rng.uniform(10, 50, 3000)  # the model knows the level exactly; the rest is N(0, sigma) noise
    calibration = fit_conformal(predicted=level, actual=level + rng.normal(0, sigma, len(level)))
    assert calibration["n"] == 3000
    assert len(calibration["edges"]) == 3
    fresh = rng.uniform(10, 50, 40_000)
    measured = coverage(calibration, predicted=fresh, actual=fresh + rng.normal(0, sigma, len(fresh)))
    for key, nominal, z in (("0.8", 0.8, 1.2816), ("0.9", 0.9, 1.6449), ("0.95", 0.95, 1.9600)):
        assert measured[key] == pytest.approx(nominal, abs=0.02)
        low, high = interval_bounds(calibration, np.array([30.0]), nominal)
        assert (high[0] - 30.0) == pytest.approx(z * sigma, rel=0.12)
        assert 30.0 - low[0] == pytest.approx(high[0] - 30.0)


def _assert_same_state(got: HistoryState, expected: HistoryState) -> None:
    assert got.program_index == expected.program_index
    assert got.slot_index == expected.slot_index
    assert got.through == expected.through
    assert got.pair_index == expected.pair_index
    for name in ("program_keys", "program_end", "utc_min", "slot_keys", "slot_end", "pair_keys", "pair_end"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
    for name in ("values", "older_sum", "episode", "slot_values", "pair_values"):  # bit for bit, NaN where NaN
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


def _split_by_day(stored: pd.DataFrame, share: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(airings before a cut, a day later the import's airings, both): the import only appends."""
    cut = stored["start"].sort_values().iloc[int(len(stored) * share)]
    old = stored[stored["start"] < cut - pd.Timedelta(days=1)]
    new = stored[stored["start"] >= cut]
    return old, new, pd.concat([old, new])


def test_an_append_only_import_folds_into_the_state_as_a_full_rebuild_would(stored: pd.DataFrame) -> None:
    old, new, both = _split_by_day(stored, 0.6)
    assert len(old) > 500
    assert len(new) > 500
    new = new.sample(frac=1.0, random_state=3)  # the import's rows come in any order
    queries = pd.concat([stored, stored.assign(start=stored["start"] + pd.Timedelta(days=40))])
    for target in TARGETS:
        state = history_state(old, target)
        folded = history_state_appended(state, new)
        assert folded is not None
        rebuilt = history_state(both, target)
        _assert_same_state(folded, rebuilt)
        served, expected = _served(folded, queries), _served(rebuilt, queries)
        for column in HISTORY_COLUMNS:
            np.testing.assert_array_equal(served[column], expected[column], err_msg=f"{target} {column}")
        assert np.isfinite(served["h_last"]).sum() > 100  # the comparison has something in it
        # Serving == training: the folded state serves the rows training builds from the same airings.
        later = stored[stored["start"] > both["start"].max() - pd.Timedelta(days=3)].iloc[:200]
        trained = with_history(later, target, source=both)
        served_later = _served(folded, later)
        # The program and program x slot columns (later rows' own day is not in ``both``: the slot ones differ).
        for column in (*HISTORY_COLUMNS[:9], "ps_last", "ps_mean4"):
            np.testing.assert_array_equal(served_later[column], trained[column].to_numpy(), err_msg=column)


def test_new_programs_and_new_runs_fold_in(stored: pd.DataFrame) -> None:
    old, new, _ = _split_by_day(stored, 0.5)
    first = stored["program_id"].min()
    old = old[old["program_id"] != first]  # a program the state never saw
    gap = new.assign(start=new["start"] + pd.Timedelta(days=RUN_GAP_DAYS + 1))  # every run starts again
    for target in ("audience", "rating"):
        folded = history_state(old, target).appended(gap)
        assert folded is not None
        _assert_same_state(folded, history_state(pd.concat([old, gap]), target))
        assert first in folded.program_index


def test_an_import_touching_an_earlier_airing_or_a_held_slot_day_is_not_folded(stored: pd.DataFrame) -> None:
    old, new, _ = _split_by_day(stored, 0.6)
    state = history_state(old, "audience")
    edited = pd.concat([new, old.iloc[[-1]].assign(audience=1.0)])  # an edit of an airing before ``through``
    assert state.appended(edited) is None
    cleared = pd.concat([new, old.iloc[[-1]].assign(audience=np.nan)])  # an actual removed counts too
    assert state.appended(cleared) is None
    # The latest held airing's slot-day gets a second airing a few minutes later: its mean would change.
    latest = old.loc[[old["start"].idxmax()]]
    assert state.appended(latest.assign(start=latest["start"] + pd.Timedelta(minutes=1))) is None
    assert state.appended(new.iloc[:0]) is state


def test_program_x_slot_history_reads_only_the_same_program_in_the_same_slot() -> None:
    """ps_last / ps_mean4: the program's earlier actuals in this channel x local weekday x hour, no others."""
    monday = pd.Timestamp("2024-01-01 20:00", tz="America/New_York")
    rows = []
    for week in range(6):
        at = monday + pd.Timedelta(weeks=week)
        rows.append((1, at, 10.0 + week))  # program 1, Monday 20:00
        rows.append((1, at + pd.Timedelta(days=1, hours=1), 100.0 + week))  # program 1, Tuesday 21:00
        rows.append((2, at + pd.Timedelta(minutes=30), 1000.0 + week))  # program 2, same Monday hour
    frame = pd.DataFrame(rows, columns=["program_id", "start", "audience"]).assign(channel="X", lead_in_program_id=-1)
    got = history_columns(frame, "audience")
    monday_1 = (frame["program_id"] == 1) & (frame["start"].dt.day_of_week == 0)
    tuesday_1 = (frame["program_id"] == 1) & (frame["start"].dt.day_of_week == 1)
    program_2 = frame["program_id"] == 2
    for mask, base in ((monday_1, 10.0), (tuesday_1, 100.0), (program_2, 1000.0)):
        last = got.loc[mask, "ps_last"].to_numpy()
        mean4 = got.loc[mask, "ps_mean4"].to_numpy()
        assert np.isnan(last[0])
        assert np.isnan(mean4[0])
        np.testing.assert_array_equal(last[1:], base + np.arange(5))
        assert mean4[5] == pytest.approx(base + np.mean([1, 2, 3, 4]))  # the last 4 of weeks 0..4
    # The program's own history mixes its two slots; the slot's mixes the two programs.
    assert got.loc[monday_1, "h_last"].iloc[1] == 100.0
    assert got.loc[monday_1, "s_last"].iloc[1] == pytest.approx((10.0 + 1000.0) / 2)
