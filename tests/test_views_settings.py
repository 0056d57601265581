"""The Settings page over HTTP: page and fragment of every endpoint, plain and HTMX paths,
honest status codes, and one user never reaching another user's data."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import pytest

from mtm import exports, history, leases, sync
from tests.conftest import BASE_URL, csrf_from, first_sync_plays, make_play, sign_in

HX = {"HX-Request": "true"}


async def token_of(client: httpx.AsyncClient) -> str:
    return csrf_from((await client.get("/settings")).text)


def services_of(app):
    return app.state.services


async def user_id_of(app, spotify_id: str) -> int:
    return await services_of(app).db.run(
        lambda c: c.execute("SELECT id FROM users WHERE spotify_id = ?",
                            (spotify_id,)).fetchone()[0])


async def count(app, sql: str, *args) -> int:
    return await services_of(app).db.run(lambda c: c.execute(sql, args).fetchone()[0])


def flashes(html: str) -> list[str]:
    return [unescape(m) for m in re.findall(r'class="flash flash-\w+"[^>]*>([^<]*)<', html)]


async def refused_page(client: httpx.AsyncClient, response: httpx.Response, location: str,
                       status: int = 422) -> httpx.Response:
    """A plain form POST that was refused: a 303 to `location` (post/redirect/get), whose GET
    shows the form with the input and errors once, with the refusal's status."""
    assert response.status_code == 303, response.text
    assert response.headers["location"] == location
    page = await client.get(location.split("#")[0])
    assert page.status_code == status and page.text.startswith("<!doctype html>")
    return page


@pytest.fixture(autouse=True)
def quick_pacer(app) -> None:
    # Artist lookups are paced at 0.1 s in production; tests need no pacing.
    services_of(app).scheduler.pacer.interval = 0


@pytest.fixture
async def other(app) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser, signed in as the emulator's other account."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                                 follow_redirects=False) as http:
        await sign_in(http, account="newcomer")
        yield http


async def wait_for_syncs(app) -> None:
    runner = services_of(app).jobs
    for job_id in list(runner._tasks):
        await runner.wait(job_id)


# --- the page ------------------------------------------------------------------------


async def test_page_and_fragment(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    page = await client.get("/settings")
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert 'aria-current="page">Settings' in page.text
    assert "<title>Settings · Music Time Machine</title>" in page.text
    assert page.text.count("<h1") == 1
    for section in ("connection", "sync-now", "preferences", "export", "backups", "danger-zone"):
        assert f'id="{section}"' in page.text, section
    fragment = await client.get("/settings", headers=HX)
    assert fragment.status_code == 200
    assert fragment.text.startswith('<div id="settings"')
    assert "<html" not in fragment.text and "HX-Request" in fragment.headers["vary"]


async def test_connection_section(client: httpx.AsyncClient, app, emulator) -> None:
    await sign_in(client)
    html = (await client.get("/settings")).text
    assert "Demo Listener" in html and "<code>demo</code>" in html
    for scope in services_of(app).settings.scopes:
        assert f"<code>{scope}</code>" in html
    consented = await count(app, "SELECT consented_at FROM tokens")
    expiry = datetime.fromtimestamp(consented, UTC)
    month = expiry.month + 6
    expiry = expiry.replace(year=expiry.year + (month - 1) // 12, month=(month - 1) % 12 + 1)
    assert expiry.strftime("%d %B %Y") in html
    assert re.search(r"\((18[0-4]) days left\)", html)
    assert "Reconnect Spotify" not in html
    assert f"Last sync just now: {first_sync_plays(emulator)} new plays." in html


async def test_consent_about_to_expire_warns_and_offers_reconnect(client: httpx.AsyncClient,
                                                                  app) -> None:
    await sign_in(client)
    almost = int((datetime.now(UTC) - timedelta(days=175)).timestamp())
    await services_of(app).db.run(lambda c: c.execute("UPDATE tokens SET consented_at = ?",
                                                      (almost,)))
    html = (await client.get("/settings")).text
    assert re.search(r"\(([1-9]|1[0-3]) days left\)", html)
    assert 'role="alert">Spotify stops accepting this connection in' in html
    assert re.search(r'href="http://127.0.0.1:8000/login\?next=%2Fsettings"[^>]*>Reconnect Spotify',
                     html)


async def test_reconnect_needed_shows_the_link(client: httpx.AsyncClient, app) -> None:
    await sign_in(client)
    await services_of(app).db.run(lambda c: c.execute("UPDATE users SET reconnect_needed = 1"))
    html = (await client.get("/settings")).text
    assert "Reconnect needed" in html and ">Reconnect Spotify</a>" in html


# --- sync now --------------------------------------------------------------------------


async def test_sync_now_with_htmx_polls_until_done(client: httpx.AsyncClient, app) -> None:
    await sign_in(client)
    token = await token_of(client)
    user = await user_id_of(app, "demo")
    runs = await count(app, "SELECT count(*) FROM sync_runs WHERE user_id = ?", user)
    started = await client.post("/settings/sync", headers={**HX, "X-CSRFToken": token})
    assert started.status_code == 202
    assert started.text.startswith('<div id="sync-now"')
    assert 'hx-trigger="every 1s"' in started.text and "Syncing now" in started.text
    assert re.search(r"<button[^>]*disabled[^>]*>Syncing…", started.text)
    # A second click while it runs starts nothing.
    again = await client.post("/settings/sync", headers={**HX, "X-CSRFToken": token})
    assert again.status_code == 409 and "already running" in again.text
    assert 'hx-trigger="every 1s"' in again.text
    polled = await client.get("/settings/sync", headers=HX)
    assert polled.status_code == 200 and polled.text.startswith('<div id="sync-now"')
    await wait_for_syncs(app)
    done = await client.get("/settings/sync", headers=HX)
    assert "hx-trigger" not in done.text, "polling must stop once the sync is finished"
    assert "Last sync just now" in done.text and ">Sync now</button>" in done.text
    assert await count(app, "SELECT count(*) FROM sync_runs WHERE user_id = ?", user) == runs + 1
    # Without JavaScript the status URL is the whole page.
    assert (await client.get("/settings/sync")).text.startswith("<!doctype html>")


async def test_sync_now_without_javascript_waits_and_redirects(client: httpx.AsyncClient,
                                                               app) -> None:
    await sign_in(client)
    token = await token_of(client)
    response = await client.post("/settings/sync", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/settings"
    page = (await client.get("/settings")).text
    assert flashes(page) == ["Sync finished: no new plays."]
    assert "hx-trigger" not in page.split('id="sync-now"')[1].split(">")[0]


async def test_two_clicks_never_run_two_syncs(client: httpx.AsyncClient, app) -> None:
    await sign_in(client)
    token = await token_of(client)
    user = await user_id_of(app, "demo")
    runs = await count(app, "SELECT count(*) FROM sync_runs WHERE user_id = ?", user)
    first, second = await asyncio.gather(
        client.post("/settings/sync", data={"csrf_token": token}),
        client.post("/settings/sync", data={"csrf_token": token}))
    assert sorted([first.status_code, second.status_code]) == [303, 409]
    assert await count(app, "SELECT count(*) FROM sync_runs WHERE user_id = ?", user) == runs + 1


async def test_sync_now_while_the_scheduler_syncs_is_a_conflict(client: httpx.AsyncClient,
                                                                app) -> None:
    await sign_in(client)
    token = await token_of(client)
    user = await user_id_of(app, "demo")
    db = services_of(app).db
    await db.run(leases.acquire, user, sync.LEASE, "scheduler", ttl=600)
    await db.run(sync.start_run, user, int(time.time()))
    response = await client.post("/settings/sync", data={"csrf_token": token})
    assert response.status_code == 409
    assert "already running" in response.text and "background scheduler" in response.text
    assert await count(app, "SELECT count(*) FROM jobs WHERE user_id = ? AND kind = 'sync'",
                       user) == 0


async def test_sync_failure_is_reported(client: httpx.AsyncClient, app, emulator) -> None:
    await sign_in(client)
    token = await token_of(client)
    emulator.fail("/v1/me/player/recently-played", 503, times=5)
    response = await client.post("/settings/sync", data={"csrf_token": token})
    assert response.status_code == 303
    [message] = flashes((await client.get("/settings")).text)
    assert message.startswith("The sync failed:")
    assert "Last sync failed" in (await client.get("/settings/sync", headers=HX)).text


# --- preferences ------------------------------------------------------------------------


PREFS = {"timezone": "Asia/Tokyo", "week_start": "6", "chart_metric": "minutes",
         "playlist_source": "on_this_day"}


async def test_preferences_are_saved(client: httpx.AsyncClient, app) -> None:
    await sign_in(client)
    token = await token_of(client)
    response = await client.post("/settings/preferences", data={**PREFS, "csrf_token": token})
    assert response.status_code == 303
    page = (await client.get("/settings")).text
    assert flashes(page) == ["Preferences saved. Days and hours are now counted in Asia/Tokyo."]
    assert 'value="Asia/Tokyo"' in page
    assert re.search(r'name="week_start" value="6" checked', page)
    assert re.search(r'<option value="on_this_day" selected>', page)
    # Applied elsewhere: analytics ranks by minutes unless the page says otherwise.
    assert "by minutes" in (await client.get("/analytics")).text
    fragment = await client.post("/settings/preferences", headers={**HX, "X-CSRFToken": token},
                                 data={**PREFS, "chart_metric": "plays"})
    assert fragment.status_code == 200
    assert fragment.text.startswith('<section id="preferences"')
    assert "Preferences saved." in fragment.text and "now counted" not in fragment.text


@pytest.mark.parametrize("field,value,error_id", [
    ("timezone", "Mars/Olympus_Mons", "pref-timezone-error"),
    ("week_start", "3", "pref-week-error"),
    ("chart_metric", "hours", "pref-metric-error"),
    ("playlist_source", "everything", "pref-source-error"),
])
async def test_invalid_preferences_are_422_next_to_the_field(
        client: httpx.AsyncClient, app, field: str, value: str, error_id: str) -> None:
    await sign_in(client)
    token = await token_of(client)
    data = {**PREFS, field: value, "csrf_token": token}
    page = await refused_page(client, await client.post("/settings/preferences", data=data),
                              "/settings#preferences")
    assert f'id="{error_id}"' in page.text and "Nothing was saved" in page.text
    assert page.text.count('class="field-error"') == 1
    # The user's input comes back, every field of it.
    assert 'name="playlist_source"' in page.text
    if field == "timezone":
        assert 'value="Mars/Olympus_Mons"' in page.text and 'aria-invalid="true"' in page.text
    else:
        assert 'value="Asia/Tokyo"' in page.text
    # Shown once: a reload is a clean form with what is saved.
    again = await client.get("/settings")
    assert again.status_code == 200 and "Nothing was saved" not in again.text
    assert 'value="UTC"' in again.text
    fragment = await client.post("/settings/preferences", data=data, headers=HX)
    assert fragment.status_code == 422 and fragment.text.startswith('<section id="preferences"')
    assert f'id="{error_id}"' in fragment.text
    user = await user_id_of(app, "demo")
    assert await count(app, "SELECT timezone FROM preferences WHERE user_id = ?", user) == "UTC"


def day_rows(html: str) -> dict[str, int]:
    return {label: int(plays) for label, _, plays in re.findall(
        r'<tr><th scope="row">([^<]+)</th><td>(\d+)</td><td>(\d+)</td></tr>', html)}


async def test_time_zone_moves_the_dashboard_days(client: httpx.AsyncClient, app) -> None:
    await sign_in(client, account="newcomer")
    token = await token_of(client)
    user = await user_id_of(app, "newcomer")
    late = (datetime.now(UTC) - timedelta(days=3)).replace(hour=23, minute=30, second=0,
                                                            microsecond=0)
    await services_of(app).db.run(history.add_plays, user,
                                  [make_play(int(late.timestamp()), 1)])
    label = late.strftime("%a %d %b")
    next_label = (late + timedelta(days=1)).strftime("%a %d %b")
    before = day_rows((await client.get("/")).text)
    assert before[label] == 1 and before[next_label] == 0
    await client.post("/settings/preferences", data={**PREFS, "csrf_token": token})
    after = day_rows((await client.get("/")).text)
    assert after[label] == 0 and after[next_label] == 1


# --- exports -----------------------------------------------------------------------------


async def test_exports_download_this_users_data(client: httpx.AsyncClient, other, app,
                                                tmp_path, emulator) -> None:
    await sign_in(client)
    today = datetime.now(UTC).date().isoformat()
    demo_plays = await count(app, "SELECT count(*) FROM plays p JOIN users u ON u.id = p.user_id "
                                  "WHERE u.spotify_id = 'demo'")
    assert demo_plays == first_sync_plays(emulator)
    response = await client.get("/settings/export/json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="music-time-machine-{today}.json"')
    assert response.headers["cache-control"] == "no-store"
    records = response.json()
    assert len(records) == demo_plays
    assert set(records[0]) == set(exports.SPOTIFY_KEYS) | set(exports.MTM_KEYS)

    response = await client.get("/settings/export/csv")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].endswith(f'{today}.csv"')
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    assert len(rows) == demo_plays

    response = await client.get("/settings/export/sqlite")
    assert response.headers["content-disposition"].endswith(f'{today}.sqlite3"')
    path = tmp_path / "export.sqlite3"
    path.write_bytes(response.content)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM plays").fetchone()[0] == demo_plays
    assert [r[0] for r in conn.execute("SELECT spotify_id FROM users")] == ["demo"]
    assert conn.execute("SELECT count(*) FROM tokens").fetchone()[0] == 0
    conn.close()
    # No temporary file is left behind.
    assert list((services_of(app).settings.data_dir / "tmp").glob("*")) == []

    # The other user gets only their own (empty) history from the same URLs.
    assert (await other.get("/settings/export/json")).json() == []
    theirs = (await other.get("/settings/export/csv")).content.decode("utf-8-sig")
    assert len(theirs.strip().splitlines()) == 1
    path.write_bytes((await other.get("/settings/export/sqlite")).content)
    conn = sqlite3.connect(path)
    assert [r[0] for r in conn.execute("SELECT spotify_id FROM users")] == ["newcomer"]
    assert conn.execute("SELECT count(*) FROM plays").fetchone()[0] == 0
    conn.close()


async def test_exports_need_a_sign_in_and_a_known_format(client: httpx.AsyncClient) -> None:
    response = await client.get("/settings/export/csv")
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")
    await sign_in(client)
    assert (await client.get("/settings/export/xml")).status_code == 404
    assert (await client.get("/settings/export/xml", headers=HX)).status_code == 404


# --- backups -------------------------------------------------------------------------------


async def make_backup(client: httpx.AsyncClient, token: str) -> int:
    response = await client.post("/settings/backups", data={"csrf_token": token})
    assert response.status_code == 303
    page = (await client.get("/settings")).text
    assert flashes(page)[0].startswith("Backup made: ")
    return int(re.findall(r"/settings/backups/(\d+)/restore", page)[0])


async def test_backup_by_hand(client: httpx.AsyncClient, app, emulator) -> None:
    await sign_in(client)
    token = await token_of(client)
    backup_id = await make_backup(client, token)
    page = (await client.get("/settings")).text
    assert f"{first_sync_plays(emulator)} plays · " in page
    assert f'id="backup-{backup_id}"' in page and "Manual" in page
    fragment = await client.post("/settings/backups", headers={**HX, "X-CSRFToken": token})
    assert fragment.status_code == 200 and fragment.text.startswith('<section id="backups"')
    assert fragment.text.count('class="backup"') == 2 and "Backup made" in fragment.text
    download = await client.get(f"/settings/backups/{backup_id}/download")
    assert download.status_code == 200 and download.content.startswith(b"SQLite format 3\x00")
    assert "music-time-machine-backup-" in download.headers["content-disposition"]


async def test_restore_needs_confirmation(client: httpx.AsyncClient, app) -> None:
    await sign_in(client)
    token = await token_of(client)
    backup_id = await make_backup(client, token)
    confirm = await client.get(f"/settings/backups/{backup_id}/restore")
    assert confirm.status_code == 200 and "<h1" in confirm.text
    assert "<title>Restore a backup · Music Time Machine</title>" in confirm.text
    assert 'name="confirm" value="yes"' in confirm.text
    fragment = await client.get(f"/settings/backups/{backup_id}/restore", headers=HX)
    assert fragment.text.startswith('<section id="backups"') and "<h2" in fragment.text
    path = f"/settings/backups/{backup_id}/restore"
    refused = await refused_page(client, await client.post(path, data={"csrf_token": token}),
                                 path)
    assert "Nothing was restored" in refused.text
    assert "Nothing was restored" not in (await client.get(path)).text
    fragment = await client.post(path, data={"csrf_token": token}, headers=HX)
    assert fragment.status_code == 422 and "Nothing was restored" in fragment.text
    assert await count(app, "SELECT count(*) FROM backups") == 1


async def test_clear_then_restore_over_http(client: httpx.AsyncClient, app, emulator) -> None:
    await sign_in(client)
    token = await token_of(client)
    user = await user_id_of(app, "demo")
    query = ("SELECT group_concat(played_at || ':' || track_id || ':' || ms_played) FROM "
             "(SELECT * FROM plays WHERE user_id = ? ORDER BY played_at)")
    before = await count(app, query, user)
    cleared = await client.post("/settings/clear", data={"csrf_token": token, "understand": "yes",
                                                         "confirm": "DELETE"})
    assert cleared.status_code == 303
    page = (await client.get("/settings")).text
    [message] = flashes(page)
    assert message.startswith(
        f"Deleted all your listening data: {first_sync_plays(emulator)} plays")
    assert "choose Restore next to it under Backups" in message
    assert await count(app, "SELECT count(*) FROM plays WHERE user_id = ?", user) == 0
    backup_id = int(re.findall(r"/settings/backups/(\d+)/restore", page)[0])
    assert "Automatic, before clearing all data" in page
    restored = await client.post(f"/settings/backups/{backup_id}/restore",
                                 headers={**HX, "X-CSRFToken": token}, data={"confirm": "yes"})
    assert restored.status_code == 200 and restored.text.startswith('<div id="settings"')
    assert "Restored the backup of" in restored.text
    assert await count(app, query, user) == before
    assert "Automatic, before restoring a backup" in restored.text


async def test_delete_a_backup(client: httpx.AsyncClient, app) -> None:
    await sign_in(client)
    token = await token_of(client)
    backup_id = await make_backup(client, token)
    confirm = await client.get(f"/settings/backups/{backup_id}/delete", headers=HX)
    assert confirm.status_code == 200 and "Delete this backup" in confirm.text
    path = f"/settings/backups/{backup_id}/delete"
    await refused_page(client, await client.post(path, data={"csrf_token": token}), path)
    deleted = await client.post(f"/settings/backups/{backup_id}/delete",
                                data={"csrf_token": token, "confirm": "yes"})
    assert deleted.status_code == 303
    assert await count(app, "SELECT count(*) FROM backups") == 0
    assert list(services_of(app).settings.backups_dir.glob("*/*.sqlite3")) == []
    again = await client.get(f"/settings/backups/{backup_id}/delete")
    assert again.status_code == 404


async def test_one_user_cannot_reach_another_users_backups(client: httpx.AsyncClient, other,
                                                           app, emulator) -> None:
    await sign_in(client)
    token = await token_of(client)
    backup_id = await make_backup(client, token)
    their_token = await token_of(other)
    for path in (f"/settings/backups/{backup_id}/download",
                 f"/settings/backups/{backup_id}/restore",
                 f"/settings/backups/{backup_id}/delete"):
        assert (await other.get(path)).status_code == 404, path
        assert (await other.get(path, headers=HX)).status_code == 404, path
    for path in (f"/settings/backups/{backup_id}/restore",
                 f"/settings/backups/{backup_id}/delete"):
        response = await other.post(path, data={"csrf_token": their_token, "confirm": "yes"})
        assert response.status_code == 404, path
    # My token does not work in their session either.
    response = await other.post(f"/settings/backups/{backup_id}/delete",
                                data={"csrf_token": token, "confirm": "yes"})
    assert response.status_code == 403
    assert await count(app, "SELECT count(*) FROM backups") == 1
    assert 'class="backup"' not in (await other.get("/settings")).text
    # Clearing their data leaves mine alone.
    user = await user_id_of(app, "demo")
    await other.post("/settings/clear", data={"csrf_token": their_token, "understand": "yes",
                                              "confirm": "DELETE"})
    assert (await count(app, "SELECT count(*) FROM plays WHERE user_id = ?", user)
            == first_sync_plays(emulator))
    assert len(list(services_of(app).settings.backups_dir.glob(f"{user}/*"))) == 1


# --- clear all data ----------------------------------------------------------------------


async def test_clear_step_one_shows_counts(client: httpx.AsyncClient, app, emulator) -> None:
    await sign_in(client)
    page = await client.get("/settings/clear")
    assert page.status_code == 200 and "<title>Clear all data · Music Time Machine" in page.text
    assert "Step 1 of 2" in page.text
    assert f"<strong>{first_sync_plays(emulator)}</strong> plays" in page.text
    assert 'name="understand"' in page.text and 'name="confirm"' in page.text
    assert "you remain signed in" in page.text
    fragment = await client.get("/settings/clear", headers=HX)
    assert fragment.text.startswith('<section id="danger-zone"')
    # Showing step one deletes nothing.
    assert await count(app, "SELECT count(*) FROM plays") == first_sync_plays(emulator)


@pytest.mark.parametrize("form,errors", [
    ({}, {"clear-understand-error", "clear-confirm-error"}),
    ({"understand": "yes"}, {"clear-confirm-error"}),
    ({"confirm": "DELETE"}, {"clear-understand-error"}),
    ({"understand": "yes", "confirm": "delete"}, {"clear-confirm-error"}),
    ({"understand": "on", "confirm": "DELETE"}, {"clear-understand-error"}),
    ({"understand": "yes", "confirm": "DELET"}, {"clear-confirm-error"}),
])
async def test_clear_refuses_without_both_confirmations(client: httpx.AsyncClient, app,
                                                        form: dict, errors: set, emulator) -> None:
    await sign_in(client)
    token = await token_of(client)
    for headers in ({}, HX):
        response = await client.post("/settings/clear", data={**form, "csrf_token": token},
                                     headers=headers)
        if not headers:
            response = await refused_page(client, response, "/settings/clear")
            # What was typed comes back with the errors.
            if form.get("confirm"):
                assert f'value="{form["confirm"]}"' in response.text
        assert response.status_code == 422
        assert set(re.findall(r'class="field-error" id="([^"]+)"', response.text)) == errors
        assert "Nothing was deleted." in response.text
    assert await count(app, "SELECT count(*) FROM plays") == first_sync_plays(emulator)
    assert await count(app, "SELECT count(*) FROM sync_runs") == 1
    assert await count(app, "SELECT count(*) FROM backups") == 0


async def test_clear_with_htmx_returns_the_settings(client: httpx.AsyncClient, app) -> None:
    await sign_in(client)
    token = await token_of(client)
    response = await client.post("/settings/clear", headers={**HX, "X-CSRFToken": token},
                                 data={"understand": "yes", "confirm": " DELETE "})
    assert response.status_code == 200 and response.text.startswith('<div id="settings"')
    assert "Deleted all your listening data" in response.text
    assert await count(app, "SELECT count(*) FROM plays") == 0
    # Still signed in, with tokens and preferences.
    assert (await client.get("/")).status_code == 200
    assert await count(app, "SELECT count(*) FROM tokens") == 1


async def test_clear_during_a_sync_is_a_conflict(client: httpx.AsyncClient, app, emulator) -> None:
    await sign_in(client)
    token = await token_of(client)
    user = await user_id_of(app, "demo")
    await services_of(app).db.run(leases.acquire, user, sync.LEASE, "scheduler",
                                  ttl=600)
    data = {"csrf_token": token, "understand": "yes", "confirm": "DELETE"}
    response = await refused_page(client, await client.post("/settings/clear", data=data),
                                  "/settings/clear", status=409)
    assert "A sync of your account is running" in response.text
    fragment = await client.post("/settings/clear", data=data, headers=HX)
    assert fragment.status_code == 409 and "A sync of your account is running" in fragment.text
    assert await count(app, "SELECT count(*) FROM plays") == first_sync_plays(emulator)


# --- disconnect --------------------------------------------------------------------------


async def test_disconnect_keeping_history(client: httpx.AsyncClient, app, emulator) -> None:
    await sign_in(client)
    token = await token_of(client)
    confirm = await client.get("/settings/disconnect")
    assert 'value="keep" checked' in confirm.text
    response = await client.post("/settings/disconnect", data={"csrf_token": token,
                                                               "confirm": "yes",
                                                               "history": "keep"})
    assert response.status_code == 303 and response.headers["location"] == "/signin"
    signin = (await client.get("/signin")).text
    assert "Spotify is disconnected and you are signed out" in signin
    assert (await client.get("/settings")).status_code == 303
    assert await count(app, "SELECT count(*) FROM tokens") == 0
    assert await count(app, "SELECT count(*) FROM plays") == first_sync_plays(emulator)


async def test_disconnect_deleting_history_with_htmx(client: httpx.AsyncClient, app,
                                                     emulator) -> None:
    await sign_in(client)
    token = await token_of(client)
    response = await client.post("/settings/disconnect", headers={**HX, "X-CSRFToken": token},
                                 data={"confirm": "yes", "history": "delete"})
    assert response.headers["HX-Redirect"] == "/signin"
    assert await count(app, "SELECT count(*) FROM tokens") == 0
    assert await count(app, "SELECT count(*) FROM plays") == 0
    backed_up = await count(app, "SELECT plays FROM backups WHERE kind = 'auto'")
    assert backed_up == first_sync_plays(emulator)
    assert "your listening history is deleted" in (await client.get("/signin")).text


@pytest.mark.parametrize("form", [{}, {"history": "maybe"}, {"history": "keep"}])
async def test_disconnect_needs_a_choice(client: httpx.AsyncClient, app, form: dict) -> None:
    await sign_in(client)
    token = await token_of(client)
    data = {"confirm": "yes", **form} if form.get("history") != "keep" else form
    response = await client.post("/settings/disconnect", data={**data, "csrf_token": token})
    page = await refused_page(client, response, "/settings/disconnect")
    assert "Choose whether to keep or delete your listening history." in page.text
    assert await count(app, "SELECT count(*) FROM tokens") == 1
    assert (await client.get("/settings")).status_code == 200


async def test_nothing_destructive_answers_a_get(client: httpx.AsyncClient, app, emulator) -> None:
    await sign_in(client)
    for path in ("/settings/clear", "/settings/disconnect", "/settings/sync"):
        assert (await client.get(path)).status_code == 200
    assert await count(app, "SELECT count(*) FROM plays") == first_sync_plays(emulator)
    assert await count(app, "SELECT count(*) FROM tokens") == 1
    assert await count(app, "SELECT count(*) FROM sync_runs") == 1
    for path in ("/settings/backups", "/settings/preferences"):
        assert (await client.get(path)).status_code == 405


async def test_json_export_is_valid_json_with_unicode(client: httpx.AsyncClient, app) -> None:
    await sign_in(client, account="newcomer")
    user = await user_id_of(app, "newcomer")
    from tests.test_exports import TRACKS

    await services_of(app).db.run(history.add_plays, user, [
        history.PlayIn(1_700_000_000 + i, track, 1000, "export") for i, track in enumerate(TRACKS)])
    body = (await client.get("/settings/export/json")).content
    assert "坂本 美雨".encode() in body
    assert [r["master_metadata_track_name"] for r in json.loads(body)] == [t.name for t in TRACKS]


async def test_sync_status_says_what_was_not_music(client: httpx.AsyncClient, app) -> None:
    await sign_in(client)
    await services_of(app).db.run(
        lambda c: c.execute("UPDATE sync_runs SET items_skipped = 2"))
    for headers in ({}, {"HX-Request": "true"}):
        html = (await client.get("/settings/sync", headers=headers)).text
        assert "2 of the items Spotify lists as recently played are not music" in html
        assert html.startswith("<!doctype html>") == (not headers)
    await services_of(app).db.run(
        lambda c: c.execute("UPDATE sync_runs SET items_skipped = 0"))
    assert "not music" not in (await client.get("/settings/sync")).text


async def test_a_used_up_quota_is_said_and_pages_keep_working(client: httpx.AsyncClient,
                                                               app) -> None:
    await sign_in(client)
    await services_of(app).db.run(lambda c: c.execute(
        "INSERT INTO spotify_quota (id, until, noticed_at) VALUES (1, ?, 0)",
        (int(time.time()) + 3600,)))
    for path in ("/", "/analytics", "/playlists", "/settings"):
        assert (await client.get(path)).status_code == 200, path
    for headers in ({}, HX):
        html = (await client.get("/settings/sync", headers=headers)).text
        assert "used up its daily allowance of Spotify requests. Syncs of every account" in html
    requests = len(services_of(app).emulator.requests)
    token = csrf_from((await client.get("/settings")).text)
    await client.post("/settings/sync", data={"csrf_token": token})
    assert len(services_of(app).emulator.requests) == requests  # Spotify was not asked
    await services_of(app).db.run(lambda c: c.execute("DELETE FROM spotify_quota"))
    assert "Syncs of every account" not in (await client.get("/settings/sync")).text


async def test_clear_counts_the_playlists_the_page_lists(client: httpx.AsyncClient,
                                                         app) -> None:
    await sign_in(client)
    token = await token_of(client)
    user = await user_id_of(app, "demo")
    now = int(time.time())
    rows = [("Listed", "spotify-listed", None), ("Deleted", "spotify-deleted", now),
            ("Never made", None, None)]
    for name, spotify_id, deleted_at in rows:
        await services_of(app).db.run(lambda c, n=name, s=spotify_id, d=deleted_at: c.execute(
            "INSERT INTO playlists (user_id, name, source, spotify_id, deleted_at, created_at, "
            "updated_at) VALUES (?, ?, 'current_rotation', ?, ?, ?, ?)",
            (user, n, s, d, now, now)))
    listed = (await client.get("/playlists")).text
    assert "Listed" in listed and "Never made" not in listed
    for headers in ({}, HX):
        step = unescape((await client.get("/settings/clear", headers=headers)).text)
        assert ("<strong>1</strong> playlist listed on your Playlists page: only this app's "
                "record of it (the playlist stays on Spotify), and what it still remembers of "
                "<strong>2</strong> playlists you deleted or that never got made") in step
        assert "<strong>1</strong> import listed" not in step
    cleared = await client.post("/settings/clear", data={"csrf_token": token,
                                                         "understand": "yes", "confirm": "DELETE"})
    assert cleared.status_code == 303
    [message] = flashes((await client.get("/settings")).text)
    assert "0 imports and 1 playlist from your Playlists page (those stay on Spotify)" in message
    # What was counted is what went: every record, listed or not.
    assert await count(app, "SELECT count(*) FROM playlists WHERE user_id = ?", user) == 0
