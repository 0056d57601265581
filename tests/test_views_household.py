"""The household page and /admin/stats over HTTP: page and fragment, who may see what."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from mtm import history
from mtm.config import Settings, load_settings
from mtm.spotify.emulator import USERS, EmulatedUser, Emulator
from tests.conftest import BASE_URL, Clock, csrf_from, make_track, sign_in

HX = {"HX-Request": "true"}
NOW = int(datetime(2026, 3, 20, 12, tzinfo=UTC).timestamp())
# Emulated accounts besides the emulator's own: each listens to nothing until the test adds
# plays. Their names are distinctive so a page can be searched for them.
HOUSEMATES = {"ann": "Annika Housemate", "ben": "Benedikt Housemate",
              "cat": "Catriona Housemate"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Demo settings with `ann` as the only admin."""
    return load_settings(env_file=None, force_demo=True, overrides={
        "MTM_DATA_DIR": str(tmp_path / "data"), "MTM_SECRET_KEY": "test-secret-key",
        "MTM_DEMO_PLAYS": "0", "MTM_SYNC_INTERVAL": "0", "MTM_ADMINS": "ann"})


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The emulator on the test's clock, with the housemates' accounts."""
    for ident, name in HOUSEMATES.items():
        monkeypatch.setitem(USERS, ident, EmulatedUser(ident, name, "SE", "a housemate", False))
    return Emulator(client_id="mtm-demo", clock=Clock(NOW))


@pytest.fixture
async def app(settings: Settings, emulator: Emulator) -> AsyncIterator:
    """The app with its lifespan running, its clock at NOW, and no demo account."""
    from mtm.app import create_app

    application = create_app(settings, emulator=emulator)
    application.state.services.clock = Clock(NOW)
    async with application.router.lifespan_context(application):
        # Demo mode makes a demo account; this household is the housemates alone.
        await application.state.services.db.run(
            lambda c: c.execute("DELETE FROM users WHERE spotify_id = 'demo'"))
        yield application


class People:
    """A signed-in browser (an ASGI client) per housemate."""

    def __init__(self, app) -> None:
        self.app = app
        self.clients: dict[str, httpx.AsyncClient] = {}

    async def sign_in(self, account: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                   base_url=BASE_URL, follow_redirects=False)
        await sign_in(client, account=account)
        self.clients[account] = client
        return client

    async def user_id(self, account: str) -> int:
        return await self.app.state.services.db.run(
            lambda c: c.execute("SELECT id FROM users WHERE spotify_id = ?",
                                (account,)).fetchone()[0])

    async def listen(self, account: str, artists: range, *, month_too: bool = True) -> None:
        """Ten plays of each artist in February; in March too unless told otherwise."""
        user_id = await self.user_id(account)
        starts = [NOW - 40 * 86_400] + ([NOW - 86_400] if month_too else [])
        plays = [history.PlayIn(start + 600 * (artist * 10 + n), make_track(artist * 10 + n,
                                                                             artist),
                                200_000, "api")
                 for start in starts for artist in artists for n in range(10)]
        await self.app.state.services.db.run(history.add_plays, user_id, plays)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()


@pytest.fixture
async def people(app) -> AsyncIterator[People]:
    """Housemates to sign in."""
    found = People(app)
    yield found
    await found.close()


async def _choose(client: httpx.AsyncClient, choice: str, origin: str = "household", *,
                  headers: dict | None = None, token: str | None = None) -> httpx.Response:
    page = await client.get("/household")
    data = {"choice": choice, "from": origin}
    if token is None:
        data["csrf_token"] = csrf_from(page.text)
    elif token:
        data["csrf_token"] = token
    return await client.post("/household/membership", data=data, headers=headers or {})


async def test_anonymous_visitors_are_sent_to_sign_in(client: httpx.AsyncClient) -> None:
    page = await client.get("/household")
    assert page.status_code == 303 and page.headers["location"].startswith("/signin?next=")
    fragment = await client.get("/household", headers=HX)
    assert fragment.status_code == 401 and fragment.headers["HX-Redirect"].startswith("/signin")
    posted = await client.post("/household/membership", data={"choice": "join",
                                                               "from": "household"})
    assert posted.status_code == 303 and posted.headers["location"].startswith("/signin")


async def test_off_by_default_with_the_way_in(people: People) -> None:
    ann = await people.sign_in("ann")
    ben = await people.sign_in("ben")
    await people.listen("ben", range(5))
    assert (await _choose(ben, "join")).status_code == 303
    page = await ann.get("/household")
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert 'aria-current="page">Household' in page.text
    assert "It is off until you join" in page.text and "Join the household page" in page.text
    # Ben joined, but Ann has not: she sees nothing of him.
    assert HOUSEMATES["ben"] not in page.text
    fragment = await ann.get("/household", headers=HX)
    assert fragment.text.startswith('<div id="household"') and "<nav" not in fragment.text
    assert "HX-Request" in fragment.headers["vary"]


async def test_members_see_each_other_and_nobody_else(people: People) -> None:
    ann, ben, cat = [await people.sign_in(name) for name in ("ann", "ben", "cat")]
    await people.listen("ann", range(0, 8))
    await people.listen("ben", range(4, 12))
    await people.listen("cat", range(0, 12))
    joined = await _choose(ann, "join")
    assert joined.status_code == 303 and joined.headers["location"] == "/household"
    await _choose(ben, "join")
    page = (await ann.get("/household")).text
    assert "You joined the household page" in page
    assert f"You and {HOUSEMATES['ben']}" in page
    # Artists 4-7 are in both top lists; each side's plays and minutes are shown.
    assert "4 artists in both your top 50" in page
    shared = re.findall(r'<th scope="row"><a class="name-link" href="[^"]*/artists/\d+">'
                        r"([^<]+)</a>", page)
    assert sorted(set(shared)) == [f"Artist {n}" for n in range(4, 8)]
    assert "20 plays<span class=\"muted\">67 min</span>" in page
    assert re.search(r"<strong>\d+%</strong> compatible", page)
    assert "Compatibility is the share of listening time you have in common" in page
    # Cat never joined: her name is on no member's page, and her own page shows nobody.
    assert HOUSEMATES["cat"] not in page
    assert HOUSEMATES["cat"] not in (await ben.get("/household")).text
    hers = (await cat.get("/household")).text
    assert HOUSEMATES["ann"] not in hers and HOUSEMATES["ben"] not in hers


async def test_leaving_hides_at_once(people: People) -> None:
    ann, ben = [await people.sign_in(name) for name in ("ann", "ben")]
    await people.listen("ann", range(3))
    await people.listen("ben", range(3))
    for client in (ann, ben):
        await _choose(client, "join")
    assert HOUSEMATES["ben"] in (await ann.get("/household")).text
    # With HTMX the answer is the page's fragment, with the message.
    left = await _choose(ben, "leave", headers=HX)
    assert left.status_code == 200 and left.text.startswith('<div id="household"')
    assert "You left the household page" in left.text and "Join the household page" in left.text
    for response in (await ann.get("/household"), await ann.get("/household", headers=HX)):
        assert HOUSEMATES["ben"] not in response.text
        assert "Nobody else has joined yet" in response.text


async def test_membership_needs_csrf_and_a_valid_choice(people: People) -> None:
    ann = await people.sign_in("ann")
    assert (await _choose(ann, "join", token="")).status_code == 403
    assert (await _choose(ann, "join", token="forged")).status_code == 403
    assert "Join the household page" in (await ann.get("/household")).text
    refused = await _choose(ann, "everyone")
    assert refused.status_code == 422 and "join or to leave" in refused.text
    refused = await _choose(ann, "join", "https://elsewhere.example")
    assert refused.status_code == 422
    assert "It is off until you join" in (await ann.get("/household")).text


async def test_the_toggle_in_settings(people: People) -> None:
    ann = await people.sign_in("ann")
    settings = (await ann.get("/settings")).text
    assert 'id="household-sharing"' in settings and "Join the household page" in settings
    token = csrf_from(settings)
    plain = await ann.post("/household/membership",
                           data={"choice": "join", "from": "settings", "csrf_token": token})
    assert plain.status_code == 303
    assert plain.headers["location"] == "/settings#household-sharing"
    settings = (await ann.get("/settings")).text
    assert "You are in the" in settings and "Leave the household page" in settings
    fragment = await ann.post("/household/membership", headers=HX,
                              data={"choice": "leave", "from": "settings", "csrf_token": token})
    assert fragment.status_code == 200
    assert fragment.text.startswith('<section id="household-sharing"')
    assert "You left the household page" in fragment.text
    assert "Join the household page" in fragment.text
    assert "It is off until you join" in (await ann.get("/household")).text


async def test_empty_states(people: People) -> None:
    ann = await people.sign_in("ann")
    await _choose(ann, "join")
    assert "You are the only person using this Music Time Machine" in \
        (await ann.get("/household")).text
    ben = await people.sign_in("ben")
    assert "Nobody else has joined yet" in (await ann.get("/household")).text
    await people.listen("ann", range(3))
    await people.listen("ben", range(3), month_too=False)
    await _choose(ben, "join")
    page = (await ann.get("/household")).text
    assert f"{HOUSEMATES['ben']} has not played anything this month" in page
    assert "This month (March 2026)" in page
    assert "3 artists in both your top 50" in page
    assert "You have not played anything this month" in (await ben.get("/household")).text


async def test_nav_links(people: People) -> None:
    admin, member = [await people.sign_in(name) for name in ("ann", "ben")]
    page = (await member.get("/")).text
    assert '/household">Household</a>' in page and "/admin/stats" not in page
    assert '/admin/stats">Admin</a>' in (await admin.get("/")).text


# --- /admin/stats ---------------------------------------------------------------------


async def test_admin_stats_is_a_404_for_everyone_but_admins(client: httpx.AsyncClient,
                                                            people: People) -> None:
    for headers in ({}, HX):
        anonymous = await client.get("/admin/stats", headers=headers)
        assert anonymous.status_code == 404 and "location" not in anonymous.headers
        assert "HX-Redirect" not in anonymous.headers
    ben = await people.sign_in("ben")
    for headers in ({}, HX):
        refused = await ben.get("/admin/stats", headers=headers)
        assert refused.status_code == 404
        assert "There is nothing at this address" in refused.text
        assert HOUSEMATES["ben"] not in refused.text.split("<main", 1)[-1]


async def test_admin_stats_page_and_fragment(people: People, app) -> None:
    ann, ben = [await people.sign_in(name) for name in ("ann", "ben")]
    await people.listen("ann", range(4))
    await people.listen("ben", range(2), month_too=False)
    await app.state.services.db.run(lambda c: c.execute("DROP TABLE IF EXISTS instance_leases"))
    page = await ann.get("/admin/stats")
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert page.headers["cache-control"] == "no-store"
    assert 'aria-current="page">Admin' in page.text
    # The one page that reads across users: both are listed with their plays.
    for name in HOUSEMATES["ann"], HOUSEMATES["ben"]:
        assert name in page.text
    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", page.text))
    assert figures["Users"] == "2" and figures["Plays"] == "100"
    assert "The scheduler's state is unknown" in page.text
    most_active = re.search(r'<ol class="admin-active">(.*?)</ol>', page.text, re.S).group(1)
    assert HOUSEMATES["ann"] in most_active and HOUSEMATES["ben"] not in most_active
    assert 'hx-trigger="every 30s"' in page.text
    fragment = await ann.get("/admin/stats", headers=HX)
    assert fragment.status_code == 200 and fragment.text.startswith('<div id="admin-stats"')
    assert "<nav" not in fragment.text and "HX-Request" in fragment.headers["vary"]


async def test_admin_stats_names_the_scheduler(people: People, app) -> None:
    from mtm import instance, jobs

    ann = await people.sign_in("ann")
    holder = jobs.make_holder("scheduler")
    await app.state.services.db.run(instance.acquire, instance.SCHEDULER, holder, ttl=60,
                                    now=NOW - 5)
    page = (await ann.get("/admin/stats")).text
    state = re.search(r'<p id="scheduler-state">\s*(.*?)\s*</p>', page, re.S).group(1)
    assert state == (f"Running in {holder}, last heard from just now; its lease runs out in a "
                     "moment unless it renews it.")
    # A holder that stopped renewing: the page says the scheduler has stopped.
    app.state.services.clock = Clock(NOW + 3600)
    page = (await ann.get("/admin/stats")).text
    state = re.search(r'<p id="scheduler-state">\s*(.*?)\s*</p>', page, re.S).group(1)
    assert "Stopped" in state and f"The lease of {holder} ran out 59 minutes ago" in state
