"""A time-zone change recounted in short chunks: equal to a full rebuild, the old figures
read consistently until the swap, resumable after a crash, restarted by a write meanwhile."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mtm import db, history, preferences, rezone
from mtm.preferences import Preferences
from tests.conftest import make_play
from tests.test_hiding import rollups

START = 1_672_531_200  # 2023-01-01 UTC


@pytest.fixture
def listened(conn: sqlite3.Connection, user_id: int) -> int:
    """Plays every 37 minutes for 40 days, some short, over many tracks and artists."""
    plays = [make_play(START + i * 2220, i % 23, ms=(10_000 if i % 9 == 0 else 200_000),
                       source="export" if i % 4 else "api") for i in range(1_600)]
    history.add_plays(conn, user_id, plays)
    preferences.save(conn, user_id, Preferences("Europe/Berlin"))
    return len(plays)


def rebuilt(conn: sqlite3.Connection, user_id: int) -> dict[str, list[tuple]]:
    """The rollups a full rebuild in one transaction gives (the rows are left as they were)."""
    conn.execute("SAVEPOINT look")
    history.rebuild_rollups(conn, user_id)
    figures = rollups(conn, user_id)
    conn.execute("ROLLBACK TO look")
    conn.execute("RELEASE look")
    return figures


def test_chunks_equal_a_full_rebuild(conn: sqlite3.Connection, user_id: int,
                                     listened: int) -> None:
    steps: list[int] = []
    conn.execute("UPDATE preferences SET timezone = 'Pacific/Auckland'")
    expected = rebuilt(conn, user_id)
    conn.execute("UPDATE preferences SET timezone = 'Europe/Berlin'")
    rezone.change(conn, user_id, "Pacific/Auckland", chunk=97,
                  progress=lambda stage, done, total: steps.append(done))
    assert preferences.load(conn, user_id).timezone == "Pacific/Auckland"
    assert rollups(conn, user_id) == expected
    # A report per chunk, the last empty one, and one for moving the months.
    assert len(steps) == listened // 97 + 3 and steps[-1] == listened
    assert rezone.pending(conn, user_id) is None
    assert conn.execute("SELECT count(*) FROM rebuild_track_months").fetchone()[0] == 0


def test_pages_read_the_old_zone_until_the_swap(conn: sqlite3.Connection, user_id: int,
                                                listened: int) -> None:
    before = rollups(conn, user_id)
    rezone.begin(conn, user_id, "Asia/Tokyo")
    for _ in range(5):
        assert rezone.step(conn, user_id, 100) == 100
        # Between two chunks: the old zone and its figures, whole.
        assert not conn.in_transaction
        assert preferences.load(conn, user_id).timezone == "Europe/Berlin"
        assert rollups(conn, user_id) == before
    assert rezone.pending(conn, user_id) == "Asia/Tokyo"
    assert not rezone.start_moving(conn, user_id), "not every play is summed yet"
    assert not rezone.swap(conn, user_id)
    assert rollups(conn, user_id) == before


def test_a_crash_resumes_where_it_stopped(tmp_path: Path, conn: sqlite3.Connection,
                                          user_id: int, listened: int) -> None:
    rezone.begin(conn, user_id, "America/New_York")
    for _ in range(10):
        rezone.step(conn, user_id, 100)
    # A new process: the sums so far are kept, and saving the same zone again goes on.
    again = db.connect(tmp_path / "test.sqlite3")
    assert rezone.begin(again, user_id, "America/New_York") is True
    assert rezone.step(again, user_id, listened) == listened - 1_000
    assert rezone.step(again, user_id, listened) == 0
    assert rezone.start_moving(again, user_id)
    while rezone.move_month(again, user_id):
        pass
    assert rezone.swap(again, user_id)
    assert rollups(again, user_id) == rebuilt(again, user_id)
    assert preferences.load(again, user_id).timezone == "America/New_York"
    again.close()


def test_another_zone_or_a_write_meanwhile_starts_again(conn: sqlite3.Connection,
                                                        user_id: int, listened: int) -> None:
    rezone.begin(conn, user_id, "America/New_York")
    rezone.step(conn, user_id, 500)
    assert rezone.begin(conn, user_id, "Asia/Kolkata") is False
    rezone.step(conn, user_id, 500)
    # A play arrives behind the position reached: the sums would miss it.
    history.add_plays(conn, user_id, [make_play(START + 60, 3)])
    rezone.change(conn, user_id, "Asia/Kolkata", chunk=300)
    assert rollups(conn, user_id) == rebuilt(conn, user_id)
    assert conn.execute("SELECT sum(plays) + 0 FROM listening_days WHERE user_id = ?",
                        (user_id,)).fetchone()[0] == conn.execute(
        "SELECT sum(counted) FROM plays WHERE user_id = ?", (user_id,)).fetchone()[0]


def test_a_swap_that_finds_the_plays_changed_swaps_nothing(conn: sqlite3.Connection,
                                                           user_id: int, listened: int) -> None:
    before = rollups(conn, user_id)
    rezone.begin(conn, user_id, "Asia/Tokyo")
    while rezone.step(conn, user_id, 1_000):
        pass
    history.add_plays(conn, user_id, [make_play(START + 61, 4)])
    with_play = rollups(conn, user_id)
    assert with_play != before
    assert not rezone.start_moving(conn, user_id)
    assert not rezone.swap(conn, user_id)
    assert rollups(conn, user_id) == with_play
    assert preferences.load(conn, user_id).timezone == "Europe/Berlin"


async def test_a_long_change_answers_at_once_and_says_so(client, app,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from mtm.views import settings as settings_view
    from tests.conftest import sign_in
    from tests.test_views_settings import HX, PREFS, flashes, token_of, wait_for_syncs

    await sign_in(client)
    await wait_for_syncs(app)
    token = await token_of(client)
    go_on = threading.Event()
    slow = rezone.change

    def paused(*args, **kwargs) -> None:
        go_on.wait(10)
        slow(*args, **kwargs)

    monkeypatch.setattr(rezone, "change", paused)
    monkeypatch.setattr(settings_view, "REZONE_WAIT", 0.05)
    response = await client.post("/settings/preferences", data={**PREFS, "csrf_token": token})
    assert response.status_code == 303
    page = (await client.get("/settings")).text
    assert flashes(page) == ["Preferences saved. Your days and hours are being counted again in "
                             "Asia/Tokyo; until that is finished, pages show them in the zone "
                             "before."]
    assert 'value="UTC"' in page and "being counted again in Asia/Tokyo" in page
    status = await client.get("/settings/sync", headers=HX)
    assert "A change of your time zone is running" in status.text
    again = await client.post("/settings/preferences", data={**PREFS, "csrf_token": token})
    assert again.status_code == 303
    assert "already running" in flashes((await client.get("/settings")).text)[0]
    go_on.set()
    await wait_for_syncs(app)
    page = (await client.get("/settings")).text
    assert 'value="Asia/Tokyo"' in page and "being counted again" not in page


def test_saving_the_zone_in_use_gives_up_an_unfinished_change(
        conn: sqlite3.Connection, user_id: int, listened: int) -> None:
    before = rollups(conn, user_id)
    rezone.begin(conn, user_id, "Asia/Tokyo")
    rezone.step(conn, user_id, 100)
    assert not preferences.save(conn, user_id, Preferences("Europe/Berlin", 6))
    assert rezone.pending(conn, user_id) is None
    assert rezone.step(conn, user_id) is None
    assert rollups(conn, user_id) == before


def _january(conn: sqlite3.Connection, user_id: int) -> object:
    from datetime import date

    from mtm import period_totals

    period_totals.fill(conn, user_id, preferences.load(conn, user_id).timezone,
                       date(2023, 1, 1), date(2023, 1, 31))
    return period_totals.summed(conn, user_id, whole=False)


def test_while_months_move_pages_read_the_old_zone_whole(conn: sqlite3.Connection,
                                                         user_id: int, listened: int) -> None:
    from mtm import entities, hiding

    artist = conn.execute("SELECT artist_id FROM user_artists ORDER BY plays DESC "
                          "LIMIT 1").fetchone()[0]
    album = conn.execute("SELECT album_id FROM user_albums ORDER BY plays DESC "
                         "LIMIT 1").fetchone()[0]
    january, by_month = _january(conn, user_id), entities.monthly(conn, user_id, "artist",
                                                                  artist)
    albums = entities.monthly(conn, user_id, "album", album)
    rezone.begin(conn, user_id, "Pacific/Auckland")
    while rezone.step(conn, user_id, 400):
        pass
    assert rezone.start_moving(conn, user_id) and rezone.months_moving(conn, user_id)
    assert rezone.move_month(conn, user_id) == "2023-01"
    # Half moved: January lost its last hours, February has not gained them yet; no page
    # reads the months meanwhile.
    assert conn.execute("SELECT sum(plays) FROM track_months").fetchone()[0] < conn.execute(
        "SELECT sum(counted) FROM plays").fetchone()[0]
    assert _january(conn, user_id) == january
    assert entities.monthly(conn, user_id, "artist", artist) == by_month
    assert entities.monthly(conn, user_id, "album", album) == albums
    with pytest.raises(hiding.HideError) as refused:
        hiding.add(conn, user_id, hiding.RuleIn("artist", artist))
    assert refused.value.status == 409
    # A worker starting beside the live job leaves its months alone.
    from mtm import jobs, leases
    live = jobs.make_holder("job")
    assert leases.acquire(conn, user_id, rezone.LEASE, live, ttl=600, purpose=rezone.KIND)
    assert rezone.finish_moving(conn) == []
    assert rezone.months_moving(conn, user_id)
    assert leases.release(conn, user_id, rezone.LEASE, live)
    # A crash here is finished at the next start (prepare_database calls this).
    assert rezone.finish_moving(conn) == [user_id]
    assert not rezone.months_moving(conn, user_id)
    assert preferences.load(conn, user_id).timezone == "Pacific/Auckland"
    assert rollups(conn, user_id) == rebuilt(conn, user_id)
    moved = _january(conn, user_id)
    assert moved != january
    assert entities.monthly(conn, user_id, "artist", artist) != by_month
