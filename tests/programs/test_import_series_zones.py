"""Importer: programs keyed by series (season/episode on the airing), per-channel time zones and DST
nights, target ranges (TARGET_RANGES) and scaled columns."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings

from programs.importer import ColumnMapping, ImportValidationError, airings_import
from programs.models import Airing, Channel, DataVersion, Program
from tests.programs.factories import channel, write_csv

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")
SERIES_HEADER = ("series", "season", "episode", "channel", "start", "duration_minutes", "audience")


def _counts() -> tuple[int, int, int, int]:
    return Channel.objects.count(), Program.objects.count(), Airing.objects.count(), DataVersion.objects.count()


def _mapping(path: Path, raw: dict[str, object]) -> ColumnMapping:
    path.write_text(json.dumps(raw), encoding="utf-8")
    return ColumnMapping.load(path)


def test_a_series_column_keys_one_program_across_seasons_and_channels(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "series.csv",
        [
            ["Harbor Lights", "1", "1", "Northstar One", "2024-01-05T20:00:00-05:00", "60", "410"],
            ["Harbor Lights", "1", "2", "Northstar One", "2024-01-12T20:00:00-05:00", "60", "395"],
            ["Harbor Lights", "2", "1", "Metro Seven", "2025-01-10T21:00:00-05:00", "60", "380"],
        ],
        header=SERIES_HEADER,
    )
    result = airings_import(path=path)
    assert (result.created, result.programs_created, result.channels_created) == (3, 1, 2)
    assert list(Program.objects.values_list("external_id", "title", "channel__code")) == [
        ("harbor-lights", "Harbor Lights", "northstar-one")
    ]
    assert list(Airing.objects.order_by("start").values_list("channel__code", "season", "episode", "audience")) == [
        ("northstar-one", 1, 1, 410.0),
        ("northstar-one", 1, 2, 395.0),
        ("metro-seven", 2, 1, 380.0),
    ]
    again = airings_import(path=path)
    assert (again.created, again.updated, again.unchanged, again.data_version) == (0, 0, 3, None)


def test_a_corrected_episode_number_updates_the_airing(tmp_path: Path) -> None:
    row = ["Harbor Lights", "1", "1", "Northstar One", "2024-01-05T20:00:00-05:00", "60", "410"]
    airings_import(path=write_csv(tmp_path / "a.csv", [row], header=SERIES_HEADER))
    result = airings_import(path=write_csv(tmp_path / "b.csv", [[*row[:2], "3", *row[3:]]], header=SERIES_HEADER))
    assert (result.created, result.updated) == (0, 1)
    assert list(Airing.objects.values_list("season", "episode")) == [(1, 3)]


def test_a_bad_season_is_an_error_and_nothing_is_written(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "series.csv",
        [["Harbor Lights", "one", "1.5", "Northstar One", "2024-01-05T20:00:00-05:00", "60", "410"]],
        header=SERIES_HEADER,
    )
    before = _counts()
    with pytest.raises(ImportValidationError) as err:
        airings_import(path=path)
    assert err.value.details["errors"] == [
        {
            "line": 2,
            "reason": "season: 'one' is not a whole number between 0 and 32767; "
            "episode: '1.5' is not a whole number between 0 and 32767",
        }
    ]
    assert _counts() == before


# --- time zones ------------------------------------------------------------------------------------
WALL_HEADER = ("title", "channel", "start", "duration_minutes", "time_zone")


def test_a_naive_start_is_read_in_the_row_zone_and_the_new_channel_keeps_it(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "au.csv",
        [["Survivor AU", "Network 10", "2024-07-01T20:00:00", "60", "Australia/Sydney"]],
        header=WALL_HEADER,
    )
    airings_import(path=path)
    assert Channel.objects.get().time_zone == "Australia/Sydney"
    assert Airing.objects.get().start.isoformat() == "2024-07-01T10:00:00+00:00"


def test_a_naive_start_without_a_zone_is_read_in_its_existing_channel_zone(tmp_path: Path) -> None:
    channel(code="network-10", name="Network 10", time_zone="Australia/Sydney")
    path = write_csv(tmp_path / "au.csv", [["Survivor AU", "Network 10", "2024-07-01T20:00:00", "60", ""]], WALL_HEADER)
    airings_import(path=path)
    assert Airing.objects.get().start.isoformat() == "2024-07-01T10:00:00+00:00"


def test_an_unknown_zone_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", [["Show", "Ch", "2024-07-01T20:00:00", "60", "Mars/Olympus"]], WALL_HEADER)
    with pytest.raises(ImportValidationError) as err:
        airings_import(path=path)
    assert err.value.details["errors"] == [
        {"line": 2, "reason": "time_zone: unknown 'Mars/Olympus' (an IANA name such as America/New_York)"}
    ]
    assert _counts() == (0, 0, 0, 0)


def test_a_fall_back_hour_from_wall_clock_times_gives_every_airing_its_own_start(tmp_path: Path) -> None:
    # 2024-11-03 in New York: 01:00-01:59 happens twice (EDT, then EST). The file lists wall-clock times.
    rows = [
        ["Late Talk", "Metro Seven", "2024-11-03T00:30:00", "30", "America/New_York"],
        ["Night Movie", "Metro Seven", "2024-11-03T01:00:00", "30", "America/New_York"],
        ["Rerun A", "Metro Seven", "2024-11-03T01:30:00", "30", "America/New_York"],
        ["Rerun B", "Metro Seven", "2024-11-03T01:00:00", "30", "America/New_York"],
        ["Rerun C", "Metro Seven", "2024-11-03T01:30:00", "30", "America/New_York"],
        ["Early News", "Metro Seven", "2024-11-03T02:00:00", "30", "America/New_York"],
    ]
    airings_import(path=write_csv(tmp_path / "fall.csv", rows, header=WALL_HEADER))
    starts = [
        (title, start.isoformat())
        for title, start in Airing.objects.order_by("start").values_list("program__title", "start")
    ]
    assert starts == [
        ("Late Talk", "2024-11-03T04:30:00+00:00"),
        ("Night Movie", "2024-11-03T05:00:00+00:00"),  # 01:00 EDT
        ("Rerun A", "2024-11-03T05:30:00+00:00"),  # 01:30 EDT
        ("Rerun B", "2024-11-03T06:00:00+00:00"),  # 01:00 EST, the second 01:00
        ("Rerun C", "2024-11-03T06:30:00+00:00"),  # 01:30 EST
        ("Early News", "2024-11-03T07:00:00+00:00"),  # 02:00 EST
    ]


def test_a_spring_forward_night_never_stacks_two_airings_on_one_start(tmp_path: Path) -> None:
    # 2015-03-08 in New York: 02:00-02:59 does not exist. A schedule listed in wall-clock half hours.
    times = ["01:30", "02:00", "02:30", "03:00", "03:30"]
    rows = [[f"Show {t}", "Adult Swim", f"2015-03-08T{t}:00", "30", "America/New_York"] for t in times]
    airings_import(path=write_csv(tmp_path / "spring.csv", rows, header=WALL_HEADER))
    starts = [(t, s.isoformat()) for t, s in Airing.objects.order_by("start").values_list("program__title", "start")]
    assert starts == [
        ("Show 01:30", "2015-03-08T06:30:00+00:00"),  # 01:30 EST
        ("Show 02:00", "2015-03-08T07:00:00+00:00"),  # "02:00" -> 03:00 EDT
        ("Show 02:30", "2015-03-08T07:30:00+00:00"),  # in the listed order
        ("Show 03:00", "2015-03-08T08:00:00+00:00"),  # after the previous airing ends
        ("Show 03:30", "2015-03-08T08:30:00+00:00"),
    ]


def test_a_dst_night_leaves_the_other_nights_of_the_channel_alone(tmp_path: Path) -> None:
    # An overlap on an ordinary night is the file's own; only the DST night is re-laid.
    rows = [
        ["Show A", "Adult Swim", "2015-03-01T01:30:00", "60", "America/New_York"],
        ["Show B", "Adult Swim", "2015-03-01T02:00:00", "30", "America/New_York"],
        ["Show C", "Adult Swim", "2015-03-08T02:00:00", "30", "America/New_York"],
        ["Show D", "Adult Swim", "2015-03-08T03:00:00", "30", "America/New_York"],
    ]
    airings_import(path=write_csv(tmp_path / "nights.csv", rows, header=WALL_HEADER))
    starts = [(t, s.isoformat()) for t, s in Airing.objects.order_by("start").values_list("program__title", "start")]
    assert starts == [
        ("Show A", "2015-03-01T06:30:00+00:00"),
        ("Show B", "2015-03-01T07:00:00+00:00"),  # overlaps A as listed
        ("Show C", "2015-03-08T07:00:00+00:00"),  # 03:00 EDT
        ("Show D", "2015-03-08T07:30:00+00:00"),  # moved after C
    ]


# --- target ranges and scaled columns -----------------------------------------------------------
VIEWERS_HEADER = ("title", "channel", "start", "duration_minutes", "viewers")


def _viewers_mapping(path: Path, by: float | None = None) -> ColumnMapping:
    """The viewers file's mapping: "viewers" is the audience column, multiplied by ``by`` if given."""
    columns = {c: c for c in VIEWERS_HEADER[:-1]} | {"audience": "viewers"}
    raw: dict[str, object] = {"columns": columns}
    if by is not None:
        raw["transforms"] = {"audience": [{"op": "multiply", "by": by}]}
    return _mapping(path, raw)


def _viewers_file(tmp_path: Path, viewers: str) -> Path:
    return write_csv(
        tmp_path / "viewers.csv", [["Show", "CBS", "2024-05-01T20:00:00-04:00", "60", viewers]], VIEWERS_HEADER
    )


def test_an_out_of_range_column_names_the_transform_and_the_setting_and_writes_nothing(tmp_path: Path) -> None:
    mapping = _viewers_mapping(tmp_path / "m.json")
    with pytest.raises(ImportValidationError) as err:
        airings_import(path=_viewers_file(tmp_path, "15510000"), mapping=mapping)
    assert err.value.details["errors"] == [
        {
            "line": 2,
            "reason": "audience: '15510000' is above 200000, outside TARGET_RANGES['audience'] = 0..200000 "
            "(thousands of viewers); if the column is in another unit, scale it in the mapping: "
            'transforms.audience [{"op": "multiply", "by": 0.001}], or widen TARGET_RANGES',
        }
    ]
    assert _counts() == (0, 0, 0, 0)


def test_a_scaled_column_imports_in_the_target_unit(tmp_path: Path) -> None:
    mapping = _viewers_mapping(tmp_path / "m.json", by=1000)
    airings_import(path=_viewers_file(tmp_path, "10.48"), mapping=mapping)
    assert Airing.objects.get().audience == pytest.approx(10480.0)


@override_settings(
    TARGET_RANGES={"rating": (0, 100), "revenue": (0, 1e9), "audience": (0, 50.0), "engagement": (0, 100)}
)
def test_target_ranges_come_from_the_setting(tmp_path: Path) -> None:
    mapping = _viewers_mapping(tmp_path / "m.json", by=1000)
    with pytest.raises(ImportValidationError) as err:
        airings_import(path=_viewers_file(tmp_path, "10.48"), mapping=mapping)
    assert err.value.details["errors"] == [
        {
            "line": 2,
            "reason": "audience: '10480.0' is above 50, outside TARGET_RANGES['audience'] = 0..50 (thousands of viewers); "
            "if the column is in another unit, scale it in the mapping (the mapping already multiplies it by 1000): "
            'transforms.audience [{"op": "multiply", "by": 0.001}], or widen TARGET_RANGES',
        }
    ]
    assert _counts() == (0, 0, 0, 0)
