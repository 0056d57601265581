"""Hypothesis throws arbitrary input at every route: never a 500, never another user's data.

Routes come from the app's route table, so a route added later is fuzzed too. For each route
and method, examples vary the path parameters (the fuzzing user's ids, the other user's, odd
numbers and words), the query string, form fields, uploaded files, raw bodies, headers and
cookies, signed in or not, page or fragment, with a valid, a forged or no CSRF token. The
other user's rows and files are compared before and after. Deterministic (derandomize, no
example database) and bounded: EXAMPLES per route and method.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mtm.config import Settings
from tests.conftest import BASE_URL
from tests.route_table import UNSAFE, RouteInfo, app_routes
from tests.two_users import Person, everything_of, new_client, populate

# Examples per route and method: state-changing methods do more with what they are sent.
EXAMPLES = {"GET": 8, "POST": 24}
FIELDS = ["csrf_token", "confirm", "understand", "history", "kind", "target", "context", "from",
          "to", "name", "source", "year", "count", "idempotency_key", "timezone", "week_start",
          "chart_metric", "playlist_source", "upload", "q", "next"]
QUERY = ["range", "year", "month", "week", "day", "from", "to", "unit", "at", "q", "before",
         "created", "next", "source", "count", "parts", "page", "metric", "job", "after",
         "client_id", "redirect_uri", "state", "code", "error", "code_challenge", "scope",
         "user", "decision", "response_type", "code_challenge_method"]
HEADERS = ["HX-Request", "HX-Request-Type", "HX-History-Restore-Request", "HX-Current-URL",
           "HX-Target", "HX-Source", "Accept", "Accept-Language", "Accept-Encoding", "Referer",
           "Origin", "User-Agent", "If-None-Match", "If-Modified-Since", "Range",
           "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-IP",
           "X-Request-ID", "Authorization", "Cache-Control", "Content-Type"]
WORDS = ["", "0", "-1", "1", "01", "2024", "2024-02-30", "2024-03", "2024-W10", "2005-12-31",
         "9999-12-31", "7d", "12m", "all", "yes", "DELETE", "delete", "keep", "artist", "track",
         "album", "context", "monday", "sunday", "plays", "minutes", "Europe/Berlin",
         "Mars/Olympus", "true", "false", "full", "partial", "null", "[]", "{}", "%00",
         "//evil.example", "/\t/evil.example", "/ok\r\nSet-Cookie: x=1", "spotify:playlist:x",
         "https://open.spotify.com/playlist/37i9dQZF1DXcBWIGoYBM5M", str(2**63), str(10**30),
         "forgotten_gems", "year_in_review", "on_this_day", "json", "csv", "sqlite", "ünïcødé",
         "' OR 1=1 --", "<script>alert(1)</script>", "a" * 500]
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
SAFE_COOKIE = st.text(st.characters(min_codepoint=33, max_codepoint=126,
                                    exclude_characters=';,"\\'), max_size=40)
ANY_TEXT = st.one_of(st.sampled_from(WORDS), st.text(max_size=30),
                     st.integers(-10**20, 10**20).map(str))
UPLOADS = st.one_of(
    st.binary(max_size=2000),
    st.sampled_from([b"[]", b"{}", b"[{}]", b'[{"ts": 1}]', b"PK\x03\x04garbage", b"\xef\xbb\xbf[",
                     b'[{"ts": "2020-01-01T00:00:00Z", "ms_played": "x"}]',
                     b'[{"endTime": "2020-01-01 00:00", "artistName": 1, "msPlayed": -5}]']),
    st.text(max_size=300).map(str.encode))


@dataclass
class Fuzzed:
    """One generated request."""

    signed_in: bool
    path_values: dict[str, str]
    query: list[tuple[str, str]]
    headers: dict[str, str]
    cookies: dict[str, str]
    token: str  # "valid", "forged" or "none"
    token_in_header: bool
    body: str  # "form", "multipart", "raw" or "none"
    form: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, bytes]] = field(default_factory=list)
    raw: bytes = b""
    raw_type: str = ""


def path_value(convertor: str, ids: list[str]) -> st.SearchStrategy[str]:
    if convertor in ("RowId", "IntegerConvertor"):
        return st.one_of(st.sampled_from(ids), st.integers(0, 2**70).map(str),
                         st.sampled_from(["0", "01", "-1", str(2**63), str(2**64)]))
    return st.one_of(st.sampled_from(["json", "csv", "sqlite", "css/app.css", "x", "..%2f"]),
                     st.text(min_size=1, max_size=30))


def requests_for(route: RouteInfo, method: str, ids: list[str]) -> st.SearchStrategy[Fuzzed]:
    values = st.fixed_dictionaries({name: path_value(type(conv).__name__, ids)
                                    for name, conv in route.params.items()})
    keys = st.one_of(st.sampled_from(QUERY), st.text(min_size=1, max_size=10))
    bodies = st.sampled_from(["form", "multipart", "raw", "none"]) if method in UNSAFE \
        else st.just("none")
    return st.builds(
        Fuzzed,
        # Mostly signed in: an anonymous request rarely gets past the sign-in redirect.
        signed_in=st.sampled_from([True, True, True, False]),
        path_values=values,
        query=st.lists(st.tuples(keys, ANY_TEXT), max_size=4),
        headers=st.dictionaries(st.sampled_from(HEADERS), st.one_of(
            st.sampled_from(["true", "partial", "full", "text/html", "*/*", "gzip",
                             "bytes=0-10", "127.0.0.1", "https"]), HEADER_TEXT), max_size=4),
        cookies=st.dictionaries(st.sampled_from(["mtm_session", "session", "csrftoken", "x"]),
                                SAFE_COOKIE, max_size=2),
        token=st.sampled_from(["valid", "valid", "forged", "none"]),
        token_in_header=st.booleans(),
        body=bodies,
        form=st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)),
                             ANY_TEXT, max_size=6),
        files=st.lists(st.tuples(st.sampled_from(
            ["Streaming_History_Audio_2019_0.json", "StreamingHistory0.json", "export.zip",
             "../../etc/passwd", "x.txt", ""]), UPLOADS), max_size=2),
        raw=st.binary(max_size=300),
        raw_type=st.sampled_from(["application/json", "text/plain",
                                  "application/x-www-form-urlencoded",
                                  "multipart/form-data; boundary=x", "multipart/form-data",
                                  "application/octet-stream", "application/xml"]),
    )


class Fuzzer:
    """Sends generated requests as the fuzzing user (or nobody) and checks each answer."""

    def __init__(self, app, runner: asyncio.Runner, me: Person) -> None:
        self.app, self.runner, self.me = app, runner, me
        self.sent = 0
        self.statuses: dict[int, int] = {}
        self.cookie = self.token = ""

    async def refresh(self) -> None:
        """The fuzzing user's session cookie and CSRF token, signing in again if needed."""
        self.token = await self.me.refresh_token()
        self.cookie = self.me.client.cookies["mtm_session"]

    async def send(self, route: RouteInfo, method: str, case: Fuzzed) -> None:
        cookie, token = (self.cookie, self.token) if case.signed_in else ("", "")
        url = route.url({k: quote(v, safe="") for k, v in case.path_values.items()})
        headers = dict(case.headers)
        cookies = dict(case.cookies)
        if case.signed_in and "mtm_session" not in cookies:
            cookies["mtm_session"] = cookie
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        sent_token = {"valid": token, "forged": "forged.token.value", "none": ""}[case.token]
        form = dict(case.form)
        if sent_token and case.token_in_header:
            headers["X-CSRFToken"] = sent_token
        elif sent_token:
            form["csrf_token"] = sent_token
        kwargs: dict = {}
        if case.body in ("form", "multipart"):
            headers.pop("Content-Type", None)
            kwargs["data"] = form
            if case.body == "multipart":
                kwargs["files"] = [("files", (name, data, "application/octet-stream"))
                                   for name, data in case.files] or [("files", ("", b"", "x/y"))]
        elif case.body == "raw":
            headers["Content-Type"] = case.raw_type
            kwargs["content"] = case.raw
        # A fresh client each time: no cookie jar carries one example into the next.
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                     base_url=BASE_URL) as client:
            response = await client.request(method, url, params=case.query, headers=headers,
                                            **kwargs)
        self.sent += 1
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        assert response.status_code != 500, (method, url, case, response.text[:2000])
        assert "Traceback" not in response.text


def test_every_route_survives_arbitrary_input(settings: Settings, emulator) -> None:
    from mtm.app import create_app

    started = time.perf_counter()
    app = create_app(settings, emulator=emulator)
    with asyncio.Runner() as runner:
        lifespan = app.router.lifespan_context(app)
        runner.run(lifespan.__aenter__())
        try:
            me = Person("demo", "Aardvark", new_client(app))
            other = Person("newcomer", "Bison", new_client(app))
            runner.run(populate(app, me, 1000))
            runner.run(populate(app, other, 2000))
            before = runner.run(everything_of(app, other))
            ids = sorted({str(v) for p in (me, other) for v in p.ids.values()})
            fuzzer = Fuzzer(app, runner, me)
            runner.run(fuzzer.refresh())
            routes = app_routes(app.routes)
            for route in routes:
                for method in route.methods:
                    fuzz_one(fuzzer, route, method, ids)
            assert runner.run(everything_of(app, other)) == before, (
                "the fuzzing changed the other user's data")
            runner.run(me.client.aclose())
            runner.run(other.client.aclose())
        finally:
            runner.run(lifespan.__aexit__(None, None, None))
    elapsed = time.perf_counter() - started
    pairs = [m for r in routes for m in r.methods]
    print(f"\nfuzzed {len(pairs)} route-methods with {fuzzer.sent} requests in {elapsed:.1f} s; "
          f"statuses {dict(sorted(fuzzer.statuses.items()))}")
    assert fuzzer.sent >= 0.8 * sum(EXAMPLES.get(m, EXAMPLES["POST"]) for m in pairs)


def fuzz_one(fuzzer: Fuzzer, route: RouteInfo, method: str, ids: list[str]) -> None:
    """Run EXAMPLES generated requests against one route and method."""

    @hypothesis_settings(max_examples=EXAMPLES.get(method, EXAMPLES["POST"]), derandomize=True,
                         database=None, deadline=None, suppress_health_check=list(HealthCheck),
                         print_blob=False)
    @given(case=requests_for(route, method, ids))
    def check(case: Fuzzed) -> None:
        fuzzer.runner.run(fuzzer.send(route, method, case))

    check()
    # The previous examples may have signed the user out (logout, disconnect): sign in again.
    fuzzer.runner.run(fuzzer.refresh())

