"""The Playlists page over HTTP: page and fragment of every endpoint, against the emulator."""

from __future__ import annotations

import asyncio
import re
import time
from html import unescape

import httpx
import pytest

from mtm import history, playlists
from mtm import playlist_workflow as workflow
from mtm.history import ArtistIn, PlayIn, TrackIn
from tests.conftest import BASE_URL, csrf_from, sign_in

HX = {"HX-Request": "true"}


async def shown(client: httpx.AsyncClient, response: httpx.Response,
                headers: dict | None = None) -> httpx.Response:
    """What a refused POST shows: HTMX gets the fragment; a plain form is redirected (303,
    post/redirect/get) to a page that shows the input and the problem once."""
    if headers:
        return response
    assert response.status_code == 303, response.text
    return await client.get(response.headers["location"].split("#")[0])
KEY = re.compile(r'id="playlist-key" name="idempotency_key" value="([^"]+)"')


def key_from(html: str) -> str:
    match = KEY.search(html)
    assert match, "no idempotency key in the form"
    return match.group(1)


def text_of(html: str) -> str:
    """What a page says, without its tags (names sit in spans that HTMX updates)."""
    return unescape(re.sub(r"<[^>]+>", "", html))


def tracks_in(html: str) -> list[str]:
    """Spotify URIs of the tracks a preview or playlist page lists, in order."""
    return [f"spotify:track:{sid}" for sid in re.findall(r'<li data-track="([^"]+)"', html)]


def one_playlist(emulator) -> dict:
    assert len(emulator.playlists) == 1, emulator.playlists
    return next(iter(emulator.playlists.values()))


async def db_run(app, fn, *args):
    return await app.state.services.db.run(fn, *args)


def _user_id(conn, spotify_id: str) -> int:
    return conn.execute("SELECT id FROM users WHERE spotify_id = ?", (spotify_id,)).fetchone()[0]


async def add_rotation(app, emulator, count: int, spotify_id: str = "demo") -> None:
    """`count` catalogue tracks played in the last week, track i played (count - i) times."""
    user_id = await db_run(app, _user_id, spotify_id)
    catalogue = emulator.catalogue
    start = int(time.time()) - 2 * 86400
    plays = []
    for i, track in enumerate(catalogue.tracks[:count]):
        artist = catalogue.artists[track.artists[0]]
        track_in = TrackIn(track.spotify_id, track.name, (ArtistIn(artist.spotify_id,
                                                                   artist.name),))
        plays += [PlayIn(start - i * 1000 - k, track_in, 180_000, "api")
                  for k in range(count - i + 1)]
    await db_run(app, history.add_plays, user_id, plays)


class Form:
    """The new-playlist form as a signed-in browser holds it."""

    def __init__(self, html: str) -> None:
        self.csrf = csrf_from(html)
        self.key = key_from(html)

    def data(self, **fields: str) -> dict[str, str]:
        return {"csrf_token": self.csrf, "idempotency_key": self.key,
                "source": "current_rotation", **fields}


@pytest.fixture
async def form(client: httpx.AsyncClient) -> Form:
    """Signed in as the demo listener (50 fresh plays), on the Playlists page."""
    await sign_in(client)
    return Form((await client.get("/playlists")).text)


# --- the page and the preview ---------------------------------------------------------------


async def test_page_and_fragment(client: httpx.AsyncClient, form: Form) -> None:
    page = await client.get("/playlists")
    assert page.status_code == 200
    assert page.text.startswith("<!doctype html>")
    assert 'aria-current="page">Playlists' in page.text
    assert "<title>Playlists · Music Time Machine</title>" in page.text
    assert '<h1>Playlists</h1>' in page.text
    # The preferred source (current rotation by default) is chosen and previewed.
    assert 'value="current_rotation" checked' in page.text
    assert "Preview: Current Rotation" in page.text
    assert 1 <= len(tracks_in(page.text)) <= 50
    assert "Playlists you create here are listed here" in page.text
    # Each render carries a fresh one-time key.
    assert key_from((await client.get("/playlists")).text) != key_from(page.text)
    fragment = await client.get("/playlists", headers=HX)
    assert fragment.status_code == 200
    assert fragment.text.startswith('<div id="playlists"')
    assert "<html" not in fragment.text
    assert "HX-Request" in fragment.headers["vary"]


@pytest.mark.parametrize("stored,checked", [("forgotten_gems", "forgotten_gems"),
                                            ("no_longer_a_source", "current_rotation")])
async def test_the_form_starts_on_the_preferred_source(client: httpx.AsyncClient, app,
                                                       stored: str, checked: str) -> None:
    await sign_in(client)

    def prefer(conn) -> None:
        conn.execute("UPDATE preferences SET playlist_source = ?", (stored,))

    await db_run(app, prefer)
    page = (await client.get("/playlists")).text
    assert f'value="{checked}" checked' in page
    assert page.count(" checked>") == 1


async def test_preview_page_and_fragment(client: httpx.AsyncClient, app, emulator,
                                         form: Form) -> None:
    await add_rotation(app, emulator, 30)
    query = {"source": "current_rotation", "count": "12", "name": "Twelve", "year": ""}
    fragment = await client.get("/playlists/preview", params=query, headers=HX)
    assert fragment.status_code == 200
    assert fragment.text.startswith('<section id="playlist-preview"')
    assert len(tracks_in(fragment.text)) == 12
    assert "named “<span class=\"preview-name\">Twelve</span>”" in fragment.text
    # Track 0 was played most: it leads.
    assert tracks_in(fragment.text)[0] == f"spotify:track:{emulator.catalogue.tracks[0].spotify_id}"
    page = await client.get("/playlists/preview", params=query)
    assert page.status_code == 200
    assert page.text.startswith("<!doctype html>")
    assert tracks_in(page.text) == tracks_in(fragment.text)
    # The form keeps the choices that were previewed.
    assert 'value="12"' in page.text and 'value="Twelve"' in page.text


async def test_preview_without_javascript_posts_then_lands_on_the_preview(
        client: httpx.AsyncClient, form: Form) -> None:
    response = await client.post("/playlists/preview", data=form.data(
        source="on_this_day", count="7", name="A & B"))
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/playlists/preview?")
    # The CSRF token and the form's key stay out of the address.
    assert "csrf" not in location and "idempotency" not in location
    assert "source=on_this_day" in location and "count=7" in location and "A+%26+B" in location


@pytest.mark.parametrize("query,field", [
    ({"source": "bogus"}, "source"),
    ({"source": "current_rotation", "count": "500"}, "count"),
    ({"source": "year_in_review", "year": "1999"}, "year"),
    ({"source": "current_rotation", "name": "n" * 101}, "name"),
])
async def test_preview_refuses_bad_input(client: httpx.AsyncClient, form: Form, query: dict,
                                         field: str) -> None:
    page = await client.get("/playlists/preview", params=query)
    assert page.status_code == 422
    assert f'id="playlist-{field}-error"' in page.text
    fragment = await client.get("/playlists/preview", params=query, headers=HX)
    assert fragment.status_code == 422
    assert fragment.text.startswith('<section id="playlist-preview"')
    assert 'role="alert"' in fragment.text


async def test_preview_of_a_source_with_no_tracks_is_404_with_a_hint(
        client: httpx.AsyncClient, form: Form) -> None:
    for headers in ({}, HX):
        response = await client.get("/playlists/preview", params={"source": "forgotten_gems"},
                                    headers=headers)
        assert response.status_code == 404
        assert "No tracks for Forgotten Gems yet." in response.text
        assert "privacy export" in response.text


async def test_year_in_review_preview(client: httpx.AsyncClient, form: Form) -> None:
    year = time.gmtime().tm_year
    page = await client.get("/playlists")
    assert f'<option value="{year}"' in page.text
    fragment = await client.get("/playlists/preview",
                                params={"source": "year_in_review", "year": str(year)},
                                headers=HX)
    assert fragment.status_code == 200
    assert f"Preview: Year in Review {year}" in fragment.text
    assert f"Year in Review - {year}" in fragment.text


async def test_a_new_listener_sees_empty_states(client: httpx.AsyncClient) -> None:
    await sign_in(client, account="newcomer")
    page = await client.get("/playlists")
    assert page.status_code == 200
    assert "No tracks for Current Rotation yet." in page.text
    assert "No plays yet" in page.text
    review = await client.get("/playlists/preview", params={"source": "year_in_review"})
    assert review.status_code == 404
    assert "no year to review" in review.text


# --- create ---------------------------------------------------------------------------------


async def test_create_without_javascript(client: httpx.AsyncClient, emulator,
                                         form: Form) -> None:
    shown = await client.get("/playlists/preview", params={"source": "current_rotation",
                                                           "count": "10"}, headers=HX)
    response = await client.post("/playlists", data=form.data(count="10", name="Ten"))
    assert response.status_code == 303
    location = response.headers["location"]
    assert re.fullmatch(r"/playlists\?created=\d+", location)
    made = one_playlist(emulator)
    assert made["name"] == "Ten" and made["public"] is False
    assert made["items"] == tracks_in(shown.text)
    assert "Made by Music Time Machine" in made["description"]

    page = await client.get(location)
    assert 'class="flash flash-success">Created “Ten” on Spotify with 10 tracks.' in page.text
    assert "“Ten” is on Spotify" in text_of(page.text)
    spotify_id = next(iter(emulator.playlists))
    # Demo mode: the emulator's own page, since Spotify has never heard of this id.
    assert f'href="/emulator/open/playlist/{spotify_id}"' in page.text
    # Listed with source, date and size; the form has a new key.
    assert "Current Rotation · <time" in page.text and "· 10 tracks" in page.text
    assert key_from(page.text) != form.key
    # The flash is shown once.
    assert "flash-success" not in (await client.get("/playlists")).text


async def test_create_with_htmx_returns_the_result_card(client: httpx.AsyncClient, emulator,
                                                        form: Form) -> None:
    response = await client.post("/playlists", data=form.data(count="5"), headers=HX)
    assert response.status_code == 201
    body = response.text
    assert body.startswith('<div id="playlist-result"')
    assert "<html" not in body
    assert "Open in Spotify" in body and "5 tracks" in body
    name = one_playlist(emulator)["name"]
    assert re.fullmatch(r"Current Rotation - \w+ \d{4}", name)
    assert f"“{name}” is on Spotify" in text_of(body)
    # Out of band: the form with a fresh key, and the list with the new playlist.
    assert '<form id="playlist-form"' in body
    new_key = key_from(body)
    assert new_key != form.key and playlists.valid_key(new_key)
    assert '<section id="playlist-history"' in body and 'hx-swap-oob="true"' in body
    assert body.count('class="playlist-item"') == 1
    # No flash was queued for a later page.
    assert "flash-success" not in (await client.get("/playlists")).text


async def test_a_200_track_playlist_goes_in_chunks_in_order(client: httpx.AsyncClient, app,
                                                            emulator, form: Form) -> None:
    await add_rotation(app, emulator, 200)
    shown = await client.get("/playlists/preview", params={"source": "current_rotation",
                                                           "count": "200"}, headers=HX)
    expected = tracks_in(shown.text)
    assert len(expected) == len(set(expected)) == 200
    response = await client.post("/playlists", data=form.data(count="200"), headers=HX)
    assert response.status_code == 201
    made = one_playlist(emulator)
    assert made["items"] == expected
    adds = [r for r in emulator.requests if r[0] == "POST" and r[1].endswith("/items")]
    assert len(adds) == 2


def assert_links_to_it(html: str, emulator, playlist_id: int) -> None:
    """The answer links the one playlist there is: on Spotify and its page here."""
    spotify_id = next(iter(one_playlist_ids(emulator)))
    spotify_link = re.search(r'href="([^"]+)"[^>]*>Open in Spotify', html)
    assert spotify_link and spotify_id in spotify_link.group(1)
    assert f'href="{BASE_URL}/playlists/{playlist_id}">See its tracks</a>' in html


def one_playlist_ids(emulator) -> list[str]:
    assert len(emulator.playlists) == 1, emulator.playlists
    return list(emulator.playlists)


def creates_asked(emulator) -> int:
    """How many times Spotify was asked to create a playlist."""
    return sum(1 for method, path in emulator.requests
               if method == "POST" and path == "/v1/me/playlists")


async def test_the_same_form_twice_makes_one_playlist(client: httpx.AsyncClient, emulator,
                                                      form: Form) -> None:
    first = await client.post("/playlists", data=form.data(name="Once"))
    await client.get(first.headers["location"])  # the browser follows the redirect
    # Back, and send the same form (the same one-time key) again.
    second = await client.post("/playlists", data=form.data(name="Once"))
    assert first.status_code == second.status_code == 303
    assert second.headers["location"] == first.headers["location"]
    playlist_id = int(first.headers["location"].rsplit("=", 1)[1])
    assert len(emulator.playlists) == 1
    page = await client.get(second.headers["location"])
    assert ("Already created: that request made “Once” before, so no second playlist was "
            "made.") in page.text
    assert_links_to_it(page.text, emulator, playlist_id)
    again = await client.post("/playlists", data=form.data(name="Once"), headers=HX)
    assert again.status_code == 200
    assert again.text.startswith('<div id="playlist-result"')
    assert "Already created: “Once” is on Spotify" in text_of(again.text)
    assert "no second playlist was made" in again.text
    assert_links_to_it(again.text, emulator, playlist_id)
    assert len(emulator.playlists) == 1 and creates_asked(emulator) == 1
    assert (await client.get("/playlists")).text.count('class="playlist-item"') == 1
    # The link works.
    assert (await client.get(f"/playlists/{playlist_id}")).status_code == 200


async def test_back_and_create_on_a_fetched_again_form_makes_one_playlist(
        client: httpx.AsyncClient, emulator, form: Form) -> None:
    first = await client.post("/playlists", data=form.data(name="Back", count="4"))
    assert first.status_code == 303
    playlist_id = int(first.headers["location"].rsplit("=", 1)[1])
    # Back fetches the form again: a new key, the same choices.
    fresh = Form((await client.get("/playlists")).text)
    assert fresh.key != form.key
    again = await client.post("/playlists", data=fresh.data(name="Back", count="4"))
    assert again.status_code == 303 and again.headers["location"] == first.headers["location"]
    page = await client.get(again.headers["location"])
    assert "Already created: that request made “Back” before" in page.text
    assert_links_to_it(page.text, emulator, playlist_id)
    fresh = Form((await client.get("/playlists")).text)
    fragment = await client.post("/playlists", data=fresh.data(name="Back", count="4"),
                                 headers=HX)
    assert fragment.status_code == 200
    assert "Already created: “Back” is on Spotify" in text_of(fragment.text)
    assert_links_to_it(fragment.text, emulator, playlist_id)
    # The form it hands back has a new key, and still makes nothing twice.
    assert key_from(fragment.text) != fresh.key
    assert len(emulator.playlists) == 1 and creates_asked(emulator) == 1
    # Asking for something else is a new playlist.
    other = Form((await client.get("/playlists")).text)
    assert (await client.post("/playlists", data=other.data(name="Back", count="3"))
            ).status_code == 303
    assert len(emulator.playlists) == 2


@pytest.mark.parametrize("presses", [2, 3])
@pytest.mark.parametrize("same_form", [True, False], ids=["same-form", "fresh-forms"])
@pytest.mark.parametrize("headers", [HX, {}], ids=["htmx", "plain"])
async def test_presses_at_once_make_one_playlist(client: httpx.AsyncClient, emulator,
                                                 form: Form, presses: int, same_form: bool,
                                                 headers: dict) -> None:
    forms = [form] * presses if same_form else [
        Form((await client.get("/playlists")).text) for _ in range(presses)]
    results = await asyncio.gather(*(
        client.post("/playlists", data=f.data(name="Pressed"), headers=headers) for f in forms))
    assert len(emulator.playlists) == 1 and creates_asked(emulator) == 1
    assert (await client.get("/playlists")).text.count('class="playlist-item"') == 1
    if headers:
        assert sorted(r.status_code for r in results) == [200] * (presses - 1) + [201]
        for response in results:
            assert "“Pressed” is on Spotify" in text_of(response.text)
        assert sum("Already created" in r.text for r in results) == presses - 1
    else:
        assert {r.status_code for r in results} == {303}
        assert len({r.headers["location"] for r in results}) == 1


async def test_a_form_still_being_created_is_409(client: httpx.AsyncClient, app, emulator,
                                                 form: Form, monkeypatch) -> None:
    # A request that never finishes (its process hangs): the repeat waits, then says so.
    monkeypatch.setattr(workflow, "WAIT_SECONDS", 0.2)
    user_id = await db_run(app, _user_id, "demo")
    plan = await db_run(app, playlists.preview, user_id, playlists.Choice("current_rotation"))
    await db_run(app, lambda conn: workflow.reserve(
        conn, user_id, form.key, holder="stuck", name=plan.name, source="current_rotation",
        year=None, track_ids=[t.track_id for t in plan.tracks],
        request=workflow.request_of(playlists.Choice("current_rotation"), plan.name)))
    fresh = Form((await client.get("/playlists")).text)
    for data in (form.data(), fresh.data()):
        for headers, start in (({}, "<!doctype html>"), (HX, '<div id="playlist-result"')):
            response = await shown(client, await client.post("/playlists", data=data,
                                                             headers=headers), headers)
            assert response.status_code == 409
            assert response.text.startswith(start)
            assert "already being created" in response.text
    assert emulator.playlists == {}


async def test_a_form_whose_playlist_was_deleted_is_409(client: httpx.AsyncClient, emulator,
                                                        form: Form) -> None:
    created = await client.post("/playlists", data=form.data())
    playlist_id = created.headers["location"].rsplit("=", 1)[1]
    await client.post(f"/playlists/{playlist_id}/delete",
                      data={"csrf_token": form.csrf, "confirm": "delete"})
    again = await client.post("/playlists", data=form.data(), headers=HX)
    assert again.status_code == 409
    assert "since deleted" in again.text
    # The response hands the form a new key, which works.
    form.key = key_from(again.text)
    assert (await client.post("/playlists", data=form.data())).status_code == 303
    assert len(emulator.playlists) == 2


@pytest.mark.parametrize("fields,field", [
    ({"source": "top_secret"}, "source"),
    ({"name": "x" * 101}, "name"),
    ({"count": "0"}, "count"),
    ({"count": "many"}, "count"),
    ({"source": "year_in_review", "year": ""}, "year"),
    ({"source": "year_in_review", "year": "1987"}, "year"),
])
async def test_create_refuses_bad_input(client: httpx.AsyncClient, emulator, form: Form,
                                        fields: dict, field: str) -> None:
    page = await shown(client, await client.post("/playlists", data=form.data(**fields)))
    assert page.status_code == 422
    assert page.text.startswith("<!doctype html>")
    # The error sits next to its field, and the form keeps its key.
    assert f'aria-describedby="playlist-{field}-error"' in page.text
    assert f'id="playlist-{field}-error" class="pl-error"' in page.text
    assert key_from(page.text) == form.key
    # Shown once: a reload is the plain page.
    assert (await client.get("/playlists")).status_code == 200
    fragment = await client.post("/playlists", data=form.data(**fields), headers=HX)
    assert fragment.status_code == 422
    assert fragment.text.startswith('<form id="playlist-form"')
    assert f'id="playlist-{field}-error"' in fragment.text
    assert emulator.playlists == {}


async def test_create_without_a_key_is_422(client: httpx.AsyncClient, emulator,
                                           form: Form) -> None:
    for key in ("", "not-a-uuid"):
        form.key = key
        page = await shown(client, await client.post("/playlists", data=form.data()))
        assert page.status_code == 422
        assert "Reload the page" in page.text
        assert playlists.valid_key(key_from(page.text))
    assert emulator.playlists == {}


async def test_create_from_an_empty_source_is_404(client: httpx.AsyncClient, app, emulator,
                                                  form: Form) -> None:
    for headers, start in (({}, "<!doctype html>"), (HX, '<div id="playlist-result"')):
        response = await shown(client, await client.post(
            "/playlists", data=form.data(source="forgotten_gems"), headers=headers), headers)
        assert response.status_code == 404
        assert response.text.startswith(start)
        assert "No tracks for Forgotten Gems yet" in response.text
        assert "privacy export" in response.text
    assert emulator.playlists == {}
    count = await db_run(app, lambda conn: conn.execute("SELECT count(*) FROM playlists")
                         .fetchone()[0])
    assert count == 0


@pytest.mark.parametrize("arm,status,words", [
    (lambda e: e.fail("/v1/me/playlists", 503, times=3), 502, "having trouble"),
    (lambda e: e.fail("/v1/me/playlists", 500), 502, "having trouble"),
    (lambda e: e.timeout("/v1/me/playlists"), 503, "did not answer in time"),
    (lambda e: e.fail("/v1/me/playlists", 429, retry_after=120), 503, "try again in 2 minutes"),
])
async def test_spotify_failing_to_create(client: httpx.AsyncClient, emulator, form: Form, arm,
                                         status: int, words: str) -> None:
    arm(emulator)
    page = await shown(client, await client.post("/playlists", data=form.data()))
    assert page.status_code == status
    assert page.text.startswith("<!doctype html>")
    assert "Spotify did not create the playlist" in page.text and words in page.text
    assert "Nothing was created on Spotify" in page.text
    assert emulator.playlists == {}
    arm(emulator)
    fragment = await client.post("/playlists", data=form.data(), headers=HX)
    assert fragment.status_code == status
    assert fragment.text.startswith('<div id="playlist-result"') and words in fragment.text
    # The same form works once Spotify is back.
    assert (await client.post("/playlists", data=form.data())).status_code == 303
    assert len(emulator.playlists) == 1


async def test_expired_consent_is_401(client: httpx.AsyncClient, emulator, form: Form) -> None:
    emulator.expire_consent()
    emulator.expire_access_tokens()
    fragment = await client.post("/playlists", data=form.data(), headers=HX)
    assert fragment.status_code == 401
    assert "reconnect" in fragment.text
    assert emulator.playlists == {}


async def test_adding_fails_after_creation_then_retry_adds_the_rest(
        client: httpx.AsyncClient, emulator, form: Form) -> None:
    shown = await client.get("/playlists/preview", params={"source": "current_rotation",
                                                           "count": "20"}, headers=HX)
    expected = tracks_in(shown.text)
    emulator.fail("/v1/playlists/", 500)
    page = await client.post("/playlists", data=form.data(count="20", name="Half"))
    assert page.status_code == 502
    assert "“Half” was created on Spotify, but adding its tracks failed" in text_of(page.text)
    assert "0 of 20 tracks are on it" in page.text
    made = one_playlist(emulator)
    assert made["items"] == []
    retry_url = re.search(r'action="http://127\.0\.0\.1:8000(/playlists/\d+/retry)"',
                          page.text).group(1)
    # The list shows it too, with its own retry button; the page has one list and one form key.
    assert "0 of 20 added" in page.text
    assert page.text.count('id="playlist-history"') == 1 and "hx-swap-oob" not in page.text
    assert page.text.count('id="playlist-key"') == 1 and key_from(page.text) != form.key

    retried = await client.post(retry_url, data={"csrf_token": form.csrf})
    assert retried.status_code == 303
    assert one_playlist(emulator)["items"] == expected
    done = await client.get(retried.headers["location"])
    assert "All 20 tracks are now on “Half”." in done.text
    assert "“Half” is on Spotify" in text_of(done.text)
    # Retrying a complete playlist adds nothing.
    again = await client.post(retry_url, data={"csrf_token": form.csrf}, headers=HX)
    assert again.status_code == 200 and "“Half” is on Spotify" in text_of(again.text)
    assert one_playlist(emulator)["items"] == expected


async def test_retry_with_htmx_after_a_failed_second_chunk(client: httpx.AsyncClient, app,
                                                           emulator, form: Form,
                                                           monkeypatch) -> None:
    await add_rotation(app, emulator, 150)
    shown = await client.get("/playlists/preview", params={"source": "current_rotation",
                                                           "count": "150"}, headers=HX)
    expected = tracks_in(shown.text)
    spotify = app.state.services.spotify
    original = spotify.add_items
    calls = []

    async def second_call_fails(token, playlist_id, uris):
        calls.append(len(uris))
        if len(calls) == 2:
            emulator.fail("/v1/playlists/", 503, times=3)
        return await original(token, playlist_id, uris)

    monkeypatch.setattr(spotify, "add_items", second_call_fails)
    response = await client.post("/playlists", data=form.data(count="150"), headers=HX)
    assert response.status_code == 502
    assert response.text.startswith('<div id="playlist-result"')
    assert "100 of 150 tracks are on it" in response.text
    assert "Retrying adds only the 50 missing tracks" in response.text
    assert one_playlist(emulator)["items"] == expected[:100]
    # The list (out of band) shows the playlist as incomplete; the form gets a new key.
    assert "100 of 150 added" in response.text
    assert key_from(response.text) != form.key

    retry_url = re.search(r'hx-post="http://127\.0\.0\.1:8000(/playlists/\d+/retry)"',
                          response.text).group(1)
    retried = await client.post(retry_url, data={"csrf_token": form.csrf}, headers=HX)
    assert retried.status_code == 200
    assert retried.text.startswith('<div id="playlist-result"')
    assert "is on Spotify" in retried.text
    assert one_playlist(emulator)["items"] == expected
    assert calls == [100, 50, 50]


async def test_retry_while_another_request_adds_is_409(client: httpx.AsyncClient, app,
                                                       emulator, form: Form) -> None:
    emulator.fail("/v1/playlists/", 500)
    page = await client.post("/playlists", data=form.data(count="5"))
    playlist_id = int(re.search(r"/playlists/(\d+)/retry", page.text).group(1))
    user_id = await db_run(app, _user_id, "demo")
    assert await db_run(app, workflow.claim, user_id, playlist_id, "another request")
    for headers in ({}, HX):
        busy = await client.post(f"/playlists/{playlist_id}/retry",
                                 data={"csrf_token": form.csrf}, headers=headers)
        assert busy.status_code == 409
        assert "already being added" in busy.text
    assert one_playlist(emulator)["items"] == []


async def test_names_are_escaped_everywhere(client: httpx.AsyncClient, app, emulator,
                                            form: Form) -> None:
    name = "<script>alert('x')</script> & co"
    created = await client.post("/playlists", data=form.data(name=name, count="3"))
    assert one_playlist(emulator)["name"] == name
    playlist_id = created.headers["location"].rsplit("=", 1)[1]
    pages = [await client.get(created.headers["location"]),
             await client.get(f"/playlists/{playlist_id}"),
             await client.get(f"/playlists/{playlist_id}", headers=HX),
             await client.get(f"/playlists/{playlist_id}/rename"),
             await client.get(f"/playlists/{playlist_id}/delete", headers=HX),
             await client.get("/playlists/preview", params={"source": "current_rotation",
                                                            "name": name})]
    for response in pages:
        assert "<script>alert" not in response.text, response.url
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in response.text


# --- detail, rename, delete -----------------------------------------------------------------


async def create(client: httpx.AsyncClient, form: Form, **fields: str) -> int:
    response = await client.post("/playlists", data=form.data(**fields))
    assert response.status_code == 303, response.text
    form.key = key_from((await client.get(response.headers["location"])).text)
    return int(response.headers["location"].rsplit("=", 1)[1])


async def test_detail_page_and_fragment(client: httpx.AsyncClient, emulator,
                                        form: Form) -> None:
    playlist_id = await create(client, form, count="4", name="Four")
    page = await client.get(f"/playlists/{playlist_id}")
    assert page.status_code == 200
    assert f'<h1><span class="pl-name-{playlist_id}">Four</span></h1>' in page.text
    assert "<title>Four · Playlists" in page.text
    assert tracks_in(page.text) == one_playlist(emulator)["items"]
    assert "not on Spotify yet" not in page.text
    fragment = await client.get(f"/playlists/{playlist_id}", headers=HX)
    assert fragment.text.startswith(f'<li id="playlist-{playlist_id}" class="playlist-item"')
    assert "Rename" in fragment.text and "Delete" in fragment.text


async def test_history_is_newest_first(client: httpx.AsyncClient, app, emulator,
                                       form: Form) -> None:
    await add_rotation(app, emulator, 10)
    year = str(time.gmtime().tm_year)
    await create(client, form, count="2", name="First")
    await create(client, form, source="year_in_review", year=year, count="3", name="Second")
    await create(client, form, source="recent_discoveries", count="1", name="Third")
    page = (await client.get("/playlists")).text
    names = re.findall(r'class="playlist-name" href="[^"]+">([^<]+)</a>', page)
    assert names == ["Third", "Second", "First"]
    assert f"Year in Review {year} · <time" in page
    assert "· 1 track</span>" in page and "· 3 tracks</span>" in page


async def test_rename_without_javascript(client: httpx.AsyncClient, emulator,
                                         form: Form) -> None:
    playlist_id = await create(client, form, name="Old")
    page = await client.get(f"/playlists/{playlist_id}/rename")
    assert page.status_code == 200
    assert "<h1>Rename playlist</h1>" in page.text
    assert 'name="name" type="text" required maxlength="100"' in page.text
    assert 'value="Old"' in page.text
    response = await client.post(f"/playlists/{playlist_id}/rename",
                                 data={"csrf_token": form.csrf, "name": "  New  "})
    assert response.status_code == 303 and response.headers["location"] == "/playlists"
    assert one_playlist(emulator)["name"] == "New"
    listed = (await client.get("/playlists")).text
    assert "Renamed to “New”." in listed and 'class="playlist-name"' in listed


async def test_rename_with_htmx(client: httpx.AsyncClient, emulator, form: Form) -> None:
    playlist_id = await create(client, form, name="Old")
    fragment = await client.get(f"/playlists/{playlist_id}/rename", headers=HX)
    assert fragment.status_code == 200
    assert fragment.text.startswith(f'<li id="playlist-{playlist_id}"')
    assert "Cancel" in fragment.text
    response = await client.post(f"/playlists/{playlist_id}/rename",
                                 data={"csrf_token": form.csrf, "name": "New <b>"}, headers=HX)
    assert response.status_code == 200
    assert response.text.startswith(f'<li id="playlist-{playlist_id}" class="playlist-item"')
    assert "Renamed to “New &lt;b&gt;”." in response.text
    assert one_playlist(emulator)["name"] == "New <b>"
    # HTMX showed the outcome in place: no flash waits for the next page.
    assert 'class="flash ' not in (await client.get("/playlists")).text


@pytest.mark.parametrize("name,words", [("", "Enter a name."),
                                        ("x" * 101, "at most 100 characters")])
async def test_rename_refuses_bad_names(client: httpx.AsyncClient, emulator, form: Form,
                                        name: str, words: str) -> None:
    playlist_id = await create(client, form, name="Keep")
    for headers, start in (({}, "<!doctype html>"), (HX, f'<li id="playlist-{playlist_id}"')):
        response = await shown(client, await client.post(
            f"/playlists/{playlist_id}/rename", data={"csrf_token": form.csrf, "name": name},
            headers=headers), headers)
        assert response.status_code == 422
        assert response.text.startswith(start) and words in response.text
        assert 'aria-invalid="true"' in response.text
    assert one_playlist(emulator)["name"] == "Keep"


async def test_rename_when_spotify_fails(client: httpx.AsyncClient, emulator,
                                         form: Form) -> None:
    playlist_id = await create(client, form, name="Keep")
    for headers in ({}, HX):
        emulator.fail("/v1/playlists/", 502, times=3)
        response = await shown(client, await client.post(
            f"/playlists/{playlist_id}/rename", data={"csrf_token": form.csrf, "name": "Other"},
            headers=headers), headers)
        assert response.status_code == 502
        assert "Spotify did not rename it" in response.text
        assert 'value="Other"' in response.text
    assert one_playlist(emulator)["name"] == "Keep"
    assert "Keep</a>" in (await client.get("/playlists")).text


async def test_delete_without_javascript(client: httpx.AsyncClient, emulator,
                                         form: Form) -> None:
    playlist_id = await create(client, form, name="Doomed")
    confirm = await client.get(f"/playlists/{playlist_id}/delete")
    assert confirm.status_code == 200
    assert "<h1>Delete playlist</h1>" in confirm.text and "Delete “Doomed”?" in confirm.text
    assert 'name="confirm" value="delete"' in confirm.text and "Cancel" in confirm.text
    # Nothing happened on GET.
    assert one_playlist(emulator)["followed"] is True
    response = await client.post(f"/playlists/{playlist_id}/delete",
                                 data={"csrf_token": form.csrf, "confirm": "delete"})
    assert response.status_code == 303 and response.headers["location"] == "/playlists"
    assert one_playlist(emulator)["followed"] is False
    listed = (await client.get("/playlists")).text
    assert "Deleted “Doomed”." in listed and 'class="playlist-item"' not in listed
    gone = await client.get(f"/playlists/{playlist_id}")
    assert gone.status_code == 404


async def test_delete_with_htmx(client: httpx.AsyncClient, emulator, form: Form) -> None:
    playlist_id = await create(client, form, name="Doomed")
    fragment = await client.get(f"/playlists/{playlist_id}/delete", headers=HX)
    assert fragment.text.startswith(f'<li id="playlist-{playlist_id}" class="playlist-item '
                                    'playlist-confirm"')
    response = await client.post(f"/playlists/{playlist_id}/delete",
                                 data={"csrf_token": form.csrf, "confirm": "delete"},
                                 headers=HX)
    assert response.status_code == 200
    assert response.text.startswith(f'<li id="playlist-{playlist_id}"')
    assert "Deleted “Doomed”." in response.text
    assert one_playlist(emulator)["followed"] is False


def from_page(path: str) -> dict[str, str]:
    """The headers of an HTMX request sent from the page at `path`."""
    return {**HX, "HX-Current-URL": f"{BASE_URL}{path}"}


async def test_rename_updates_the_title_and_headings_in_place(client: httpx.AsyncClient,
                                                              emulator, form: Form) -> None:
    playlist_id = await create(client, form, name="Old")
    own = f"/playlists/{playlist_id}"
    assert f'<h1><span class="pl-name-{playlist_id}">Old</span></h1>' in \
        (await client.get(own)).text
    response = await client.post(f"/playlists/{playlist_id}/rename",
                                 data={"csrf_token": form.csrf, "name": "New & <b>"},
                                 headers=from_page(own))
    assert response.status_code == 200
    assert response.text.startswith(f'<li id="playlist-{playlist_id}" class="playlist-item"')
    # HTMX takes the tab title from the fragment; every heading naming it updates out of band.
    title = "<title>New &amp; &lt;b&gt; · Playlists · Music Time Machine</title>"
    assert title in response.text
    assert (f'<span hx-swap-oob="innerHTML:.pl-name-{playlist_id}">New &amp; &lt;b&gt;</span>'
            in response.text)
    # They say what the page says when loaded afresh.
    page = (await client.get(own)).text
    assert title in page
    assert f'<h1><span class="pl-name-{playlist_id}">New &amp; &lt;b&gt;</span></h1>' in page

    # From the list: its title names no playlist and stays; the result card's heading follows.
    listed = (await client.get(f"/playlists?created={playlist_id}")).text
    assert f'“<span class="pl-name-{playlist_id}">New &amp; &lt;b&gt;</span>” is on' in listed
    response = await client.post(f"/playlists/{playlist_id}/rename",
                                 data={"csrf_token": form.csrf, "name": "Newer"},
                                 headers=from_page("/playlists"))
    assert response.status_code == 200 and "<title>" not in response.text
    assert f'<span hx-swap-oob="innerHTML:.pl-name-{playlist_id}">Newer</span>' in response.text
    assert one_playlist(emulator)["name"] == "Newer"


async def test_delete_updates_the_title_and_headings_in_place(client: httpx.AsyncClient,
                                                              emulator, form: Form) -> None:
    playlist_id = await create(client, form, name="Doomed")
    own = f"/playlists/{playlist_id}"
    page = (await client.get(own)).text
    assert '<section id="playlist-tracks"' in page and '<div id="playlist-head"' in page
    response = await client.post(f"/playlists/{playlist_id}/delete",
                                 data={"csrf_token": form.csrf, "confirm": "delete"},
                                 headers=from_page(own))
    assert response.status_code == 200
    assert response.text.startswith(f'<li id="playlist-{playlist_id}"')
    assert "<title>Deleted “Doomed” · Playlists · Music Time Machine</title>" in response.text
    assert '<div id="playlist-head" class="page-head" hx-swap-oob="true">' in response.text
    assert "<h1>Deleted “Doomed”</h1>" in response.text
    assert 'hx-swap-oob="delete:#playlist-tracks"' in response.text
    assert f'hx-swap-oob="delete:.pl-result-{playlist_id}"' in response.text
    assert one_playlist(emulator)["followed"] is False

    # From the list, only the result card about it goes.
    other = await create(client, form, name="Also doomed")
    response = await client.post(f"/playlists/{other}/delete",
                                 data={"csrf_token": form.csrf, "confirm": "delete"},
                                 headers=from_page("/playlists"))
    assert response.status_code == 200
    assert f'hx-swap-oob="delete:.pl-result-{other}"' in response.text
    assert "<title>" not in response.text and "playlist-head" not in response.text


async def test_delete_checks_the_confirmation(client: httpx.AsyncClient, emulator,
                                              form: Form) -> None:
    playlist_id = await create(client, form, name="Safe")
    for headers in ({}, HX):
        response = await shown(client, await client.post(
            f"/playlists/{playlist_id}/delete", data={"csrf_token": form.csrf, "confirm": "yes"},
            headers=headers), headers)
        assert response.status_code == 422
        assert "Delete “Safe”?" in response.text
    assert one_playlist(emulator)["followed"] is True


async def test_delete_when_spotify_fails(client: httpx.AsyncClient, emulator,
                                         form: Form) -> None:
    playlist_id = await create(client, form, name="Stays")
    for headers, start in (({}, "<!doctype html>"), (HX, f'<li id="playlist-{playlist_id}"')):
        emulator.fail("/v1/me/library", 503, times=3)
        response = await shown(client, await client.post(
            f"/playlists/{playlist_id}/delete",
            data={"csrf_token": form.csrf, "confirm": "delete"}, headers=headers), headers)
        assert response.status_code == 502
        assert response.text.startswith(start)
        assert "Spotify did not delete it" in response.text
        assert "Delete “Stays”?" in response.text
        # Never dropped from the list while it is still on Spotify.
        assert one_playlist(emulator)["followed"] is True
        assert "Stays</a>" in (await client.get("/playlists")).text
        assert (await client.get(f"/playlists/{playlist_id}")).status_code == 200


async def test_delete_of_a_playlist_spotify_no_longer_has(client: httpx.AsyncClient, emulator,
                                                          form: Form) -> None:
    playlist_id = await create(client, form, name="Vanished")
    emulator.fail("/v1/me/library", 404)
    response = await client.post(f"/playlists/{playlist_id}/delete",
                                 data={"csrf_token": form.csrf, "confirm": "delete"})
    assert response.status_code == 303
    assert "Vanished</a>" not in (await client.get("/playlists")).text


async def test_another_users_playlist_is_404(app, emulator) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as owner, \
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as stranger:
        await sign_in(owner)
        form = Form((await owner.get("/playlists")).text)
        playlist_id = await create(owner, form, name="Mine")
        await sign_in(stranger, account="newcomer")
        csrf = csrf_from((await stranger.get("/playlists")).text)
        for method, path in (("GET", ""), ("GET", "/rename"), ("GET", "/delete"),
                             ("POST", "/rename"), ("POST", "/delete"), ("POST", "/retry")):
            for headers in ({}, HX):
                response = await stranger.request(
                    method, f"/playlists/{playlist_id}{path}", headers=headers,
                    data={"csrf_token": csrf, "name": "Theirs", "confirm": "delete"}
                    if method == "POST" else None)
                assert response.status_code == 404, (method, path)
        assert "Mine</a>" not in (await stranger.get("/playlists")).text
    assert one_playlist(emulator)["name"] == "Mine"
    assert one_playlist(emulator)["followed"] is True


@pytest.mark.parametrize("path", ["/playlists/0", "/playlists/99999999999999999999999",
                                  "/playlists/7/rename"])
async def test_unknown_playlists_are_404(client: httpx.AsyncClient, form: Form,
                                         path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert unescape("There is no such playlist") in response.text


async def test_a_playlist_deleted_while_its_tracks_are_added(client: httpx.AsyncClient, app,
                                                             emulator, form: Form,
                                                             monkeypatch) -> None:
    spotify = app.state.services.spotify
    original = spotify.add_items
    user_id = await db_run(app, _user_id, "demo")

    async def delete_meanwhile(token, playlist_id, uris):
        await original(token, playlist_id, uris)
        mine = await db_run(app, playlists.list_playlists, user_id)
        await db_run(app, workflow.mark_deleted, user_id, mine[0].id)

    monkeypatch.setattr(spotify, "add_items", delete_meanwhile)
    response = await client.post("/playlists", data=form.data(count="3"), headers=HX)
    assert response.status_code == 409
    assert "deleted while its tracks were being added" in response.text
    assert len(one_playlist(emulator)["items"]) == 3


async def test_delete_with_a_sign_in_older_than_its_permission(client: httpx.AsyncClient, app,
                                                               emulator, form: Form) -> None:
    """Deleting needs user-library-modify, which sign-ins from before it was asked lack."""
    playlist_id = await create(client, form, name="Old sign-in")
    db = app.state.services.db
    await db.run(lambda c: c.execute(
        "UPDATE tokens SET scope = 'user-read-recently-played user-top-read "
        "playlist-modify-private playlist-modify-public'"))
    for headers in ({}, HX):
        response = await shown(client, await client.post(
            f"/playlists/{playlist_id}/delete",
            data={"csrf_token": form.csrf, "confirm": "delete"}, headers=headers), headers)
        assert response.status_code == 403
        assert "one more permission" in response.text and "Reconnect Spotify</a>" in response.text
        assert ("<html" in response.text) is (headers == {})
    assert one_playlist(emulator)["followed"] is True
    assert "Old sign-in</a>" in (await client.get("/playlists")).text
    assert not [r for r in emulator.requests if r[1] == "/v1/me/library"], "Spotify not asked"
    settings = (await client.get("/settings")).text
    assert "Permissions missing" in settings and "Needed for deleting playlists" in settings
    assert ">Reconnect Spotify</a>" in settings


async def test_spotify_refusing_the_permission_is_explained(client: httpx.AsyncClient,
                                                            emulator, form: Form) -> None:
    playlist_id = await create(client, form, name="Refused")
    emulator.fail("/v1/me/library", 403)
    response = await shown(client, await client.post(
        f"/playlists/{playlist_id}/delete", data={"csrf_token": form.csrf, "confirm": "delete"}))
    assert response.status_code == 403 and "one more permission" in response.text
    assert one_playlist(emulator)["followed"] is True
