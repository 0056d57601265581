"""The Spotify emulator's HTTP behaviour: authorize page, tokens, Web API, switches."""

from __future__ import annotations

import asyncio
import calendar
import inspect
import re
import time
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from mtm.config import SCOPES
from mtm.spotify import oauth
from mtm.spotify.emulator import IN_PROCESS_BASE, Emulator
from tests.conftest import Clock

REDIRECT = "http://127.0.0.1:8000/callback"
START = 1_790_000_000.0
PLAYED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def authorize_params(**overrides: str) -> dict[str, str]:
    params = {"client_id": "mtm-demo", "response_type": "code", "redirect_uri": REDIRECT,
              "code_challenge_method": "S256", "state": "st",
              "code_challenge": oauth.challenge_for(oauth.make_verifier()),
              "scope": " ".join(SCOPES)}
    params.update(overrides)
    return params


def with_emulator(test):
    """Run an async test body with a fresh emulator, its clock and an httpx client on it."""
    def wrapper(*args, **kwargs):
        async def main():
            clock = Clock(START)
            emulator = Emulator(clock=clock)
            async with httpx.AsyncClient(transport=emulator.transport(),
                                         base_url=IN_PROCESS_BASE) as http:
                await test(emulator, clock, http, *args, **kwargs)
        asyncio.run(main())
    wrapper.__name__ = test.__name__
    # Show pytest only the parametrized arguments, not the three this wrapper supplies.
    signature = inspect.signature(test)
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=list(signature.parameters.values())[3:])
    return wrapper


async def access_token(emulator: Emulator, http: httpx.AsyncClient, user: str = "demo",
                       scope: str = " ".join(SCOPES)) -> dict:
    verifier = oauth.make_verifier()
    code = emulator.grant_code(user, redirect_uri=REDIRECT,
                               code_challenge=oauth.challenge_for(verifier), scope=scope)
    answer = await http.post("/accounts/api/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": verifier, "client_id": "mtm-demo"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


# Authorize page


@with_emulator
async def test_authorize_page_is_a_plain_accessible_form(emulator, clock, http):
    page = await http.get("/accounts/authorize", params=authorize_params())
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "<title>Spotify emulator — authorize</title>" in text
    assert '<link rel="stylesheet" href="/static/css/app.css">' in text
    assert "<script" not in text and "style=" not in text and "<style" not in text
    assert 'class="emulator"' in text and 'class="card"' in text
    assert 'class="button"' in text and 'class="button button-secondary"' in text
    assert '<form method="get" action="authorize/decide">' in text
    assert 'name="user" value="demo" checked' in text
    assert 'name="user" value="newcomer"' in text
    assert "Demo Listener" in text and "New Listener" in text
    assert "mtm-demo" in text and "user-read-recently-played" in text
    for name in ("client_id", "redirect_uri", "state", "code_challenge", "scope"):
        assert f'type="hidden" name="{name}"' in text
    assert ">Agree</button>" in text and ">Cancel</button>" in text


@pytest.mark.parametrize("redirect_uri", [
    "http://localhost:8000/callback", "https://localhost/callback",
    "http://example.org:8000/callback", "http://127.0.0.1/callback", "not a uri",
])
@with_emulator
async def test_authorize_refuses_bad_redirect_uris_without_redirecting(
        emulator, clock, http, redirect_uri):
    page = await http.get("/accounts/authorize", params=authorize_params(
        redirect_uri=redirect_uri))
    assert page.status_code == 400
    assert "location" not in page.headers
    assert "redirect URI" in page.text
    decide = await http.get("/accounts/authorize/decide", params=authorize_params(
        redirect_uri=redirect_uri, user="demo", decision="agree"))
    assert decide.status_code == 400 and "location" not in decide.headers


@pytest.mark.parametrize("redirect_uri", [
    "http://127.0.0.1:8000/callback", "http://[::1]:8000/callback", "https://example.org/cb",
])
@with_emulator
async def test_authorize_accepts_loopback_literals_and_https(emulator, clock, http,
                                                             redirect_uri):
    emulator.register_redirect_uri(redirect_uri)
    page = await http.get("/accounts/authorize", params=authorize_params(
        redirect_uri=redirect_uri))
    assert page.status_code == 200


@pytest.mark.parametrize("override", [
    {"client_id": "someone-else"}, {"response_type": "token"},
    {"code_challenge_method": "plain"}, {"code_challenge": ""},
    {"scope": "user-read-recently-played delete-everything"},
])
@with_emulator
async def test_authorize_validates_the_request(emulator, clock, http, override):
    page = await http.get("/accounts/authorize", params=authorize_params(**override))
    assert page.status_code == 400
    assert "<form" not in page.text


@with_emulator
async def test_authorize_escapes_a_script_in_state(emulator, clock, http):
    state = '"><script>alert(1)</script>'
    page = await http.get("/accounts/authorize", params=authorize_params(state=state))
    assert page.status_code == 200
    assert "<script" not in page.text
    assert 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page.text


@with_emulator
async def test_decide_agree_and_cancel_redirect_back_with_state(emulator, clock, http):
    params = authorize_params(state="a b&c")
    agreed = await http.get("/accounts/authorize/decide",
                            params={**params, "user": "newcomer", "decision": "agree"})
    assert agreed.status_code == 303
    location = urlsplit(agreed.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["a b&c"] and len(query["code"][0]) > 20

    cancelled = await http.get("/accounts/authorize/decide",
                               params={**params, "user": "demo", "decision": "cancel"})
    query = parse_qs(urlsplit(cancelled.headers["location"]).query)
    assert query == {"error": ["access_denied"], "state": ["a b&c"]}

    unknown = await http.get("/accounts/authorize/decide",
                             params={**params, "user": "mallory", "decision": "agree"})
    assert unknown.status_code == 400


@pytest.mark.parametrize("mount", ["app", "routes"])
def test_authorize_form_works_when_mounted_under_a_prefix(mount):
    emulator = Emulator(clock=Clock(START))
    if mount == "app":
        outer = Starlette(routes=[Mount("/emulator", app=emulator.app)])
    else:
        outer = Starlette(routes=[Mount("/emulator", routes=emulator.browser_routes())])
    assert all(route.methods <= {"GET", "HEAD"} for route in emulator.browser_routes())

    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=outer),
                                     base_url="http://127.0.0.1:8000") as http:
            page_url = "/emulator/accounts/authorize"
            page = await http.get(page_url, params=authorize_params())
            assert page.status_code == 200
            action = re.search(r'<form method="get" action="([^"]+)"', page.text).group(1)
            target = urljoin(str(page.url), action)
            assert urlsplit(target).path == "/emulator/accounts/authorize/decide"
            decided = await http.get(target, params={**authorize_params(), "user": "demo",
                                                     "decision": "agree"})
            assert decided.status_code == 303
            assert "code=" in decided.headers["location"]
    asyncio.run(main())


# Token endpoint


@with_emulator
async def test_token_endpoint_errors_use_the_accounts_shape(emulator, clock, http):
    tokens = await access_token(emulator, http)
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    json_body = await http.post("/accounts/api/token", json={"grant_type": "refresh_token"})
    assert json_body.status_code == 400 and json_body.json()["error"] == "invalid_request"

    wrong_client = await http.post("/accounts/api/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": "other"})
    assert wrong_client.json() == {"error": "invalid_client", "error_description":
                                   "Invalid client"}

    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
               "client_id": "mtm-demo"}
    first = await http.post("/accounts/api/token", data=refresh)
    assert first.status_code == 200
    assert first.json()["refresh_token"] != tokens["refresh_token"]
    reused = await http.post("/accounts/api/token", data=refresh)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert "error_description" in reused.json()


# Web API: auth


@with_emulator
async def test_bearer_tokens_are_checked(emulator, clock, http):
    missing = await http.get("/v1/me")
    assert missing.status_code == 401
    assert missing.json() == {"error": {"status": 401, "message": "No token provided"}}
    unknown = await http.get("/v1/me", headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401
    tokens = await access_token(emulator, http)
    assert (await http.get("/v1/me", headers=bearer(tokens))).status_code == 200
    clock.advance(3599)
    assert (await http.get("/v1/me", headers=bearer(tokens))).status_code == 200
    clock.advance(1)
    expired = await http.get("/v1/me", headers=bearer(tokens))
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "The access token expired"


@with_emulator
async def test_missing_scope_is_forbidden(emulator, clock, http):
    tokens = await access_token(emulator, http, scope="user-top-read")
    played = await http.get("/v1/me/player/recently-played", headers=bearer(tokens))
    assert played.status_code == 403
    top = await http.get("/v1/me/top/tracks", headers=bearer(tokens))
    assert top.status_code == 200


# Web API: recently played


@with_emulator
async def test_recently_played_shape_order_and_limit(emulator, clock, http):
    tokens = await access_token(emulator, http)
    answer = await http.get("/v1/me/player/recently-played", params={"limit": 50},
                            headers=bearer(tokens))
    assert answer.status_code == 200
    data = answer.json()
    items = data["items"]
    assert len(items) == 50 and data["limit"] == 50
    stamps = [item["played_at"] for item in items]
    assert all(PLAYED_AT.match(s) for s in stamps)
    millis = [_ms(s) for s in stamps]
    assert millis == sorted(millis, reverse=True) and len(set(millis)) == 50
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(START))
    assert stamps[0][:19] <= now
    track = next(i["track"] for i in items if i["track"] and i["track"]["id"])
    for key in ("id", "name", "uri", "duration_ms", "explicit", "album", "artists"):
        assert key in track
    assert track["album"]["id"] and track["album"]["release_date"]
    assert track["artists"][0]["name"] and track["uri"] == f"spotify:track:{track['id']}"
    contexts = [item["context"] for item in items]
    assert all(c is None or (c["type"] in ("album", "playlist") and c["uri"].startswith(
        f"spotify:{c['type']}:")) for c in contexts)
    assert data["cursors"]["after"] == str(_ms(stamps[0]))
    assert data["cursors"]["before"] == str(_ms(stamps[-1]))

    too_many = await http.get("/v1/me/player/recently-played", params={"limit": 51},
                              headers=bearer(tokens))
    assert too_many.status_code == 400
    both = await http.get("/v1/me/player/recently-played", params={"after": 1, "before": 2},
                          headers=bearer(tokens))
    assert both.status_code == 400


def _ms(stamp: str) -> int:
    seconds = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    fraction = stamp[20:-1] if stamp[19] == "." else ""
    return seconds * 1000 + int((fraction + "000")[:3])


@with_emulator
async def test_recently_played_cursors_page_without_gaps(emulator, clock, http):
    tokens = await access_token(emulator, http)
    everything = (await http.get("/v1/me/player/recently-played", params={"limit": 50},
                                 headers=bearer(tokens))).json()["items"]
    first = (await http.get("/v1/me/player/recently-played", params={"limit": 20},
                            headers=bearer(tokens))).json()
    assert first["next"] is not None
    second = (await http.get("/v1/me/player/recently-played",
                             params={"limit": 20, "before": first["cursors"]["before"]},
                             headers=bearer(tokens))).json()
    assert first["items"] + second["items"] == everything[:40]

    cursor = _ms(everything[30]["played_at"])
    after = (await http.get("/v1/me/player/recently-played",
                            params={"limit": 10, "after": cursor},
                            headers=bearer(tokens))).json()
    # The ten plays right after the cursor, newest first.
    assert after["items"] == everything[20:30]


@with_emulator
async def test_new_plays_appear_as_the_clock_advances(emulator, clock, http):
    tokens = await access_token(emulator, http)
    before = (await http.get("/v1/me/player/recently-played",
                             headers=bearer(tokens))).json()
    newest = before["cursors"]["after"]
    clock.advance(6 * 3600)
    tokens = await access_token(emulator, http)
    later = (await http.get("/v1/me/player/recently-played", params={"after": newest},
                            headers=bearer(tokens))).json()
    assert later["items"]
    assert all(_ms(item["played_at"]) > int(newest) for item in later["items"])
    assert all(_ms(item["played_at"]) <= clock.now * 1000 for item in later["items"])


def test_play_stream_is_deterministic_continuous_and_fast():
    clock = Clock(START)
    started = time.perf_counter()
    fresh = Emulator(clock=clock, seed=7)
    plays = fresh.recent_plays("demo")
    assert time.perf_counter() - started < 1.0  # includes building the catalogue
    timer = time.perf_counter()
    fresh.recent_plays("demo", int(START * 1000) + 86_400_000)
    assert time.perf_counter() - timer < 0.05
    assert plays == Emulator(clock=clock, seed=7).recent_plays("demo")
    assert plays != Emulator(clock=clock, seed=8).recent_plays("demo")

    week = fresh.play_history("demo", int(START * 1000) - 7 * 86_400_000, int(START * 1000))
    # Never silent for long in demo mode: something plays at any hour.
    assert 2000 < len(week) < 4000
    for previous, play in zip(week, week[1:], strict=False):
        # Plays never overlap: each starts after the previous one ended.
        assert play.played_at_ms - play.ms_played >= previous.played_at_ms
    for play in week:
        if play.skipped:
            assert play.ms_played < play.track.duration_ms
        else:
            assert play.ms_played == play.track.duration_ms
    by_hour = [0] * 24
    for play in week:
        by_hour[time.gmtime(play.played_at_ms // 1000).tm_hour] += 1
    # Evenings (UTC, the demo account's zone) are busier than the small hours, when a sleep
    # playlist of long, calm tracks plays.
    assert sum(by_hour[17:22]) / 5 > 1.1 * sum(by_hour[1:5]) / 4


@with_emulator
async def test_newcomer_has_no_history_and_no_top_items(emulator, clock, http):
    tokens = await access_token(emulator, http, user="newcomer")
    me = (await http.get("/v1/me", headers=bearer(tokens))).json()
    assert me["display_name"] == "New Listener"
    played = (await http.get("/v1/me/player/recently-played", headers=bearer(tokens))).json()
    assert played["items"] == [] and played["cursors"] is None
    for kind in ("tracks", "artists"):
        top = (await http.get(f"/v1/me/top/{kind}", headers=bearer(tokens))).json()
        assert top["items"] == [] and top["total"] == 0


# Web API: top items and lookups


@with_emulator
async def test_top_items_are_stable_per_range(emulator, clock, http):
    tokens = await access_token(emulator, http)

    async def top(kind, time_range, **params):
        answer = await http.get(f"/v1/me/top/{kind}", headers=bearer(tokens),
                                params={"time_range": time_range, **params})
        assert answer.status_code == 200
        return [item["id"] for item in answer.json()["items"]]

    short = await top("tracks", "short_term", limit=50)
    assert len(short) == 50 and len(set(short)) == 50
    assert short == await top("tracks", "short_term", limit=50)
    assert short != await top("tracks", "long_term", limit=50)
    assert (await top("tracks", "short_term", limit=10, offset=10)) == short[10:20]
    artists = await top("artists", "medium_term", limit=5)
    assert len(artists) == 5
    # Computed once a day, as Spotify's are: later the same UTC day they are the same.
    clock.advance(86400 - clock.now % 86400 - 1)
    tokens = await access_token(emulator, http)
    assert short == await top("tracks", "short_term", limit=50)
    clock.advance(30 * 86400)
    tokens = await access_token(emulator, http)
    assert short != await top("tracks", "short_term", limit=50)
    bad = await http.get("/v1/me/top/tracks", params={"time_range": "forever"},
                         headers=bearer(tokens))
    assert bad.status_code == 400


@with_emulator
async def test_artist_details_can_be_omitted(emulator, clock, http):
    tokens = await access_token(emulator, http)
    artist = emulator.catalogue.artists[10]
    full = (await http.get(f"/v1/artists/{artist.spotify_id}", headers=bearer(tokens))).json()
    assert full["name"] == artist.name
    assert full["genres"] == list(artist.genres)
    assert "popularity" not in full and "followers" not in full, "not for development mode"
    emulator.omit_artist_details = True
    bare = (await http.get(f"/v1/artists/{artist.spotify_id}", headers=bearer(tokens))).json()
    assert "genres" not in bare and "popularity" not in bare and bare["name"] == artist.name
    top = (await http.get("/v1/me/top/artists", headers=bearer(tokens))).json()
    assert top["items"] and all("genres" not in a for a in top["items"])

    assert (await http.get("/v1/artists/short", headers=bearer(tokens))).status_code == 400
    assert (await http.get(f"/v1/tracks/{'0' * 22}", headers=bearer(tokens))).status_code == 404
    track = emulator.catalogue.tracks[3]
    found = await http.get(f"/v1/tracks/{track.spotify_id}", headers=bearer(tokens))
    assert found.json()["name"] == track.name


@with_emulator
async def test_removed_endpoints_are_gone(emulator, clock, http):
    tokens = await access_token(emulator, http)
    ids = ",".join(t.spotify_id for t in emulator.catalogue.tracks[:3])
    created = await http.post("/v1/me/playlists", json={"name": "x", "public": False},
                              headers=bearer(tokens))
    playlist_id = created.json()["id"]
    calls = [
        ("GET", "/v1/users/demo/playlists", None),
        ("POST", "/v1/users/demo/playlists", {"name": "old way"}),
        ("POST", f"/v1/playlists/{playlist_id}/tracks", {"uris": []}),
        ("GET", f"/v1/playlists/{playlist_id}/tracks", None),
        ("GET", f"/v1/tracks?ids={ids}", None),
        ("GET", f"/v1/artists?ids={emulator.catalogue.artists[0].spotify_id}", None),
        ("DELETE", f"/v1/playlists/{playlist_id}/followers", None),
    ]
    for method, path, body in calls:
        answer = await http.request(method, path, json=body, headers=bearer(tokens))
        # Spotify answers removed endpoints with 403 and its usual error body, not 410.
        assert answer.status_code == 403, (method, path)
        assert answer.json() == {"error": {"status": 403, "message": answer.json()["error"][
            "message"]}} and answer.json()["error"]["message"]
    unknown = await http.get("/v1/artists/x/top-tracks", headers=bearer(tokens))
    assert unknown.status_code == 404
    assert emulator.playlists[playlist_id]["followed"] is True
    assert emulator.playlists[playlist_id]["items"] == []


# Web API: playlists


@with_emulator
async def test_playlist_lifecycle_and_limits(emulator, clock, http):
    tokens = await access_token(emulator, http)
    created = await http.post("/v1/me/playlists", headers=bearer(tokens),
                              json={"name": "Current rotation", "public": False})
    assert created.status_code == 201
    playlist = created.json()
    assert playlist["owner"]["id"] == "demo" and playlist["items"]["total"] == 0
    items_url = f"/v1/playlists/{playlist['id']}/items"
    uris = [f"spotify:track:{t.spotify_id}" for t in emulator.catalogue.tracks[:101]]

    too_many = await http.post(items_url, json={"uris": uris}, headers=bearer(tokens))
    assert too_many.status_code == 400
    assert too_many.json()["error"]["status"] == 400
    bad_uri = await http.post(items_url, json={"uris": ["spotify:track:nope"]},
                              headers=bearer(tokens))
    assert bad_uri.status_code == 400
    missing = await http.post(items_url, json={"uris": ["spotify:track:" + "0" * 22]},
                              headers=bearer(tokens))
    assert missing.status_code == 400
    added = await http.post(items_url, json={"uris": uris[:100]}, headers=bearer(tokens))
    assert added.status_code == 201 and added.json()["snapshot_id"]

    other = await access_token(emulator, http, user="newcomer")
    foreign = await http.post(items_url, json={"uris": uris[:1]}, headers=bearer(other))
    assert foreign.status_code == 403
    metadata = (await http.get(f"/v1/playlists/{playlist['id']}", headers=bearer(other))).json()
    assert "items" not in metadata

    mine = (await http.get(f"/v1/playlists/{playlist['id']}", headers=bearer(tokens))).json()
    assert mine["items"]["total"] == 100
    assert [e["item"]["uri"] for e in mine["items"]["items"]] == uris[:100]

    renamed = await http.put(f"/v1/playlists/{playlist['id']}", json={"name": "Renamed"},
                             headers=bearer(tokens))
    assert renamed.status_code == 200
    assert emulator.playlists[playlist["id"]]["name"] == "Renamed"
    listed = (await http.get("/v1/me/playlists", headers=bearer(tokens))).json()
    assert [p["id"] for p in listed["items"]] == [playlist["id"]]
    uri = f"spotify:playlist:{playlist['id']}"
    gone = await http.delete("/v1/me/library", params={"uris": uri}, headers=bearer(tokens))
    assert gone.status_code == 200
    assert emulator.playlists[playlist["id"]]["followed"] is False
    assert (await http.get("/v1/me/playlists", headers=bearer(tokens))).json()["items"] == []


# Failure switches


@with_emulator
async def test_fail_timeout_and_reset_switches(emulator, clock, http):
    tokens = await access_token(emulator, http)
    emulator.fail("/v1/me/top", 429, retry_after=3600)
    limited = await http.get("/v1/me/top/tracks", headers=bearer(tokens))
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3600"
    assert limited.json()["error"]["status"] == 429
    assert (await http.get("/v1/me/top/tracks", headers=bearer(tokens))).status_code == 200

    emulator.fail("/v1/me", 502, times=2)
    statuses = [(await http.get("/v1/me", headers=bearer(tokens))).status_code
                for _ in range(3)]
    assert statuses == [502, 502, 200]

    emulator.timeout("/v1/me", times=1)
    with pytest.raises(httpx.ReadTimeout):
        await http.get("/v1/me", headers=bearer(tokens))
    assert (await http.get("/v1/me", headers=bearer(tokens))).status_code == 200

    emulator.fail("/accounts/api/token", 500, times=5)
    emulator.timeout("/v1", times=5)
    emulator.reset_faults()
    assert (await http.get("/v1/me", headers=bearer(tokens))).status_code == 200
    assert ("GET", "/v1/me") in emulator.requests
    assert ("POST", "/accounts/api/token") in emulator.requests


@with_emulator
async def test_removing_from_the_library_deletes_a_playlist(emulator, clock, http):
    """DELETE /me/library (at most 40 URIs, user-library-modify) replaced the followers call."""
    tokens = await access_token(emulator, http)
    created = (await http.post("/v1/me/playlists", json={"name": "x", "public": False},
                               headers=bearer(tokens))).json()
    uri = f"spotify:playlist:{created['id']}"
    for params, status in (({}, 400), ({"uris": "nonsense"}, 400),
                           ({"uris": ",".join([uri] * 41)}, 400)):
        answer = await http.delete("/v1/me/library", params=params, headers=bearer(tokens))
        assert answer.status_code == status and answer.json()["error"]["status"] == status
    older = await access_token(emulator, http, scope="playlist-modify-private")
    refused = await http.delete("/v1/me/library", params={"uris": uri}, headers=bearer(older))
    assert refused.status_code == 403 and emulator.playlists[created["id"]]["followed"]
    track = f"spotify:track:{emulator.catalogue.tracks[0].spotify_id}"
    done = await http.delete("/v1/me/library", params={"uris": f"{track},{uri}"},
                             headers=bearer(tokens))
    assert done.status_code == 200 and not emulator.playlists[created["id"]]["followed"]


def test_the_client_removes_forty_uris_a_call():
    import asyncio

    from mtm.spotify.client import SpotifyClient

    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params["uris"].split(","))
        return httpx.Response(200)

    async def main():
        client = SpotifyClient(client_id="x", client_secret=None, accounts_url="http://a",
                               api_url="http://b/v1", transport=httpx.MockTransport(handler))
        await client.remove_from_library("t", [f"spotify:playlist:{i:022d}" for i in range(85)])
        await client.aclose()

    asyncio.run(main())
    assert [len(batch) for batch in seen] == [40, 40, 5]


@with_emulator
async def test_recently_played_carries_what_the_real_one_does(emulator, clock, http):
    # Two weeks of polls, every six hours: the normal stream, no switches.
    seen: dict[str, list[dict]] = {"null": [], "episode": [], "local": [], "track": []}
    contexts, digits, listed_ms = set(), set(), []
    for _ in range(56):
        tokens = await access_token(emulator, http)
        items = (await http.get("/v1/me/player/recently-played", params={"limit": 50},
                                headers=bearer(tokens))).json()["items"]
        for item in items:
            track = item["track"]
            kind = ("null" if track is None else "episode" if track["type"] == "episode"
                    else "local" if track.get("is_local") else "track")
            seen[kind].append(item)
            contexts.add(item["context"] is None)
            stamp = item["played_at"]
            digits.add(len(stamp[20:-1]) if stamp[19] == "." else 0)
        shown = {_ms(i["played_at"]) for i in items}
        listed_ms += [p.ms_played for p in emulator.play_history(
            "demo", min(shown), max(shown) + 1) if p.played_at_ms in shown]
        clock.advance(6 * 3600)
    assert all(seen.values()), {k: len(v) for k, v in seen.items()}
    local = seen["local"][0]["track"]
    assert local["id"] is None and local["uri"].startswith("spotify:local:")
    assert local["artists"][0]["id"] is None and local["artists"][0]["name"]
    assert local["album"]["id"] is None and local["name"]
    episode = seen["episode"][0]["track"]
    assert episode["uri"] == f"spotify:episode:{episode['id']}" and episode["show"]["name"]
    assert contexts == {True, False}
    assert {0, 3, 6} <= digits and digits <= set(range(7))
    # Short skips are played but not listed.
    assert min(listed_ms) >= 30_000
    week = emulator.play_history("demo", int(clock.now * 1000) - 7 * 86_400_000,
                                 int(clock.now * 1000))
    assert any(p.ms_played < 30_000 for p in week)


@with_emulator
async def test_a_late_play_joins_the_list_in_its_place(emulator, clock, http):
    tokens = await access_token(emulator, http)
    before = (await http.get("/v1/me/player/recently-played",
                             headers=bearer(tokens))).json()["items"]
    newest = _ms(before[0]["played_at"])
    late = emulator.deliver_late("demo", ended_ms_ago=int(clock.now * 1000) - newest + 60_000)
    assert late.played_at_ms < newest
    after = (await http.get("/v1/me/player/recently-played",
                            headers=bearer(tokens))).json()["items"]
    stamps = [_ms(i["played_at"]) for i in after]
    assert late.played_at_ms in stamps and stamps == sorted(stamps, reverse=True)
    assert stamps.index(late.played_at_ms) > 0  # not the newest: behind what was listed


def test_played_at_keeps_every_millisecond():
    from mtm.spotify.emulator import _played_at

    for ms in (1_790_000_000_000, 1_790_000_001_000, 1_790_000_000_120, 1_790_000_001_123,
               1_790_000_003_450, 1_790_000_000_007):
        assert _ms(_played_at(ms)) == ms
        assert PLAYED_AT.match(_played_at(ms))


# Stable account ids (May 2026) and a spent quota (July 2026)


@with_emulator
async def test_me_has_a_stable_account_id_per_user(emulator, clock, http):
    ids = {}
    for user in ("demo", "newcomer"):
        me = (await http.get("/v1/me", headers=bearer(await access_token(
            emulator, http, user=user)))).json()
        assert re.fullmatch(r"[0-9A-Za-z]{22}", me["account_id"])
        assert me["account_id"] != me["id"] == user
        ids[user] = me["account_id"]
    assert ids["demo"] != ids["newcomer"]
    # The same on another emulator, whatever its seed: it belongs to the account.
    other = Emulator(clock=clock, seed=99)
    async with httpx.AsyncClient(transport=other.transport(), base_url=IN_PROCESS_BASE) as h:
        again = (await h.get("/v1/me", headers=bearer(await access_token(other, h)))).json()
    assert again["account_id"] == ids["demo"]


@with_emulator
async def test_a_spent_quota_is_not_a_burst_limit(emulator, clock, http):
    tokens = await access_token(emulator, http)
    emulator.fail("/v1/me/player", 429, times=2, reason="QUOTA_EXCEEDED")
    for _ in range(2):
        spent = await http.get("/v1/me/player/recently-played", headers=bearer(tokens))
        assert spent.status_code == 429 and "retry-after" not in spent.headers
        error = spent.json()["error"]
        assert error["status"] == 429 and error["reason"] == "QUOTA_EXCEEDED"
        assert "quota" in error["message"]
    assert (await http.get("/v1/me/player/recently-played",
                           headers=bearer(tokens))).status_code == 200
    # A burst limit keeps its Retry-After (60 s unless told) and has no reason.
    emulator.fail("/v1/me", 429)
    burst = await http.get("/v1/me", headers=bearer(tokens))
    assert burst.headers["retry-after"] == "60" and "reason" not in burst.json()["error"]
    # Both can be asked for at once.
    emulator.fail("/v1/me", 429, retry_after=86_400, reason="QUOTA_EXCEEDED")
    both = await http.get("/v1/me", headers=bearer(tokens))
    assert both.headers["retry-after"] == "86400"
    assert both.json()["error"]["reason"] == "QUOTA_EXCEEDED"


def test_a_grown_catalogue_answers_for_its_tail():
    async def main():
        emulator = Emulator(clock=Clock(START), artists=1_200)
        assert emulator.artists == 1_200 and len(emulator.catalogue.artists) == 1_200
        async with httpx.AsyncClient(transport=emulator.transport(),
                                     base_url=IN_PROCESS_BASE) as http:
            tokens = await access_token(emulator, http)
            track = emulator.catalogue.tracks[-1]
            artist = emulator.catalogue.artists[track.artists[0]]
            album = emulator.catalogue.albums[track.album]
            assert artist.index >= 400
            found = await http.get(f"/v1/tracks/{track.spotify_id}", headers=bearer(tokens))
            assert found.status_code == 200 and found.json()["name"] == track.name
            assert found.json()["album"]["id"] == album.spotify_id
            found = await http.get(f"/v1/artists/{artist.spotify_id}", headers=bearer(tokens))
            assert found.status_code == 200 and found.json()["name"] == artist.name
            page = await http.get(f"/open/album/{album.spotify_id}")
            assert page.status_code == 200 and track.name in page.text
        emulator.close()
    asyncio.run(main())
