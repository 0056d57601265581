"""The hidden plays page over HTTP: page and fragment, hiding from an artist page, showing
again, refused forms, CSRF, other users' rules, and every page leaving hidden plays out."""

from __future__ import annotations

import re
from html import unescape

import httpx

from tests.conftest import csrf_from
from tests.test_views_entities import _listener

HX = {"HX-Request": "true"}


async def _csrf(client: httpx.AsyncClient) -> str:
    return csrf_from((await client.get("/hidden")).text)


async def test_the_page_and_its_fragment(client: httpx.AsyncClient, app) -> None:
    await _listener(client, app)
    page = await client.get("/hidden")
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert "<h1>Hidden plays</h1>" in page.text and "Nothing is hidden" in page.text
    fragment = await client.get("/hidden", headers=HX)
    assert fragment.status_code == 200 and fragment.text.startswith('<div id="hidden"')
    assert "<title>Hidden plays · Music Time Machine</title>" in fragment.text
    assert "HX-Request" in fragment.headers["vary"]
    settings = await client.get("/settings")
    assert 'href="http://127.0.0.1:8000/hidden"' in settings.text


async def test_hide_an_artist_from_its_page_and_show_it_again(client: httpx.AsyncClient,
                                                             app) -> None:
    ids = await _listener(client, app)
    artist_url = f"/artists/{ids['Artist 0']}"
    artist = unescape((await client.get(artist_url)).text)
    form = re.search(r'<form method="post" action="([^"]+)" class="hide-form">(.*?)</form>',
                     artist, re.S)
    assert form and form.group(1).endswith("/hidden")
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                             form.group(2)))
    assert fields["kind"] == "artist" and fields["target"] == str(ids["Artist 0"])
    # A plain form: post, redirect, get; the message says how many plays it hid.
    done = await client.post("/hidden", data={**fields, "from": "", "to": ""})
    assert done.status_code == 303 and done.headers["location"] == "/hidden"
    listed = unescape((await client.get("/hidden")).text)
    assert "Hidden 25 plays of “Artist 0”" in listed
    rule = re.search(r'<li class="rule" id="rule-(\d+)">(.*?)</li>', listed, re.S)
    assert rule and "Artist 0" in rule.group(2) and "25 plays</span> hidden" in rule.group(2)
    # Its page says where its plays went, and links there.
    gone = await client.get(artist_url)
    assert gone.status_code == 404
    assert "are hidden" in unescape(gone.text)
    assert 'href="http://127.0.0.1:8000/hidden"' in gone.text
    assert "Artist 0" not in (await client.get("/analytics?range=all")).text
    # With HTMX, showing it again swaps the list in place.
    shown = await client.post(f"/hidden/{rule.group(1)}/delete",
                              data={"csrf_token": await _csrf(client)}, headers=HX)
    assert shown.status_code == 200 and shown.text.startswith('<div id="hidden"')
    assert "Showing 25 plays of “Artist 0” again." in unescape(shown.text)
    assert "Nothing is hidden" in shown.text
    assert (await client.get(artist_url)).status_code == 200
    assert "Artist 0" in (await client.get("/analytics?range=all")).text


async def test_hidden_plays_leave_every_page(client: httpx.AsyncClient, app) -> None:
    ids = await _listener(client, app)
    token = await _csrf(client)
    # The newcomer's time zone is UTC; their plays may straddle New Year (the clock is real).
    year, in_year = await app.state.services.db.run(lambda conn: conn.execute(
        """SELECT y, count(*) FROM (SELECT strftime('%Y', played_at, 'unixepoch') AS y
           FROM plays WHERE track_id = ? AND ms_played >= 30000)
           WHERE y = (SELECT strftime('%Y', max(played_at), 'unixepoch') FROM plays
                      WHERE track_id = ?)""", (ids["Track 1"], ids["Track 1"])).fetchone())
    pages = ("/", "/plays", "/analytics?range=all", "/search?q=track+1",
             f"/review?year={year}")
    before = {url: (await client.get(url)).text for url in pages}
    totals = re.compile(r'id="calendar-totals">([\d,]+) plays')
    listened = int(totals.search((await client.get(f"/calendar?year={year}")).text)[1]
                   .replace(",", ""))
    assert all("Track 1<" in text for text in before.values()), [
        url for url, text in before.items() if "Track 1<" not in text]
    hidden = await client.post("/hidden", data={"csrf_token": token, "kind": "track",
                                                "target": str(ids["Track 1"])})
    assert hidden.status_code == 303
    for url in pages:
        response = await client.get(url)
        assert response.status_code == 200, url
        assert "Track 1<" not in response.text, url
    assert "Track 12<" in (await client.get("/analytics?range=all")).text
    calendar = (await client.get(f"/calendar?year={year}")).text
    assert int(totals.search(calendar)[1].replace(",", "")) == listened - in_year


async def test_a_context_from_the_list_or_pasted(client: httpx.AsyncClient, app) -> None:
    await _listener(client, app)
    token = await _csrf(client)
    link = "https://open.spotify.com/playlist/37i9dQZF1DXcBWIGoYBM5M?si=x"
    added = await client.post("/hidden", data={"csrf_token": token, "kind": "context",
                                               "context": link}, headers=HX)
    assert added.status_code == 200 and added.text.startswith('<div id="hidden"')
    text = unescape(added.text)
    assert "“Playlist 37i9dQZF1DXcBWIGoYBM5M” is hidden" in text
    assert "new ones will be hidden as they arrive" in text


async def test_refused_forms_say_why(client: httpx.AsyncClient, app) -> None:
    ids = await _listener(client, app)
    token = await _csrf(client)
    bad = {"csrf_token": token, "kind": "context", "context": "not a link"}
    fragment = await client.post("/hidden", data=bad, headers=HX)
    assert fragment.status_code == 422 and fragment.text.startswith('<div id="hidden"')
    assert 'id="hide-context-error"' in fragment.text and 'aria-invalid="true"' in fragment.text
    assert 'value="not a link"' in fragment.text
    # Without JavaScript: redirected to the page, which shows the refusal once, with its status.
    plain = await client.post("/hidden", data=bad)
    assert plain.status_code == 303
    shown = await client.get("/hidden")
    assert shown.status_code == 422 and "Paste the Spotify link" in unescape(shown.text)
    assert (await client.get("/hidden")).status_code == 200
    days = {"csrf_token": token, "kind": "track", "target": str(ids["Track 1"]),
            "from": "2026-02-10", "to": "2026-02-01"}
    refused = await client.post("/hidden", data=days, headers=HX)
    assert refused.status_code == 422 and "comes after" in refused.text
    unknown = await client.post("/hidden", data={"csrf_token": token, "kind": "track",
                                                 "target": "999999"}, headers=HX)
    assert unknown.status_code == 404 and "no track with that number" in unknown.text
    assert "Nothing is hidden" in (await client.get("/hidden")).text


async def test_csrf_and_other_users_rules(client: httpx.AsyncClient, app) -> None:
    ids = await _listener(client, app)
    forged = await client.post("/hidden", data={"kind": "track", "target": str(ids["Track 1"])})
    assert forged.status_code == 403
    token = await _csrf(client)
    await client.post("/hidden", data={"csrf_token": token, "kind": "track",
                                       "target": str(ids["Track 1"])})
    listed = (await client.get("/hidden")).text
    rule = re.search(r'<li class="rule" id="rule-(\d+)">', listed).group(1)
    assert (await client.post(f"/hidden/{rule}/delete")).status_code == 403
    for missing in ("999999", "123456789012345678901"):
        response = await client.post(f"/hidden/{missing}/delete", data={"csrf_token": token})
        assert response.status_code == 404
    # The demo account cannot see or remove the newcomer's rule.
    from tests.conftest import sign_in

    await sign_in(client)
    assert f'id="rule-{rule}"' not in (await client.get("/hidden")).text
    token = await _csrf(client)
    assert (await client.post(f"/hidden/{rule}/delete",
                              data={"csrf_token": token})).status_code == 404


async def test_signed_out_is_sent_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/hidden")
    assert response.status_code == 303 and "/signin" in response.headers["location"]
