"""Uploaded export files: streamed to disk with a size limit, kept per user until imported.

Starlette's form parser would spool every upload to the system's temporary folder with no
limit, after reading the whole body to find the CSRF token. Here the body is parsed as it
arrives: the token (a field before the files, or the X-CSRFToken header) is checked before
a single file byte is written, and the upload stops at the limit.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette_wtf.util import validate_csrf
from wtforms import ValidationError

MAX_UPLOAD_BYTES = 1_000_000_000
MAX_FILES = 100
MAX_FIELD_BYTES = 4096
# Uploads not imported within a day are removed (a preview the user walked away from).
KEEP_SECONDS = 86_400
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def size_label(size: int) -> str:
    """A byte count for people: 10 kB, 250 MB, 1 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:,.3g} {unit}"
    return f"{size:,} bytes"


class UploadError(Exception):
    """An upload that was refused; `status` and `message` are what the user is told."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Upload:
    """Files a user uploaded for one import, in their own folder."""

    token: str
    folder: Path

    @property
    def paths(self) -> list[Path]:
        """The stored files, in the order they were uploaded."""
        return sorted((p for p in self.folder.iterdir() if p.is_file()), key=lambda p: p.name)

    @property
    def display(self) -> dict[Path, str]:
        """Each stored file's name as the user gave it (without the ordering prefix)."""
        return {p: p.name.split("-", 1)[1] if "-" in p.name else p.name for p in self.paths}

    @property
    def names(self) -> list[str]:
        """The names of the files as the user gave them."""
        return list(self.display.values())

    def remove(self) -> None:
        """Delete the files (after an import, or when the user discards them)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def user_folder(root: Path, user_id: int) -> Path:
    """Where one user's uploads live."""
    return Path(root) / str(int(user_id))


def find(root: Path, user_id: int, token: str) -> Upload | None:
    """The user's upload with this token, if it is still there."""
    if not isinstance(token, str) or not _TOKEN.match(token):
        return None
    folder = user_folder(root, user_id) / token
    return Upload(token, folder) if folder.is_dir() else None


def safe_name(name: str) -> str:
    """A file name that is only a name: no folders, no odd characters, not too long."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = _UNSAFE.sub("_", base).strip(". ") or "upload"
    return base[-120:]


def prune(root: Path, user_id: int, keep: set[str] = frozenset(), now: float | None = None
          ) -> None:
    """Remove this user's uploads older than KEEP_SECONDS (except those still in use)."""
    folder = user_folder(root, user_id)
    if not folder.is_dir():
        return
    cutoff = (time.time() if now is None else now) - KEEP_SECONDS
    for entry in folder.iterdir():
        with contextlib.suppress(OSError):
            if entry.name not in keep and entry.lstat().st_mtime < cutoff:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink()


def check_token(request: Request, token: str | None) -> None:
    """What @csrf_protect checks, for a body this module reads itself; UploadError 403."""
    config = request.state.csrf_config
    try:
        validate_csrf(request, token, secret_key=config["csrf_secret"],
                      field_name=config["csrf_field_name"], time_limit=config["csrf_time_limit"])
    except ValidationError as exc:
        raise UploadError(403, "This form has expired or did not come from this app "
                          f"({str(exc.args[0]).rstrip('.')}). Reload the page and try "
                          "again.") from None
    if request.url.scheme == "https" and config["csrf_ssl_strict"]:
        referrer = urlsplit(request.headers.get("referer", ""))
        if (referrer.scheme, referrer.netloc) != (request.url.scheme, request.url.netloc):
            raise UploadError(403, "This form did not come from this app (the referrer does "
                              "not match). Reload the page and try again.")


@dataclass
class _Part:
    headers: list[tuple[bytes, bytes]]
    name: str = ""
    filename: str | None = None
    data: bytearray | None = None
    handle: object | None = None


class _Receiver:
    """python-multipart callbacks writing file parts into one folder."""

    def __init__(self, request: Request, folder: Path, limit: int, field: str) -> None:
        self.request, self.folder, self.limit, self.field = request, folder, limit, field
        self.part = _Part([])
        self.fields: dict[str, str] = {}
        self.files: list[Path] = []
        self.written = 0
        self.token_checked = False
        self._header_name = b""
        self._header_value = b""

    def check_token(self, token: str | None) -> None:
        check_token(self.request, token)
        self.token_checked = True

    def on_part_begin(self) -> None:
        self.part = _Part([])

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers.append((self._header_name.lower(), self._header_value))
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        disposition = dict(self.part.headers).get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        self.part.name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in options:
            self.part.data = bytearray()
            return
        if not self.token_checked:
            # The page puts the token before the files: no file byte is kept without it.
            self.check_token(self.fields.get(self.field))
        filename = options[b"filename"].decode("utf-8", "replace")
        if not filename or self.part.name != "files":
            # The browser sends an empty part when no file was chosen.
            self.part.data = bytearray()
            return
        if len(self.files) >= MAX_FILES:
            raise UploadError(413, f"Upload at most {MAX_FILES} files at once; for a whole "
                              "export, upload the zip Spotify sent.")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{len(self.files):03d}-{safe_name(filename)}"
        self.part.filename = filename
        self.part.handle = path.open("xb")
        self.files.append(path)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        size = end - start
        self.written += size
        if self.written > self.limit:
            raise UploadError(413, f"The upload is larger than {size_label(self.limit)}, the "
                              "most this server accepts. A Spotify export is far smaller; "
                              "nothing was kept.")
        if self.part.handle is not None:
            self.part.handle.write(data[start:end])
        elif self.part.data is not None:
            if len(self.part.data) + size > MAX_FIELD_BYTES:
                raise UploadError(413, "A form field is too long.")
            self.part.data += data[start:end]

    def on_part_end(self) -> None:
        if self.part.handle is not None:
            self.part.handle.close()
            self.part.handle = None
        elif self.part.data is not None and self.part.name:
            self.fields[self.part.name] = self.part.data.decode("utf-8", "replace")

    def close(self) -> None:
        if self.part.handle is not None:
            self.part.handle.close()


async def receive(request: Request, root: Path, user_id: int, *,
                  limit: int = MAX_UPLOAD_BYTES) -> tuple[Upload, dict[str, str]]:
    """Stream a multipart upload into a new folder of the user; the folder and the fields.

    Refuses (UploadError) a missing or bad CSRF token, a body over `limit`, a request that is
    not multipart, and an upload without files; nothing is kept when it refuses.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    length = request.headers.get("content-length", "")
    config = request.state.csrf_config
    header_token = next((request.headers[h] for h in config["csrf_headers"]
                         if request.headers.get(h)), None)
    if length.isdigit() and int(length) > limit + 64_000:
        # Refused before reading a byte, token or not: nothing is stored either way.
        raise UploadError(413, f"The upload is larger than {size_label(limit)}, the most this "
                          "server accepts. A Spotify export is far smaller.")
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        small = length.isdigit() and int(length) <= MAX_FIELD_BYTES * 4
        if header_token is None and small and content_type == (
                b"application/x-www-form-urlencoded"):
            header_token = (await request.form()).get(config["csrf_field_name"])
        check_token(request, header_token)
        raise UploadError(422, "Choose the file to import (the form must be sent as a file "
                          "upload).")
    token = secrets.token_urlsafe(18)
    folder = user_folder(root, user_id) / token
    receiver = _Receiver(request, folder, limit, config["csrf_field_name"])
    if header_token:
        receiver.check_token(header_token)
    parser = MultipartParser(params[b"boundary"], {
        "on_part_begin": receiver.on_part_begin, "on_part_data": receiver.on_part_data,
        "on_part_end": receiver.on_part_end, "on_header_field": receiver.on_header_field,
        "on_header_value": receiver.on_header_value, "on_header_end": receiver.on_header_end,
        "on_headers_finished": receiver.on_headers_finished})
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        if parser.state != MultipartState.END:
            # The body ended before the closing boundary: the upload was cut off.
            raise FormParserError("the body ended early")
        if not receiver.token_checked:
            receiver.check_token(receiver.fields.get(config["csrf_field_name"]))
        if not receiver.files:
            raise UploadError(422, "Choose the file to import: the zip Spotify sent, or the "
                              "JSON files inside it.")
    except FormParserError:
        receiver.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise UploadError(400, "The upload was cut short or is not a valid form. Please try "
                          "again.") from None
    except (UploadError, ClientDisconnect, HTTPException):
        # HTTPException: the app's body limit stopped the stream (mtm.guards).
        receiver.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    except OSError as exc:
        receiver.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise UploadError(507, f"The server could not store the upload ({exc.strerror}); "
                          "perhaps its disk is full. Nothing was kept.") from None
    return Upload(token, folder), receiver.fields


def folders(root: Path, user_id: int) -> Iterator[Path]:
    """The user's upload folders."""
    folder = user_folder(root, user_id)
    if folder.is_dir():
        yield from (p for p in folder.iterdir() if p.is_dir())
