from __future__ import annotations

import csv
from datetime import datetime
from io import StringIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from programs.importer import ColumnMapping, ImportValidationError, airings_import
from programs.models import Airing, Channel, DataVersion, Program
from tests.programs.factories import airing, canonical_row, channel, program, write_csv

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")
MAPPINGS = Path(settings.BASE_DIR) / "docs" / "mappings"


def _counts() -> tuple[int, int, int, int]:
    return Channel.objects.count(), Program.objects.count(), Airing.objects.count(), DataVersion.objects.count()


def _local(a: Airing) -> str:
    return a.start.astimezone(NY).isoformat()


def test_it_imports_a_canonical_file_creating_channels_and_programs(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "good.csv",
        [
            canonical_row(),
            canonical_row(start="2025-03-08T20:00:00-05:00", is_premiere="true", audience="500", engagement=""),
            canonical_row(
                external_id="",
                title="Morning Report",
                genre="News",
                start="2025-03-02 06:00",
                is_live="1",
                rating="",
                revenue="",
                audience="",
                engagement="",
            ),
        ],
    )
    result = airings_import(path=path)
    assert (result.rows_read, result.created, result.updated, result.unchanged) == (3, 3, 0, 0)
    assert (result.channels_created, result.programs_created) == (1, 2)
    ch = Channel.objects.get()
    assert (ch.code, ch.name, ch.universe_households) == ("northstar-one", "Northstar One", 1_000_000)
    drama = Program.objects.get(external_id="ABC123")
    assert (drama.title, drama.genre, drama.content_rating, drama.duration_minutes, drama.is_live) == (
        "Harbor Lights",
        "drama",
        "PG-13",
        60,
        False,
    )
    news = Program.objects.get(external_id="northstar-one-morning-report")
    assert (news.genre, news.is_live) == ("news", True)
    rows = list(
        Airing.objects.order_by("start").values_list(
            "program__external_id",
            "start",
            "is_premiere",
            "rating",
            "revenue",
            "audience",
            "engagement",
            "data_version",
        )
    )
    version = DataVersion.objects.get()
    assert (version.source, version.rows_affected, result.data_version) == ("import", 3, version.pk)
    assert rows == [
        ("ABC123", datetime(2025, 3, 1, 20, 0, tzinfo=NY), False, 2.5, 120000.0, 410.5, 61.0, version.pk),
        (
            "northstar-one-morning-report",
            datetime(2025, 3, 2, 6, 0, tzinfo=NY),
            False,
            None,
            None,
            None,
            None,
            version.pk,
        ),
        ("ABC123", datetime(2025, 3, 8, 20, 0, tzinfo=NY), True, 2.5, 120000.0, 500.0, None, version.pk),
    ]


def test_it_uses_existing_programs_and_channels(tmp_path: Path) -> None:
    ch = channel(code="metro-seven", name="Metro Seven")
    prog = program(external_id="XYZ999", channel_obj=ch, title="Old title")
    path = write_csv(
        tmp_path / "f.csv", [canonical_row(external_id="XYZ999", title="New title", channel="Metro Seven")]
    )
    result = airings_import(path=path)
    assert (result.created, result.channels_created, result.programs_created) == (1, 0, 0)
    assert Airing.objects.get().program_id == prog.pk
    assert Program.objects.get().title == "Old title"


def test_a_bad_file_reports_every_bad_row_with_its_line_and_changes_nothing(tmp_path: Path) -> None:
    prog = program(external_id="KEEP01")
    airing(program_obj=prog)
    before = _counts()
    path = write_csv(
        tmp_path / "bad.csv",
        [
            canonical_row(),
            canonical_row(external_id="BAD001", start="yesterday"),
            canonical_row(external_id="BAD002", genre="opera", audience="-3"),
            canonical_row(external_id="BAD003", channel="", duration_minutes="45.5"),
            canonical_row(external_id="BAD004", engagement="120", is_premiere="maybe", rating="high"),
        ],
    )
    with pytest.raises(ImportValidationError) as info:
        airings_import(path=path)
    assert info.value.details["errors"] == [
        {"line": 3, "reason": "start: cannot parse 'yesterday' (expected ISO 8601, e.g. 2024-03-01T20:00:00-05:00)"},
        {
            "line": 4,
            "reason": "genre: unknown 'opera' (allowed: news, drama, comedy, sports, reality, documentary, kids, "
            "movie, talk, game, animation, other); audience: '-3' is negative",
        },
        {
            "line": 5,
            "reason": "channel: missing; duration_minutes: '45.5' is not a whole number of minutes between 1 and 1440",
        },
        {
            "line": 6,
            "reason": "is_premiere: 'maybe' is not a boolean (true/false/1/0/yes/no); "
            "rating: 'high' is not a number; engagement: '120' is above 100, outside TARGET_RANGES['engagement'] = 0..100 (a 0-100 score)",
        },
    ]
    assert info.value.message == "4 invalid row(s) in bad.csv; nothing was imported."
    assert _counts() == before


def test_the_command_exits_non_zero_and_prints_line_numbers(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", [canonical_row(), canonical_row(start="")])
    err = StringIO()
    with pytest.raises(CommandError, match="1 invalid row"):
        call_command("import_airings", str(path), stderr=err)
    assert err.getvalue() == "line 3: start: missing\n"
    assert _counts() == (0, 0, 0, 0)


def test_missing_columns_are_a_file_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", [["ABC123", "x"]], header=["external_id", "title"])
    with pytest.raises(ImportValidationError, match=r"missing column\(s\): start, channel, duration_minutes"):
        airings_import(path=path)


def test_a_row_with_the_wrong_number_of_fields_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    write_csv(path, [canonical_row()])
    path.write_text(path.read_text() + "ABC124,Too short\n")
    with pytest.raises(ImportValidationError) as info:
        airings_import(path=path)
    assert info.value.details["errors"] == [{"line": 3, "reason": "expected 13 fields, got 2"}]


def test_skip_invalid_imports_the_good_rows_and_writes_rejects(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "mixed.csv", [canonical_row(), canonical_row(external_id="BAD001", duration_minutes="")]
    )
    rejects = tmp_path / "rejects.csv"
    out, err = StringIO(), StringIO()
    call_command("import_airings", str(path), "--skip-invalid", "--rejects", str(rejects), stdout=out, stderr=err)
    assert Airing.objects.count() == 1
    assert err.getvalue() == "line 3: duration_minutes: missing\n"
    assert out.getvalue().startswith("Read 2 rows: 1 airings created, 0 updated, 0 unchanged, 1 rejected")
    with rejects.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][-2:] == ["line", "reason"]
    assert rows[1][0] == "BAD001"
    assert rows[1][-2:] == ["3", "duration_minutes: missing"]


def test_reimporting_the_same_file_adds_nothing_and_keeps_the_data_version(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", [canonical_row(), canonical_row(start="2025-03-01T21:00:00-05:00")])
    airings_import(path=path)
    before = _counts()
    result = airings_import(path=path)
    assert (result.created, result.updated, result.unchanged, result.data_version) == (0, 0, 2, None)
    assert _counts() == before


def test_the_same_instant_in_another_offset_is_the_same_airing(tmp_path: Path) -> None:
    airings_import(path=write_csv(tmp_path / "a.csv", [canonical_row()]))
    result = airings_import(path=write_csv(tmp_path / "b.csv", [canonical_row(start="2025-03-02T01:00:00+00:00")]))
    assert (result.created, result.unchanged) == (0, 1)


def test_a_changed_value_updates_the_airing_and_bumps_the_version(tmp_path: Path) -> None:
    airings_import(
        path=write_csv(tmp_path / "a.csv", [canonical_row(), canonical_row(start="2025-03-02T20:00:00-05:00")])
    )
    result = airings_import(path=write_csv(tmp_path / "b.csv", [canonical_row(audience="999")]))
    assert (result.created, result.updated, result.unchanged) == (0, 1, 0)
    assert DataVersion.objects.count() == 2
    changed = Airing.objects.get(audience=999.0)
    assert changed.data_version == result.data_version
    assert Airing.objects.count() == 2


def test_the_same_airing_twice_in_one_file_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", [canonical_row(), canonical_row(audience="1")])
    with pytest.raises(ImportValidationError) as info:
        airings_import(path=path)
    assert info.value.details["errors"] == [
        {"line": 3, "reason": "duplicate: same program, channel and start as line 2"}
    ]


def test_a_bad_mapping_is_reported() -> None:
    with pytest.raises(ImportValidationError, match="unknown step"):
        ColumnMapping.from_dict({"columns": {"title": "Show"}, "transforms": {"title": [{"op": "explode"}]}})
    with pytest.raises(ImportValidationError, match="unknown canonical column"):
        ColumnMapping.from_dict({"columns": {"tittle": "Show"}})


def test_a_mapping_naming_a_missing_source_column_is_reported(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", [canonical_row()])
    with pytest.raises(ImportValidationError, match="source column"):
        airings_import(path=path, mapping=ColumnMapping.from_dict({"columns": {"title": "Show"}}))


# --- foreign files shaped like the real datasets, through the committed mappings -----------------


def test_toonami_shaped_file_no_header_null_and_12_hour_clock(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "export.csv",
        [
            ["Dragon Ball Super", "2017-01-07", "8:00", "NULL", "1500", "NULL", "NULL"],
            ["Bleach", "2017-01-07", "11:30", "1.1", "1200", "0.8", "700"],
            ["Bleach", "2017-01-07", "12:00", "0.9", "1060", "9.99", "NULL"],
            ["Naruto", "2017-01-07", "5:30", "NULL", "310", "NULL", "NULL"],
        ],
        header=None,
    )
    result = airings_import(path=path, mapping=ColumnMapping.load(MAPPINGS / "toonami.json"))
    assert (result.created, result.channels_created, result.programs_created) == (4, 1, 3)
    rows = [
        (a.program.external_id, _local(a), a.rating, a.audience, a.duration_minutes)
        for a in Airing.objects.select_related("program").order_by("start")
    ]
    assert rows == [
        ("adult-swim-dragon-ball-super", "2017-01-07T20:00:00-05:00", None, 1500.0, 30),
        ("adult-swim-bleach", "2017-01-07T23:30:00-05:00", 1.1, 1200.0, 30),
        ("adult-swim-bleach", "2017-01-08T00:00:00-05:00", 0.9, 1060.0, 30),
        ("adult-swim-naruto", "2017-01-08T05:30:00-05:00", None, 310.0, 30),
    ]
    assert Channel.objects.get().universe_households == 90_000_000


def test_american_idol_shaped_file_is_one_series_with_season_and_episode_on_each_airing(tmp_path: Path) -> None:
    header = ["season", "show_number", "episode", "airdate", "18_49_rating_share", "viewers_in_millions", "timeslot_et"]
    path = write_csv(
        tmp_path / "ratings.csv",
        [
            ["2", "1", "Auditions", "January 21, 2003", "11.4 / 29", "26.5", "NA"],
            ["2", "2", "Auditions 2", "January 21, 2003", "N/A", "NA", "NA"],
            ["13", "40", "Grand Finale", "May 21", "4.8", "10.0", "NA"],
            ["16", "1", "Auditions", "March 11, 2018", "2.3", "10.48", "Sunday 8:00\u00a0p.m."],
            ["17", "5", "Top 10", "April 1, 2019", "1.2/5", "7.1", "Monday 9:00 p.m."],
        ],
        header=header,
    )
    result = airings_import(path=path, mapping=ColumnMapping.load(MAPPINGS / "american-idol.json"))
    assert (result.created, result.programs_created) == (5, 1)
    rows = [
        (
            a.program.external_id,
            a.channel.code,
            _local(a),
            a.season,
            a.episode,
            a.rating,
            a.audience,
            a.is_premiere,
            a.is_finale,
        )
        for a in Airing.objects.select_related("program", "channel").order_by("start")
    ]
    assert rows == [
        ("american-idol", "fox", "2003-01-21T20:00:00-05:00", 2, 1, 11.4, 26500.0, True, False),
        ("american-idol", "fox", "2003-01-21T21:00:00-05:00", 2, 2, None, None, False, False),  # stacked
        ("american-idol", "fox", "2014-05-21T20:00:00-04:00", 13, 40, 4.8, 10000.0, False, True),
        ("american-idol", "abc", "2018-03-11T20:00:00-04:00", 16, 1, 2.3, 10480.0, True, False),
        ("american-idol", "abc", "2019-04-01T21:00:00-04:00", 17, 5, 1.2, 7100.0, False, False),
    ]
    assert list(Program.objects.values_list("title", "channel__code")) == [("American Idol", "fox")]


def test_survivor_shaped_file_skips_rows_without_a_date_and_uses_local_time_zones(tmp_path: Path) -> None:
    header = [
        "version",
        "version_season",
        "season_name",
        "season",
        "episode_number_overall",
        "episode",
        "episode_title",
        "episode_label",
        "episode_date",
        "episode_length",
        "viewers",
        "imdb_rating",
        "n_ratings",
    ]
    path = write_csv(
        tmp_path / "viewers.csv",
        [
            [
                "US",
                "US01",
                "Survivor: Borneo",
                "1",
                "1",
                "1",
                "The Marooning",
                "Ep 1",
                "2000-05-31",
                "44",
                "15510000",
                "8",
                "330",
            ],
            [
                "US",
                "US01",
                "Survivor: Borneo",
                "1",
                "13",
                "13",
                "Finale",
                "Finale",
                "2000-08-23",
                "88",
                "16420000.000000002",
                "8.5",
                "300",
            ],
            [
                "US",
                "US01",
                "Survivor: Borneo",
                "1",
                "NA",
                "14",
                "Reunion",
                "Reunion",
                "2000-08-23",
                "NA",
                "NA",
                "7",
                "100",
            ],
            [
                "AU",
                "AU01",
                "Survivor Australia: 2016",
                "1",
                "1",
                "1",
                "Ep 1",
                "Ep 1",
                "2016-08-21",
                "80",
                "783000",
                "7.9",
                "50",
            ],
            ["UK", "UK01", "Survivor UK", "1", "1", "1", "Ep 1", "Ep 1", "NA", "50", "NA", "NA", "NA"],
        ],
        header=header,
    )
    result = airings_import(path=path, mapping=ColumnMapping.load(MAPPINGS / "survivor.json"))
    assert (result.rows_read, result.created, result.skipped_without_start, result.programs_created) == (5, 4, 1, 2)
    rows = [
        (
            a.program.external_id,
            a.season,
            a.episode,
            a.channel.code,
            a.start.isoformat(),
            a.duration_minutes,
            a.audience,
            a.engagement,
            a.is_premiere,
            a.is_finale,
        )
        for a in Airing.objects.select_related("program", "channel").order_by("start")
    ]
    assert rows == [
        ("survivor-us", 1, 1, "cbs", "2000-06-01T00:00:00+00:00", 44, 15510.0, 80.0, True, False),
        ("survivor-us", 1, 13, "cbs", "2000-08-24T00:00:00+00:00", 88, pytest.approx(16420.0), 85.0, False, True),
        ("survivor-us", 1, 14, "cbs", "2000-08-24T01:28:00+00:00", 60, None, 70.0, False, False),  # after the finale
        ("survivor-au", 1, 1, "network-10", "2016-08-21T10:00:00+00:00", 80, 783.0, 79.0, True, False),
    ]
    assert list(Program.objects.order_by("external_id").values_list("external_id", "title")) == [
        ("survivor-au", "Survivor AU"),
        ("survivor-us", "Survivor US"),
    ]
    assert list(Channel.objects.order_by("code").values_list("code", "universe_households", "time_zone")) == [
        ("cbs", 120_000_000, "America/New_York"),
        ("network-10", 9_000_000, "Australia/Sydney"),
    ]


# --- hostile files ----------------------------------------------------------------------------------
def test_a_nul_byte_is_a_line_error_and_nothing_is_written(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "nul.csv",
        [canonical_row(), canonical_row(title="Harbor\x00Lights", start="2025-03-02T20:00:00-05:00")],
    )
    before = _counts()
    with pytest.raises(ImportValidationError) as info:
        airings_import(path=path)
    assert info.value.details == {"errors": [{"line": 3, "reason": "contains a NUL byte"}]}
    assert _counts() == before


def test_bytes_that_do_not_decode_are_line_errors_and_the_good_rows_can_still_go_in(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "latin1.csv",
        [
            canonical_row(),
            canonical_row(title="TITLE", start="2025-03-02T20:00:00-05:00"),
            canonical_row(title="TITLE", start="2025-03-03T20:00:00-05:00", external_id="XYZ9"),
        ],
    )
    path.write_bytes(path.read_bytes().replace(b"TITLE", b"Caf\xe9", 1))  # Latin-1, not UTF-8: line 3
    result = airings_import(path=path, skip_invalid=True)
    assert [(r.line, r.reason) for r in result.rejects] == [(3, "not valid utf-8-sig text (byte 0xe9)")]
    assert (result.rows_read, result.created) == (3, 2)
    assert sorted(Program.objects.values_list("title", flat=True)) == ["Harbor Lights", "TITLE"]


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path, settings: Any) -> None:
    path = write_csv(tmp_path / "big.csv", [canonical_row()])
    settings.IMPORT_MAX_BYTES = path.stat().st_size - 1
    before = _counts()
    with pytest.raises(ImportValidationError) as info:
        airings_import(path=path)
    assert info.value.details == {"bytes": path.stat().st_size, "max_bytes": path.stat().st_size - 1}
    assert _counts() == before


def test_rows_are_validated_in_chunks_with_duplicates_found_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("programs.importer.CHUNK_ROWS", 2)
    rows = [canonical_row(start=f"2025-03-0{d}T20:00:00-05:00") for d in range(1, 6)]
    rows.append(canonical_row(start="2025-03-01T20:00:00-05:00"))  # line 7 repeats line 2, three chunks later
    rows.append(canonical_row(duration_minutes="0", start="2025-03-09T20:00:00-05:00"))
    path = write_csv(tmp_path / "chunks.csv", rows)
    result = airings_import(path=path, skip_invalid=True)
    assert [(r.line, r.reason.split(":")[0]) for r in result.rejects] == [(7, "duplicate"), (8, "duration_minutes")]
    assert result.rejects[0].reason == "duplicate: same program, channel and start as line 2"
    assert (result.rows_read, result.created) == (7, 5)
