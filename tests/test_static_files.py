"""Static files from memory: compressed once, ETags and 304s, long caching for vendor files."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from mtm.static_files import IMMUTABLE, REVALIDATE, CachedStaticFiles

CSS = "body { color: black; }\n" * 200


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    (root / "css").mkdir(parents=True)
    (root / "vendor").mkdir()
    (root / "css" / "app.css").write_text(CSS)
    (root / "vendor" / "htmx-4.0.1.min.js").write_text("var htmx = 1;\n" * 200)
    (root / "tiny.txt").write_text("hi")
    (tmp_path / "secret").write_text("not served")
    return root


def client_for(root: Path) -> httpx.AsyncClient:
    app = Starlette(routes=[Mount("/static", app=CachedStaticFiles(root), name="static")])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_a_file_is_read_and_compressed_once(static_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    reads = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or real(self))
    async with client_for(static_dir) as client:
        for _ in range(3):
            response = await client.get("/static/css/app.css",
                                        headers={"Accept-Encoding": "gzip"})
            assert response.status_code == 200 and response.text == CSS
            assert response.headers["content-encoding"] == "gzip"
            assert response.headers["content-type"] == "text/css; charset=utf-8"
            assert response.headers["cache-control"] == REVALIDATE
        plain = await client.get("/static/css/app.css", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == CSS.encode()
    assert len(reads) == 1


async def test_etag_answers_304_and_a_changed_file_is_served_anew(static_dir: Path) -> None:
    async with client_for(static_dir) as client:
        first = await client.get("/static/css/app.css")
        etag = first.headers["etag"]
        again = await client.get("/static/css/app.css", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        weak = await client.get("/static/css/app.css", headers={"If-None-Match": f"W/{etag}"})
        assert weak.status_code == 304
        path = static_dir / "css" / "app.css"
        path.write_text("p { margin: 0; }\n")
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        changed = await client.get("/static/css/app.css", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.text == "p { margin: 0; }\n"
        assert changed.headers["etag"] != etag


async def test_versioned_vendor_files_are_kept_for_a_year(static_dir: Path) -> None:
    async with client_for(static_dir) as client:
        vendor = await client.get("/static/vendor/htmx-4.0.1.min.js")
        assert vendor.headers["cache-control"] == IMMUTABLE
        assert vendor.headers["content-type"].startswith("text/javascript")
        tiny = await client.get("/static/tiny.txt", headers={"Accept-Encoding": "gzip"})
        assert tiny.text == "hi" and "content-encoding" not in tiny.headers


async def test_head_missing_escaping_and_unsafe_methods(static_dir: Path) -> None:
    async with client_for(static_dir) as client:
        head = await client.head("/static/css/app.css", headers={"Accept-Encoding": "identity"})
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(CSS))
        for path in ("/static/nope.css", "/static/../secret", "/static/%2e%2e/secret",
                     "/static/css", "/static/", "/static/css/..%5c..%5csecret"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert "not served" not in response.text
        posted = await client.post("/static/css/app.css")
        assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
