"""Static files served from memory, compressed once, with ETags and long caching for vendor files.

Starlette's StaticFiles opens and reads each file in the thread pool on every request, and the
gzip middleware compresses htmx and the stylesheet again each time: under load that queued
static files behind the pages. The files are small and few, so each is read and compressed
once and kept until it changes on disk (one stat per request notices).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

# Files whose name carries their version (vendor/htmx-4.0.1.min.js): a new version is a new
# URL, so browsers may keep them for a year without asking again.
VERSIONED = re.compile(r"^vendor/.+-\d+(\.\d+)+[^/]*$")
IMMUTABLE = "public, max-age=31536000, immutable"
# The app's own files keep their names across releases: the browser asks each time and
# gets a 304 while they are unchanged.
REVALIDATE = "no-cache"
COMPRESSIBLE = ("text/", "application/javascript", "image/svg+xml", "application/json")
MIN_COMPRESSED = 1024


@dataclass(frozen=True)
class _File:
    """One file as served: its bytes, gzipped bytes (None when not worth it), and headers."""

    path: Path
    stamp: tuple[int, int]
    body: bytes
    gzipped: bytes | None
    etag: str
    media_type: str
    cache_control: str


class CachedStaticFiles:
    """An ASGI app serving the files under `directory` (GET and HEAD only)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).resolve()
        self._files: dict[str, _File] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request for a file."""
        response = self.respond(scope)
        await response(scope, receive, send)

    def respond(self, scope: Scope) -> Response:
        """The response for a request of this mount."""
        if scope["method"] not in ("GET", "HEAD"):
            return PlainTextResponse("Method Not Allowed", status_code=405,
                                     headers={"Allow": "GET, HEAD"})
        name = scope["path"][len(scope.get("root_path", "")):].lstrip("/") \
            if scope["path"].startswith(scope.get("root_path", "")) else ""
        found = self._load(name)
        if found is None:
            return PlainTextResponse("Not Found", status_code=404)
        request_headers = Headers(scope=scope)
        headers = {"ETag": found.etag, "Cache-Control": found.cache_control,
                   "Vary": "Accept-Encoding"}
        if found.etag in _etags(request_headers.get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        body = found.body
        if found.gzipped is not None and "gzip" in request_headers.get("accept-encoding", ""):
            body = found.gzipped
            headers["Content-Encoding"] = "gzip"
        if scope["method"] == "HEAD":
            headers["Content-Length"] = str(len(body))
            body = b""
        return Response(body, media_type=found.media_type, headers=headers)

    def _load(self, name: str) -> _File | None:
        """The file called `name` under the directory, read again when it changed."""
        found = self._files.get(name)
        if found is not None:
            path = found.path
        else:
            if not name or "\\" in name or "\0" in name:
                return None
            path = (self.directory / name).resolve()
            if not path.is_relative_to(self.directory):
                return None
        try:
            info = path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        if found is not None and found.stamp == stamp:
            return found
        try:
            body = path.read_bytes()
        except OSError:
            return None
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if media_type.startswith("text/"):
            media_type += "; charset=utf-8"
        gzipped = None
        if len(body) >= MIN_COMPRESSED and media_type.startswith(COMPRESSIBLE):
            gzipped = gzip.compress(body, compresslevel=9, mtime=0)
        found = _File(path, stamp, body, gzipped, f'"{hashlib.sha256(body).hexdigest()[:32]}"',
                      media_type, IMMUTABLE if VERSIONED.match(name) else REVALIDATE)
        self._files[name] = found
        return found


def _etags(raw: str) -> set[str]:
    """The tags an If-None-Match header lists (weak ones compare equal, as RFC 9110 says)."""
    return {tag.strip().removeprefix("W/") for tag in raw.split(",") if tag.strip()}


def static_app(directory: Path) -> CachedStaticFiles:
    """The app mounted at /static."""
    if not os.path.isdir(directory):
        raise RuntimeError(f"Directory '{directory}' does not exist")
    return CachedStaticFiles(directory)
