"""The whole instance as one file: `mtm backup` and `mtm restore`, and the lock that guards them.

A backup is a tar archive (gzipped when its name ends in .gz or .tgz) of what the data
directory needs to come back: the database as a consistent snapshot (SQLite's online backup
API, so a server may keep writing), the generated session key, the demo emulator's state,
and the per-user backup files, with a manifest of their sizes and sha256.

Every process that opens the instance for writing (each server worker, `mtm sync`, `mtm
import`, `mtm demo-data`) holds a shared lock on `instance.lock` in the data directory; a
restore takes it exclusively, so it refuses while any of them runs. The kernel drops the lock
when a process dies, even by SIGKILL, so a crash never leaves it held (a lease row would stay
until it expired, and the scheduler's lease exists only while syncs are on).
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import sqlite3
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from mtm import db as database

LOCK_NAME = "instance.lock"
DATABASE = "mtm.sqlite3"
EMULATOR = "emulator.sqlite3"
SECRET_KEY = "secret_key"
MANIFEST = "mtm-backup.json"
FORMAT = "music-time-machine instance backup"
# What a restore leaves of the database it replaced, beside the new one.
PREVIOUS = "mtm.sqlite3.before-restore"
STAGING_PREFIX = ".restore-"
# Tables every Music Time Machine database has had since the first migration.
REQUIRED_TABLES = frozenset({"users", "plays", "tracks", "artists", "preferences"})
_USER_BACKUP = re.compile(r"^backups/[0-9]{1,18}/[A-Za-z0-9][A-Za-z0-9._-]*\.sqlite3$")
_SQLITE_HEADER = b"SQLite format 3\x00"
_CHUNK = 1 << 20


class InstanceError(Exception):
    """A backup or restore that cannot be done; the message is a sentence for the terminal."""


class InstanceBusy(InstanceError):
    """A server or another command is using the data directory."""


def _lock_file(data_dir: Path) -> IO[bytes]:
    return (Path(data_dir) / LOCK_NAME).open("a+b")


def hold(data_dir: Path) -> IO[bytes]:
    """Hold the instance's shared lock until the returned file is closed (or the process ends).

    Waits while a restore holds it exclusively, so a server started meanwhile opens the
    restored database, not the one being replaced.
    """
    handle = _lock_file(data_dir)
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


@contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    """Hold the instance lock alone, or raise InstanceBusy at once."""
    with _lock_file(data_dir) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstanceBusy(
                f"A server or another mtm command is using {data_dir}: stop it, then restore "
                "again.") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- backup ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """What a backup holds, or what a restore brought back."""

    path: Path
    schema: int
    users: int
    plays: int
    files: tuple[str, ...]
    size_bytes: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _snapshot(source: Path, target: Path) -> None:
    """Copy a live SQLite database consistently into a standalone file (no -wal needed)."""
    try:
        src = sqlite3.connect(source, timeout=30)
        try:
            out = sqlite3.connect(target)
            # A damaged page can put any bytes into SQLite's reports.
            out.text_factory = lambda raw: raw.decode(errors="replace")
            try:
                # One step (pages=-1) is one read transaction: writers carry on in WAL mode,
                # and the copy is the database as of one moment.
                src.backup(out)
                out.execute("PRAGMA journal_mode = DELETE")
                result = out.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                out.close()
        finally:
            src.close()
    except (sqlite3.DatabaseError, UnicodeError) as exc:
        result = str(exc)
    if result != "ok":
        raise InstanceError(f"The database {source} is damaged ({result[:200]}); nothing was "
                            "written.")


def _counts(path: Path) -> tuple[int, int, int]:
    """Schema version, users and plays of a database file."""
    conn = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
    try:
        schema = conn.execute("PRAGMA user_version").fetchone()[0]
        users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        plays = conn.execute("SELECT count(*) FROM plays").fetchone()[0]
        return schema, users, plays
    finally:
        conn.close()


def _user_backups(data_dir: Path) -> list[tuple[str, Path]]:
    """The finished per-user backup files (a `.partial` one is still being written)."""
    root = data_dir / "backups"
    found = []
    if root.is_dir():
        for path in sorted(root.glob("*/*")):
            name = path.relative_to(data_dir).as_posix()
            if path.is_file() and not path.is_symlink() and _USER_BACKUP.match(name):
                found.append((name, path))
    return found


def archive_path(target: Path, now: float) -> Path:
    """The archive a backup writes: `target`, or a dated file inside it if it is a folder."""
    if target.is_dir():
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d-%H%M%S")
        return target / f"mtm-backup-{stamp}.tar.gz"
    return target


def _gather(data_dir: Path, work: Path, now: float) -> tuple[list[tuple[str, Path]], dict]:
    """Snapshot what the instance needs into `work`; the files and their manifest."""
    if not (data_dir / DATABASE).is_file():
        raise InstanceError(f"There is no database in {data_dir} to back up.")
    members: list[tuple[str, Path]] = []
    _snapshot(data_dir / DATABASE, work / DATABASE)
    members.append((DATABASE, work / DATABASE))
    if (data_dir / EMULATOR).is_file():
        _snapshot(data_dir / EMULATOR, work / EMULATOR)
        members.append((EMULATOR, work / EMULATOR))
    if (data_dir / SECRET_KEY).is_file():
        members.append((SECRET_KEY, data_dir / SECRET_KEY))
    members += _user_backups(data_dir)
    schema, users, plays = _counts(work / DATABASE)
    manifest = {"format": FORMAT, "version": 1, "created_at": int(now), "schema": schema,
                "users": users, "plays": plays,
                "files": {name: {"size": file.stat().st_size, "sha256": _sha256(file)}
                          for name, file in members}}
    return members, manifest


def _write(raw: IO[bytes], compress: bool, members: list[tuple[str, Path]], manifest: dict
           ) -> int:
    """Write the archive to `raw`, gzipped or not; the bytes written."""
    counted = _Counter(raw)
    # gzip's default level: tarfile's own gz mode uses 9, three times slower (114 MB: 18 s
    # instead of 6) for 1% less.
    stream = gzip.GzipFile(fileobj=counted, mode="wb", compresslevel=6,
                           mtime=manifest["created_at"]) if compress else counted
    with tarfile.open(fileobj=stream, mode="w|") as archive:
        body = json.dumps(manifest, indent=2).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime, info.mode = len(body), manifest["created_at"], 0o600
        archive.addfile(info, io.BytesIO(body))
        for name, file in members:
            info = archive.gettarinfo(str(file), arcname=name)
            info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
            with file.open("rb") as handle:
                archive.addfile(info, handle)
    if compress:
        stream.close()
    raw.flush()
    return counted.written


class _Counter:
    """A write-only stream that counts what passes through it (stdout cannot say its size)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.written = raw, 0

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        self.raw.flush()


def _summary(path: Path, members: list[tuple[str, Path]], manifest: dict, size: int
             ) -> Summary:
    return Summary(path, manifest["schema"], manifest["users"], manifest["plays"],
                   tuple(name for name, _ in members), size)


def backup(data_dir: Path, target: Path, *, clock: Callable[[], float] = time.time) -> Summary:
    """Write a consistent archive of the instance to `target` (atomically: all or nothing)."""
    data_dir = Path(data_dir)
    now = clock()
    path = archive_path(Path(target).expanduser().absolute(), now)
    if not path.parent.is_dir():
        raise InstanceError(f"The folder {path.parent} does not exist.")
    if path.resolve().is_relative_to(data_dir.resolve()):
        raise InstanceError("Write the backup outside the data directory, or the next backup "
                            "would hold this one.")
    work = Path(os.path.join(path.parent, f".{path.name}.{secrets.token_hex(4)}.partial"))
    work.mkdir(mode=0o700)
    try:
        members, manifest = _gather(data_dir, work, now)
        tar_path = work / "archive"
        # Created private: the archive holds Spotify tokens and the session key.
        fd = os.open(tar_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw:
            size = _write(raw, path.name.endswith((".gz", ".tgz")), members, manifest)
            os.fsync(raw.fileno())
        os.replace(tar_path, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _summary(path, members, manifest, size)


def backup_to(data_dir: Path, stream: IO[bytes], *, clock: Callable[[], float] = time.time
              ) -> Summary:
    """Write a gzipped archive of the instance to a stream (`mtm backup -`: to stdout)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mtm-backup-") as work:
        members, manifest = _gather(Path(data_dir), Path(work), clock())
        size = _write(stream, True, members, manifest)
    return _summary(Path("-"), members, manifest, size)


# --- restore ---------------------------------------------------------------------------


def _check_database(path: Path, what: str) -> None:
    """Refuse a file that is not an intact Music Time Machine database this code can run."""
    with path.open("rb") as handle:
        if handle.read(16) != _SQLITE_HEADER:
            raise InstanceError(f"{what} is not a SQLite database.")
    try:
        conn = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
        conn.text_factory = lambda raw: raw.decode(errors="replace")
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table'")}
            schema = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
    except (sqlite3.DatabaseError, UnicodeError) as exc:
        raise InstanceError(f"{what} cannot be read ({exc}).") from None
    if result != "ok":
        raise InstanceError(f"{what} is damaged (integrity check: {result[:200]}).")
    if schema < 1 or not REQUIRED_TABLES.issubset(tables):
        raise InstanceError(f"{what} is not a Music Time Machine database.")
    newest = database.migrations()[-1][0]
    if schema > newest:
        raise InstanceError(f"{what} was made by a newer version of Music Time Machine "
                            f"(schema {schema}; this one knows up to {newest}): upgrade first.")


def _copy_checked(source: IO[bytes], target: Path, size: int, sha256: str, name: str) -> None:
    digest, written = hashlib.sha256(), 0
    with target.open("xb") as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            written += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if written != size or digest.hexdigest() != sha256:
        raise InstanceError(f"The backup's {name} is damaged (its checksum does not match).")


def _unpack(source: Path, staging: Path) -> dict[str, Path]:
    """Check and unpack an archive (or a bare database file) into `staging`."""
    with source.open("rb") as handle:
        if handle.read(16) == _SQLITE_HEADER:
            # A database copied by hand (sqlite3 .backup, an older snapshot) restores alone;
            # read through SQLite so a -wal beside it counts.
            _snapshot(source, staging / DATABASE)
            return {DATABASE: staging / DATABASE}
    try:
        with tarfile.open(source, mode="r:*") as archive:
            found, expected = _unpack_archive(archive, source, staging)
    except (tarfile.ReadError, tarfile.CompressionError, OSError) as exc:
        raise InstanceError(f"{source} is neither a backup made by mtm backup nor a database "
                            f"({exc}).") from None
    missing = set(expected) - set(found)
    if missing or DATABASE not in found:
        raise InstanceError(f"{source} is incomplete (missing "
                            f"{', '.join(sorted(missing)) or DATABASE}).")
    return found


def _unpack_archive(archive: tarfile.TarFile, source: Path, staging: Path
                    ) -> tuple[dict[str, Path], dict]:
    """The files of an archive unpacked into `staging`, each checked against the manifest."""
    try:
        first = archive.next()
        if first is None or first.name != MANIFEST or not first.isfile():
            raise InstanceError(f"{source} is not a backup made by mtm backup.")
        manifest = json.loads(archive.extractfile(first).read())
        if manifest.get("format") != FORMAT or manifest.get("version") != 1:
            raise InstanceError(f"{source} is not a backup this version can read.")
        expected: dict = manifest["files"]
        found: dict[str, Path] = {}
        for member in archive:
            if member is first:
                continue
            name = member.name
            allowed = name in (DATABASE, EMULATOR, SECRET_KEY) or _USER_BACKUP.match(name)
            if not member.isfile() or not allowed or name not in expected or name in found:
                raise InstanceError(f"{source} holds an unexpected entry ({name!r}).")
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy_checked(archive.extractfile(member), target, expected[name]["size"],
                          expected[name]["sha256"], name)
            found[name] = target
    except (tarfile.TarError, EOFError, OSError, ValueError, KeyError, TypeError,
            AttributeError) as exc:
        raise InstanceError(f"{source} is truncated or damaged ({exc}).") from None
    return found, expected


def _settle(path: Path, keep_as: Path | None = None) -> None:
    """Fold a database's write-ahead log into it and remove the -wal and -shm files.

    A -wal left by a crashed server belongs to the old file: beside the restored one, SQLite
    would replay it into it on the next open and corrupt it. A database too damaged to
    checkpoint keeps its log beside `keep_as`, the name the old file is kept under.
    """
    if path.exists():
        try:
            conn = sqlite3.connect(path, timeout=30)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.execute("PRAGMA journal_mode = DELETE")
            finally:
                conn.close()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise InstanceBusy(f"Another program has {path} open: close it, then restore "
                                   "again.") from None
        except sqlite3.DatabaseError:
            pass
    for suffix in ("-wal", "-shm", "-journal"):
        log = Path(f"{path}{suffix}")
        if keep_as is not None and suffix == "-wal" and log.exists():
            os.replace(log, f"{keep_as}{suffix}")
        log.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_staging(data_dir: Path) -> list[Path]:
    """Remove what a restore cut short by a crash left unpacked."""
    removed = []
    for path in Path(data_dir).glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def restore(data_dir: Path, source: Path | IO[bytes]) -> Summary:
    """Replace the instance with a backup, once it is checked; refused while it is in use.

    Each file is swapped in with one rename, the database last of the files that belong
    together, so a crash at any point leaves a whole database (the old one or the new one)
    that the server opens; running the restore again finishes it. The database it replaced
    is kept as `mtm.sqlite3.before-restore`.
    """
    data_dir = Path(data_dir)
    stream = None if isinstance(source, str | Path) else source
    if stream is None:
        source = Path(source).expanduser()
        if not source.is_file():
            raise InstanceError(f"There is no file {source}.")
    with exclusive(data_dir):
        clean_staging(data_dir)
        staging = data_dir / f"{STAGING_PREFIX}{secrets.token_hex(4)}"
        staging.mkdir(mode=0o700)
        try:
            if stream is not None:
                # `mtm restore -`: the archive arrives on stdin; kept while it is checked.
                source = staging / "incoming"
                with source.open("xb") as out:
                    shutil.copyfileobj(stream, out, _CHUNK)
                (staging / "unpacked").mkdir()
                staging = staging / "unpacked"
            found = _unpack(source, staging)
            _check_database(found[DATABASE], "The backup's database")
            if EMULATOR in found:
                conn = sqlite3.connect(found[EMULATOR].as_uri() + "?mode=ro", uri=True)
                try:
                    ok = conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                except (sqlite3.DatabaseError, UnicodeError):
                    ok = False
                finally:
                    conn.close()
                if not ok:
                    raise InstanceError("The backup's emulator state is damaged.")
            for path in found.values():
                path.chmod(0o600)
            # Files that only make sense with the new database go first; then the database.
            for name in sorted(found, key=lambda n: n == DATABASE):
                target = data_dir / name
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                if name == DATABASE and target.exists():
                    previous = data_dir / PREVIOUS
                    for suffix in ("", "-wal", "-shm", "-journal"):
                        Path(f"{previous}{suffix}").unlink(missing_ok=True)
                    _settle(target, keep_as=previous)
                    # A second name for the old file: the database path is never empty.
                    os.link(target, previous)
                elif name == EMULATOR:
                    _settle(target)
                os.replace(found[name], target)
                _fsync_dir(target.parent)
            size = source.stat().st_size
        finally:
            shutil.rmtree(staging if stream is None else staging.parent, ignore_errors=True)
        schema, users, plays = _counts(data_dir / DATABASE)
    return Summary(Path("-") if stream is not None else source, schema, users, plays,
                   tuple(sorted(found)), size)
