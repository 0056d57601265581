"""Spotify privacy exports: finding history files in zips, folders and JSON files, refusing
what is unsafe or unreadable, and reading records with the identity facts the importer needs."""

from __future__ import annotations

import json
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mtm import exports, identity
from mtm import spotify_export as se
from mtm.spotify_export import ExportError, Problems, SourceFile

FIXTURES = Path(__file__).resolve().parent / "fixtures"
AUDIO_FIXTURE = FIXTURES / "Streaming_History_Audio_2023-2024_0.json"
ENDSONG_FIXTURE = FIXTURES / "endsong_0.json"
# Every test passes this as `now`: nothing depends on today's date.
NOW = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
TRACK = "spotify:track:1U8rhryVYw9gWZ6zvw4Orc"
OTHER_TRACK = "spotify:track:50DMJJpAeQv4fIpxZvQz2e"


def ts(year: int, month: int = 1, day: int = 1, hour: int = 12, minute: int = 0,
       second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp())


def iso(moment: int) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def extended(**fields: object) -> dict:
    """A music record of the current extended format, with `fields` changed."""
    record = {
        "ts": "2024-04-20T18:15:22Z", "platform": "android", "ms_played": 2385,
        "conn_country": "DE", "ip_addr": "", "master_metadata_track_name": "Beqaaboo",
        "master_metadata_album_artist_name": "OAFF",
        "master_metadata_album_album_name": "Gehraiyaan", "spotify_track_uri": TRACK,
        "episode_name": None, "episode_show_name": None, "spotify_episode_uri": None,
        "audiobook_title": None, "audiobook_uri": None, "audiobook_chapter_uri": None,
        "audiobook_chapter_title": None, "reason_start": "fwdbtn", "reason_end": "fwdbtn",
        "shuffle": True, "skipped": True, "offline": True, "offline_timestamp": 1679249719,
        "incognito_mode": False,
    }
    record.update(fields)
    return record


def account(**fields: object) -> dict:
    """A record of account data (StreamingHistory_music_N.json)."""
    record = {"endTime": "2024-03-01 18:05", "artistName": "A", "trackName": "T",
              "msPlayed": 123456}
    record.update(fields)
    return record


def podcast(**fields: object) -> dict:
    record = {"endTime": "2024-03-01 18:05", "podcastName": "The Show",
              "episodeName": "Episode 1", "msPlayed": 1_200_000}
    record.update(fields)
    return record


def mtm_record(**fields: object) -> dict:
    """A record of this app's own JSON export, as mtm.exports writes it."""
    play = exports.ExportPlay(
        played_at=ts(2024, 5, 1), record_key=-1234567890123456789, ms_played=200_000,
        source="api", context_uri="spotify:playlist:37i9dQZF1DXcBWIGoYBM5M", skipped=0,
        track="Calm Down", track_id="6hgoYQDUcPyCz7LcTUHKxa", artist="Rema",
        artist_id="46pWGuE3dSwY3bMMXGBvVS", album="Rave & Roses",
        album_id="3Gq2Dme9nExOTPEGe6ha7Z", artists="Rema")
    record = exports.spotify_record(play)
    record.update(fields)
    return record


def write(path: Path, records: object, *, bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(records, ensure_ascii=False).encode("utf-8")
    path.write_bytes(b"\xef\xbb\xbf" + data if bom else data)
    return path


def make_zip(path: Path, members: dict[str, bytes | str],
             method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def as_json(records: object) -> bytes:
    return json.dumps(records).encode("utf-8")


def read_one(path: Path, now: int = NOW, problems: Problems | None = None
             ) -> tuple[se.FileReport, list[se.Record], Problems]:
    """Find the one history file at `path` and read it."""
    found = se.find([path])
    assert len(found.files) == 1, found.files
    problems = problems if problems is not None else Problems()
    source, kind = found.files[0]
    report, records = se.read_file(source, kind, problems, now)
    return report, records, problems


def read_records(path: Path, records: list, kind: str, now: int = NOW
                 ) -> tuple[se.FileReport, list[se.Record], Problems]:
    """Write `records` to `path` and read them as `kind`."""
    write(path, records)
    problems = Problems()
    source = SourceFile(path.name, path.stat().st_size, path)
    report, parsed = se.read_file(source, kind, problems, now)
    return report, parsed, problems


def assert_adds_up(report: se.FileReport) -> None:
    assert report.records == report.music + report.not_music + report.malformed


# --- classify and sniff ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind"), [
    ("Streaming_History_Audio_2023-2024_0.json", se.EXTENDED),
    ("Streaming_History_Audio_2014.json", se.EXTENDED),
    ("streaming_history_audio_2019-2020_3.JSON", se.EXTENDED),
    ("Spotify Extended Streaming History/Streaming_History_Audio_2021_1.json", se.EXTENDED),
    ("endsong.json", se.EXTENDED),
    ("endsong_0.json", se.EXTENDED),
    ("endsong_12.json", se.EXTENDED),
    ("Streaming_History_Video_2022-2024.json", se.VIDEO),
    ("StreamingHistory_podcast_0.json", se.PODCAST),
    ("MyData/StreamingHistory_music_0.json", se.ACCOUNT),
    ("StreamingHistory_music_12.json", se.ACCOUNT),
    ("StreamingHistory0.json", se.ACCOUNT),
    ("StreamingHistory.json", se.ACCOUNT),
    ("music-time-machine-2025-01-01.json", se.MTM),
    ("Userdata.json", None),
    ("SearchQueries.json", None),
    ("endsong_x.json", None),
    ("StreamingHistory_music_0.json.bak", None),
    ("my history.json", None),
])
def test_classify_by_file_name(name: str, kind: str | None) -> None:
    """Spotify's names (any case, in any folder) give the kind; others need sniffing."""
    assert se.classify(name) == kind


@pytest.mark.parametrize(("records", "kind"), [
    ([extended()], se.EXTENDED),
    ([{"ts": "2024-01-01T10:00:00Z", "ms_played": 1000,
       "spotify_episode_uri": "spotify:episode:4rOoJ6Egrf8K2IrywzwOMk"}], se.VIDEO),
    ([account()], se.ACCOUNT),
    ([podcast()], se.PODCAST),
    ([mtm_record()], se.MTM),
    ([{"searchTime": "2024-01-01T10:00:00Z", "searchQuery": "x"}], None),
    ([], None),
])
def test_unusually_named_files_are_sniffed_by_content(tmp_path: Path, records: list,
                                                      kind: str | None) -> None:
    """A renamed file is recognised by its first record; anything else is ignored."""
    folder = tmp_path / "export"
    write(folder / "renamed.json", records)
    write(folder / "StreamingHistory_music_0.json", [account()])
    found = se.find([folder])
    kinds = {source.name: k for source, k in found.files}
    if kind is None:
        assert "export/renamed.json" not in kinds
        assert found.ignored == ["export/renamed.json"]
    else:
        assert kinds["export/renamed.json"] == kind
        assert found.ignored == []


def test_sniffing_reads_past_a_byte_order_mark(tmp_path: Path) -> None:
    path = write(tmp_path / "download (1).json", [account()], bom=True)
    found = se.find([path])
    assert [(s.name, k) for s, k in found.files] == [("download (1).json", se.ACCOUNT)]


def test_a_json_file_without_json_suffix_is_read_by_content(tmp_path: Path) -> None:
    """A single file named oddly (no .json) that holds JSON is still looked at."""
    path = write(tmp_path / "history.txt", [extended()])
    report, records, _ = read_one(path)
    assert report.kind == se.EXTENDED and report.name == "history.txt"
    assert len(records) == 1


# --- the real-format fixtures --------------------------------------------------------------


def test_current_extended_fixture_is_read_whole() -> None:
    report, records, problems = read_one(AUDIO_FIXTURE)
    raw = json.loads(AUDIO_FIXTURE.read_text(encoding="utf-8"))
    assert report.kind == se.EXTENDED and report.label == "Extended streaming history"
    assert (report.records, report.music, report.not_music, report.malformed) == (5, 5, 0, 0)
    assert problems.count == 0 and problems.shown == []
    times = [int(datetime.fromisoformat(r["ts"]).timestamp()) for r in raw]
    assert [r.played_at for r in records] == times
    assert (report.first, report.last) == (min(times), max(times))
    first = records[0]
    assert first.source == "export"
    assert first.track_id == "1U8rhryVYw9gWZ6zvw4Orc"
    assert (first.track, first.artist, first.album) == ("Beqaaboo", "OAFF", "Gehraiyaan")
    assert (first.ms_played, first.skipped) == (2385, 1)
    assert records[1].skipped == 0
    # Named by URI, so no name key; ids of artists and albums are not in Spotify's files.
    assert all(r.name_key is None and r.artist_id is None and r.album_id is None
               and r.context_uri is None for r in records)
    assert first.key == identity.extended_key(
        first.played_at, TRACK, "OAFF", "Beqaaboo", 2385, "fwdbtn", "fwdbtn", 1679249719)
    assert len({r.key for r in records}) == 5


def test_endsong_fixture_keeps_the_zero_ms_play_and_null_skips() -> None:
    report, records, _ = read_one(ENDSONG_FIXTURE)
    assert (report.records, report.music, report.malformed) == (5, 5, 0)
    by_track = {r.track: r for r in records}
    ghlana = by_track["Ghlana"]
    assert ghlana.ms_played == 0 and ghlana.skipped is None
    assert by_track["Got To Hurry"].skipped == 0
    assert report.first == ts(2010, 12, 1, 10, 28, 44)
    assert report.last == ts(2022, 3, 22, 16, 22, 18)
    # The ms offline_timestamp is keyed in seconds.
    girls = by_track["To All The Girls"]
    assert girls.key == identity.extended_key(
        girls.played_at, "spotify:track:7JSHs5GH7pq5moVo8wu1I6", "Beastie Boys",
        "To All The Girls", 75788, "appload", "trackdone", 1514143428)


# --- zips, folders and files ------------------------------------------------------------------


def spotify_zip(path: Path) -> Path:
    """Both kinds of export in one zip, laid out as Spotify delivers them."""
    ext = "Spotify Extended Streaming History/"
    return make_zip(path, {
        f"{ext}Streaming_History_Audio_2023-2024_0.json": AUDIO_FIXTURE.read_bytes(),
        f"{ext}Streaming_History_Audio_2010-2022_1.json": ENDSONG_FIXTURE.read_bytes(),
        f"{ext}Streaming_History_Video_2022-2024.json": as_json([
            {"ts": "2023-01-01T10:00:00Z", "ms_played": 5000,
             "spotify_episode_uri": "spotify:episode:4rOoJ6Egrf8K2IrywzwOMk"}]),
        f"{ext}ReadMeFirst_ExtendedStreamingHistory.pdf": b"%PDF-1.4 not json",
        "MyData/": b"",
        "MyData/StreamingHistory_music_0.json": as_json([account(), account(trackName="U")]),
        "MyData/StreamingHistory_podcast_0.json": as_json([podcast()]),
        "MyData/Userdata.json": as_json({"username": "someone", "country": "DE"}),
        "MyData/SearchQueries.json": as_json([{"searchTime": "2024", "searchQuery": "x"}]),
        "MyData/Read_Me_First.pdf": b"%PDF-1.4",
    })


def test_zip_as_spotify_sends_it(tmp_path: Path) -> None:
    """History files are found in their folders; other JSON files are reported as ignored."""
    path = spotify_zip(tmp_path / "upload.zip")
    found = se.find([path], {path: "my_spotify_data.zip"})
    ext = "my_spotify_data.zip/Spotify Extended Streaming History/"
    assert sorted((s.name, k) for s, k in found.files) == sorted([
        (f"{ext}Streaming_History_Audio_2023-2024_0.json", se.EXTENDED),
        (f"{ext}Streaming_History_Audio_2010-2022_1.json", se.EXTENDED),
        (f"{ext}Streaming_History_Video_2022-2024.json", se.VIDEO),
        ("my_spotify_data.zip/MyData/StreamingHistory_music_0.json", se.ACCOUNT),
        ("my_spotify_data.zip/MyData/StreamingHistory_podcast_0.json", se.PODCAST),
    ])
    # What is not listening history is listed as left alone, PDFs and all.
    assert sorted(found.ignored) == sorted([
        "my_spotify_data.zip/MyData/Read_Me_First.pdf",
        "my_spotify_data.zip/MyData/SearchQueries.json",
        "my_spotify_data.zip/MyData/Userdata.json",
        f"{ext}ReadMeFirst_ExtendedStreamingHistory.pdf"])
    problems = Problems()
    reports = {}
    for source, kind in found.files:
        assert source.path == path and source.member is not None
        report, records = se.read_file(source, kind, problems, NOW)
        assert_adds_up(report)
        reports[kind, report.name.rsplit("/", 1)[1]] = (report.music, report.not_music)
    assert reports == {
        (se.EXTENDED, "Streaming_History_Audio_2023-2024_0.json"): (5, 0),
        (se.EXTENDED, "Streaming_History_Audio_2010-2022_1.json"): (5, 0),
        (se.VIDEO, "Streaming_History_Video_2022-2024.json"): (0, 1),
        (se.ACCOUNT, "StreamingHistory_music_0.json"): (2, 0),
        (se.PODCAST, "StreamingHistory_podcast_0.json"): (0, 1),
    }
    assert problems.count == 0


def test_zip_without_display_is_labelled_by_its_name(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "export.zip", {"endsong_0.json": ENDSONG_FIXTURE.read_bytes()})
    found = se.find([path])
    assert [s.name for s, _ in found.files] == ["export.zip/endsong_0.json"]


def test_folder_is_searched_recursively_without_following_links(tmp_path: Path) -> None:
    folder = tmp_path / "unpacked"
    write(folder / "MyData" / "StreamingHistory_music_0.json", [account()])
    write(folder / "Spotify Extended Streaming History" / "deeper" / "endsong_0.json",
          [extended()])
    write(folder / "MyData" / "Userdata.json", {"username": "x"})
    (folder / "MyData" / "notes.txt").write_text("[1, 2]", encoding="utf-8")
    outside = tmp_path / "elsewhere"
    write(outside / "StreamingHistory_music_1.json", [account(trackName="Secret")])
    os.symlink(outside / "StreamingHistory_music_1.json",
               folder / "MyData" / "StreamingHistory_music_1.json")
    os.symlink(outside, folder / "linked-folder", target_is_directory=True)
    found = se.find([folder])
    assert sorted((s.name, k) for s, k in found.files) == [
        ("unpacked/MyData/StreamingHistory_music_0.json", se.ACCOUNT),
        ("unpacked/Spotify Extended Streaming History/deeper/endsong_0.json", se.EXTENDED),
    ]
    assert sorted(found.ignored) == ["unpacked/MyData/Userdata.json",
                                     "unpacked/MyData/notes.txt"]
    assert all(s.member is None for s, _ in found.files)


def test_a_link_given_itself_is_refused(tmp_path: Path) -> None:
    target = write(tmp_path / "StreamingHistory_music_0.json", [account()])
    link = tmp_path / "link.json"
    os.symlink(target, link)
    with pytest.raises(ExportError, match=r"^link\.json is not a file or a folder"):
        se.find([link])


def test_several_single_json_files(tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "StreamingHistory_music_0.json", [account()])
    second = write(tmp_path / "b" / "Streaming_History_Audio_2024_0.json", [extended()])
    found = se.find([first, second], {first: "first.json"})
    assert [(s.name, k, s.path) for s, k in found.files] == [
        ("first.json", se.ACCOUNT, first),
        ("Streaming_History_Audio_2024_0.json", se.EXTENDED, second),
    ]


# --- files that cannot be read --------------------------------------------------------------


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "StreamingHistory_music_0.json", [account()], bom=True)
    report, records, _ = read_one(path)
    assert report.music == 1 and records[0].track == "T"


@pytest.mark.parametrize(("data", "words"), [
    (b'[{"ts": "2024-04-20T18:15:22Z", "ms_pla', "is truncated"),
    (b'[\n  {"endTime": "2024-03-01 18:05"},\n', "is truncated"),
    (b"", "is empty"),
    (b'[{"endTime": "2024-03-01 18:05",, "msPlayed": 1}, {}]', "is not valid JSON (line 1"),
    (b"[{'endTime': '2024-03-01 18:05'}]", "is not valid JSON"),
    ('[{"artistName": "Sigur Rós"}]'.encode("latin-1"), "is not UTF-8 text"),
    ('[{"artistName": "A"}]'.encode("utf-16"), "is not UTF-8 text"),
    (b'{"endTime": "2024-03-01 18:05", "msPlayed": 1}', "does not hold a list of records"),
    (b"null", "does not hold a list of records"),
])
def test_unreadable_file_raises_naming_it(tmp_path: Path, data: bytes, words: str) -> None:
    path = tmp_path / "StreamingHistory_music_0.json"
    path.write_bytes(data)
    found = se.find([path], {path: "MyData/StreamingHistory_music_0.json"})
    with pytest.raises(ExportError) as caught:
        se.read_file(*found.files[0], Problems(), NOW)
    assert caught.value.message.startswith("MyData/StreamingHistory_music_0.json ")
    assert words in caught.value.message
    assert str(caught.value) == caught.value.message


def test_a_complete_list_with_a_stray_last_character_is_not_called_truncated(
        tmp_path: Path) -> None:
    """A file that ends after its list, with one character too many, is invalid, not cut."""
    path = tmp_path / "StreamingHistory_music_0.json"
    path.write_bytes(as_json([account()]) + b"]")
    with pytest.raises(ExportError) as caught:
        read_one(path)
    assert "truncated" not in caught.value.message
    assert "is not valid JSON" in caught.value.message


def test_a_file_that_is_neither_zip_nor_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ExportError, match=r"^photo\.png is neither a zip nor a JSON file"):
        se.find([path])


@pytest.mark.parametrize("layout", ["empty folder", "only other files", "empty zip"])
def test_nothing_usable_found(tmp_path: Path, layout: str) -> None:
    if layout == "empty folder":
        path = tmp_path / "empty"
        path.mkdir()
    elif layout == "only other files":
        path = tmp_path / "MyData"
        write(path / "Userdata.json", {"username": "x"})
        write(path / "Playlist1.json", {"playlists": []})
    else:
        path = make_zip(tmp_path / "x.zip", {"MyData/Read_Me_First.pdf": b"%PDF"})
    with pytest.raises(ExportError, match="No listening history was found"):
        se.find([path])


# --- records: malformed, not music, time limits -----------------------------------------


@pytest.mark.parametrize(("record", "reason"), [
    ("a string", "it is not a record (an object with fields)"),
    ([1, 2], "it is not a record (an object with fields)"),
    (extended(ts=None), "“ts” is missing"),
    ({k: v for k, v in extended().items() if k != "ts"}, "“ts” is missing"),
    (extended(ts=1713636922), "“ts” is not text"),
    (extended(ts="yesterday"), "“ts” is not a date and time ('yesterday')"),
    (extended(ms_played=None), "“ms_played” is missing"),
    (extended(ms_played="2385"), "“ms_played” is not a whole number"),
    (extended(ms_played=2385.5), "“ms_played” is not a whole number"),
    (extended(ms_played=True), "“ms_played” is not a whole number"),
    (extended(ms_played=-1), "“ms_played” is -1, outside 0 to 24 hours"),
    (extended(ms_played=86_400_001), "“ms_played” is 86,400,001, outside 0 to 24 hours"),
    (extended(master_metadata_track_name=5), "“master_metadata_track_name” is not text"),
    (extended(master_metadata_album_artist_name=["OAFF"]),
     "“master_metadata_album_artist_name” is not text"),
    (extended(master_metadata_album_album_name={"name": "x"}),
     "“master_metadata_album_album_name” is not text"),
    (extended(reason_end=3), "“reason_end” is not text"),
    (extended(spotify_track_uri=42), "“spotify_track_uri” is not text"),
    (extended(master_metadata_track_name="x" * 1001),
     "“master_metadata_track_name” is longer than 1,000 characters"),
    (extended(master_metadata_album_album_name="x" * 5000),
     "“master_metadata_album_album_name” is longer than 1,000 characters"),
    (extended(master_metadata_track_name=None), "it names no track or artist"),
    (extended(master_metadata_album_artist_name=None), "it names no track or artist"),
    (extended(master_metadata_track_name=None, master_metadata_album_artist_name=None,
              master_metadata_album_album_name=None, spotify_track_uri=None),
     "it names no track or artist (Spotify leaves them out for some tracks"),
    (extended(master_metadata_track_name=""), "it names no track or artist"),
    (extended(spotify_track_uri="spotify:episode:4rOoJ6Egrf8K2IrywzwOMk"),
     "“spotify_track_uri” is not a Spotify track URI"),
    (extended(spotify_track_uri="spotify:track:1U8rhryVYw9gWZ6zvw4Or!"),
     "“spotify_track_uri” is not a Spotify track URI"),
    (extended(spotify_track_uri="spotify:track:1U8rhryVYw9gWZ6zvw4Orcc"),
     "“spotify_track_uri” is not a Spotify track URI"),
    (extended(skipped="yes"), "“skipped” is not true or false"),
    (extended(skipped=1), "“skipped” is not true or false"),
    (extended(offline_timestamp="1679249719"), "“offline_timestamp” is not a whole number"),
    (extended(offline_timestamp=1679249719.5), "“offline_timestamp” is not a whole number"),
    (extended(ts="2005-12-31T23:59:59Z"), "it is dated before 2006, when Spotify started"),
    (extended(ts=iso(NOW + 86_401)), "it is dated in the future"),
])
def test_malformed_extended_record(tmp_path: Path, record: object, reason: str) -> None:
    """A bad record is counted with its reason; the good one next to it is still read."""
    report, records, problems = read_records(
        tmp_path / "endsong_0.json", [extended(ts="2024-01-01T00:00:00Z"), record], se.EXTENDED)
    assert (report.records, report.music, report.not_music, report.malformed) == (2, 1, 0, 1)
    assert len(records) == 1 and records[0].played_at == ts(2024, 1, 1, 0)
    assert problems.count == 1
    shown = problems.shown[0]
    assert (shown.file, shown.index) == ("endsong_0.json", 2)
    assert shown.reason.startswith(reason)
    assert len(shown.excerpt) <= 300


@pytest.mark.parametrize(("record", "reason"), [
    (7, "it is not a record (an object with fields)"),
    (account(endTime=None), "“endTime” is missing"),
    (account(endTime=20240301), "“endTime” is not text"),
    (account(endTime="2024-03-01T18:05:00Z"), "“endTime” is not “YYYY-MM-DD HH:MM”"),
    (account(endTime="2024-02-30 18:05"), "“endTime” is not a real date and time"),
    (account(endTime="2024-03-01 24:00"), "“endTime” is not a real date and time"),
    (account(artistName=None), "“artistName” is missing"),
    ({k: v for k, v in account().items() if k != "trackName"}, "“trackName” is missing"),
    (account(trackName=12), "“trackName” is not text"),
    (account(artistName=""), "it names no track or artist"),
    (account(trackName="y" * 1001), "“trackName” is longer than 1,000 characters"),
    (account(msPlayed="1000"), "“msPlayed” is not a whole number"),
    (account(msPlayed=None), "“msPlayed” is missing"),
    (account(msPlayed=-5), "“msPlayed” is -5, outside 0 to 24 hours"),
    (account(endTime="2005-12-31 23:59"), "it is dated before 2006"),
    (account(endTime="2025-01-03 00:00"), "it is dated in the future"),
])
def test_malformed_account_record(tmp_path: Path, record: object, reason: str) -> None:
    report, records, problems = read_records(
        tmp_path / "StreamingHistory_music_0.json", [record, account()], se.ACCOUNT)
    assert (report.records, report.music, report.malformed) == (2, 1, 1)
    assert records[0].track == "T" and records[0].source == "account"
    assert problems.shown[0].index == 1
    assert problems.shown[0].reason.startswith(reason)


@pytest.mark.parametrize(("fields", "reason"), [
    ({"mtm_source": "radio"}, "“mtm_source” is not one of api, export, account, demo"),
    ({"mtm_source": None}, "“mtm_source” is not one of"),
    ({"mtm_key": 12345}, "“mtm_key” is not a record key"),
    ({"mtm_key": "12a"}, "“mtm_key” is not a record key"),
    ({"mtm_key": "9223372036854775808"}, "“mtm_key” is not a record key"),
    ({"mtm_key": "-9223372036854775809"}, "“mtm_key” is not a record key"),
    ({"mtm_artist_uri": "spotify:track:46pWGuE3dSwY3bMMXGBvVS"},
     "“mtm_artist_uri” is not a Spotify URI"),
    ({"mtm_album_uri": "https://open.spotify.com/album/3Gq2Dme9nExOTPEGe6ha7Z"},
     "“mtm_album_uri” is not a Spotify URI"),
    ({"mtm_context_uri": 5}, "“mtm_context_uri” is not text"),
    ({"ts": "2005-06-01T00:00:00Z"}, "it is dated before 2006"),
])
def test_malformed_mtm_record(tmp_path: Path, fields: dict, reason: str) -> None:
    report, _, problems = read_records(
        tmp_path / "music-time-machine-2025-01-01.json", [mtm_record(**fields), mtm_record()],
        se.MTM)
    assert (report.music, report.malformed) == (1, 1)
    assert problems.shown[0].reason.startswith(reason)


@pytest.mark.parametrize(("kind", "good", "bad", "reason"), [
    (se.VIDEO, {"ts": "2023-01-01T10:00:00Z", "ms_played": 1}, {"ts": "soon"},
     "“ts” is not a date and time"),
    (se.VIDEO, {"ts": "2023-01-01T10:00:00Z"}, "x", "it is not a record"),
    (se.PODCAST, podcast(), podcast(endTime="2024-03-01"), "“endTime” is not “YYYY-MM-DD"),
    (se.PODCAST, podcast(), podcast(endTime="2030-01-01 00:00"), "it is dated in the future"),
])
def test_video_and_podcast_streams_are_counted_not_kept(tmp_path: Path, kind: str, good: dict,
                                                        bad: object, reason: str) -> None:
    report, records, problems = read_records(tmp_path / "x.json", [good, good, bad], kind)
    assert records == []
    assert (report.records, report.music, report.not_music, report.malformed) == (3, 0, 2, 1)
    assert (report.first, report.last) == (None, None)
    assert problems.shown[0].reason.startswith(reason)


def test_names_up_to_the_limit_are_read(tmp_path: Path) -> None:
    long = "n" * se.MAX_NAME
    report, records, _ = read_records(
        tmp_path / "endsong_0.json",
        [extended(master_metadata_track_name=long, master_metadata_album_artist_name=long,
                  master_metadata_album_album_name=long)], se.EXTENDED)
    assert report.music == 1 and records[0].track == long and records[0].album == long


def test_podcasts_and_audiobooks_in_extended_files_are_not_music(tmp_path: Path) -> None:
    nothing = {"master_metadata_track_name": None, "master_metadata_album_artist_name": None,
               "master_metadata_album_album_name": None, "spotify_track_uri": None}
    report, records, problems = read_records(tmp_path / "endsong_0.json", [
        extended(),
        extended(**nothing, episode_name="Episode 12", episode_show_name="The Show",
                 spotify_episode_uri="spotify:episode:4rOoJ6Egrf8K2IrywzwOMk"),
        extended(**nothing, audiobook_title="A Book",
                 audiobook_uri="spotify:show:7iHfbu1YPACw6oZPAFJtqe",
                 audiobook_chapter_uri="spotify:episode:0Q86acNRm6V9GYx55SXKwf",
                 audiobook_chapter_title="Chapter 1"),
        extended(**nothing, audiobook_chapter_uri="spotify:episode:0Q86acNRm6V9GYx55SXKwf"),
        extended(**nothing),
    ], se.EXTENDED)
    assert (report.records, report.music, report.not_music, report.malformed) == (5, 1, 3, 1)
    assert [r.track for r in records] == ["Beqaaboo"]
    assert problems.shown[0].index == 5
    assert "names no track or artist" in problems.shown[0].reason


def test_time_limits_follow_the_now_given(tmp_path: Path) -> None:
    """Before 2006 or more than a day after `now` is malformed; the bounds themselves are not."""
    records = [
        extended(ts=iso(se.EARLIEST)),
        extended(ts=iso(se.EARLIEST - 1)),
        extended(ts=iso(NOW + se.FUTURE_SLACK)),
        extended(ts=iso(NOW + se.FUTURE_SLACK + 1)),
    ]
    report, parsed, problems = read_records(tmp_path / "endsong_0.json", records, se.EXTENDED)
    assert [r.played_at for r in parsed] == [se.EARLIEST, NOW + se.FUTURE_SLACK]
    assert [m.index for m in problems.shown] == [2, 4]
    assert (report.first, report.last) == (se.EARLIEST, NOW + se.FUTURE_SLACK)
    # A year later, the last record is no longer in the future.
    later = NOW + 365 * 86_400
    report, parsed, _ = read_records(tmp_path / "endsong_0.json", records, se.EXTENDED, later)
    assert report.malformed == 1 and len(parsed) == 3


def test_time_zone_offsets_in_ts_are_honoured(tmp_path: Path) -> None:
    _, parsed, _ = read_records(tmp_path / "endsong_0.json", [
        extended(ts="2024-04-20T20:15:22+02:00"), extended(ts="2024-04-20T18:15:22")],
        se.EXTENDED)
    assert [r.played_at for r in parsed] == [ts(2024, 4, 20, 18, 15, 22)] * 2


def test_only_the_first_malformed_records_are_kept_all_are_counted(tmp_path: Path) -> None:
    problems = Problems()
    first = write(tmp_path / "endsong_0.json",
                  [extended(ms_played=-i) for i in range(1, 5)] + [extended()])
    second = write(tmp_path / "StreamingHistory_music_0.json",
                   [account(msPlayed="x")] * 4 + [account(artistName="z" * 2000)])
    reports = []
    for path in (first, second):
        source, kind = se.find([path]).files[0]
        report, _ = se.read_file(source, kind, problems, NOW)
        reports.append(report)
    assert [r.malformed for r in reports] == [4, 5]
    assert [r.music for r in reports] == [1, 0]
    assert problems.count == 9
    assert len(problems.shown) == se.MALFORMED_SHOWN == 5
    assert [(m.file, m.index) for m in problems.shown] == [
        ("endsong_0.json", 1), ("endsong_0.json", 2), ("endsong_0.json", 3),
        ("endsong_0.json", 4), ("StreamingHistory_music_0.json", 1)]
    assert '"ms_played": -1,' in problems.shown[0].excerpt


def test_a_long_malformed_record_is_shown_shortened(tmp_path: Path) -> None:
    _, _, problems = read_records(tmp_path / "StreamingHistory_music_0.json",
                                  [account(artistName="z" * 2000)], se.ACCOUNT)
    excerpt = problems.shown[0].excerpt
    assert len(excerpt) == 298 and excerpt.endswith("…")
    assert excerpt.startswith('{"endTime": "2024-03-01 18:05", "artistName": "zzz')


def test_report_counts_add_up_with_first_and_last(tmp_path: Path) -> None:
    report, records, _ = read_records(tmp_path / "endsong_0.json", [
        extended(ts="2020-06-01T00:00:00Z"),
        extended(ts="2019-01-01T00:00:00Z", episode_name="E", spotify_episode_uri=None),
        extended(ts="2018-01-01T00:00:00Z"),
        extended(ts="2023-05-05T05:05:05Z", ms_played="bad"),
        extended(ts="2021-02-03T04:05:06Z", spotify_track_uri=OTHER_TRACK),
    ], se.EXTENDED)
    assert (report.records, report.music, report.not_music, report.malformed) == (5, 3, 1, 1)
    assert_adds_up(report)
    # Only music counts for the dates: the podcast of 2019 and the broken 2023 record do not.
    assert (report.first, report.last) == (ts(2018, 1, 1, 0), ts(2021, 2, 3, 4, 5, 6))


# --- this app's own export ----------------------------------------------------------------


def test_mtm_export_gives_back_source_key_and_ids(tmp_path: Path) -> None:
    report, records, _ = read_records(tmp_path / "music-time-machine-2025-01-01.json",
                                      [mtm_record()], se.MTM)
    assert report.label == "Music Time Machine export"
    (record,) = records
    assert record == se.Record(
        "api", ts(2024, 5, 1), 200_000, -1234567890123456789, 0,
        "spotify:playlist:37i9dQZF1DXcBWIGoYBM5M", "6hgoYQDUcPyCz7LcTUHKxa", "Calm Down",
        "Rema", "Rave & Roses", "46pWGuE3dSwY3bMMXGBvVS", "3Gq2Dme9nExOTPEGe6ha7Z", None)


def test_mtm_records_without_key_or_uri(tmp_path: Path) -> None:
    """Older exports had no key: the default key of the play; no URI: named by artist."""
    _, records, _ = read_records(tmp_path / "music-time-machine-2025-01-01.json", [
        mtm_record(mtm_key=None),
        mtm_record(mtm_source="account", spotify_track_uri=None, mtm_artist_uri=None,
                   mtm_album_uri=None, mtm_context_uri=None, mtm_key="-5"),
    ], se.MTM)
    assert records[0].key == identity.default_key("api", ts(2024, 5, 1),
                                                  "6hgoYQDUcPyCz7LcTUHKxa", "Rema", "Calm Down")
    assert records[1].key == -5 and records[1].source == "account"
    assert records[1].track_id is None and records[1].artist_id is None
    assert records[1].name_key == identity.match_key("Rema", "Calm Down")


# --- record identity ----------------------------------------------------------------------


def keys(records: list[se.Record]) -> list[int]:
    return [r.key for r in records]


def test_distinct_records_in_one_second_get_distinct_keys(tmp_path: Path) -> None:
    _, records, _ = read_records(tmp_path / "endsong_0.json", [
        extended(),
        extended(spotify_track_uri=OTHER_TRACK),
        extended(ms_played=2386),
        extended(offline_timestamp=1679249720),
        extended(reason_end="trackdone"),
        extended(reason_start="clickrow"),
    ], se.EXTENDED)
    assert len(records) == 6 and len({r.played_at for r in records}) == 1
    assert len(set(keys(records))) == 6


def test_byte_identical_records_get_one_key(tmp_path: Path) -> None:
    """Exports overlap themselves: the same record, in one file or two, has one key."""
    _, once, _ = read_records(tmp_path / "endsong_0.json", [extended(), extended()],
                              se.EXTENDED)
    _, again, _ = read_records(tmp_path / "endsong_1.json", [extended()], se.EXTENDED)
    assert keys(once) == [once[0].key] * 2 == keys(again) * 2


def test_fields_outside_the_identity_do_not_change_the_key(tmp_path: Path) -> None:
    _, records, _ = read_records(tmp_path / "endsong_0.json", [
        extended(), extended(platform="ios", ip_addr="192.0.2.1", conn_country="FR",
                             shuffle=False, skipped=None, incognito_mode=True)], se.EXTENDED)
    assert records[0].key == records[1].key


def test_the_same_play_in_old_and_new_format_has_one_key(tmp_path: Path) -> None:
    """endsong (offline_timestamp in ms, other fields) and the current format agree."""
    old = json.loads(ENDSONG_FIXTURE.read_text(encoding="utf-8"))
    new = []
    for record in old:
        record = dict(record)
        for gone in ("username", "ip_addr_decrypted", "user_agent_decrypted"):
            del record[gone]
        offline = record["offline_timestamp"]
        record.update(ip_addr="", platform="android", audiobook_title=None,
                      audiobook_uri=None, audiobook_chapter_uri=None,
                      audiobook_chapter_title=None,
                      offline_timestamp=offline // 1000 if offline else offline)
        new.append(record)
    assert any(r["offline_timestamp"] > 10**12 for r in old)
    _, old_records, _ = read_one(ENDSONG_FIXTURE)
    _, new_records, _ = read_records(tmp_path / "Streaming_History_Audio_2010-2022_0.json",
                                     new, se.EXTENDED)
    assert keys(old_records) == keys(new_records)
    assert len(set(keys(old_records))) == 5


def test_account_records_count_occurrences_within_a_file(tmp_path: Path) -> None:
    """Two identical records in one file are two plays; a file read again gives the same keys."""
    records = [account(), account(), account(trackName="U"), account()]
    _, first, _ = read_records(tmp_path / "StreamingHistory_music_0.json", records,
                               se.ACCOUNT)
    _, second, _ = read_records(tmp_path / "StreamingHistory_music_1.json", records,
                                se.ACCOUNT)
    assert len(set(keys(first))) == 4
    assert keys(first) == keys(second)
    minute = ts(2024, 3, 1, 18, 5)
    assert first[1].key == identity.account_key(minute, "A", "T", 123456, 1)
    assert first[3].key == identity.account_key(minute, "A", "T", 123456, 2)
    assert all(r.name_key == identity.match_key(r.artist, r.track) for r in first)
    assert all(r.played_at == minute for r in first)


def test_same_account_record_in_two_files_has_one_key(tmp_path: Path) -> None:
    _, first, _ = read_records(tmp_path / "StreamingHistory_music_0.json",
                               [account(trackName="Other"), account()], se.ACCOUNT)
    _, second, _ = read_records(tmp_path / "StreamingHistory0.json", [account()], se.ACCOUNT)
    assert first[1].key == second[0].key
    assert first[0].key != first[1].key


def test_account_records_differing_only_in_case_get_distinct_keys(tmp_path: Path) -> None:
    """Two records of one file are two plays, even when their names match case-blind."""
    _, records, _ = read_records(tmp_path / "StreamingHistory_music_0.json",
                                 [account(artistName="A"), account(artistName="a")],
                                 se.ACCOUNT)
    assert len(records) == 2
    assert records[0].key != records[1].key


# --- limits: sizes, zip bombs, paths, damage --------------------------------------------------


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(se, "MAX_FILE_BYTES", 1000)
    small = write(tmp_path / "endsong_0.json", [extended()])
    big = write(tmp_path / "endsong_1.json", [extended()] * 5)
    assert small.stat().st_size <= 1000 < big.stat().st_size
    assert read_one(small)[0].music == 1
    source, kind = se.find([big]).files[0]
    with pytest.raises(ExportError, match=r"^endsong_1\.json is larger than 1,000 bytes"):
        se.read_file(source, kind, Problems(), NOW)


def test_a_zip_member_over_the_size_limit_is_refused(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(se, "MAX_FILE_BYTES", 1000)
    path = make_zip(tmp_path / "export.zip", {"endsong_0.json": as_json([extended()] * 5)})
    with pytest.raises(ExportError, match=r"^export\.zip contains endsong_0\.json, which "
                                          r"would unpack to"):
        se.find([path])


def test_a_zip_bomb_member_is_refused(tmp_path: Path) -> None:
    """Over 1 MB and over MAX_RATIO times its packed size: not opened."""
    bomb = b"[" + b" " * 2_000_000 + b"]"
    path = make_zip(tmp_path / "export.zip",
                    {"MyData/StreamingHistory_music_0.json": as_json([account()]),
                     "MyData/StreamingHistory_music_1.json": bomb})
    info = zipfile.ZipFile(path).getinfo("MyData/StreamingHistory_music_1.json")
    assert info.file_size > 1_000_000 and info.file_size > se.MAX_RATIO * info.compress_size
    with pytest.raises(ExportError) as caught:
        se.find([path])
    assert caught.value.message.startswith(
        "export.zip contains MyData/StreamingHistory_music_1.json, which would unpack to "
        "2,000,002 bytes")


def test_a_small_highly_compressed_member_is_fine(tmp_path: Path) -> None:
    """The ratio alone does not refuse a member: under 1 MB is never a bomb."""
    data = b"[" + b" " * 900_000 + as_json([account()])[1:]
    path = make_zip(tmp_path / "export.zip", {"StreamingHistory_music_0.json": data})
    info = zipfile.ZipFile(path).getinfo("StreamingHistory_music_0.json")
    assert info.file_size > se.MAX_RATIO * info.compress_size
    assert read_one(path)[0].music == 1


def test_too_many_zip_members_are_refused(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(se, "MAX_MEMBERS", 3)
    fine = make_zip(tmp_path / "fine.zip",
                    {f"StreamingHistory_music_{i}.json": as_json([account()]) for i in range(3)})
    assert len(se.find([fine]).files) == 3
    many = make_zip(tmp_path / "many.zip",
                    {"StreamingHistory_music_0.json": as_json([account()]),
                     "a.pdf": b"", "b.pdf": b"", "c.pdf": b""})
    with pytest.raises(ExportError, match=r"^many\.zip holds 4 files"):
        se.find([many])


def test_too_many_json_files_in_a_folder_are_refused(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(se, "MAX_MEMBERS", 3)
    for i in range(4):
        write(tmp_path / "data" / f"sub{i}" / f"StreamingHistory_music_{i}.json", [account()])
    with pytest.raises(ExportError, match=r"^data holds more than 3 JSON files"):
        se.find([tmp_path / "data"])


def test_together_too_big_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = write(tmp_path / "StreamingHistory_music_0.json", [account()] * 10)
    second = write(tmp_path / "StreamingHistory_music_1.json", [account()] * 10)
    monkeypatch.setattr(se, "MAX_TOTAL_BYTES", first.stat().st_size + 10)
    assert len(se.find([first]).files) == 1
    with pytest.raises(ExportError, match="Together the files hold more than"):
        se.find([first, second])


@pytest.mark.parametrize("member", [
    "../StreamingHistory_music_0.json",
    "MyData/../../StreamingHistory_music_0.json",
    "/StreamingHistory_music_0.json",
    "/etc/x.pdf",
    "..\\StreamingHistory_music_0.json",
    "\\StreamingHistory_music_0.json",
    "C:/StreamingHistory_music_0.json",
])
def test_a_member_leaving_its_folder_is_refused(tmp_path: Path, member: str) -> None:
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("MyData/StreamingHistory_music_1.json", as_json([account()]))
        # writestr keeps the name as given (write() would clean it).
        archive.writestr(zipfile.ZipInfo(member), as_json([account()]))
    assert member in zipfile.ZipFile(path).namelist()
    with pytest.raises(ExportError) as caught:
        se.find([path])
    assert caught.value.message == (f"export.zip contains a file whose path leaves its folder "
                                    f"({member!r}); it was not opened.")


def test_an_encrypted_member_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "export.zip",
                    {"StreamingHistory_music_0.json": as_json([account()])})
    data = bytearray(path.read_bytes())
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 0x1  # general purpose flag: encrypted
    path.write_bytes(bytes(data))
    with pytest.raises(ExportError, match=r"^export\.zip is encrypted"):
        se.find([path])


def test_a_damaged_central_directory_is_refused(tmp_path: Path) -> None:
    path = spotify_zip(tmp_path / "export.zip")
    data = bytearray(path.read_bytes())
    central = data.find(b"PK\x01\x02")
    data[central:central + 4] = b"XXXX"
    path.write_bytes(bytes(data))
    with pytest.raises(ExportError, match=r"^export\.zip is a damaged zip file"):
        se.find([path])


def test_damaged_member_data_is_refused_when_read(tmp_path: Path) -> None:
    records = [account(trackName=f"Track {i}") for i in range(50)]
    path = make_zip(tmp_path / "export.zip", {"StreamingHistory_music_0.json": as_json(records)},
                    method=zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    at = data.find(b"Track 25")
    data[at:at + 8] = b"Track 99"  # the CRC no longer matches
    path.write_bytes(bytes(data))
    source, kind = se.find([path]).files[0]
    with pytest.raises(ExportError) as caught:
        se.read_file(source, kind, Problems(), NOW)
    assert caught.value.message.startswith(
        "export.zip/StreamingHistory_music_0.json is damaged inside its zip")


def test_a_truncated_zip_is_refused(tmp_path: Path) -> None:
    path = spotify_zip(tmp_path / "export.zip")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportError, match=r"^export\.zip "):
        se.find([path])


def test_a_member_with_an_unknown_compression_method_is_refused(tmp_path: Path) -> None:
    """A damaged method field is an ExportError naming the file, not a crash."""
    path = make_zip(tmp_path / "export.zip",
                    {"StreamingHistory_music_0.json": as_json([account()])})
    data = bytearray(path.read_bytes())
    central = data.find(b"PK\x01\x02")
    data[8] = data[central + 10] = 99  # compression method, local header and directory
    path.write_bytes(bytes(data))
    with pytest.raises(ExportError) as caught:
        read_one(path)
    assert "export.zip" in caught.value.message


# --- reading a file piece by piece ---------------------------------------------------------


@pytest.mark.parametrize("indent", [None, 2])
def test_pieces_give_the_same_records_as_the_whole_file(tmp_path: Path, indent: int | None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    records = [extended(ts=iso(ts(2024, 1, 1) + i * 300), ms_played=10_000 * i)
               for i in range(11)]
    records[4] = {"ts": 5}  # unreadable, in the middle of a piece
    path = tmp_path / "Streaming_History_Audio_2024_0.json"
    path.write_text(json.dumps(records, indent=indent), encoding="utf-8")
    whole = read_one(path)
    monkeypatch.setattr(se, "PIECE_RECORDS", 3)
    pieces = read_one(path)
    assert pieces[0] == whole[0] and pieces[1] == whole[1]
    assert [p.index for p in pieces[2].shown] == [p.index for p in whole[2].shown] == [5]
    assert pieces[0].records == 11 and pieces[0].malformed == 1


def test_a_record_holding_an_object_is_read_whole(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # "}," and a newline inside a record: pieces cut there do not parse, so the file is
    # read whole, and nothing is counted twice.
    records = [dict(extended(ts=iso(ts(2024, 1, 1) + i * 300)), extra={"a": 1})
               for i in range(6)]
    path = tmp_path / "Streaming_History_Audio_2024_0.json"
    path.write_text(json.dumps(records, indent=2), encoding="utf-8")
    monkeypatch.setattr(se, "PIECE_RECORDS", 2)
    report, got, problems = read_one(path)
    assert report.records == 6 and len(got) == 6 and problems.count == 0


def test_a_file_cut_short_after_its_first_pieces_is_still_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = [extended(ts=iso(ts(2024, 1, 1) + i * 300)) for i in range(9)]
    text = json.dumps(records, indent=2)
    path = tmp_path / "Streaming_History_Audio_2024_0.json"
    path.write_text(text[: len(text) - 40], encoding="utf-8")
    monkeypatch.setattr(se, "PIECE_RECORDS", 2)
    problems = Problems()
    with pytest.raises(ExportError, match="truncated"):
        read_one(path, problems=problems)
    assert problems.count == 0, "no record of a refused file is counted"
