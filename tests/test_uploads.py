"""Uploads of export files: streamed into the user's own folder with safe names, the CSRF token
checked before a byte is kept, size and count limits, and nothing left behind when refused."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mtm import uploads
from mtm.config import Settings
from tests.conftest import BASE_URL, csrf_from, sign_in

BOUNDARY = "mtm-test-boundary-7d3f"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
HX = {"HX-Request": "true"}
ACCOUNT = json.dumps([{"endTime": "2024-03-01 18:05", "artistName": "A", "trackName": "T",
                       "msPlayed": 123456}]).encode()
TOKEN_A = "A" * 24
TOKEN_B = "b-_" * 8

def limit_uploads(app, limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the running app accept uploads of at most `limit` bytes (MTM_UPLOAD_LIMIT_MB)."""
    services = app.state.services
    monkeypatch.setattr(services, "settings",
                        dataclasses.replace(services.settings, upload_limit=limit))



def field(name: str, value: str) -> tuple[str, None, bytes]:
    return name, None, value.encode()


def upload_file(filename: str, data: bytes = ACCOUNT, name: str = "files"
                ) -> tuple[str, str, bytes]:
    return name, filename, data


def multipart(parts: list[tuple[str, str | None, bytes]], *, close: bool = True) -> bytes:
    """A multipart/form-data body with the parts in this order (fields and files)."""
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            body += b"Content-Type: application/json\r\n"
        body += b"\r\n" + data + b"\r\n"
    if close:
        body += f"--{BOUNDARY}--\r\n".encode()
    return body


async def token_of(client: httpx.AsyncClient) -> str:
    page = await client.get("/settings")
    assert page.status_code == 200
    return csrf_from(page.text)


async def demo_user(app) -> int:
    return await app.state.services.db.run(
        lambda c: c.execute("SELECT id FROM users WHERE spotify_id = 'demo'").fetchone()[0])


async def settle(app) -> None:
    """Let the background jobs (syncs, the preview after an upload) finish."""
    runner = app.state.services.jobs
    while runner._tasks:
        await runner.wait(next(iter(runner._tasks)))


def stored_files(settings: Settings) -> list[Path]:
    root = settings.uploads_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def assert_nothing_kept(settings: Settings) -> None:
    root = settings.uploads_dir
    assert stored_files(settings) == []
    if root.exists():
        # At most the user's own (empty) folder: no upload folder is left.
        assert all(not any(user.iterdir()) for user in root.iterdir())


@pytest.fixture
async def signed_in(client: httpx.AsyncClient, app) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in browser, with the first sync done, that lets jobs finish at the end."""
    await sign_in(client)
    await settle(app)
    yield client
    await settle(app)


async def post(client: httpx.AsyncClient, body: bytes, headers: dict | None = None
               ) -> httpx.Response:
    return await client.post("/settings/imports", content=body,
                             headers={**MULTIPART, **(headers or {})})


async def shown(client: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    """A plain upload refused for what it holds goes back to Settings (303, post/redirect/
    get), which shows why once, with the refusal's status."""
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/settings#import"
    page = await client.get("/settings")
    assert "Nothing was uploaded:" in page.text
    assert "Nothing was uploaded:" not in (await client.get("/settings")).text
    return page


# --- valid uploads ------------------------------------------------------------------------


async def test_one_file_is_stored_and_previewed(signed_in: httpx.AsyncClient, app,
                                                settings: Settings) -> None:
    """A plain form: 303 to the preview job; the file is kept in the user's own folder."""
    token = await token_of(signed_in)
    body = multipart([field("csrf_token", token),
                      upload_file("StreamingHistory_music_0.json")])
    response = await post(signed_in, body)
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/jobs/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    user = await demo_user(app)
    (stored,) = stored_files(settings)
    folder = stored.parent
    assert folder.parent == settings.uploads_dir / str(user)
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", folder.name)
    assert stored.name == "000-StreamingHistory_music_0.json"
    assert stored.read_bytes() == ACCOUNT
    upload = uploads.find(settings.uploads_dir, user, folder.name)
    assert upload is not None and upload.names == ["StreamingHistory_music_0.json"]
    # The preview reads the upload under the name the user gave it.
    await settle(app)
    job = await signed_in.get(response.headers["location"])
    assert job.status_code == 200 and "StreamingHistory_music_0.json" in job.text


async def test_several_files_with_htmx_answer_a_fragment(signed_in: httpx.AsyncClient,
                                                         settings: Settings) -> None:
    token = await token_of(signed_in)
    body = multipart([upload_file("StreamingHistory_music_0.json"),
                      upload_file("endsong_0.json", b"[]"),
                      upload_file("Streaming_History_Audio_2023-2024_0.json", b"[1]")])
    response = await post(signed_in, body, {**HX, "X-CSRFToken": token})
    assert response.status_code == 202, response.text
    assert "<html" not in response.text
    assert re.search(r'<section id="job-\d+" class="card job', response.text)
    assert "location" not in response.headers
    assert [(p.name, p.read_bytes()) for p in stored_files(settings)] == [
        ("000-StreamingHistory_music_0.json", ACCOUNT),
        ("001-endsong_0.json", b"[]"),
        ("002-Streaming_History_Audio_2023-2024_0.json", b"[1]"),
    ]
    assert len({p.parent for p in stored_files(settings)}) == 1


async def test_the_token_may_come_as_a_header_without_a_field(signed_in: httpx.AsyncClient,
                                                              settings: Settings) -> None:
    token = await token_of(signed_in)
    response = await post(signed_in, multipart([upload_file("x.json")]),
                          {"X-CSRFToken": token})
    assert response.status_code == 303, response.text
    assert len(stored_files(settings)) == 1


@pytest.mark.parametrize(("filename", "stored"), [
    ("../../evil.json", "evil.json"),
    ("..\\..\\windows.json", "windows.json"),
    ("/etc/passwd", "passwd"),
    ("..", "upload"),
    ("Músïc & \u202eNOSJ.json", "M_s_c _ _NOSJ.json"),
    ("name;rm -rf *.json", "name_rm -rf _.json"),
])
async def test_unsafe_file_names_are_stored_as_plain_names(
        signed_in: httpx.AsyncClient, app, settings: Settings, filename: str,
        stored: str) -> None:
    token = await token_of(signed_in)
    body = multipart([field("csrf_token", token), upload_file(filename)])
    response = await post(signed_in, body)
    assert response.status_code == 303, response.text
    user_root = settings.uploads_dir / str(await demo_user(app))
    (path,) = stored_files(settings)
    assert path.name == f"000-{stored}"
    assert path.parent.parent == user_root
    assert path.resolve().is_relative_to(user_root.resolve())


async def test_the_uploads_of_two_users_are_kept_apart(client: httpx.AsyncClient, app,
                                                       settings: Settings) -> None:
    await sign_in(client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                                 follow_redirects=False) as other:
        await sign_in(other, account="newcomer")
        await settle(app)
        for http in (client, other):
            token = await token_of(http)
            response = await post(http, multipart([upload_file("x.json")]),
                                  {"X-CSRFToken": token})
            assert response.status_code == 303, response.text
        await settle(app)
    folders = sorted(p.parent for p in stored_files(settings))
    assert len({f.parent for f in folders}) == 2
    me = await demo_user(app)
    mine = next(f for f in folders if f.parent.name == str(me))
    theirs = next(f for f in folders if f.parent.name != str(me))
    assert uploads.find(settings.uploads_dir, me, mine.name) is not None
    assert uploads.find(settings.uploads_dir, me, theirs.name) is None


# --- refused uploads ------------------------------------------------------------------------


async def test_no_csrf_token_is_refused_and_nothing_stored(signed_in: httpx.AsyncClient,
                                                           settings: Settings) -> None:
    response = await post(signed_in, multipart([upload_file("StreamingHistory_music_0.json")]))
    assert response.status_code == 403
    assert "The CSRF token is missing" in response.text
    assert_nothing_kept(settings)


@pytest.mark.parametrize("where", ["field", "header"])
async def test_a_forged_token_is_refused(signed_in: httpx.AsyncClient, settings: Settings,
                                         where: str) -> None:
    token = await token_of(signed_in)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    if where == "field":
        response = await post(signed_in, multipart([field("csrf_token", forged),
                                                    upload_file("x.json")]))
    else:
        response = await post(signed_in, multipart([upload_file("x.json")]),
                              {"X-CSRFToken": forged})
    assert response.status_code == 403
    assert "did not come from this app" in response.text
    assert_nothing_kept(settings)


async def test_a_token_of_another_session_is_refused(signed_in: httpx.AsyncClient, app,
                                                     settings: Settings) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                                 follow_redirects=False) as other:
        await sign_in(other, account="newcomer")
        their_token = await token_of(other)
        await settle(app)
    body = multipart([field("csrf_token", their_token), upload_file("x.json")])
    response = await post(signed_in, body)
    assert response.status_code == 403
    assert_nothing_kept(settings)


async def test_a_token_after_the_files_is_too_late(signed_in: httpx.AsyncClient,
                                                   settings: Settings) -> None:
    """The token must come before the files: no byte is kept before it is checked."""
    token = await token_of(signed_in)
    body = multipart([upload_file("x.json"), field("csrf_token", token)])
    response = await post(signed_in, body)
    assert response.status_code == 403
    assert_nothing_kept(settings)


async def test_signed_out_upload_stores_nothing(client: httpx.AsyncClient,
                                                settings: Settings) -> None:
    response = await post(client, multipart([upload_file("x.json")]))
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fsettings%2Fimports"
    assert_nothing_kept(settings)


async def test_a_body_over_the_limit_is_refused_and_nothing_kept(
        signed_in: httpx.AsyncClient, settings: Settings, app,
        monkeypatch: pytest.MonkeyPatch) -> None:
    limit_uploads(app, 10_000, monkeypatch)
    token = await token_of(signed_in)
    body = multipart([field("csrf_token", token), upload_file("a.json", b"[" + b" " * 6_000),
                      upload_file("b.json", b" " * 6_000 + b"]")])
    response = await shown(signed_in, await post(signed_in, body))
    assert response.status_code == 413
    assert "nothing was kept" in response.text
    assert_nothing_kept(settings)
    # Just under the limit is accepted.
    small = multipart([field("csrf_token", token), upload_file("a.json", b" " * 9_000)])
    assert (await post(signed_in, small)).status_code == 303
    assert len(stored_files(settings)) == 1


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
        signed_in: httpx.AsyncClient, settings: Settings, app,
        monkeypatch: pytest.MonkeyPatch) -> None:
    limit_uploads(app, 10_000, monkeypatch)
    token = await token_of(signed_in)
    body = multipart([upload_file("a.json", b" " * 100_000)])
    read: list[bytes] = []

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            read.append(body[start:start + 8192])
            yield body[start:start + 8192]

    response = await shown(signed_in, await signed_in.post(
        "/settings/imports", content=stream(),
        headers={**MULTIPART, "X-CSRFToken": token, "Content-Length": str(len(body))}))
    assert response.status_code == 413
    assert "larger than" in response.text
    assert read == []
    assert_nothing_kept(settings)


async def test_a_declared_length_over_the_limit_from_a_plain_form_says_too_large(
        signed_in: httpx.AsyncClient, settings: Settings, app,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without JavaScript the token is in the body: a too-big upload is still told so."""
    limit_uploads(app, 10_000, monkeypatch)
    token = await token_of(signed_in)
    body = multipart([field("csrf_token", token), upload_file("a.json", b" " * 100_000)])
    response = await shown(signed_in, await post(signed_in, body))
    assert response.status_code == 413 and "larger than" in response.text
    assert_nothing_kept(settings)


async def test_urlencoded_with_a_valid_token_is_422(signed_in: httpx.AsyncClient,
                                                    settings: Settings) -> None:
    token = await token_of(signed_in)
    response = await shown(signed_in, await signed_in.post(
        "/settings/imports", data={"csrf_token": token, "files": "history.json"}))
    assert response.status_code == 422
    assert "sent as a file upload" in response.text
    assert_nothing_kept(settings)


async def test_urlencoded_without_a_token_is_403(signed_in: httpx.AsyncClient,
                                                 settings: Settings) -> None:
    response = await signed_in.post("/settings/imports", data={"files": "history.json"})
    assert response.status_code == 403
    assert_nothing_kept(settings)


async def test_multipart_without_boundary_is_422(signed_in: httpx.AsyncClient) -> None:
    token = await token_of(signed_in)
    response = await shown(signed_in, await signed_in.post(
        "/settings/imports", content=b"whatever",
        headers={"Content-Type": "multipart/form-data", "X-CSRFToken": token}))
    assert response.status_code == 422


async def test_no_file_chosen_is_422(signed_in: httpx.AsyncClient, settings: Settings) -> None:
    """The browser sends an empty part with an empty filename when no file was chosen."""
    token = await token_of(signed_in)
    body = multipart([field("csrf_token", token), upload_file("", b"")])
    response = await shown(signed_in, await post(signed_in, body))
    assert response.status_code == 422
    assert "Choose the file to import" in response.text
    assert_nothing_kept(settings)
    htmx = await post(signed_in, multipart([field("csrf_token", token)]), HX)
    assert htmx.status_code == 422 and "<html" not in htmx.text


async def test_more_than_max_files_is_413(signed_in: httpx.AsyncClient, settings: Settings,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "MAX_FILES", 2)
    token = await token_of(signed_in)
    three = multipart([field("csrf_token", token)]
                      + [upload_file(f"StreamingHistory_music_{i}.json") for i in range(3)])
    response = await shown(signed_in, await post(signed_in, three))
    assert response.status_code == 413
    assert "Upload at most 2 files at once" in response.text
    assert_nothing_kept(settings)
    two = multipart([field("csrf_token", token)]
                    + [upload_file(f"StreamingHistory_music_{i}.json") for i in range(2)])
    assert (await post(signed_in, two)).status_code == 303
    assert len(stored_files(settings)) == 2


async def test_a_field_too_long_is_413(signed_in: httpx.AsyncClient, settings: Settings) -> None:
    token = await token_of(signed_in)
    body = multipart([field("note", "x" * (uploads.MAX_FIELD_BYTES + 1)),
                      field("csrf_token", token), upload_file("x.json")])
    response = await shown(signed_in, await post(signed_in, body))
    assert response.status_code == 413
    assert_nothing_kept(settings)


async def test_a_broken_multipart_body_is_400(signed_in: httpx.AsyncClient,
                                              settings: Settings) -> None:
    token = await token_of(signed_in)
    body = f"--{BOUNDARY}\r\nContent-Disposition form-data\r\n\r\n".encode() + b"x" * 100
    response = await post(signed_in, body, {"X-CSRFToken": token})
    assert response.status_code == 400
    assert_nothing_kept(settings)


async def test_a_body_cut_short_is_refused_and_nothing_kept(signed_in: httpx.AsyncClient,
                                                            settings: Settings) -> None:
    """A body that ends inside a file (no closing boundary) is not a complete upload."""
    token = await token_of(signed_in)
    body = multipart([field("csrf_token", token), upload_file("x.json", b'[{"endTime": "20')],
                     close=False)
    body = body[: -len(b"\r\n")]
    response = await post(signed_in, body)
    assert response.status_code == 400, response.text
    assert_nothing_kept(settings)


# --- the module's helpers -------------------------------------------------------------------


@pytest.mark.parametrize(("given", "safe"), [
    ("StreamingHistory_music_0.json", "StreamingHistory_music_0.json"),
    ("my_spotify_data.zip", "my_spotify_data.zip"),
    ("../../evil.json", "evil.json"),
    ("C:\\Users\\me\\Downloads\\endsong_0.json", "endsong_0.json"),
    ("folder/sub/x.json", "x.json"),
    ("  spaced name.json  ", "spaced name.json"),
    ("a\x00b\nc.json", "a_b_c.json"),
    ("Sigur Rós – Takk….json", "Sigur R_s _ Takk_.json"),
    ("..", "upload"),
    ("", "upload"),
    ("/", "upload"),
    ("...", "upload"),
    (".hidden.json", "hidden.json"),
    ("trailing.json. ", "trailing.json"),
])
def test_safe_name(given: str, safe: str) -> None:
    assert uploads.safe_name(given) == safe


def test_safe_name_keeps_the_end_of_a_long_name() -> None:
    name = "x" * 300 + "_Streaming_History_Audio_2023.json"
    safe = uploads.safe_name(name)
    assert len(safe) == 120 and safe.endswith("_Streaming_History_Audio_2023.json")


def test_find_checks_the_token_and_the_owner(tmp_path: Path) -> None:
    (tmp_path / "1" / TOKEN_A).mkdir(parents=True)
    (tmp_path / "2" / TOKEN_B).mkdir(parents=True)
    (tmp_path / "1" / ("f" * 20)).write_text("not a folder")
    found = uploads.find(tmp_path, 1, TOKEN_A)
    assert found == uploads.Upload(TOKEN_A, tmp_path / "1" / TOKEN_A)
    assert uploads.find(tmp_path, 2, TOKEN_B) is not None
    # Another user's token is not found under this user.
    assert uploads.find(tmp_path, 1, TOKEN_B) is None
    assert uploads.find(tmp_path, 2, TOKEN_A) is None
    # Not the token format: never looked up, whatever is on disk.
    for bad in ("", "short", "A" * 65, f"../2/{TOKEN_B}", f"{TOKEN_A}/..", "A" * 23 + ".",
                None, 12345):
        assert uploads.find(tmp_path, 1, bad) is None, bad
    # A file where a folder should be is no upload; nor is a user without uploads.
    assert uploads.find(tmp_path, 1, "f" * 20) is None
    assert uploads.find(tmp_path, 3, TOKEN_A) is None


def test_upload_lists_files_in_order_with_the_names_given(tmp_path: Path) -> None:
    folder = tmp_path / "1" / TOKEN_A
    folder.mkdir(parents=True)
    for name in ("001-endsong_0.json", "000-my_spotify_data.zip", "002-Streaming-History.json"):
        (folder / name).write_bytes(b"[]")
    (folder / "stray-dir").mkdir()
    upload = uploads.Upload(TOKEN_A, folder)
    assert [p.name for p in upload.paths] == ["000-my_spotify_data.zip", "001-endsong_0.json",
                                              "002-Streaming-History.json"]
    assert upload.names == ["my_spotify_data.zip", "endsong_0.json", "Streaming-History.json"]
    upload.remove()
    assert not folder.exists()
    assert uploads.find(tmp_path, 1, TOKEN_A) is None


def test_prune_removes_old_uploads_and_keeps_the_rest(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    ages = {"old" + "o" * 20: uploads.KEEP_SECONDS + 60, "kept" + "k" * 20: 10 * 86_400,
            "fresh" + "f" * 20: uploads.KEEP_SECONDS - 60}
    for name, age in ages.items():
        folder = tmp_path / "7" / name
        folder.mkdir(parents=True)
        (folder / "000-x.json").write_bytes(b"[]")
        os.utime(folder, (now - age, now - age))
    other = tmp_path / "8" / ("o" * 24)
    other.mkdir(parents=True)
    os.utime(other, (now - 30 * 86_400,) * 2)
    uploads.prune(tmp_path, 7, keep={"kept" + "k" * 20}, now=now)
    assert sorted(p.name for p in (tmp_path / "7").iterdir()) == ["fresh" + "f" * 20,
                                                                  "kept" + "k" * 20]
    # Another user's uploads are left alone.
    assert other.is_dir()
    # Later, the fresh one is old too; with nothing kept, everything goes.
    uploads.prune(tmp_path, 7, now=now + 86_400)
    assert list((tmp_path / "7").iterdir()) == []


def test_prune_of_a_user_without_uploads_does_nothing(tmp_path: Path) -> None:
    uploads.prune(tmp_path, 9, now=1_800_000_000.0)
    uploads.prune(tmp_path / "missing", 9, now=1_800_000_000.0)
    assert list(tmp_path.iterdir()) == []


def test_folders_lists_only_the_users_upload_folders(tmp_path: Path) -> None:
    (tmp_path / "1" / TOKEN_A).mkdir(parents=True)
    (tmp_path / "1" / "note.txt").write_text("x")
    (tmp_path / "2" / TOKEN_B).mkdir(parents=True)
    assert list(uploads.folders(tmp_path, 1)) == [tmp_path / "1" / TOKEN_A]
    assert list(uploads.folders(tmp_path, 3)) == []
