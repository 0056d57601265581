"""Importing a Spotify export in the browser: preview, import, undo, refusals, re-imports.

With JavaScript on, the job card swaps in under the upload form and polls itself; with it
off, the form posts and the job page reloads itself until the task is done. Every test
builds its own export in a month of 2015-2019 of its own (the demo history covers only the
last three years), or previews the demo's sample export without importing it, and compares
counts of 'export' plays read from the live database before and after, so the tests do not
depend on one another's order, on today's date, or on the plays the background sync adds.
"""

from __future__ import annotations

import json
import re
import sqlite3
import zipfile
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Locator, Page, Response, expect

from .helpers import ConsoleErrors, assert_no_horizontal_scroll

MARK = "() => { window.__marker = 1 }"
MARKED = "() => window.__marker"
# Every .job-progress that shows up in the page, as text (the first card may be replaced
# by its finished state within a second, so this is watched rather than polled).
WATCH_PROGRESS = """() => {
  window.__progress = [];
  new MutationObserver(() => {
    for (const el of document.querySelectorAll('.job .job-progress')) {
      window.__progress.push(el.innerText.trim());
    }
  }).observe(document.body, {childList: true, subtree: true});
}"""
SEEN_PROGRESS = "() => window.__progress"
JOB_TIMEOUT = 60_000
SHOTS = Path("/tmp/mtm-shots")
REPORT_ROWS = ("New plays", "Already here", "Too short to count",
               "Podcasts, audiobooks and video", "Could not be read")
FOLDER = "Spotify Extended Streaming History"
REFRESH = re.compile(r'<meta http-equiv="refresh" content="2">')


# --- the live database --------------------------------------------------------------------


class LiveDb:
    """Read-only looks at the live server's database (it writes in WAL mode; reads are safe)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / "mtm.sqlite3"
        self.user_id = self.one("SELECT id FROM users WHERE spotify_id = 'demo'")

    def one(self, sql: str, *args: Any) -> Any:
        with closing(sqlite3.connect(self.path, timeout=30)) as conn:
            row = conn.execute(sql, args).fetchone()
        return None if row is None else row[0]

    def rows(self, sql: str, *args: Any) -> list[tuple]:
        with closing(sqlite3.connect(self.path, timeout=30)) as conn:
            return conn.execute(sql, args).fetchall()

    def export_streams(self, first: int | None = None, last: int | None = None
                       ) -> tuple[int, int]:
        """(plays of 30 s or more, all streams) from exports, optionally between two moments."""
        first = -(2**62) if first is None else first
        last = 2**62 if last is None else last
        counted, streams = self.rows(
            "SELECT coalesce(sum(ms_played >= 30000), 0), count(*) FROM plays "
            "WHERE user_id = ? AND source = 'export' AND played_at BETWEEN ? AND ?",
            self.user_id, first, last)[0]
        return counted, streams

    def demo_plays(self) -> int:
        return self.one("SELECT count(*) FROM plays WHERE user_id = ? AND source = 'demo'",
                        self.user_id)

    def imports(self) -> int:
        return self.one("SELECT count(*) FROM imports WHERE user_id = ?", self.user_id)

    def import_streams(self, import_id: int) -> int:
        return self.one("SELECT count(*) FROM plays WHERE user_id = ? AND import_id = ?",
                        self.user_id, import_id)

    def undone(self, import_id: int) -> tuple[int | None, int | None]:
        return self.rows("SELECT undone_at, plays_removed FROM imports WHERE id = ?",
                         import_id)[0]

    def timezone(self) -> str:
        return self.one("SELECT timezone FROM preferences WHERE user_id = ?",
                        self.user_id) or "UTC"

    def upload_folder(self, job_id: int) -> Path:
        params = json.loads(self.one("SELECT params FROM jobs WHERE id = ?", job_id))
        return self.data_dir / "uploads" / str(self.user_id) / params["upload"]

    def tracks(self, n: int) -> list[tuple[str, str, str, str | None]]:
        """Tracks the demo account knows, as (Spotify id, name, artist, album)."""
        return self.rows(
            """SELECT t.spotify_id, t.name, ar.name, al.name FROM tracks t
               JOIN artists ar ON ar.id = t.artist_id LEFT JOIN albums al ON al.id = t.album_id
               WHERE t.spotify_id IS NOT NULL AND length(t.spotify_id) = 22
               ORDER BY t.id LIMIT ?""", n)


@pytest.fixture
def live_db(live_data_dir: Path | None) -> LiveDb:
    if live_data_dir is None:
        # Never skipped: an import test that cannot see what was stored proves nothing.
        pytest.fail("the import tests check what the server stored, so they need the server "
                    "the suite starts; run them without --base-url", pytrace=False)
    return LiveDb(live_data_dir)


# --- exports built for a test -------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """A zip as Spotify sends it, and what its preview must say."""

    path: Path
    first: int
    last: int
    month: str  # e.g. "March 2018", as the coverage grid names it
    music: int
    repeats: int
    short: int
    podcasts: int
    malformed: int

    @property
    def read(self) -> int:
        return self.music + self.repeats + self.short + self.podcasts + self.malformed

    @property
    def streams(self) -> int:
        """Rows the import adds: the plays and the short streams."""
        return self.music + self.short


def _record(moment: datetime, ms: int) -> dict[str, Any]:
    return {
        "ts": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "platform": "android", "ms_played": ms,
        "conn_country": "SE", "ip_addr": "192.0.2.1",
        "master_metadata_track_name": None, "master_metadata_album_artist_name": None,
        "master_metadata_album_album_name": None, "spotify_track_uri": None,
        "episode_name": None, "episode_show_name": None, "spotify_episode_uri": None,
        "audiobook_title": None, "audiobook_uri": None, "audiobook_chapter_uri": None,
        "audiobook_chapter_title": None, "reason_start": "trackdone", "reason_end": "trackdone",
        "shuffle": False, "skipped": False, "offline": False, "offline_timestamp": None,
        "incognito_mode": False,
    }


def build_export(directory: Path, db: LiveDb, year: int, month: int, *, music: int = 40,
                 short: int = 3, podcasts: int = 2, malformed: int = 1) -> Export:
    """Extended streaming history of one day in the middle of a month, of known tracks.

    One music record appears twice (a repeat is "already here"), `short` streams are under
    30 s, `podcasts` are episodes and `malformed` records have no readable date.
    """
    tracks = db.tracks(music + short)
    assert len(tracks) == music + short, "the demo catalogue is smaller than expected"
    start = datetime(year, month, 14, 11, 0, tzinfo=UTC)
    records, moments = [], []

    def music_record(i: int, ms: int) -> dict[str, Any]:
        spotify_id, name, artist, album = tracks[i]
        moment = start + timedelta(minutes=5 * i)
        moments.append(moment)
        record = _record(moment, ms)
        record.update(master_metadata_track_name=name, master_metadata_album_artist_name=artist,
                      master_metadata_album_album_name=album,
                      spotify_track_uri=f"spotify:track:{spotify_id}")
        return record

    records = [music_record(i, 185_000 + i) for i in range(music)]
    records += [music_record(music + i, 12_000 + i) for i in range(short)]
    records.append(dict(records[0]))  # the same record twice
    after = start + timedelta(minutes=5 * (music + short))
    for i in range(podcasts):
        episode = _record(after + timedelta(minutes=i), 600_000)
        episode.update(episode_name=f"Episode {i}", episode_show_name="A Show",
                       spotify_episode_uri="spotify:episode:" + f"{i:022d}")
        records.append(episode)
    for i in range(malformed):
        broken = _record(after, 200_000)
        broken["ts"] = f"yesterday {i}"
        records.append(broken)

    path = directory / f"my_spotify_data_{year}_{month:02d}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{FOLDER}/Streaming_History_Audio_{year}_0.json",
                         json.dumps(records, ensure_ascii=False, indent=1))
    return Export(path, int(min(moments).timestamp()), int(max(moments).timestamp()),
                  start.strftime("%B %Y"), music, 1, short, podcasts, malformed)


def _period(export: Export, timezone: str) -> str:
    """The dates an import covers, as the list of imports writes them."""
    zone = ZoneInfo(timezone)
    first, last = (datetime.fromtimestamp(t, zone).strftime("%d %b %Y")
                   for t in (export.first, export.last))
    return first if first == last else f"{first} to {last}"


# --- reading the page ---------------------------------------------------------------------


def _int(text: str) -> int:
    return int(text.strip().replace(",", ""))


def _report(scope: Locator) -> tuple[int, dict[str, int]]:
    """The report table's records read, and its counts by row; the counts must add up."""
    table = scope.locator("table.report-counts")
    expect(table).to_be_visible()
    caption = table.locator("caption").inner_text()
    match = re.fullmatch(r"The ([\d,]+) records? read, one line each", caption.strip())
    assert match, caption
    read = _int(match.group(1))
    counts = {row.locator("th").inner_text().strip(): _int(row.locator("td.num").inner_text())
              for row in table.locator("tbody tr").all()}
    assert tuple(counts) == REPORT_ROWS, counts
    assert sum(counts.values()) == read, f"the counts {counts} do not add up to {read}"
    return read, counts


def _expected_counts(export: Export, *, again: bool = False) -> dict[str, int]:
    new = 0 if again else export.music
    return {"New plays": new, "Already here": export.music + export.repeats - new,
            "Too short to count": export.short, "Podcasts, audiobooks and video": export.podcasts,
            "Could not be read": export.malformed}


def _job_id(text: str) -> int:
    match = re.search(r'<section id="job-(\d+)"', text)
    assert match, f"no job card in the answer:\n{text[:500]}"
    return int(match.group(1))


def _job_id_from_url(url: str) -> int:
    match = re.search(r"/jobs/(\d+)$", url)
    assert match, url
    return int(match.group(1))


def _posted(path: str) -> Callable[[Response], bool]:
    return lambda r: r.request.method == "POST" and r.url.split("?")[0].endswith(path)


def _import_id(link: Locator) -> int:
    href = link.get_attribute("href") or ""
    match = re.search(r"/settings/imports/(\d+)/undo$", href)
    assert match, href
    return int(match.group(1))


def _shoot(page: Page, name: str) -> None:
    """Screenshots of the page and of its import section at desktop and phone width."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or {"width": 1280, "height": 720}
    try:
        for width in (1280, 375):
            page.set_viewport_size({"width": width, "height": 800})
            page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
            page.locator("#import").screenshot(path=str(SHOTS / f"{name}-{width}-section.png"))
    finally:
        page.set_viewport_size(size)


def _sideways(page: Page) -> str | None:
    """Why the page scrolls sideways (the elements sticking out), or None when it does not."""
    try:
        assert_no_horizontal_scroll(page)
    except AssertionError as exc:
        # The outermost elements that stick out (what scrolls inside .table-scroll is fine).
        wide = page.evaluate("""() => {
            const out = el => el.getBoundingClientRect().right > window.innerWidth + 0.5;
            return [...document.querySelectorAll('main *')]
              .filter(el => out(el) && !out(el.parentElement) && !el.closest('.table-scroll'))
              .map(el => `${el.tagName.toLowerCase()}.${el.className.replaceAll(' ', '.')}`
                         + ` to ${Math.round(el.getBoundingClientRect().right)} px`);
        }""")
        return f"{exc} ({', '.join(wide)})"
    return None


def _broken_words(page: Page, selector: str) -> list[str]:
    """Headers and labels under `selector` whose one word is broken over several lines."""
    return page.evaluate("""selector => [...document.querySelectorAll(selector)]
        .filter(el => el.innerText.trim() && !el.innerText.trim().includes(' ')
                      && !el.querySelector('.visually-hidden'))
        .filter(el => {
            const range = document.createRange();
            range.selectNodeContents(el);
            const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
            return tops.size > 1;
        })
        .map(el => el.innerText.trim().replaceAll('\\n', ''))""", selector)


def _upload_in_place(page: Page, path: Path) -> tuple[int, Locator]:
    """Choose the file and submit with JavaScript on: the job and the card it answers with."""
    page.set_input_files("#import-files", path)
    with page.expect_response(_posted("/settings/imports")) as answer:
        page.locator("#import").get_by_role("button", name="Upload and preview").click()
    assert answer.value.status == 202, answer.value.text()[:500]
    job_id = _job_id(answer.value.text())
    return job_id, page.locator(f"#job-{job_id}")


def _upload_without_javascript(page: Page, path: Path) -> int:
    """Choose the file and submit with JavaScript off; the job whose page the browser lands on."""
    page.set_input_files("#import-files", path)
    with page.expect_response(_posted("/settings/imports")) as answer:
        page.locator("#import").get_by_role("button", name="Upload and preview").click()
    assert answer.value.status == 303
    page.wait_for_url(re.compile(r"/jobs/\d+$"))
    return _job_id_from_url(page.url)


class JobLoads:
    """Every load of a job page (JavaScript off): whether it showed progress and asked to reload.

    Recorded from before the form is sent: the first load follows the POST's redirect.
    """

    def __init__(self, page: Page) -> None:
        self.loads: dict[int, list[tuple[int, bool, bool]]] = {}
        page.on("response", self._on_response)

    def _on_response(self, response: Response) -> None:
        match = re.search(r"/jobs/(\d+)$", response.url)
        if response.request.method != "GET" or match is None:
            return
        body = response.text()
        active = 'class="job-progress"' in body
        self.loads.setdefault(int(match.group(1)), []).append(
            (response.status, active, bool(REFRESH.search(body))))

    def assert_reloaded_until_done(self, job_id: int, *, at_least: int = 1) -> None:
        loads = self.loads.get(job_id, [])
        assert len(loads) >= max(at_least, 1), loads
        for status, active, refresh in loads:
            assert status == 200, loads
            # While it runs the page reloads itself; once done it stops.
            assert refresh == active, loads
        assert not loads[-1][1], f"the last load still shows progress: {loads}"


# --- JavaScript on ------------------------------------------------------------------------



def _assert_nothing_new(card: Locator, export: Any, live_db: LiveDb, stored: tuple[int, int],
                        imports: int) -> None:
    """A preview of files imported already: all of it here, no Import button, nothing done."""
    assert _report(card) == (export.read, _expected_counts(export, again=True))
    expect(card).to_contain_text(
        "Nothing new to import: everything in these files is here already.")
    expect(card.get_by_role("button", name=re.compile("^Import"))).to_have_count(0)
    assert live_db.export_streams(export.first, export.last) == stored
    assert live_db.imports() == imports


def _undo(page: Page, import_id: int, export: Any, live_db: LiveDb) -> None:
    """Undo an import from its confirmation page, leaving the history as it was."""
    page.goto(f"/settings/imports/{import_id}/undo")
    page.get_by_role("button", name="Undo this import").click()
    expect(page.locator(".job-done .flash-success")).to_contain_text(
        f"removed {export.streams} streams", timeout=JOB_TIMEOUT)
    assert live_db.export_streams(export.first, export.last) == (0, 0)


def test_sample_export_previews_in_place(signed_in_page: Page, live_db: LiveDb,
                                         tmp_path: Path) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    page.goto("/settings")
    section = page.locator("#import")
    with page.expect_download() as download:
        section.get_by_role("link", name="a sample export").click()
    sample = tmp_path / download.value.suggested_filename
    download.value.save_as(sample)
    assert sample.suffix == ".zip" and zipfile.is_zipfile(sample), sample
    with zipfile.ZipFile(sample) as archive:
        assert all(n.startswith(f"{FOLDER}/Streaming_History_Audio_")
                   for n in archive.namelist()), archive.namelist()
    before = live_db.export_streams(), live_db.imports()

    page.evaluate(MARK)
    page.evaluate(WATCH_PROGRESS)
    _, card = _upload_in_place(page, sample)
    # The card showed its progress display first, then the report, in place.
    expect(card.locator("table.report-counts")).to_be_visible(timeout=JOB_TIMEOUT)
    assert page.evaluate(SEEN_PROGRESS), "the job card never showed its progress"
    expect(card).not_to_have_attribute("hx-trigger", re.compile("every"))
    expect(card.get_by_role("heading", name="Preview of your import")).to_be_visible()
    read, counts = _report(card)
    assert read > 1_000, read
    # A year of listening before the demo history: new, and none of it here already.
    assert counts["New plays"] > 0 and counts["Already here"] == 0, counts
    expect(card.get_by_role("button", name=f"Import {counts['New plays']:,} new plays")
           ).to_be_enabled()
    expect(card).to_contain_text("A backup of your data is taken first")
    assert page.evaluate(MARKED) == 1, "the page was reloaded"
    assert page.url.endswith("/settings")
    # Nothing is imported by a preview.
    assert (live_db.export_streams(), live_db.imports()) == before
    errors.assert_none()


def test_import_then_undo_in_place(signed_in_page: Page, live_db: LiveDb,
                                   tmp_path: Path) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    export = build_export(tmp_path, live_db, 2018, 3)
    assert live_db.export_streams(export.first, export.last) == (0, 0)
    demo = live_db.demo_plays()
    imports = live_db.imports()

    page.goto("/settings")
    page.evaluate(MARK)
    preview_id, preview = _upload_in_place(page, export.path)
    expect(preview.locator("table.report-counts")).to_be_visible(timeout=JOB_TIMEOUT)
    read, counts = _report(preview)
    assert (read, counts) == (export.read, _expected_counts(export))
    expect(preview).to_contain_text(f"{export.short} new ones will be kept for their minutes")
    expect(preview.locator(".report-problems li")).to_have_count(export.malformed)
    expect(preview.locator(".report-problems")).to_contain_text("“ts” is not a date and time")
    assert live_db.export_streams(export.first, export.last) == (0, 0)
    assert live_db.imports() == imports
    _shoot(page, "import-preview")

    page.evaluate(WATCH_PROGRESS)
    with page.expect_response(_posted(f"/jobs/{preview_id}/import")) as answer:
        preview.get_by_role("button", name=f"Import {export.music} new plays").click()
    assert answer.value.status == 202
    card = page.locator(f"#job-{_job_id(answer.value.text())}")
    expect(card.locator(".flash-success")).to_have_text(
        f"Imported {export.music} new plays and {export.short} short streams.",
        timeout=JOB_TIMEOUT)
    assert page.evaluate(SEEN_PROGRESS), "the import never showed its progress"
    expect(card).not_to_have_attribute("hx-trigger", re.compile("every"))
    assert _report(card) == (export.read, _expected_counts(export))
    expect(card).to_contain_text(f"{export.short} new ones were kept for their minutes")
    undo_link = card.get_by_role("link", name="Undo this import…")
    import_id = _import_id(undo_link)

    # The list of imports and the month-by-month grid reload on mtm:history-changed.
    row = page.locator(f"#imports #import-{import_id}")
    expect(row).to_contain_text(_period(export, live_db.timezone()))
    expect(row.locator("td.num")).to_have_text(f"{export.music} plays")
    cell = page.locator(f'#coverage td[title^="{export.month}:"]')
    expect(cell).to_have_class("source-export")
    expect(cell).to_have_attribute("title", f"{export.month}: {export.music} plays "
                                   f"({export.music} extended streaming history)")
    assert page.evaluate(MARKED) == 1, "the page was reloaded"
    assert page.url.endswith("/settings")
    assert live_db.export_streams(export.first, export.last) == (export.music, export.streams)
    assert live_db.import_streams(import_id) == export.streams
    _shoot(page, "import-done")

    # Undo, from the list: a confirmation page, then the undo runs in place of it.
    row.get_by_role("link", name="Undo…").click()
    page.wait_for_url(re.compile(rf"/settings/imports/{import_id}/undo$"))
    detail = page.locator("#import-detail")
    expect(detail.get_by_role("heading", name=re.compile("^Undo the import of"))).to_be_visible()
    expect(detail).to_contain_text(
        f"This removes the {export.streams} streams this import added ({export.music} plays "
        f"and {export.short} short streams, {_period(export, live_db.timezone())})")
    page.evaluate(MARK)
    with page.expect_response(_posted(f"/settings/imports/{import_id}/undo")) as answer:
        detail.get_by_role("button", name="Undo this import").click()
    assert answer.value.status == 202
    undo = page.locator(f"#job-{_job_id(answer.value.text())}")
    expect(undo.locator(".flash-success")).to_contain_text(
        f"Undone: removed {export.streams} streams that the import of", timeout=JOB_TIMEOUT)
    expect(undo).to_contain_text("A backup was taken first.")
    assert page.evaluate(MARKED) == 1, "the page was reloaded"
    assert live_db.export_streams(export.first, export.last) == (0, 0)
    assert live_db.import_streams(import_id) == 0
    assert live_db.undone(import_id)[1] == export.streams
    assert live_db.demo_plays() == demo

    undo.get_by_role("link", name="Back to Settings").click()
    row = page.locator(f"#imports #import-{import_id}")
    expect(row.locator("td.num")).to_have_text(f"undone {export.streams} removed")
    expect(row.get_by_role("link", name="Undo…")).to_have_count(0)
    expect(page.locator(f'#coverage td.source-export[title^="{export.month}:"]')).to_have_count(0)
    errors.assert_none()


def test_preview_and_import_fit_a_phone_screen(signed_in_page: Page, live_db: LiveDb,
                                              tmp_path: Path) -> None:
    page = signed_in_page
    page.set_viewport_size({"width": 375, "height": 800})
    export = build_export(tmp_path, live_db, 2019, 2)
    page.goto("/settings")
    problems = {}
    preview_id, preview = _upload_in_place(page, export.path)
    expect(preview.locator("table.report-counts")).to_be_visible(timeout=JOB_TIMEOUT)
    problems["preview"] = _sideways(page)
    preview.locator(".report-files summary").click()
    expect(preview.locator(".report-files table")).to_be_visible()
    problems["preview, files listed"] = _sideways(page)

    with page.expect_response(_posted(f"/jobs/{preview_id}/import")) as answer:
        preview.get_by_role("button", name=f"Import {export.music} new plays").click()
    card = page.locator(f"#job-{_job_id(answer.value.text())}")
    expect(card.locator(".flash-success")).to_be_visible(timeout=JOB_TIMEOUT)
    import_id = _import_id(card.get_by_role("link", name="Undo this import…"))
    expect(page.locator(f"#imports #import-{import_id}")).to_be_visible()
    problems["finished import"] = _sideways(page)
    # Tables may scroll inside their box, but a year or a column name must stay readable.
    for table in ("#coverage", "#imports"):
        broken = _broken_words(page, f"{table} th")
        problems[f"{table} headers"] = (
            f"broken over several lines: {broken}" if broken else None)
    # The table of imports may scroll inside its own box, but its row must be reachable.
    expect(page.locator(f"#imports #import-{import_id}").get_by_role("link", name="Undo…")
           ).to_be_attached()

    # Leave the history as it was, then report every width problem at once.
    page.goto(f"/settings/imports/{import_id}/undo")
    problems["undo confirmation"] = _sideways(page)
    page.get_by_role("button", name="Undo this import").click()
    expect(page.locator(".job-done .flash-success")).to_contain_text(
        f"removed {export.streams} streams", timeout=JOB_TIMEOUT)
    assert live_db.export_streams(export.first, export.last) == (0, 0)
    wrong = {name: why for name, why in problems.items() if why}
    assert not wrong, "at 375 px:\n" + "\n".join(f"{k}: {v}" for k, v in wrong.items())


def test_files_that_are_not_an_export_are_refused_in_place(
        signed_in_page: Page, live_db: LiveDb, tmp_path: Path, base_url: str) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page, expected_status_urls=(base_url + "/settings/imports",))
    notes = tmp_path / "notes.txt"
    notes.write_text("Remember to ask Spotify for my data.\n")
    not_a_list = tmp_path / "Streaming_History_Audio_2019_0.json"
    not_a_list.write_text(json.dumps({"ts": "2019-05-01T10:00:00Z", "ms_played": 200_000}))
    before = live_db.export_streams(), live_db.imports()

    page.goto("/settings")
    page.evaluate(MARK)
    _, card = _upload_in_place(page, notes)
    expect(card.get_by_role("alert")).to_have_text(
        "notes.txt is neither a zip nor a JSON file. Give the zip Spotify sent, or the JSON "
        "files inside it.", timeout=JOB_TIMEOUT)
    expect(card).to_have_class(re.compile(r"\bjob-failed\b"))
    expect(card.locator("table.report-counts")).to_have_count(0)
    expect(card.get_by_role("button", name=re.compile("^Import"))).to_have_count(0)

    _, card = _upload_in_place(page, not_a_list)
    expect(card.get_by_role("alert")).to_contain_text(
        "Streaming_History_Audio_2019_0.json does not hold a list of records, so it is not a "
        "listening history file. Nothing was imported.", timeout=JOB_TIMEOUT)
    expect(page.locator("#import-job .job")).to_have_count(1)
    assert page.evaluate(MARKED) == 1, "the page was reloaded"
    assert (live_db.export_streams(), live_db.imports()) == before

    # The form refuses to send no file; the server refuses it too, with 422 and the reason.
    page.locator("#import-files").evaluate("input => input.removeAttribute('required')")
    page.set_input_files("#import-files", [])
    with page.expect_response(_posted("/settings/imports")) as answer:
        page.locator("#import").get_by_role("button", name="Upload and preview").click()
    assert answer.value.status == 422
    refusal = page.locator("#import-job").get_by_role("alert")
    expect(refusal).to_contain_text("Choose the file to import")
    expect(refusal).to_contain_text("422")
    assert page.evaluate(MARKED) == 1, "the page was reloaded"
    assert (live_db.export_streams(), live_db.imports()) == before
    errors.assert_none()


def test_reimporting_the_same_file_has_nothing_new(signed_in_page: Page, live_db: LiveDb,
                                                    tmp_path: Path) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    export = build_export(tmp_path, live_db, 2016, 4)
    page.goto("/settings")
    _, preview = _upload_in_place(page, export.path)
    preview.get_by_role("button", name=f"Import {export.music} new plays").click(
        timeout=JOB_TIMEOUT)
    done = page.locator("#import-job .job-done .flash-success")
    expect(done).to_contain_text(f"Imported {export.music} new plays", timeout=JOB_TIMEOUT)
    import_id = _import_id(page.locator("#import-job").get_by_role("link",
                                                                   name="Undo this import…"))
    stored = live_db.export_streams(export.first, export.last)
    assert stored == (export.music, export.streams)
    imports = live_db.imports()

    _, again = _upload_in_place(page, export.path)
    expect(again.locator("table.report-counts")).to_be_visible(timeout=JOB_TIMEOUT)
    expect(again).to_contain_text("none of them new")
    _assert_nothing_new(again, export, live_db, stored, imports)
    _undo(page, import_id, export, live_db)
    errors.assert_none()


# --- JavaScript off -----------------------------------------------------------------------


def test_sample_export_preview_without_javascript(nojs_page: Page, live_db: LiveDb,
                                                  tmp_path: Path) -> None:
    page = nojs_page
    page.goto("/settings")
    with page.expect_download() as download:
        page.locator("#import").get_by_role("link", name="a sample export").click()
    sample = tmp_path / download.value.suggested_filename
    download.value.save_as(sample)
    assert zipfile.is_zipfile(sample)
    before = live_db.export_streams(), live_db.imports()

    page.set_input_files("#import-files", sample)
    loads = JobLoads(page)
    with page.expect_response(_posted("/settings/imports")) as answer:
        page.locator("#import").get_by_role("button", name="Upload and preview").click()
    assert answer.value.status == 303
    page.wait_for_url(re.compile(r"/jobs/\d+$"))
    job_id = _job_id_from_url(page.url)
    card = page.locator(f"#job-{job_id}")
    expect(card.locator("table.report-counts")).to_be_visible(timeout=JOB_TIMEOUT)
    assert page.url.endswith(f"/jobs/{job_id}")
    expect(page.get_by_role("heading", level=1, name="Preview of your import")).to_be_visible()
    # A year of plays takes more than a moment to read: the page reloaded itself meanwhile.
    loads.assert_reloaded_until_done(job_id, at_least=2)
    read, counts = _report(card)
    assert read > 1_000 and counts["New plays"] > 0, counts
    expect(card.get_by_role("button", name=f"Import {counts['New plays']:,} new plays")
           ).to_be_visible()
    assert (live_db.export_streams(), live_db.imports()) == before


def test_import_then_undo_without_javascript(nojs_page: Page, live_db: LiveDb,
                                             tmp_path: Path) -> None:
    page = nojs_page
    export = build_export(tmp_path, live_db, 2019, 7)
    assert live_db.export_streams(export.first, export.last) == (0, 0)
    demo = live_db.demo_plays()
    imports = live_db.imports()

    page.goto("/settings")
    loads = JobLoads(page)
    preview_id = _upload_without_javascript(page, export.path)
    preview = page.locator(f"#job-{preview_id}")
    expect(preview.locator("table.report-counts")).to_be_visible(timeout=JOB_TIMEOUT)
    loads.assert_reloaded_until_done(preview_id)
    assert _report(preview) == (export.read, _expected_counts(export))
    assert live_db.export_streams(export.first, export.last) == (0, 0)
    assert live_db.imports() == imports

    with page.expect_response(_posted(f"/jobs/{preview_id}/import")) as answer:
        preview.get_by_role("button", name=f"Import {export.music} new plays").click()
    assert answer.value.status == 303
    page.wait_for_url(re.compile(r"/jobs/\d+$"))
    import_job = _job_id_from_url(page.url)
    card = page.locator(f"#job-{import_job}")
    expect(card.locator(".flash-success")).to_have_text(
        f"Imported {export.music} new plays and {export.short} short streams.",
        timeout=JOB_TIMEOUT)
    loads.assert_reloaded_until_done(import_job)
    assert _report(card) == (export.read, _expected_counts(export))
    import_id = _import_id(card.get_by_role("link", name="Undo this import…"))
    assert live_db.export_streams(export.first, export.last) == (export.music, export.streams)
    assert live_db.import_streams(import_id) == export.streams

    page.goto("/settings")
    row = page.locator(f"#imports #import-{import_id}")
    expect(row).to_contain_text(_period(export, live_db.timezone()))
    expect(row.locator("td.num")).to_have_text(f"{export.music} plays")
    cell = page.locator(f'#coverage td[title^="{export.month}:"]')
    expect(cell).to_have_class("source-export")

    row.get_by_role("link", name="Undo…").click()
    page.wait_for_url(re.compile(rf"/settings/imports/{import_id}/undo$"))
    expect(page.locator("#import-detail")).to_contain_text(
        f"This removes the {export.streams} streams this import added")
    with page.expect_response(_posted(f"/settings/imports/{import_id}/undo")) as answer:
        page.get_by_role("button", name="Undo this import").click()
    assert answer.value.status == 303
    page.wait_for_url(re.compile(r"/jobs/\d+$"))
    undo_job = _job_id_from_url(page.url)
    expect(page.locator(f"#job-{undo_job} .flash-success")).to_contain_text(
        f"Undone: removed {export.streams} streams that the import of", timeout=JOB_TIMEOUT)
    loads.assert_reloaded_until_done(undo_job)
    assert live_db.export_streams(export.first, export.last) == (0, 0)
    assert live_db.undone(import_id)[1] == export.streams
    assert live_db.demo_plays() == demo

    page.get_by_role("link", name="Back to Settings").click()
    row = page.locator(f"#imports #import-{import_id}")
    expect(row.locator("td.num")).to_have_text(f"undone {export.streams} removed")
    expect(row.get_by_role("link", name="Undo…")).to_have_count(0)
    expect(page.locator(f'#coverage td.source-export[title^="{export.month}:"]')).to_have_count(0)


def test_files_that_are_not_an_export_are_refused_without_javascript(
        nojs_page: Page, live_db: LiveDb, tmp_path: Path) -> None:
    page = nojs_page
    notes = tmp_path / "notes.txt"
    notes.write_text("Remember to ask Spotify for my data.\n")
    not_history = tmp_path / "object.json"
    not_history.write_text(json.dumps({"hello": "world"}))
    before = live_db.export_streams(), live_db.imports()

    page.goto("/settings")
    loads = JobLoads(page)
    job_id = _upload_without_javascript(page, notes)
    alert = page.locator(f"#job-{job_id}").get_by_role("alert")
    expect(alert).to_have_text(
        "notes.txt is neither a zip nor a JSON file. Give the zip Spotify sent, or the JSON "
        "files inside it.", timeout=JOB_TIMEOUT)
    # The upload was accepted (303 to its job); the job failed, and its page stops reloading.
    loads.assert_reloaded_until_done(job_id)

    page.goto("/settings")
    job_id = _upload_without_javascript(page, not_history)
    card = page.locator(f"#job-{job_id}")
    expect(card.get_by_role("alert")).to_contain_text("No listening history was found.",
                                                      timeout=JOB_TIMEOUT)
    assert (live_db.export_streams(), live_db.imports()) == before

    # The uploaded file waits for a decision; discarding it deletes it.
    folder = live_db.upload_folder(job_id)
    assert folder.is_dir()
    card.get_by_role("button", name="Discard the uploaded files").click()
    page.wait_for_url(re.compile(r"/settings(#import)?$"))
    expect(page.locator("#flashes")).to_contain_text(
        "The uploaded files were deleted; nothing was imported.")
    assert not folder.exists()

    # No file at all: refused before anything runs; back on Settings (post/redirect/get)
    # with 422 and the reason, shown once, so a reload sends nothing again.
    page.locator("#import-files").evaluate("input => input.removeAttribute('required')")
    with page.expect_response(_posted("/settings/imports")) as answer, \
            page.expect_navigation() as shown:
        page.locator("#import").get_by_role("button", name="Upload and preview").click()
    assert answer.value.status == 303
    assert shown.value.request.method == "GET" and shown.value.status == 422
    expect(page.locator("#import").get_by_role("alert").filter(
        has_text="Nothing was uploaded")).to_contain_text("Choose the file to import")
    reloaded = page.reload()
    assert reloaded is not None and reloaded.request.method == "GET" and reloaded.status == 200
    expect(page.locator("#import").get_by_text("Nothing was uploaded")).to_have_count(0)
    assert (live_db.export_streams(), live_db.imports()) == before


def test_reimporting_the_same_file_without_javascript(nojs_page: Page, live_db: LiveDb,
                                                      tmp_path: Path) -> None:
    page = nojs_page
    export = build_export(tmp_path, live_db, 2015, 9)
    page.goto("/settings")
    preview_id = _upload_without_javascript(page, export.path)
    page.locator(f"#job-{preview_id}").get_by_role(
        "button", name=f"Import {export.music} new plays").click(timeout=JOB_TIMEOUT)
    page.wait_for_url(re.compile(r"/jobs/\d+$"))
    expect(page.locator(".job-done .flash-success")).to_contain_text(
        f"Imported {export.music} new plays", timeout=JOB_TIMEOUT)
    import_id = _import_id(page.get_by_role("link", name="Undo this import…"))
    stored = live_db.export_streams(export.first, export.last)
    assert stored == (export.music, export.streams)
    imports = live_db.imports()

    page.goto("/settings")
    again_id = _upload_without_javascript(page, export.path)
    again = page.locator(f"#job-{again_id}")
    expect(again.locator("table.report-counts")).to_be_visible(timeout=JOB_TIMEOUT)
    _assert_nothing_new(again, export, live_db, stored, imports)
    _undo(page, import_id, export, live_db)
