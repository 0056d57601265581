"""Artist, album and track pages over HTTP: page and fragment, links in, 404s, older plays."""

from __future__ import annotations

import re
import time
from html import unescape

import httpx

from mtm import history
from tests.conftest import make_play, sign_in

HX = {"HX-Request": "true"}


async def _listener(client: httpx.AsyncClient, app) -> dict[str, int]:
    """The newcomer account signed in with 25 plays of track 1 and 3 of track 12; their ids."""
    await sign_in(client, account="newcomer")
    services = app.state.services
    user_id = await services.db.run(lambda conn: conn.execute(
        "SELECT id FROM users WHERE spotify_id = 'newcomer'").fetchone()[0])
    start = int(time.time()) - 3 * 86400
    plays = [make_play(start + i * 600, 1) for i in range(25)]
    plays += [make_play(start + 30_000 + i * 600, 12) for i in range(3)]
    await services.db.run(history.add_plays, user_id, plays)

    def ids(conn) -> dict[str, int]:
        found = dict(conn.execute("SELECT name, id FROM tracks WHERE name IN ('Track 1', "
                                  "'Track 12')").fetchall())
        found |= dict(conn.execute("SELECT name, id FROM artists").fetchall())
        found |= dict(conn.execute("SELECT name, id FROM albums").fetchall())
        return found
    return await services.db.run(ids)


async def test_each_kind_has_a_page_and_a_fragment(client: httpx.AsyncClient, app) -> None:
    ids = await _listener(client, app)
    for url, heading in ((f"/artists/{ids['Artist 0']}", "Artist 0"),
                         (f"/albums/{ids['Album 1']}", "Album 1"),
                         (f"/tracks/{ids['Track 1']}", "Track 1")):
        page = await client.get(url)
        assert page.status_code == 200 and page.text.startswith("<!doctype html>")
        assert f"<h1>{heading}</h1>" in page.text
        assert page.text.count("<title>") == 1
        fragment = await client.get(url, headers=HX)
        assert fragment.status_code == 200 and fragment.text.startswith('<div id="entity"')
        assert re.findall(r"<title>([^<]*)</title>", fragment.text)[0].startswith(heading + " · ")
        assert "HX-Request" in fragment.headers["vary"]
    artist = unescape((await client.get(f"/artists/{ids['Artist 0']}")).text)
    assert "<dt>Plays</dt><dd>25</dd>" in artist
    # Its tracks and album link to their pages, its months to that month's analytics.
    assert f'href="http://127.0.0.1:8000/tracks/{ids["Track 1"]}">Track 1</a>' in artist
    assert f'href="http://127.0.0.1:8000/albums/{ids["Album 0"]}">Album 0</a>' in artist
    assert re.search(r'href="[^"]*/analytics\?month=\d{4}-\d{2}">', artist)
    assert 'data-chart="chart-entity-rank"' in artist and '<table class="heatmap">' in artist
    track = unescape((await client.get(f"/tracks/{ids['Track 12']}")).text)
    assert f'by <a class="name-link" href="http://127.0.0.1:8000/artists/{ids["Artist 1"]}">' \
           "Artist 1</a>" in track


async def test_names_on_home_and_in_the_plays_lead_to_their_pages(client: httpx.AsyncClient,
                                                                   app) -> None:
    ids = await _listener(client, app)
    home = (await client.get("/")).text
    assert f'/artists/{ids["Artist 0"]}">Artist 0</a>' in home
    assert f'/tracks/{ids["Track 12"]}">Track 12</a>' in home
    plays = (await client.get("/plays")).text
    assert f'/albums/{ids["Album 1"]}">Album 1</a>' in plays


async def test_older_plays_of_a_track_page_on(client: httpx.AsyncClient, app) -> None:
    ids = await _listener(client, app)
    page = (await client.get(f"/tracks/{ids['Track 1']}")).text
    more = re.search(r'<a class="button button-secondary" href="([^"]+)"', page).group(1)
    assert f"/tracks/{ids['Track 1']}/plays?before=" in unescape(more)
    rows = await client.get(unescape(more), headers=HX)
    assert rows.status_code == 200 and rows.text.lstrip().startswith("<li")
    assert rows.text.count('class="play') == 5  # 25 plays, 20 on the page
    assert "No older plays" in rows.text
    plain = await client.get(unescape(more))
    assert plain.text.startswith("<!doctype html>") and "<h1>Older plays</h1>" in plain.text
    assert f'/tracks/{ids["Track 1"]}">Back to the track' in plain.text
    bad = await client.get(f"/tracks/{ids['Track 1']}/plays?before=soon")
    assert bad.status_code == 422


async def test_what_the_user_never_played_is_404(client: httpx.AsyncClient, app) -> None:
    ids = await _listener(client, app)
    for url in ("/artists/999999", "/albums/999999", "/tracks/999999",
                "/tracks/999999/plays", "/artists/123456789012345678901234",
                "/artists/-1", "/artists/abc"):
        for headers in ({}, HX):
            response = await client.get(url, headers=headers)
            assert response.status_code == 404, url
    message = (await client.get("/albums/999999")).text
    assert "There is no album with that number in your history." in message
    # Another listener's artist is not this user's to see: the demo account played it.
    await sign_in(client)
    demo_only = await app.state.services.db.run(lambda conn: conn.execute(
        """SELECT a.id FROM artists a WHERE NOT EXISTS (SELECT 1 FROM user_artists u
           JOIN users s ON s.id = u.user_id WHERE u.artist_id = a.id AND s.spotify_id =
           'newcomer') LIMIT 1""").fetchone()[0])
    assert (await client.get(f"/artists/{demo_only}")).status_code == 200
    await sign_in(client, account="newcomer")
    assert (await client.get(f"/artists/{demo_only}")).status_code == 404
    assert ids


async def test_signed_out_is_sent_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/artists/1")
    assert response.status_code in (302, 303) and "/signin" in response.headers["location"]
