"""Every URL of user A, tried as user B: nothing of A's is shown, exported, restored, imported
or deleted.

The URLs come from the app's route table with A's real ids put in. Every route needs an
entry in `id_table` (below): a route added later fails this test until it has one.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from tests.route_table import UNSAFE, RouteInfo, app_routes
from tests.two_users import Person, everything_of, new_client, populate

HX = {"HX-Request": "true"}
Entry = tuple[dict[str, object], dict[str, str], bool]


def id_table(a: dict[str, int]) -> dict[str, list[Entry]]:
    """For each route: (path parameters, query, whether B must get a 404) naming A's data.

    To add a route: give its name the URLs that would reach user A's data through it (A's
    ids from `a`, or a query naming them), True where user B must get a 404. A route that
    holds no per-user data gets `PLAIN`; it is still tried as B and checked.
    """
    plain: list[Entry] = [({}, {}, False)]

    def own(name: str) -> list[Entry]:
        return [({name: a[name]}, {}, True)]

    return {
        "home": plain,
        "plays": [({}, {}, False), ({}, {"q": "aardvark", "day": ""}, False)],
        "search": [({}, {"q": "aardvark"}, False)],
        "calendar": plain,
        "analytics": plain,
        "review": plain,
        "review_image": [({}, {"parts": "minutes,artists,tracks,albums,genres"}, False)],
        "artist": own("artist_id"), "artist_plays": own("artist_id"),
        "album": own("album_id"), "album_plays": own("album_id"),
        "track": own("track_id"), "track_plays": own("track_id"),
        "hidden": plain,
        "hide": [({}, {}, False)],
        "unhide": own("rule_id"),
        "playlists": [({}, {}, False), ({}, {"created": str(a["playlist_id"])}, False)],
        "playlists_create": plain,
        "playlists_preview": [({}, {"source": "current_rotation"}, False)],
        "playlists_preview_form": plain,
        "playlist": own("playlist_id"), "playlist_retry": own("playlist_id"),
        "playlist_rename": own("playlist_id"), "playlist_rename_save": own("playlist_id"),
        "playlist_delete": own("playlist_id"), "playlist_delete_confirmed": own("playlist_id"),
        "settings": plain,
        # A has not joined the household, so nothing of A's may show there; B is no admin.
        "household": plain, "household_membership": plain,
        "admin_stats": [({}, {}, True)],
        "settings_sync_status": plain, "settings_sync": plain,
        "settings_preferences": plain,
        "settings_export": [({"fmt": fmt}, {}, False) for fmt in ("sqlite", "json", "csv")],
        "settings_backup_create": plain,
        "settings_backup_download": own("backup_id"),
        "settings_restore_confirm": own("backup_id"), "settings_restore": own("backup_id"),
        "settings_backup_delete_confirm": own("backup_id"),
        "settings_backup_delete": own("backup_id"),
        "settings_import": plain,
        "settings_import_sample": plain,
        "settings_import_detail": own("import_id"),
        "settings_import_undo_confirm": own("import_id"), "settings_import_undo": own("import_id"),
        "job": own("job_id"), "job_import": own("job_id"), "job_retry": own("job_id"),
        "job_discard": own("job_id"),
        "settings_clear_confirm": plain, "settings_clear": plain,
        "settings_disconnect_confirm": plain, "settings_disconnect": plain,
        "signin": plain, "login": plain, "callback": plain, "logout": plain,
        "healthz": plain, "favicon": plain,
        "static": [({"path": "css/app.css"}, {}, False)],
        "emulator:emulator_authorize": [({}, {"client_id": "mtm-demo"}, False)],
        "emulator:emulator_decide": plain,
        "emulator:emulator_image": [({"image_id": "x"}, {}, False)],
        "emulator:emulator_open_track": [({"ident": "x"}, {}, False)],
        "emulator:emulator_open_album": [({"ident": "x"}, {}, False)],
        "emulator:emulator_open_artist": [({"ident": "x"}, {}, False)],
        "emulator:emulator_open_playlist": [({"ident": "x"}, {}, False)],
    }


def forms(b: Person, a: Person) -> list[dict[str, str]]:
    """What B posts: every confirmation the app asks for, and A's ids where a form takes one."""
    common = {"csrf_token": b.token, "kind": "artist", "target": str(a.ids["artist_id"]),
              "name": "Renamed by B", "history": "delete", "understand": "yes",
              "source": "current_rotation", "count": "5", "upload": "x" * 24}
    return [{**common, "confirm": confirm} for confirm in ("yes", "delete", "DELETE")]


def leaked(a: Person, response: httpx.Response) -> list[str]:
    """A's distinctive names and ids found in a response (body or headers)."""
    text = response.content.decode("utf-8", "replace") + str(response.headers)
    return [mark for mark in a.marks if mark in text]


async def test_nothing_of_a_reaches_b_on_any_route(app) -> None:
    async with new_client(app) as first, new_client(app) as second:
        a = Person("demo", "Aardvark", first)
        b = Person("newcomer", "Bison", second)
        await populate(app, a, 1000)
        await populate(app, b, 2000)
        before = await everything_of(app, a)
        assert before[0]["plays"] and before[0]["playlists"] and before[0]["backups"]
        assert before[0]["imports"] and before[0]["hide_rules"] and before[0]["jobs"]
        table = id_table(a.ids)
        routes = app_routes(app.routes)
        missing = [r.key for r in routes if r.key not in table]
        assert not missing, (
            f"routes without an entry in id_table (tests/test_isolation_routes.py): {missing}; "
            "add the URLs that would reach user A's data through each")
        tried = 0
        # Reads first, then the posts (which may clear B's own data or sign B out).
        for unsafe in (False, True):
            for route in routes:
                for method in route.methods:
                    if (method in UNSAFE) != unsafe:
                        continue
                    for params, query, must_404 in table[route.key]:
                        tried += await try_as_b(a, b, route, method, params, query, must_404)
        assert tried > 200
        assert await everything_of(app, a) == before, "user B changed user A's data"
        # A is still signed in and sees their own data.
        assert "Aardvark Mix" in (await a.client.get("/playlists")).text


async def try_as_b(a: Person, b: Person, route: RouteInfo, method: str,
                   params: dict[str, object], query: dict[str, str], must_404: bool) -> int:
    """Request one URL of A's as B, page and fragment; the number of requests made."""
    url = route.url({k: str(v) for k, v in params.items()})
    if query:
        url += "?" + urlencode(query)
    bodies = forms(b, a) if method in UNSAFE else [None]
    made = 0
    for headers in ({}, HX):
        for body in bodies:
            if body is not None:
                body["csrf_token"] = await b.refresh_token()
            response = await b.client.request(method, url, data=body,
                                              headers={**headers, "X-CSRFToken": b.token})
            made += 1
            assert response.status_code < 500, (method, url, response.status_code)
            assert not leaked(a, response), (method, url, headers, leaked(a, response))
            if must_404 and response.status_code == 303 and method in UNSAFE:
                # A refused confirmation goes back to its page (post/redirect/get): a 404.
                response = await b.client.get(response.headers["location"])
                assert not leaked(a, response), (method, url, leaked(a, response))
            if must_404:
                assert response.status_code == 404, (method, url, headers,
                                                      response.status_code)
    return made
