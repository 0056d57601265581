"""Spotify privacy exports: finding the history files in what a user gives, reading records.

A user gives the zip as Spotify sends it (files in a folder such as `Spotify Extended
Streaming History/` or `MyData/`), a folder, or single JSON files, including this app's own
JSON export. Nothing here touches the database: it turns files into `Record`s, or explains
in a sentence why it cannot.
"""

from __future__ import annotations

import gc
import json
import re
import stat
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import orjson

from mtm import identity

# What one import may read. Real exports are far below each: ten years of extended history
# is about 300 MB of JSON in about 30 files of 10-15 MB.
MAX_TOTAL_BYTES = 2_000_000_000
MAX_FILE_BYTES = 48_000_000
MAX_MEMBERS = 5_000
# JSON compresses about 10 to 20 times; a zip bomb, hundreds to millions of times.
MAX_RATIO = 100
MAX_NAME = 1_000
# Spotify started in 2006; a play before it, or after tomorrow, is a broken record.
EARLIEST = int(datetime(2006, 1, 1, tzinfo=UTC).timestamp())
FUTURE_SLACK = 86_400
MALFORMED_SHOWN = 5

EXTENDED, VIDEO, ACCOUNT, PODCAST, MTM = "extended", "video", "account", "podcast", "mtm"
KIND_LABELS = {
    EXTENDED: "Extended streaming history",
    VIDEO: "Video streaming history",
    ACCOUNT: "Account data: music",
    PODCAST: "Account data: podcasts",
    MTM: "Music Time Machine export",
}
_NAMES = (
    (re.compile(r"^Streaming_History_Audio_.*\.json$", re.I), EXTENDED),
    (re.compile(r"^endsong(_\d+)?\.json$", re.I), EXTENDED),
    (re.compile(r"^Streaming_History_Video_.*\.json$", re.I), VIDEO),
    (re.compile(r"^StreamingHistory_podcast_\d+\.json$", re.I), PODCAST),
    (re.compile(r"^StreamingHistory_music_\d+\.json$", re.I), ACCOUNT),
    (re.compile(r"^StreamingHistory\d*\.json$", re.I), ACCOUNT),
    (re.compile(r"^music-time-machine.*\.json$", re.I), MTM),
)
_TRACK_URI = re.compile(r"^spotify:track:([0-9A-Za-z]{22})$")
_ID_URI = re.compile(r"^spotify:(artist|album):([0-9A-Za-z]{22})$")
_END_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2})$")
_SOURCES = frozenset({"api", "export", "account", "demo"})


class ExportError(Exception):
    """What was given cannot be imported; `message` says why, in words, and names the file."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class SourceFile:
    """One JSON file of an export, wherever it lies (in a zip, a folder, or on its own)."""

    name: str
    size: int
    path: Path
    member: str | None = None
    # False for what sits beside the history (a PDF, pictures): listed, never read.
    json: bool = True

    def read(self, limit: int = MAX_FILE_BYTES) -> bytes:
        """Its bytes (at most `limit`), never more than MAX_FILE_BYTES whatever a zip claims."""
        try:
            if self.member is None:
                with self.path.open("rb") as handle:
                    data = handle.read(min(limit, MAX_FILE_BYTES + 1))
            else:
                with zipfile.ZipFile(self.path) as archive, archive.open(self.member) as handle:
                    data = handle.read(min(limit, MAX_FILE_BYTES + 1))
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise ExportError(f"{self.name} is damaged inside its zip, or packed in a way "
                              f"Spotify does not use ({exc}). Download the export again. "
                              "Nothing was imported.") from exc
        if len(data) > MAX_FILE_BYTES:
            raise ExportError(f"{self.name} is larger than {MAX_FILE_BYTES:,} bytes; Spotify's "
                              "files are far smaller, so it is not one of them.")
        return data


@dataclass
class Found:
    """The history files found in what was given, and what else was there."""

    files: list[tuple[SourceFile, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def classify(name: str) -> str | None:
    """The kind of history a file holds, from its name (None: look at its content)."""
    base = PurePosixPath(name).name
    for pattern, kind in _NAMES:
        if pattern.match(base):
            return kind
    return None


def find(paths: list[Path], display: dict[Path, str] | None = None) -> Found:
    """The history files in zips, folders and JSON files; refuses what is unsafe."""
    found = Found()
    total = 0
    for path in paths:
        label = (display or {}).get(path, path.name)
        for source in _sources(path, label):
            if not source.json:
                found.ignored.append(source.name)
                continue
            total += source.size
            if total > MAX_TOTAL_BYTES:
                raise ExportError(f"Together the files hold more than {MAX_TOTAL_BYTES:,} "
                                  "bytes; no Spotify export is that big. Nothing was imported.")
            kind = classify(source.name) or _sniff(source)
            if kind is None:
                found.ignored.append(source.name)
            else:
                found.files.append((source, kind))
    if not found.files:
        raise ExportError(
            "No listening history was found. Give the zip Spotify sent (it holds "
            "Streaming_History_Audio_… or StreamingHistory_music_… files), those JSON files "
            "themselves, or a JSON export of this app.")
    return found


def _sources(path: Path, label: str) -> Iterator[SourceFile]:
    mode = path.lstat().st_mode
    if stat.S_ISDIR(mode):
        yield from _folder(path, label)
    elif not stat.S_ISREG(mode):
        raise ExportError(f"{label} is not a file or a folder.")
    elif zipfile.is_zipfile(path):
        yield from _zip(path, label)
    elif _starts_like_zip(path):
        raise ExportError(f"{label} is a damaged or incomplete zip file. Download it again.")
    elif path.suffix.lower() == ".json" or _looks_like_json(path):
        yield SourceFile(label, path.stat().st_size, path)
    else:
        raise ExportError(f"{label} is neither a zip nor a JSON file. Give the zip Spotify "
                          "sent, or the JSON files inside it.")


def _starts_like_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def _looks_like_json(path: Path) -> bool:
    with path.open("rb") as handle:
        start = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    return start[:1] in (b"[", b"{")


def _folder(root: Path, label: str) -> Iterator[SourceFile]:
    count = 0
    for path in sorted(root.rglob("*")):
        # Links could lead anywhere on the server: only plain files inside the folder.
        if path.is_symlink() or not path.is_file():
            continue
        name = f"{label}/{path.relative_to(root).as_posix()}"
        if path.suffix.lower() != ".json":
            yield SourceFile(name, 0, path, json=False)
            continue
        count += 1
        if count > MAX_MEMBERS:
            raise ExportError(f"{label} holds more than {MAX_MEMBERS:,} JSON files.")
        yield SourceFile(name, path.stat().st_size, path)


def _zip(path: Path, label: str) -> Iterator[SourceFile]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ExportError(f"{label} is a damaged zip file ({exc}).") from exc
    if len(members) > MAX_MEMBERS:
        raise ExportError(f"{label} holds {len(members):,} files; a Spotify export holds a few "
                          "dozen. It was not opened.")
    names = [info.filename for info in members]
    if len(set(names)) != len(names):
        raise ExportError(f"{label} holds two files of the same name; it was not made by "
                          "Spotify. Nothing was imported.")
    for info in members:
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise ExportError(f"{label} contains a file whose path leaves its folder "
                              f"({name!r}); it was not opened.")
        if info.is_dir():
            continue
        if not name.lower().endswith(".json"):
            yield SourceFile(f"{label}/{name}", 0, path, name, json=False)
            continue
        if info.flag_bits & 0x1:
            raise ExportError(f"{label} is encrypted; give the zip as Spotify sent it.")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > MAX_FILE_BYTES or (info.file_size > 1_000_000 and ratio > MAX_RATIO):
            raise ExportError(f"{label} contains {name}, which would unpack to "
                              f"{info.file_size:,} bytes ({ratio:,.0f} times its packed size): "
                              "not a Spotify export. Nothing was imported.")
        yield SourceFile(f"{label}/{name}", info.file_size, path, name)


def _sniff(source: SourceFile) -> str | None:
    """The kind of a file named unlike Spotify's, from its first record."""
    head = source.read(4096).decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if not head.startswith("["):
        return None
    if '"mtm_source"' in head:
        return MTM
    if '"ts"' in head and '"ms_played"' in head:
        return VIDEO if '"spotify_episode_uri"' in head and '"master_metadata' not in head \
            else EXTENDED
    if '"endTime"' in head and '"msPlayed"' in head:
        return PODCAST if '"podcastName"' in head else ACCOUNT
    return None


# --- records -------------------------------------------------------------------------------


class Record(NamedTuple):
    """One music stream read from a file, in the column order the importer stages it."""

    source: str
    played_at: int
    ms_played: int
    key: int
    skipped: int | None
    context_uri: str | None
    track_id: str | None
    track: str
    artist: str
    album: str | None
    artist_id: str | None
    album_id: str | None
    # Set for records named by artist and track only (account data).
    name_key: str | None


@dataclass
class FileReport:
    """What one file held."""

    name: str
    kind: str
    records: int = 0
    music: int = 0
    not_music: int = 0
    malformed: int = 0
    first: int | None = None
    last: int | None = None

    @property
    def label(self) -> str:
        """The kind of file, in words."""
        return KIND_LABELS[self.kind]


@dataclass(frozen=True)
class Malformed:
    """A record that could not be read, where it is and why."""

    file: str
    index: int
    reason: str
    excerpt: str


class Problems:
    """Malformed records: all counted, the first few kept to show."""

    def __init__(self) -> None:
        self.count = 0
        self.shown: list[Malformed] = []

    def add(self, file: str, index: int, reason: str, record: object) -> None:
        """Count one; keep it if it is among the first few."""
        self.count += 1
        if len(self.shown) < MALFORMED_SHOWN:
            excerpt = json.dumps(record, ensure_ascii=False, default=str)
            self.shown.append(Malformed(file, index + 1, reason,
                                        excerpt if len(excerpt) <= 300 else excerpt[:297] + "…"))


class Bad(ValueError):
    """A record field that is wrong; the message says which and how."""


def parse_array(data: bytes, name: str) -> list:
    """The records of a JSON file: a list, or ExportError saying what is wrong with it."""
    if data.startswith(b"\xef\xbb\xbf"):
        # Some editors save UTF-8 with a byte-order mark; JSON readers must accept it.
        data = data[3:]
    if not data.strip():
        raise ExportError(f"{name} is empty: it was cut short or never written. Download or "
                          "unpack it again. Nothing was imported.")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "utf-8" in str(exc).lower():
            raise ExportError(f"{name} is not UTF-8 text, so it is not a file Spotify wrote. "
                              "Nothing was imported.") from None
        if str(exc).startswith("unexpected end of data"):
            raise ExportError(f"{name} ends in the middle of a record (line {exc.lineno:,}): "
                              "the file is truncated. Download or unpack it again. Nothing "
                              "was imported.") from None
        raise ExportError(f"{name} is not valid JSON (line {exc.lineno:,}, column "
                          f"{exc.colno:,}). Nothing was imported.") from None
    if not isinstance(value, list):
        raise ExportError(f"{name} does not hold a list of records, so it is not a "
                          "listening history file. Nothing was imported.")
    return value


def _text(record: dict, key: str, *, required: bool = False) -> str | None:
    value = record.get(key)
    if value is None:
        if required:
            raise Bad(f"“{key}” is missing")
        return None
    if not isinstance(value, str):
        raise Bad(f"“{key}” is not text")
    if len(value) > MAX_NAME:
        raise Bad(f"“{key}” is longer than {MAX_NAME:,} characters")
    return value


MAX_MS = 86_400_000


def _ms(record: dict, key: str) -> int:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Bad(f"“{key}” is {'missing' if value is None else 'not a whole number'}")
    if not 0 <= value <= MAX_MS:
        raise Bad(f"“{key}” is {value:,}, outside 0 to 24 hours")
    return value


def _check_time(ts: int, now: int) -> int:
    if ts < EARLIEST:
        raise Bad("it is dated before 2006, when Spotify started")
    if ts > now + FUTURE_SLACK:
        raise Bad("it is dated in the future")
    return ts


def _timestamp(value: object, now: int) -> int:
    if not isinstance(value, str):
        raise Bad("“ts” is missing" if value is None else "“ts” is not text")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Bad(f"“ts” is not a date and time ({value[:40]!r})") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _check_time(int(moment.timestamp()), now)


def _bool(record: dict, key: str) -> int | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise Bad(f"“{key}” is not true or false")
    return int(value)


def _spotify_id(uri: str | None, pattern: re.Pattern[str], key: str) -> str | None:
    if uri is None or uri == "":
        return None
    match = pattern.match(uri)
    if match is None:
        raise Bad(f"“{key}” is not a Spotify URI")
    return match.group(match.lastindex or 1)


_NOT_MUSIC = ("spotify_episode_uri", "episode_name", "audiobook_uri", "audiobook_chapter_uri",
              "audiobook_title")
_NAMED = ("master_metadata_track_name", "master_metadata_album_artist_name",
          "master_metadata_album_album_name", "spotify_track_uri", "reason_start", "reason_end")


def _extended(record: object, now: int, mtm: bool = False) -> Record | None:
    """A music record, None for podcasts, audiobooks and video; Bad when it cannot be read."""
    if type(record) is not dict:
        raise Bad("it is not a record (an object with fields)")
    get = record.get
    ts = get("ts")
    try:
        # The common case inline; _timestamp explains anything else.
        moment = datetime.fromisoformat(ts)
        played_at = int(moment.timestamp())
        if moment.tzinfo is None or not EARLIEST <= played_at <= now + FUTURE_SLACK:
            raise ValueError(ts)
    except (TypeError, ValueError):
        played_at = _timestamp(ts, now)
    ms = get("ms_played")
    if type(ms) is not int or not 0 <= ms <= MAX_MS:
        ms = _ms(record, "ms_played")
    if (get("spotify_episode_uri") or get("episode_name") or get("audiobook_uri")
            or get("audiobook_chapter_uri") or get("audiobook_title")):
        return None
    track, artist = get("master_metadata_track_name"), get("master_metadata_album_artist_name")
    album, uri = get("master_metadata_album_album_name"), get("spotify_track_uri")
    start, end = get("reason_start"), get("reason_end")
    for value in (track, artist, album, uri, start, end):
        # The common case costs one type check; the detailed one names what is wrong.
        if value is not None and (type(value) is not str or len(value) > MAX_NAME):
            for key in _NAMED:
                _text(record, key)
    if not track or not artist:
        raise Bad("it names no track or artist (Spotify leaves them out for some tracks "
                  "that are no longer available)")
    if uri:
        track_id = uri[14:]
        if len(uri) != 36 or not uri.startswith("spotify:track:") or not (
                track_id.isascii() and track_id.isalnum()):
            raise Bad("“spotify_track_uri” is not a Spotify track URI")
    else:
        uri = track_id = None
    skipped = get("skipped")
    if skipped is not None:
        skipped = _bool(record, "skipped")
    if mtm:
        return _mtm(record, played_at, ms, track, artist, album, track_id, skipped)
    offline = get("offline_timestamp")
    if offline is not None and type(offline) is not int:
        raise Bad("“offline_timestamp” is not a whole number")
    return Record("export", played_at, ms,
                  identity.extended_key(played_at, uri, artist, track, ms, start, end,
                                        identity.offline_seconds(offline)),
                  skipped, None, track_id, track, artist, album, None, None,
                  None if track_id else identity.match_key(artist, track))


def _mtm(record: dict, played_at: int, ms: int, track: str, artist: str, album: str | None,
         track_id: str | None, skipped: int | None) -> Record:
    """A record of this app's own JSON export: its source and key come back as they were."""
    source = record.get("mtm_source")
    if source not in _SOURCES:
        raise Bad("“mtm_source” is not one of api, export, account, demo")
    raw_key = record.get("mtm_key")
    if raw_key is None:
        # Exports made before keys were written: the key the play was stored under then.
        key = identity.default_key(source, played_at, track_id, artist, track)
    elif isinstance(raw_key, str) and re.fullmatch(r"-?[0-9]{1,19}", raw_key) \
            and -(2**63) <= int(raw_key) < 2**63:
        key = int(raw_key)
    else:
        raise Bad("“mtm_key” is not a record key")
    return Record(source, played_at, ms, key, skipped, _text(record, "mtm_context_uri"),
                  track_id, track, artist, album,
                  _spotify_id(_text(record, "mtm_artist_uri"), _ID_URI, "mtm_artist_uri"),
                  _spotify_id(_text(record, "mtm_album_uri"), _ID_URI, "mtm_album_uri"),
                  None if track_id else identity.match_key(artist, track))


def _end_time(value: object, now: int) -> int:
    if not isinstance(value, str):
        raise Bad("“endTime” is missing" if value is None else "“endTime” is not text")
    match = _END_TIME.match(value)
    if match is None:
        raise Bad(f"“endTime” is not “YYYY-MM-DD HH:MM” ({value[:40]!r})")
    try:
        moment = datetime(*(int(g) for g in match.groups()), tzinfo=UTC)
    except ValueError:
        raise Bad(f"“endTime” is not a real date and time ({value!r})") from None
    return _check_time(int(moment.timestamp()), now)


class _Account:
    """Account-data records of one file, each identical one counted (see mtm.identity)."""

    def __init__(self) -> None:
        self.seen: dict[tuple, int] = {}

    def __call__(self, record: object, now: int) -> Record:
        if type(record) is not dict:
            raise Bad("it is not a record (an object with fields)")
        played_at = _end_time(record.get("endTime"), now)
        artist = _text(record, "artistName", required=True)
        track = _text(record, "trackName", required=True)
        ms = _ms(record, "msPlayed")
        if not artist or not track:
            raise Bad("it names no track or artist")
        name_key = identity.match_key(artist, track)
        # Counted the way the key names them: "A" and "a" are one artist to the key.
        same = (played_at, name_key, ms)
        n = self.seen[same] = self.seen.get(same, -1) + 1
        return Record("account", played_at, ms,
                      identity.account_key(played_at, artist, track, ms, n), None, None, None,
                      track, artist, None, None, None, name_key)


def _video(record: object, now: int) -> None:
    """Video streams are counted and reported, never stored: this app keeps music."""
    if type(record) is not dict:
        raise Bad("it is not a record (an object with fields)")
    _timestamp(record.get("ts"), now)


def _podcast(record: object, now: int) -> None:
    """Podcast streams of account data: counted, not stored."""
    if type(record) is not dict:
        raise Bad("it is not a record (an object with fields)")
    _end_time(record.get("endTime"), now)


def read_file(source: SourceFile, kind: str, problems: Problems, now: int
              ) -> tuple[FileReport, list[Record]]:
    """The music records of one file, with what it held; ExportError if it is unreadable."""
    data = source.read()
    try:
        report, records, found = _read(_in_pieces(data), source.name, kind, now)
    except _NotInPieces:
        # Cut in the wrong place (an object inside a record): the whole file at once.
        report, records, found = _read(parse_array(data, source.name), source.name, kind, now)
    problems.count += found.count
    for problem in found.shown:
        if len(problems.shown) < MALFORMED_SHOWN:
            problems.shown.append(problem)
    return report, records


def _read(rows: Iterable[object], name: str, kind: str, now: int
          ) -> tuple[FileReport, list[Record], Problems]:
    parse = {EXTENDED: _extended, MTM: lambda r, n: _extended(r, n, True), ACCOUNT: _Account(),
             VIDEO: _video, PODCAST: _podcast}[kind]
    problems = Problems()
    records: list[Record] = []
    keep = records.append
    malformed = index = 0
    for index, record in enumerate(rows, start=1):
        try:
            parsed = parse(record, now)
        except Bad as exc:
            malformed += 1
            problems.add(name, index - 1, str(exc), record)
            continue
        if parsed is not None:
            keep(parsed)
    report = FileReport(name, kind, records=index, music=len(records),
                        not_music=index - len(records) - malformed, malformed=malformed)
    if records:
        times = [r.played_at for r in records]
        report.first, report.last = min(times), max(times)
    return report, records, problems


# Records are parsed a few thousand at a time: a 16,000-record file as Python objects is
# tens of megabytes, a piece of it one or two.
PIECE_RECORDS = 2000
_END_OF_RECORD = b"},\n"


class _NotInPieces(Exception):
    """The file cannot be read piece by piece; read it whole."""


def _in_pieces(data: bytes) -> Iterator[object]:
    """The elements of a JSON array, parsed a few thousand at a time.

    Spotify writes one record per line or more, each ending in "}," and a newline. A newline
    is never inside a JSON string, so that is where records end, unless a record holds an
    object of its own: then a piece does not parse, and the file is read whole instead.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    start = len(data) - len(data.lstrip())
    if data[start:start + 1] != b"[":
        raise _NotInPieces
    start += 1
    position, count = start, 0
    while True:
        cut = data.find(_END_OF_RECORD, position)
        if cut < 0:
            piece = b"[" + data[start:]
        elif count + 1 < PIECE_RECORDS:
            position, count = cut + len(_END_OF_RECORD), count + 1
            continue
        else:
            piece = b"[" + data[start:cut + 1] + b"]"
        try:
            values = orjson.loads(piece)
        except orjson.JSONDecodeError:
            raise _NotInPieces from None
        if not isinstance(values, list):
            raise _NotInPieces
        yield from values
        if cut < 0:
            return
        start = position = cut + len(_END_OF_RECORD)
        count = 0


def read_for_import(source: SourceFile, kind: str, now: int
                    ) -> tuple[FileReport, list[tuple], int, list[Malformed]]:
    """read_file for a helper process: records as plain tuples, problems as (count, shown)."""
    problems = Problems()
    collecting = gc.isenabled()
    # Millions of short-lived objects: the cycle collector would only slow this down.
    gc.disable()
    try:
        report, records = read_file(source, kind, problems, now)
        return report, [tuple(r) for r in records], problems.count, problems.shown
    finally:
        if collecting:
            gc.enable()
