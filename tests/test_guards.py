"""Request guards: JSON bodies refused cleanly, a body limit on every route, a proper 500 page."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.routing import Route

from mtm.config import Settings, load_settings
from mtm.guards import MAX_BODY_BYTES
from mtm.security import SECURITY_HEADERS
from tests.conftest import BASE_URL, csrf_from, sign_in
from tests.route_table import app_routes, unsafe

HX = {"HX-Request": "true"}
NOT_OBJECTS = [b"[1]", b'"x"', b"1", b"null", b"{", b"\xff\xfe", b""]
JSON_TYPES = ["application/json", "application/json; charset=utf-8", "Application/JSON",
              "application/merge-patch+json"]


def filled(route) -> str:
    return route.url({name: "1" for name in route.params})


async def test_json_bodies_get_403_without_a_token_on_every_unsafe_route(app) -> None:
    routes = unsafe(app_routes(app.routes))
    assert len(routes) >= 20 and any(r.name == "logout" for _, r in routes)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=BASE_URL) as anonymous:
        for method, route in routes:
            for body in NOT_OBJECTS:
                for content_type in JSON_TYPES[:1] if body != b"[1]" else JSON_TYPES:
                    response = await anonymous.request(
                        method, filled(route), content=body,
                        headers={"content-type": content_type})
                    assert response.status_code == 403, (method, route.path, body,
                                                          response.status_code)
                    assert "reload the page" in response.text.lower()


async def test_json_bodies_with_a_valid_token_get_415_and_change_nothing(
        client: httpx.AsyncClient, app) -> None:
    await sign_in(client)
    token = csrf_from((await client.get("/settings")).text)
    for method, route in unsafe(app_routes(app.routes)):
        for body in (b"[1]", b"{", b'{"csrf_token": "x"}'):
            for headers in ({}, HX):
                response = await client.request(method, filled(route), content=body, headers={
                    "content-type": "application/json", "X-CSRFToken": token, **headers})
                assert response.status_code == 415, (method, route.path, response.status_code)
                assert "not JSON" in response.text
    # The refused sign-out changed nothing: still signed in.
    assert (await client.get("/settings")).status_code == 200


# --- the body limit ------------------------------------------------------------------------


def scope_for(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "headers": [(b"host", b"127.0.0.1:8000"), *headers]}


async def call(app, method: str, path: str, headers: list[tuple[bytes, bytes]], size: int,
               chunk: int = 65_536) -> tuple[int, int, bytes, float]:
    """Send a body of `size` bytes straight to the ASGI app; (status, bytes read, body, s)."""
    read = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        part = min(chunk, size - read)
        read += part
        return {"type": "http.request", "body": b"a" * part, "more_body": read < size}

    async def send(message: dict) -> None:
        sent.append(message)

    started = time.perf_counter()
    await app(scope_for(method, path, headers), receive, send)
    elapsed = time.perf_counter() - started
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], read, body, elapsed


FORM = (b"content-type", b"application/x-www-form-urlencoded")
BIG = 200_000_000


@pytest.mark.parametrize("method, path", [("POST", "/logout"), ("POST", "/hidden"),
                                          ("POST", "/settings/preferences"), ("GET", "/"),
                                          ("POST", "/no/such/route")])
async def test_a_big_body_with_its_length_is_refused_before_a_byte_is_read(
        app, method: str, path: str) -> None:
    status, read, body, elapsed = await call(
        app, method, path, [FORM, (b"content-length", str(BIG).encode())], BIG)
    assert status == 413 and read == 0 and elapsed < 2
    assert b"larger than 1 MB" in body


async def test_a_big_chunked_body_is_stopped_at_the_limit(client: httpx.AsyncClient,
                                                         app) -> None:
    chunked = [FORM, (b"transfer-encoding", b"chunked")]
    routes = ["/logout", "/hidden", "/settings/preferences", "/playlists", "/settings/clear"]
    # Anonymous: the sign-out reads the form for its token; the others send to sign-in first.
    status, read, body, elapsed = await call(app, "POST", "/logout", chunked, BIG)
    assert status == 413 and read <= MAX_BODY_BYTES + 65_536 and elapsed < 5
    assert b"larger than 1 MB" in body
    await sign_in(client)
    cookie = (b"cookie", f"mtm_session={client.cookies['mtm_session']}".encode())
    for path in routes:
        status, read, body, elapsed = await call(app, "POST", path, [*chunked, cookie], BIG)
        assert status == 413, (path, status, body[:300])
        assert read <= MAX_BODY_BYTES + 65_536 and elapsed < 5
        assert b"larger than 1 MB" in body


async def test_a_body_under_the_limit_still_reaches_the_form(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    token = csrf_from((await client.get("/settings")).text)
    saved = await client.post("/settings/preferences", data={
        "csrf_token": token, "timezone": "Europe/Berlin", "week_start": "monday",
        "chart_metric": "plays", "playlist_source": "forgotten_gems",
        "padding": "x" * (MAX_BODY_BYTES // 2)})
    assert saved.status_code == 303, saved.text[:300]


async def test_a_bad_content_length_is_400(app) -> None:
    status, read, _, _ = await call(app, "POST", "/logout",
                                    [FORM, (b"content-length", b"12x")], 10)
    assert status == 400 and read == 0


@pytest.fixture
def small_uploads(tmp_path: Path) -> Settings:
    """Demo settings whose uploads stop at 3 MB, above the general body limit."""
    return load_settings(env_file=None, force_demo=True, overrides={
        "MTM_DATA_DIR": str(tmp_path / "data"), "MTM_SECRET_KEY": "test-secret-key",
        "MTM_DEMO_PLAYS": "0", "MTM_SYNC_INTERVAL": "0", "MTM_UPLOAD_LIMIT_MB": "3"})


async def test_uploads_keep_their_own_limit(small_uploads: Settings, emulator) -> None:
    from mtm.app import create_app

    app = create_app(small_uploads, emulator=emulator)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        await sign_in(client)
        token = csrf_from((await client.get("/settings")).text)
        two_mb = b"[" + b" " * 2_000_000 + b"]"
        accepted = await client.post("/settings/imports", data={"csrf_token": token}, files={
            "files": ("Streaming_History_Audio_2019_0.json", two_mb, "application/json")})
        assert accepted.status_code == 303, accepted.text[:300]
        four_mb = b"[" + b" " * 4_000_000 + b"]"
        refused = await client.post("/settings/imports", data={"csrf_token": token}, files={
            "files": ("Streaming_History_Audio_2019_0.json", four_mb, "application/json")})
        # The upload's own refusal: post/redirect/get to Settings, which says why (413).
        assert refused.status_code == 303
        shown = await client.get(refused.headers["location"])
        assert shown.status_code == 413 and "larger than 3 MB" in shown.text

        boundary_request = httpx.Request("POST", BASE_URL, data={"csrf_token": token},
                                         files={"files": ("big.json", four_mb, "a/b")})
        content_type = boundary_request.headers["content-type"]

        async def streamed():
            # In pieces, as a server hands a body over.
            body = b"".join(boundary_request.stream)
            for start in range(0, len(body), 65_536):
                yield body[start:start + 65_536]

        chunked = await client.post("/settings/imports", content=streamed(),
                                    headers={"content-type": content_type})
        assert chunked.status_code == 303
        shown = await client.get(chunked.headers["location"])
        assert shown.status_code == 413 and "larger than 3 MB" in shown.text
        user_folder = small_uploads.uploads_dir
        kept = [p for p in user_folder.rglob("*") if p.is_file()]
        assert len(kept) == 1, "only the accepted upload is kept"


# --- the 500 page ----------------------------------------------------------------------------


async def boom(request) -> None:
    """A route made to fail."""
    raise RuntimeError("secret detail of the failure")


def with_boom(app):
    app.router.routes.append(Route("/boom", boom, name="boom"))
    return app


async def test_the_500_page_carries_every_security_header(app) -> None:
    with_boom(app)
    # raise_app_exceptions stays on: nothing escapes the app any more.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=BASE_URL) as client:
        for headers in ({}, HX):
            response = await client.get("/boom", headers=headers)
            assert response.status_code == 500
            for name, value in SECURITY_HEADERS.items():
                assert response.headers.get(name) == value, name
            assert response.headers["cache-control"] == "no-store"
            assert "Something went wrong" in response.text
            for leak in ("secret detail", "Traceback", "RuntimeError", "boom.py"):
                assert leak not in response.text


async def test_the_500_page_is_plain_when_the_error_page_fails_too(app, monkeypatch) -> None:
    from mtm.views import errors

    def broken(*args, **kwargs):
        raise RuntimeError("template gone")

    monkeypatch.setattr(errors, "render", broken)
    with_boom(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=BASE_URL) as client:
        response = await client.get("/boom")
    assert response.status_code == 500 and "Something went wrong" in response.text
    assert response.headers["content-security-policy"] == SECURITY_HEADERS[
        "Content-Security-Policy"]


class LiveServer:
    """uvicorn serving an app from a thread, on a free loopback port."""

    def __init__(self, app) -> None:
        # log_config=None: uvicorn leaves the logging set-up alone for the tests after this.
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                                    log_config=None, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def local_address(response: httpx.Response) -> tuple | None:
    """The client side of the connection a response came on; None once it is closed."""
    try:
        return response.extensions["network_stream"].get_extra_info("client_addr")
    except OSError:
        return None


def test_a_500_keeps_the_keep_alive_connection(settings: Settings, emulator) -> None:
    from mtm.app import create_app

    app = with_boom(create_app(settings, emulator=emulator))
    with LiveServer(app) as base, httpx.Client(base_url=base) as client:
        failed = client.get("/boom")
        assert failed.status_code == 500
        assert failed.headers.get("connection", "").lower() != "close"
        first = local_address(failed)
        after = client.get("/healthz")
        assert after.status_code == 200
        assert first is not None and local_address(after) == first, (
            "the server dropped the connection after the 500")
        for name in SECURITY_HEADERS:
            assert name.lower() in failed.headers
