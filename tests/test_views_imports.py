"""The import pages: upload, the job page and its card, confirm, retry, discard, undo."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from html import unescape

import httpx
import pytest

from mtm import imports, jobs
from tests.conftest import BASE_URL, csrf_from, sign_in
from tests.test_importer import BASE, extended

HX = {"HX-Request": "true"}


def services_of(app):
    return app.state.services


async def token_of(client: httpx.AsyncClient) -> str:
    return csrf_from((await client.get("/settings")).text)


async def wait_for_jobs(app) -> None:
    """Wait for the import steps started so far (artist lookups may go on meanwhile)."""
    runner = services_of(app).jobs
    while pending := [i for i, t in runner._tasks.items() if not t.get_name().endswith("enrich")]:
        for job_id in pending:
            await runner.wait(job_id)


def export_file(n: int = 6, start: int = BASE) -> bytes:
    return json.dumps([extended(start + i * 300, i) for i in range(n)]).encode()


async def upload(client: httpx.AsyncClient, token: str, data: bytes,
                 name: str = "Streaming_History_Audio_2019_0.json", headers: dict | None = None
                 ) -> httpx.Response:
    return await client.post("/settings/imports", data={"csrf_token": token},
                             files={"files": (name, data, "application/json")},
                             headers=headers or {})


async def count_exported(app, user: int) -> int:
    return await services_of(app).db.run(
        lambda c: c.execute("SELECT count(*) FROM plays WHERE user_id = ? AND source = 'export'",
                            (user,)).fetchone()[0])


async def demo_user(app) -> int:
    return await services_of(app).db.run(
        lambda c: c.execute("SELECT id FROM users WHERE spotify_id = 'demo'").fetchone()[0])


@pytest.fixture
async def signed_in(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await sign_in(client)
    return client


async def test_settings_shows_the_import_section(signed_in: httpx.AsyncClient) -> None:
    page = await signed_in.get("/settings")
    assert page.status_code == 200
    for section in ("import", "imports", "coverage"):
        assert f'id="{section}"' in page.text
    assert 'enctype="multipart/form-data"' in page.text
    # The token field comes before the file field: the server reads it first.
    form = page.text.split('class="upload-form"')[1]
    assert form.index('name="csrf_token"') < form.index('type="file"')
    assert "Nothing imported yet." in page.text
    assert re.search(r'href="[^"]*/settings/imports/sample\.zip"', page.text)


async def test_upload_preview_import_and_undo_without_javascript(
        signed_in: httpx.AsyncClient, app) -> None:
    user = await demo_user(app)
    token = await token_of(signed_in)
    sent = await upload(signed_in, token, export_file())
    assert sent.status_code == 303 and re.fullmatch(r"/jobs/\d+", sent.headers["location"])
    await wait_for_jobs(app)
    page = await signed_in.get(sent.headers["location"])
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert "Preview of your import" in page.text and "<h1" in page.text
    assert "http-equiv=\"refresh\"" not in page.text, "a finished job stops reloading"
    assert re.search(r"New plays</th><td class=\"num\">6<", page.text)
    assert await count_exported(app, user) == 0, "a preview changes nothing"
    action = re.search(r'action="(http://[^"]+/import)"', page.text).group(1)
    started = await signed_in.post(action, data={"csrf_token": token})
    assert started.status_code == 303
    await wait_for_jobs(app)
    done = await signed_in.get(started.headers["location"])
    assert "Imported 6 new plays" in done.text
    assert await count_exported(app, user) == 6
    reasons = await services_of(app).db.run(lambda c: [r[0] for r in c.execute(
        "SELECT reason FROM backups WHERE user_id = ? AND kind = 'auto'", (user,))])
    assert reasons == ["before an import"], "a backup is taken before anything is written"
    [record] = await services_of(app).db.run(imports.list_imports, user)
    settings_page = (await signed_in.get("/settings")).text
    assert f'id="import-{record.id}"' in settings_page and "Undo…" in settings_page
    assert "source-export" in settings_page
    # The uploaded files are gone once imported.
    assert not list((services_of(app).settings.uploads_dir / str(user)).glob("*/*"))

    detail = await signed_in.get(f"/settings/imports/{record.id}")
    assert detail.status_code == 200 and "The import of" in detail.text
    confirm = await signed_in.get(f"/settings/imports/{record.id}/undo")
    assert "removes the <strong>6</strong> streams" in confirm.text
    refused = await signed_in.post(f"/settings/imports/{record.id}/undo",
                                   data={"csrf_token": token})
    # Post/redirect/get: the confirmation says why, once, still 422; a reload is clean.
    assert refused.status_code == 303
    assert refused.headers["location"] == f"/settings/imports/{record.id}/undo"
    shown = await signed_in.get(refused.headers["location"])
    assert shown.status_code == 422 and "Nothing was undone" in shown.text
    again = await signed_in.get(refused.headers["location"])
    assert again.status_code == 200 and "Nothing was undone" not in again.text
    undone = await signed_in.post(f"/settings/imports/{record.id}/undo",
                                  data={"csrf_token": token, "confirm": "yes"})
    assert undone.status_code == 303
    await wait_for_jobs(app)
    result = await signed_in.get(undone.headers["location"])
    assert "Undone: removed 6 streams" in result.text
    assert await count_exported(app, user) == 0
    again = await signed_in.post(f"/settings/imports/{record.id}/undo",
                                 data={"csrf_token": token, "confirm": "yes"})
    assert again.status_code == 409


async def test_the_same_flow_with_htmx(signed_in: httpx.AsyncClient, app) -> None:
    user = await demo_user(app)
    token = await token_of(signed_in)
    headers = {**HX, "X-CSRFToken": token}
    sent = await upload(signed_in, token, export_file(4), headers=headers)
    assert sent.status_code == 202 and "<html" not in sent.text
    card = re.search(r'<section id="job-(\d+)"', sent.text)
    assert card, sent.text
    job_url = f"/jobs/{card.group(1)}"
    await wait_for_jobs(app)
    fragment = await signed_in.get(job_url, headers=HX)
    assert fragment.text.startswith("{#") is False and fragment.text.lstrip().startswith(
        "<section id=\"job-")
    assert 'hx-trigger="every 1s"' not in fragment.text
    assert "HX-Trigger" not in fragment.headers, "a preview changes nothing to reload"
    assert "HX-Request" in fragment.headers["Vary"]
    action = re.search(r'hx-post="(http://[^"]+/import)"', fragment.text).group(1)
    started = await signed_in.post(action, headers=headers)
    assert started.status_code == 202 and 'hx-trigger="every 1s"' in started.text
    await wait_for_jobs(app)
    assert await count_exported(app, user) == 4
    import_card = re.search(r'<section id="job-(\d+)"', started.text).group(1)
    finished = await signed_in.get(f"/jobs/{import_card}", headers=HX)
    assert json.loads(finished.headers["HX-Trigger"]) == {
        "mtm:history-changed": {"target": "body"}}
    # The sections that show the history reload on the event, from the same page.
    sections = (await signed_in.get("/settings", headers=HX)).text
    for section in ("imports", "coverage", "backups"):
        assert re.search(rf'<section id="{section}"[^>]*hx-select="#{section}"[^>]*'
                         r'hx-trigger="mtm:history-changed from:body"', sections), section


async def test_a_running_job_polls_and_a_page_reloads(signed_in: httpx.AsyncClient,
                                                      app) -> None:
    user = await demo_user(app)
    job = await services_of(app).db.run(jobs.create, user, imports.PREVIEW, {"upload": "x" * 24})
    await services_of(app).db.run(jobs.start, job.id, "test:host:1:x")
    await services_of(app).db.run(jobs.report, job.id, "Reading the files", 30, 120)
    page = await signed_in.get(f"/jobs/{job.id}")
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page.text
    assert "Reading the files…" in page.text and 'value="25"' in page.text
    fragment = await signed_in.get(f"/jobs/{job.id}", headers=HX)
    assert 'hx-trigger="every 1s"' in fragment.text and "HX-Trigger" not in fragment.headers


async def test_bad_uploads_are_refused_clearly(signed_in: httpx.AsyncClient, app) -> None:
    user = await demo_user(app)
    token = await token_of(signed_in)
    sent = await upload(signed_in, token, b"this is not json at all", name="notes.txt")
    assert sent.status_code == 303
    await wait_for_jobs(app)
    page = (await signed_in.get(sent.headers["location"])).text
    assert "neither a zip nor a JSON file" in unescape(page)
    # Running it again would meet the same file: only discarding it is offered.
    assert "Run it again" not in page and "Discard the uploaded files" in page
    assert await count_exported(app, user) == 0
    # Discarding removes the files.
    action = re.search(r'action="(http://[^"]+/discard)"', page).group(1)
    discarded = await signed_in.post(action, data={"csrf_token": token})
    assert discarded.status_code == 303 and discarded.headers["location"] == "/settings#import"
    assert not list((services_of(app).settings.uploads_dir / str(user)).glob("*/*"))
    gone = await signed_in.post(action, data={"csrf_token": token})
    assert gone.status_code == 409


async def test_one_import_at_a_time(signed_in: httpx.AsyncClient, app) -> None:
    user = await demo_user(app)
    token = await token_of(signed_in)
    busy = await services_of(app).db.run(jobs.create, user, imports.IMPORT, {"upload": "y" * 24})
    sent = await upload(signed_in, token, export_file())
    assert sent.status_code == 409 and f"/jobs/{busy.id}" in sent.text
    fragment = await upload(signed_in, token, export_file(), headers=HX)
    assert fragment.status_code == 409 and "<html" not in fragment.text
    assert not list((services_of(app).settings.uploads_dir / str(user)).glob("*/*"))


@pytest.fixture
async def other(app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                                 follow_redirects=False) as http:
        await sign_in(http, account="newcomer")
        yield http


async def test_jobs_and_imports_of_others_are_not_found(signed_in: httpx.AsyncClient,
                                                         other: httpx.AsyncClient, app) -> None:
    token = await token_of(signed_in)
    sent = await upload(signed_in, token, export_file())
    await wait_for_jobs(app)
    job_url = sent.headers["location"]
    assert (await other.get(job_url)).status_code == 404
    assert (await other.get(job_url, headers=HX)).status_code == 404
    other_token = await token_of(other)
    assert (await other.post(f"{job_url}/import", data={"csrf_token": other_token})
            ).status_code == 404
    page = await signed_in.get(job_url)
    action = re.search(r'action="(http://[^"]+/import)"', page.text).group(1)
    await signed_in.post(action, data={"csrf_token": token})
    await wait_for_jobs(app)
    record = (await services_of(app).db.run(imports.list_imports, await demo_user(app)))[0]
    for path in (f"/settings/imports/{record.id}", f"/settings/imports/{record.id}/undo"):
        assert (await other.get(path)).status_code == 404
    assert (await other.post(f"/settings/imports/{record.id}/undo",
                             data={"csrf_token": other_token, "confirm": "yes"})
            ).status_code == 404
    # Ids too big for the database are simply not found.
    assert (await signed_in.get("/jobs/99999999999999999999999")).status_code == 404
    assert (await signed_in.get("/settings/imports/99999999999999999999999")).status_code == 404


async def test_interrupted_imports_can_run_again(signed_in: httpx.AsyncClient, app) -> None:
    user = await demo_user(app)
    token = await token_of(signed_in)
    sent = await upload(signed_in, token, export_file(3))
    await wait_for_jobs(app)
    preview_id = int(sent.headers["location"].rsplit("/", 1)[1])
    preview = await services_of(app).db.run(jobs.get, user, preview_id)
    # An import that a restart cut short.
    job = await services_of(app).db.run(jobs.create, user, imports.IMPORT, preview.params)
    await services_of(app).db.run(jobs.finish, job.id, "interrupted", error=jobs.INTERRUPTED)
    page = await signed_in.get(f"/jobs/{job.id}")
    assert "Interrupted." in page.text and "Run it again" in page.text
    retried = await signed_in.post(f"/jobs/{job.id}/retry", data={"csrf_token": token})
    assert retried.status_code == 303
    await wait_for_jobs(app)
    assert "Imported 3 new plays" in (await signed_in.get(retried.headers["location"])).text
    assert (await signed_in.post(f"/jobs/{job.id}/retry", data={"csrf_token": token})
            ).status_code == 409


async def test_sample_export_in_demo_mode_only(signed_in: httpx.AsyncClient, app) -> None:
    sample = await signed_in.get("/settings/imports/sample.zip")
    assert sample.status_code == 200 and sample.headers["content-type"] == "application/zip"
    assert sample.content[:2] == b"PK"
    services_of(app).settings = type(services_of(app).settings)(
        **{**services_of(app).settings.__dict__, "demo": False})
    assert (await signed_in.get("/settings/imports/sample.zip")).status_code == 404


async def test_sync_now_during_an_import_says_so(signed_in: httpx.AsyncClient, app) -> None:
    from mtm import leases, sync

    user = await demo_user(app)
    token = await token_of(signed_in)
    holder = jobs.make_holder("import-1")
    assert await services_of(app).db.run(leases.acquire, user, sync.LEASE, holder, ttl=600)
    response = await signed_in.post("/settings/sync", data={"csrf_token": token})
    assert response.status_code == 303
    page = (await signed_in.get("/settings")).text
    assert "An import of your history is running, and syncs wait for it." in page


async def test_a_full_disk_is_said_in_words(signed_in: httpx.AsyncClient, app,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from mtm import importer

    user = await demo_user(app)
    token = await token_of(signed_in)
    sent = await upload(signed_in, token, export_file(300))
    await wait_for_jobs(app)
    real = importer._connect

    def nearly_full(db_path):
        conn = real(db_path)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        return conn

    monkeypatch.setattr(importer, "_connect", nearly_full)
    page = await signed_in.get(sent.headers["location"])
    action = re.search(r'action="(http://[^"]+/import)"', page.text).group(1)
    started = await signed_in.post(action, data={"csrf_token": token})
    await wait_for_jobs(app)
    failed = (await signed_in.get(started.headers["location"])).text
    assert "disk is full, so nothing was imported" in failed and "Run it again" in failed
    assert await count_exported(app, user) == 0
