"""The Home dashboard: chart, figures, recent plays and refresh, with JavaScript on and off."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from playwright.sync_api import Page, expect

from mtm import listening

from .helpers import ConsoleErrors, assert_no_horizontal_scroll, demo_plays

CHART = 'canvas[data-chart="chart-last-30"]'
PAGE_SIZE = 20

# Counts the canvas pixels close to each chart colour (bars: --chart-1, line: --chart-2),
# and all painted (non-transparent) pixels.
PIXELS_JS = """(canvas) => {
  const ctx = canvas.getContext("2d");
  const {data} = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const near = (i, rgb) => Math.abs(data[i] - rgb[0]) <= 8 && Math.abs(data[i + 1] - rgb[1]) <= 8
    && Math.abs(data[i + 2] - rgb[2]) <= 8 && data[i + 3] >= 240;
  let painted = 0, bars = 0, line = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] !== 0) painted++;
    if (near(i, [0x1d, 0xb9, 0x54])) bars++;
    if (near(i, [0x3b, 0x82, 0xf6])) line++;
  }
  const blank = document.createElement("canvas");
  blank.width = canvas.width;
  blank.height = canvas.height;
  return {painted, bars, line, total: data.length / 4, width: canvas.width,
          height: canvas.height, differsFromBlank: canvas.toDataURL() !== blank.toDataURL()};
}"""


def _number(text: str) -> int:
    match = re.match(r"\s*([\d,]+)", text)
    assert match, f"not a number: {text!r}"
    return int(match.group(1).replace(",", ""))


def _play_times(page: Page) -> list[datetime]:
    values = page.locator("#recent-plays li.play time").evaluate_all(
        "(nodes) => nodes.map((n) => n.getAttribute('datetime'))")
    times = [datetime.fromisoformat(v) for v in values]
    assert all(t.tzinfo is not None for t in times), f"play times without a zone: {values}"
    return times


def _assert_newest_first(times: list[datetime]) -> None:
    assert times == sorted(times, reverse=True), "plays are not listed newest first"
    assert len(set(times)) == len(times), "the same play is listed twice"


def _show_more(page: Page):
    return page.locator("#recent-plays > li.more").get_by_role("link", name="Show more")


# JavaScript on


def test_chart_is_drawn_and_not_blank(signed_in_page: Page) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    page.reload()
    canvas = page.locator(CHART)
    expect(canvas).to_have_attribute("data-drawn", "true")
    expect(canvas).to_have_attribute("role", "img")
    expect(canvas).to_have_attribute("aria-label", re.compile("minutes listened", re.I))
    box = canvas.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 150, f"chart too small: {box}"

    # Chart.js animates: wait until both the bars and the plays line are on the canvas.
    page.wait_for_function(
        """(canvas) => {
          const {data} = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
          let bars = 0, line = 0;
          for (let i = 0; i < data.length; i += 4) {
            if (data[i + 3] < 240) continue;
            if (Math.abs(data[i] - 0x1d) <= 8 && Math.abs(data[i + 1] - 0xb9) <= 8
                && Math.abs(data[i + 2] - 0x54) <= 8) bars++;
            if (Math.abs(data[i] - 0x3b) <= 8 && Math.abs(data[i + 1] - 0x82) <= 8
                && Math.abs(data[i + 2] - 0xf6) <= 8) line++;
          }
          return bars > 500 && line > 100;
        }""",
        arg=canvas.element_handle(),
        timeout=10_000,
    )
    pixels = canvas.evaluate(PIXELS_JS)
    assert pixels["differsFromBlank"], f"the chart canvas is blank: {pixels}"
    assert pixels["painted"] > pixels["total"] * 0.02, f"almost nothing painted: {pixels}"
    assert pixels["bars"] > 500, f"no minute bars drawn: {pixels}"
    assert pixels["line"] > 100, f"no plays line drawn: {pixels}"
    errors.assert_none()


def test_headline_figures_are_positive(signed_in_page: Page, live_data_dir: Path | None
                                       ) -> None:
    page = signed_in_page
    figures = page.locator("dl.figures .figure")
    expect(figures).to_have_count(6)
    values = {}
    for i in range(6):
        figure = figures.nth(i)
        values[figure.locator("dt").inner_text().strip()] = _number(
            figure.locator("dd").inner_text())
    assert list(values) == ["Plays", "Hours listened", "Artists", "Tracks", "Current streak",
                            "Longest streak"]
    for name in ("Plays", "Hours listened", "Artists", "Tracks", "Longest streak"):
        assert values[name] > 0, f"{name} is {values[name]}: {values}"
    # The generated history has 20,000 streams, most of them 30 s or more. A sync (50 plays
    # at most) may have landed since the page was made, never taken any away.
    shown, stored = values["Plays"], demo_plays(live_data_dir)
    if stored is not None:
        assert stored - 100 <= shown <= stored, (shown, stored)
    assert shown > 15_000, values
    assert values["Artists"] <= values["Tracks"] <= values["Plays"], values
    assert values["Current streak"] <= values["Longest streak"], values
    # Hours: at most 20 minutes a play on average is a sane upper bound for music.
    assert values["Hours listened"] < values["Plays"] / 3, values
    _assert_month_tops_match_the_database(page, live_data_dir)


def _assert_month_tops_match_the_database(page: Page, data_dir: Path | None) -> None:
    """The month's top artists are the ones the database holds for the month the page names.

    On the first day of a month the list is rightly empty (the demo history ends before
    today), so the check reads the month from the heading instead of assuming plays.
    """
    heading = page.locator("#top-artists-title").inner_text()
    month = datetime.strptime(heading.removeprefix("Top artists in ").strip(), "%B %Y").date()
    ranking = page.locator("section[aria-labelledby=top-artists-title] ol.ranking li .name")
    if data_dir is None:
        # A server given with --base-url: only the page itself can be checked.
        if ranking.count() == 0:
            expect(page.get_by_text("Nothing played yet this month.").first).to_be_visible()
        return
    # The scheduler may store a few new plays meanwhile: compare a page read between two
    # equal answers of the database.
    for _ in range(5):
        before = _month_top_artists(data_dir, month)
        shown = [name.strip() for name in ranking.all_inner_texts()]
        if before == _month_top_artists(data_dir, month):
            break
        page.reload()
    assert shown == before, (shown, before)
    if not before:
        expect(page.get_by_text("Nothing played yet this month.").first).to_be_visible()


def _month_top_artists(data_dir: Path, month: date) -> list[str]:
    conn = sqlite3.connect(data_dir / "mtm.sqlite3")
    # The stats functions read columns by name, as the app's own connections allow.
    conn.row_factory = sqlite3.Row
    try:
        user_id = conn.execute("SELECT id FROM users WHERE spotify_id = 'demo'").fetchone()[0]
        next_month = (month + timedelta(days=32)).replace(day=1)
        # The demo account counts days in UTC.
        start = int(datetime.combine(month, time(0), UTC).timestamp())
        end = int(datetime.combine(next_month, time(0), UTC).timestamp())
        month_tracks = listening.per_track(conn, user_id, start, end)
        return [a.name for a in listening.top(conn, "artist", listening.artist_totals(month_tracks),
                                              limit=5)]
    finally:
        conn.close()


def test_show_more_appends_without_navigation(signed_in_page: Page) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    page.reload()
    plays = page.locator("#recent-plays > li.play")
    expect(plays).to_have_count(PAGE_SIZE)
    url = page.url
    first = _play_times(page)
    page.evaluate("() => { window.__marker = 1; }")
    # htmx may replaceState() the same URL (a same-document navigation); a page load is a bug.
    loads: list[str] = []
    page.on("domcontentloaded", lambda p: loads.append(p.url))

    for pages in (2, 3):
        more = _show_more(page)
        expect(more).to_have_count(1)
        href = more.get_attribute("href") or ""
        assert urlsplit(href).path == "/plays" and "before" in parse_qs(urlsplit(href).query)
        with page.expect_response(lambda r: urlsplit(r.url).path == "/plays") as answer:
            more.click()
        assert answer.value.status == 200
        assert answer.value.request.headers.get("hx-request") == "true"
        assert "<html" not in answer.value.text().lower(), "HTMX got a full page, not a fragment"
        expect(plays).to_have_count(PAGE_SIZE * pages)
        # The old "Show more" item was replaced, not kept next to the new one.
        expect(page.locator("#recent-plays > li.more")).to_have_count(1)
        expect(page.locator("#recent-plays > li.more")).to_be_visible()
        assert page.url == url
        assert page.evaluate("() => window.__marker") == 1, "the page was reloaded"

    assert loads == [], f"the page loaded again: {loads}"
    times = _play_times(page)
    assert times[:PAGE_SIZE] == first
    _assert_newest_first(times)
    # The "Show more" item is last, after every play.
    expect(page.locator("#recent-plays > li").last).to_have_class(re.compile(r"\bmore\b"))
    errors.assert_none()


def _land_a_sync(data_dir: Path, new_plays: int) -> list[str]:
    """Store what a background sync would: a finished run with `new_plays` plays of now.

    Written straight into the live database, so the plays are known and newer than any the
    page lists; the track names are returned, newest first.
    """
    from mtm import db, sync
    from mtm.history import ArtistIn, PlayIn, TrackIn

    conn = db.connect(data_dir / "mtm.sqlite3")
    try:
        user_id = conn.execute("SELECT id FROM users WHERE spotify_id = 'demo'").fetchone()[0]
        now = int(datetime.now(UTC).timestamp())
        tag = f"{now % 100_000:05d}"
        names = [f"Refresh test {tag}-{n}" for n in range(new_plays)]
        run = sync.start_run(conn, user_id, now)
        sync.save_plays(conn, user_id, run, [
            PlayIn(now - n, TrackIn(None, name, (ArtistIn(None, "Refresh Test Artist"),)),
                   180_000, "api") for n, name in enumerate(names)])
        sync.finish_run(conn, run, "ok")
        return names
    finally:
        conn.close()


# The 'every 60s' poll fires this event on #sync-status; a test need not wait a minute.
POLL_NOW = "() => document.getElementById('sync-status').dispatchEvent(new CustomEvent('every'))"
MARK_ROWS = """() => {
  window.__marker = 1;
  for (const li of document.querySelectorAll('#recent-plays > li.play')) li.__kept = true;
}"""
KEPT_ROWS = ("() => [...document.querySelectorAll('#recent-plays > li.play')]"
             ".filter((li) => li.__kept).map((li) => li.id)")


def test_new_plays_join_the_dashboard_and_keep_what_was_expanded(
        signed_in_page: Page, live_data_dir: Path | None) -> None:
    if live_data_dir is None:
        pytest.skip("lands a sync in the live server's database")
    page = signed_in_page
    errors = ConsoleErrors(page)
    page.set_viewport_size({"width": 1000, "height": 700})
    page.reload()
    expect(page.locator(CHART)).to_have_attribute("data-drawn", "true")
    _show_more(page).click()
    rows = page.locator("#recent-plays > li.play")
    expect(rows).to_have_count(2 * PAGE_SIZE)
    # The reader opened the chart's table and scrolled down to the plays "Show more" brought.
    page.locator("figure.chart details summary").click()
    expect(page.locator("figure.chart details")).to_have_attribute("open", "")
    anchor = rows.nth(PAGE_SIZE + 10)
    anchor_id = anchor.get_attribute("id")
    page.evaluate("(id) => document.getElementById(id).scrollIntoView({block: 'center'})",
                  anchor_id)
    page.evaluate(MARK_ROWS)
    shown = rows.evaluate_all("(nodes) => nodes.map((n) => n.id)")
    top = page.evaluate("(id) => document.getElementById(id).getBoundingClientRect().top",
                        anchor_id)
    plays_before = _number(page.locator("dl.figures .figure dd").first.inner_text())

    names = _land_a_sync(live_data_dir, 3)
    with page.expect_response(lambda r: urlsplit(r.url).path == "/"
                              and "since" in parse_qs(urlsplit(r.url).query)) as answer:
        page.evaluate(POLL_NOW)
    assert answer.value.status == 200
    # The poll said which plays the page lists, "show more" included.
    assert parse_qs(urlsplit(answer.value.url).query)["shown_to"]
    for name in names:
        expect(page.locator("#recent-plays > li.play .track").filter(has_text=name)
               ).to_have_count(1)

    ids = rows.evaluate_all("(nodes) => nodes.map((n) => n.id)")
    new = ids[:len(ids) - len(shown)]
    assert ids[len(new):] == shown, "a play listed before the refresh went away or moved"
    # New plays on top, newest first (the server's own sync may have brought more).
    new_names = [page.locator(f"[id='{i}'] .track").inner_text() for i in new]
    assert [n for n in new_names if n in names] == names, new_names
    # The very rows the reader had, not copies: nothing expanded was thrown away.
    assert page.evaluate(KEPT_ROWS) == shown
    expect(page.locator("#recent-plays > li.more")).to_have_count(1)
    expect(page.locator("figure.chart details")).to_have_attribute("open", "")
    assert page.evaluate("() => window.__marker") == 1, "the page was reloaded"
    # What the reader was looking at stays where it was on the screen.
    after = page.evaluate("(id) => document.getElementById(id).getBoundingClientRect().top",
                          anchor_id)
    assert abs(after - top) <= 2, f"the plays in view moved by {after - top:.0f} px"
    assert _number(page.locator("dl.figures .figure dd").first.inner_text()) >= plays_before + 3
    expect(page.locator("#sync-status")).to_contain_text(re.compile(r"Synced just now, \d+ new"))
    expect(page.locator(CHART)).to_have_attribute("data-drawn", "true")
    errors.assert_none()


def test_refresh_updates_the_dashboard_in_place(signed_in_page: Page) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    page.reload()
    expect(page.locator(CHART)).to_have_attribute("data-drawn", "true")
    # Load a second page of plays first: Refresh keeps it.
    _show_more(page).click()
    expect(page.locator("#recent-plays > li.play")).to_have_count(2 * PAGE_SIZE)
    page.evaluate(MARK_ROWS)
    url = page.url

    refresh = page.locator("#sync-status").get_by_role("link", name="Refresh")
    with page.expect_response(lambda r: urlsplit(r.url).path == "/"
                              and r.request.headers.get("hx-request") == "true") as answer:
        refresh.click()
    assert answer.value.status == 200
    body = answer.value.text()
    assert "<html" not in body.lower() and 'id="dashboard"' in body
    assert body.count('class="play') >= 2 * PAGE_SIZE, "the answer dropped the second page"

    expect(page.locator("#dashboard")).to_have_count(1)
    expect(page.locator("#recent-plays > li.play")).to_have_count(2 * PAGE_SIZE)
    assert len(page.evaluate(KEPT_ROWS)) == 2 * PAGE_SIZE
    expect(page.locator(CHART)).to_have_count(1)
    expect(page.locator(CHART)).to_have_attribute("data-drawn", "true")
    expect(page.locator("dl.figures .figure")).to_have_count(6)
    assert page.url == url
    assert page.evaluate("() => window.__marker") == 1, "Refresh reloaded the whole page"
    # Still one header and one main: the fragment did not nest a page inside the page.
    expect(page.locator("header.site-header")).to_have_count(1)
    expect(page.locator("main")).to_have_count(1)
    errors.assert_none()


def test_show_more_with_the_keyboard_focuses_the_first_new_row(signed_in_page: Page) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    page.reload()
    rows = page.locator("#recent-plays > li.play")
    expect(rows).to_have_count(PAGE_SIZE)
    more = _show_more(page)
    more.focus()
    scrolled = page.evaluate("() => window.scrollY")
    assert scrolled > 0, "the link should be below the fold for this test to mean something"
    page.keyboard.press("Enter")
    expect(rows).to_have_count(2 * PAGE_SIZE)
    first_new = rows.nth(PAGE_SIZE)
    expect(first_new).to_be_focused()
    focused = page.evaluate("() => [document.activeElement.tagName, document.activeElement.id]")
    assert focused == ["LI", first_new.get_attribute("id")], focused
    assert page.evaluate("() => window.scrollY") >= scrolled, "focus sent the page to its top"
    # Onwards with the keyboard: Tab goes on from there, into the new row's names (each
    # leads to its page), and the next "Show more" loads the next page.
    page.keyboard.press("Tab")
    expect(first_new.locator(".track a")).to_be_focused()
    _show_more(page).focus()
    page.keyboard.press("Enter")
    expect(rows).to_have_count(3 * PAGE_SIZE)
    expect(rows.nth(2 * PAGE_SIZE)).to_be_focused()
    errors.assert_none()


# JavaScript off


def test_nojs_chart_has_table_alternative(nojs_page: Page) -> None:
    page = nojs_page
    canvas = page.locator(CHART)
    expect(canvas).to_have_count(1)
    # Nothing drew it: charts.js did not run.
    assert canvas.get_attribute("data-drawn") is None
    data_block = page.locator("script#chart-last-30[type='application/json']")
    expect(data_block).to_have_count(1)

    details = page.locator("figure.chart details")
    expect(details).to_have_count(1)
    expect(details.locator("summary")).to_be_visible()
    rows = details.locator("table tbody tr")
    expect(rows).to_have_count(30)
    # Without JavaScript the table is the content: open, with no empty chart box above it.
    expect(details.locator("table")).to_be_visible()
    expect(page.locator("figure.chart .chart-box")).to_be_hidden()
    days = rows.locator("th").all_inner_texts()
    assert len(set(days)) == 30, f"days repeat in the table: {days}"
    cells = rows.evaluate_all(
        "(rows) => rows.map((r) => [...r.querySelectorAll('td')].map((c) => c.textContent))")
    assert all(len(c) == 2 and all(v.strip().isdigit() for v in c) for c in cells), cells
    assert sum(int(c[1]) for c in cells) > 0, "no plays in the last 30 days"
    assert_no_horizontal_scroll(page)


def test_nojs_show_more_opens_older_plays_page(nojs_page: Page, live_server: str) -> None:
    page = nojs_page
    expect(page.locator("#recent-plays > li.play")).to_have_count(PAGE_SIZE)
    home_times = _play_times(page)
    _assert_newest_first(home_times)
    assert_no_horizontal_scroll(page)

    more = _show_more(page)
    href = more.get_attribute("href") or ""
    with page.expect_navigation():
        more.click()
    assert urlsplit(page.url).path == "/plays"
    assert page.url == urljoin(live_server, href)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your plays")
    expect(page.locator("#recent-plays > li.play")).to_have_count(PAGE_SIZE)
    older = _play_times(page)
    _assert_newest_first(older)
    assert max(older) < min(home_times), (
        f"'Show more' listed plays that are not older than the home page's last one: "
        f"{max(older)} >= {min(home_times)}")
    assert_no_horizontal_scroll(page)

    # The page has its own "Show more", leading further back.
    next_href = _show_more(page).get_attribute("href") or ""
    assert next_href != href
    _show_more(page).click()
    page.wait_for_url(re.compile(r"/plays\?before="))
    assert page.url == urljoin(live_server, next_href)
    expect(page.locator("#recent-plays > li.play")).to_have_count(PAGE_SIZE)
    assert max(_play_times(page)) < min(older)
