"""Speed figures on a large generated history: `python bench/run.py [--plays 500000]`.

Builds the history in a temporary data directory the way a real user's is made: a generated
Spotify extended streaming history (bench/export_generator.py, with the catalogue of a real
one: thousands of artists, tens of thousands of tracks) imported with `mtm import`; the
report says how many plays, tracks and artists it holds. `--history demo` uses
`mtm demo-data` instead, whose catalogue grows with the plays asked for (about 9,000 artists
heard at 500,000 plays). It serves the history with uvicorn
on a loopback port, signs in through the emulator, and reports the median, p95
(nearest rank, only with 20 or more samples) and max response time of each request over
real HTTP (a keep-alive client on 127.0.0.1). Analytics is measured three ways: answered
from its cache (what a repeated request costs), with the cache off (a second server whose
cache keeps nothing, so every request computes), and the first request after a new play.
A sync storing new plays runs against a copy of the same big database each time.

`--data DIR` keeps the data directory: built there when it holds no database yet, reused as
it is otherwise (the "after a new play" rows add a few plays to it each run), so runs after
the first measure without building. `--no-sync` leaves the syncs out.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

RANGES = ("7d", "30d", "90d", "6m", "12m", "all")
# Below this many samples a "95th percentile" is just the maximum: print max instead.
P95_MIN_SAMPLES = 20
HX = {"HX-Request": "true"}
SYNC_AHEAD = 7 * 86400
STREAMS_PER_PLAY = 1.38


@dataclass(frozen=True)
class Row:
    """One measured request: what, in which shape, and its sorted times in milliseconds."""

    what: str
    shape: str
    times: list[float]

    @property
    def median(self) -> float:
        """The middle time."""
        return statistics.median(self.times)

    @property
    def p95(self) -> float | None:
        """The 95th percentile by nearest rank, None when there are too few samples."""
        return p95(self.times) if len(self.times) >= P95_MIN_SAMPLES else None


def p95(ordered: list[float]) -> float:
    """The 95th percentile by nearest rank: the ceil(0.95 n)-th smallest (of 50, the 48th)."""
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


# --- the history ----------------------------------------------------------------------


def build_history(data_dir: Path, kind: str, plays: int, years: float) -> str:
    """Fill the database of `data_dir` with a long history; say how it was made."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "MTM_"))}
    env.update(MTM_DATA_DIR=str(data_dir), MTM_DEMO_PLAYS="0")
    mtm = [sys.executable, "-m", "mtm"]
    if kind == "demo":
        subprocess.run(mtm + ["demo-data", "--plays", str(plays), "--years", str(years)],
                       env=env, check=True, cwd=data_dir)
        return f"mtm demo-data --plays {plays} --years {years:g}"
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from datetime import UTC, datetime

    from export_generator import write_extended

    # The demo account, empty, is whom the export belongs to (the bench signs in as it).
    subprocess.run(mtm + ["demo-data", "--plays", "0"], env=env, check=True, cwd=data_dir,
                   stdout=subprocess.DEVNULL)
    folder = data_dir / "export"
    # About 28% of a real history's streams are shorter than 30 s and are not plays.
    streams = round(plays * STREAMS_PER_PLAY)
    write_extended(folder, streams, years, end=datetime.now(UTC))
    subprocess.run(mtm + ["import", str(folder), "--user", "demo"], env=env, check=True,
                   cwd=data_dir, stdout=subprocess.DEVNULL)
    shutil.rmtree(folder)
    return (f"{streams:,} extended-history streams over {years:g} years, generated and "
            "imported with mtm import")


def history_shape(path: Path) -> str:
    """What the history holds: plays, artists and tracks played."""
    with closing(sqlite3.connect(path)) as conn:
        plays, tracks = conn.execute(
            "SELECT count(*), count(DISTINCT track_id) FROM plays WHERE counted").fetchone()
        artists = conn.execute(
            "SELECT count(DISTINCT ta.artist_id) FROM track_artists ta "
            "WHERE ta.track_id IN (SELECT DISTINCT track_id FROM plays)").fetchone()[0]
    return f"{plays:,} plays of {tracks:,} tracks by {artists:,} artists"


# --- the server under test -----------------------------------------------------------


def serve(data_dir: Path, port: int, cache: bool) -> None:
    """Run the app on 127.0.0.1:port with uvicorn (the bench starts this in a subprocess)."""
    import uvicorn

    from mtm.app import create_app
    from mtm.cache import Cache
    from mtm.config import load_settings

    settings = load_settings(env_file=None, force_demo=True, overrides={
        "MTM_DATA_DIR": str(data_dir), "MTM_DEMO_PLAYS": "0", "MTM_SYNC_INTERVAL": "0"})
    app = create_app(settings)
    if not cache:
        # A cache that keeps nothing: each request computes, as on a first visit.
        app.state.services.read_cache = Cache(size=0)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                proxy_headers=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(data_dir: Path, cache: bool) -> Iterator[httpx.Client]:
    """A signed-in HTTP client of a uvicorn server started for the duration."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "MTM_"))}
    args = [sys.executable, __file__, "--serve", str(data_dir), "--port", str(port)]
    proc = subprocess.Popen(args + ([] if cache else ["--no-cache"]), env=env,
                            cwd=data_dir, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the bench server did not start")
                time.sleep(0.1)
            sign_in(client)
            yield client
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def sign_in(client: httpx.Client, spotify_id: str = "demo") -> None:
    """Sign in through the emulator's authorize page, as a browser would."""
    login = client.get("/login")
    page = client.get(login.headers["location"])
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text).group(1)
    fields = {k: unescape(v) for k, v in
              re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)}
    decided = client.get(urljoin(str(page.url), unescape(action)),
                         params={**fields, "user": spotify_id, "decision": "agree"})
    target = urlsplit(decided.headers["location"])
    done = client.get(f"{target.path}?{target.query}")
    if done.status_code != 303:
        raise SystemExit(f"signing in as {spotify_id} failed: {done.status_code}")


# --- measuring -----------------------------------------------------------------------


def timed(client: httpx.Client, path: str, headers: dict[str, str]) -> tuple[float, str]:
    """One request's time in milliseconds, and its body."""
    started = time.perf_counter()
    response = client.get(path, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response.text


def measure(client: httpx.Client, path: str, headers: dict[str, str], runs: int) -> list[float]:
    """Sorted times of `runs` requests after two warm-ups."""
    for _ in range(2):
        timed(client, path, headers)
    return sorted(timed(client, path, headers)[0] for _ in range(runs))


def plays_figure(html: str) -> int:
    """The Plays headline figure of the analytics page."""
    return int(re.search(r"<dt>Plays</dt><dd>([\d,]+)", html).group(1).replace(",", ""))


def new_play_writer(data_dir: Path) -> Callable[[], None]:
    """A function that stores one new play for the demo account, as a sync would."""
    from mtm import db, history
    from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn

    conn = db.connect(data_dir / "mtm.sqlite3")
    user_id = conn.execute("SELECT id FROM users WHERE spotify_id = 'demo'").fetchone()[0]
    track = TrackIn("benchtrack0000000000001", "Bench Track", (ArtistIn(
        "benchartist00000000001", "Bench Artist"),), AlbumIn(None, "Bench Album"), 200_000)
    # Seconds, going back from two hours ago, that no bench play has used yet.
    seconds = iter(range(int(time.time()) - 7200, 0, -31))

    def add() -> None:
        added = history.add_plays(conn, user_id, [PlayIn(next(seconds), track, 200_000, "api")])
        assert added == 1, added

    return add


def cold(client: httpx.Client, add_play: Callable[[], None], path: str, runs: int
         ) -> list[float]:
    """Times of the first request after a new play: the cache must miss, nothing be stale."""
    times = []
    for _ in range(runs):
        before = plays_figure(client.get(path).text)
        add_play()
        elapsed, body = timed(client, path, HX)
        times.append(elapsed)
        assert plays_figure(body) == before + 1, "stale analytics after a new play"
    return sorted(times)


def period_paths() -> list[str]:
    """Analytics of calendar periods, of three arbitrary years, and last year in review."""
    year = time.gmtime().tm_year - 1
    return [f"/analytics?year={year}", f"/analytics?month={year}-06",
            f"/analytics?from={year - 3}-03-14&to={year}-03-13", f"/review?year={year}"]


def lookup_paths() -> list[str]:
    """Search, the plays list filtered by a name and by a year, and a year's calendar."""
    year = time.gmtime().tm_year - 1
    return ["/search?q=love", "/search?q=e", "/plays?q=night",
            f"/plays?from={year}-01-01&to={year}-12-31", f"/calendar?year={year}"]


def entity_paths(client: httpx.Client) -> list[tuple[str, str]]:
    """The pages of the most played artist, album and track of all time."""
    page = client.get("/analytics?range=all").text
    found = []
    for kind, label in (("artists", "most played artist"), ("albums", "most played album"),
                        ("tracks", "most played track")):
        path = re.search(rf'href="[^"]*?(/{kind}/\d+)"', page).group(1)
        found.append((path, label))
    return found


def bench_pages(data_dir: Path, runs: int, cold_runs: int) -> list[Row]:
    """Every page warm, analytics from the cache, without it, and after a new play."""
    rows = []
    with server(data_dir, cache=True) as client:
        home = client.get("/").text
        more = unescape(re.search(r'href="[^"]*?(/plays\?before=\d+&amp;key=-?\d+)"',
                                  home).group(1))
        for label, path in (("/ (dashboard)", "/"), ("/plays?before=…", more)):
            for shape, headers in (("page", {}), ("fragment", HX)):
                rows.append(Row(label, shape, measure(client, path, headers, runs)))
        for key in RANGES:
            path = f"/analytics?range={key}"
            for shape, headers in (("page", {}), ("fragment", HX)):
                rows.append(Row(path, shape + " (cache hit: a repeat of the same request)",
                                measure(client, path, headers, runs)))
        for path in period_paths():
            for shape, headers in (("page", {}), ("fragment", HX)):
                rows.append(Row(path, shape + " (cache hit: a repeat of the same request)",
                                measure(client, path, headers, runs)))
        for path in lookup_paths():
            for shape, headers in (("page", {}), ("fragment", HX)):
                rows.append(Row(path, shape + " (computed every time: not cached)",
                                measure(client, path, headers, runs)))
        entities = entity_paths(client)
        for path, label in entities:
            for shape, headers in (("page", {}), ("fragment", HX)):
                rows.append(Row(f"{path} ({label})",
                                shape + " (cache hit: a repeat of the same request)",
                                measure(client, path, headers, runs)))
        add_play = new_play_writer(data_dir)
        for key in RANGES:
            path = f"/analytics?range={key}"
            rows.append(Row(path, "fragment, first after a new play (computed)",
                            cold(client, add_play, path, cold_runs)))
        rows += previews(client, runs)
    with server(data_dir, cache=False) as client:
        paths = [(f"/analytics?range={key}", "") for key in RANGES]
        paths += [(path, "") for path in period_paths()]
        paths += [(path, f" ({label})") for path, label in entities]
        for path, label in paths:
            for shape, headers in (("page", {}), ("fragment", HX)):
                rows.append(Row(path + label, shape + ", cache off (computed every time)",
                                measure(client, path, headers, cold_runs)))
    return rows


def previews(client: httpx.Client, runs: int) -> list[Row]:
    """The playlist preview of every source (the fragment HTMX swaps in, and one page)."""
    year = time.gmtime().tm_year - 1  # the last full year: the most plays to rank
    rows = []
    for source, count in (("forgotten_gems", 50), ("recent_discoveries", 50),
                          ("current_rotation", 50), ("on_this_day", 50),
                          ("year_in_review", 50), ("year_in_review", 200)):
        path = f"/playlists/preview?source={source}&count={count}&year={year}"
        shapes = [("fragment", HX)] + ([("page", {})] if count == 200 else [])
        for shape, headers in shapes:
            rows.append(Row(path, shape, measure(client, path, headers, runs)))
    return rows


def stored_range(stored: list[int]) -> str:
    """How many plays the syncs stored: one figure when every run stored the same."""
    low, high = min(stored), max(stored)
    return f"{low:,}" if low == high else f"{low:,}-{high:,}"


# --- sync ----------------------------------------------------------------------------


async def one_sync(path: Path, plays_only: bool, emulator) -> tuple[float, int, int]:
    """Time a sync of the demo account into the database at `path`: ms, stored, rows before.

    One emulator serves every run, as one Spotify does: it works out top lists once a day.
    """
    from mtm import accounts, db, sync
    from mtm.config import SCOPES
    from mtm.spotify import oauth
    from mtm.spotify.client import SpotifyClient

    base = "http://127.0.0.1:8000"
    client = SpotifyClient(client_id="mtm-demo", client_secret=None,
                           accounts_url=emulator.accounts_url, api_url=emulator.api_url,
                           transport=emulator.transport())
    database = db.Database(path)
    try:
        verifier = oauth.make_verifier()
        code = emulator.grant_code("demo", redirect_uri=base + "/callback",
                                   code_challenge=oauth.challenge_for(verifier),
                                   scope=" ".join(SCOPES))
        user_id = await accounts.complete_login(database, client, code, accounts.LoginAttempt(
            verifier, base + "/callback", None))
        before = await database.run(lambda conn: conn.execute(
            "SELECT count(*) FROM plays WHERE user_id = ?", (user_id,)).fetchone()[0])
        started = time.perf_counter()
        run = await sync.sync_user(database, client, user_id, holder="bench",
                                   plays_only=plays_only, pacer=sync.Pacer(interval=0))
        elapsed = (time.perf_counter() - started) * 1000
        assert run is not None and run.plays_added > 0, run
        return elapsed, run.plays_added, before
    finally:
        await client.aclose()
        database.close()


def bench_sync(data_dir: Path, runs: int) -> tuple[list[Row], list[int], list[int]]:
    """Syncs into a fresh copy of the big database each: plays only, and the full one."""
    from mtm.demo import EMULATOR_SEED
    from mtm.spotify.emulator import Emulator
    from mtm.spotify.emulator.state import State

    source = data_dir / "mtm.sqlite3"
    # demo-data recorded its catalogue's size there; the served app's emulator read it too.
    state = State(data_dir / "emulator.sqlite3", EMULATOR_SEED)
    try:
        artists = state.catalogue_artists()
    finally:
        state.close()
    # Everything in the main file, so a plain copy is the whole database.
    with closing(sqlite3.connect(source)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    results: dict[str, list[float]] = {"plays only (sign-in)": [], "full (scheduler)": []}
    stored, before = [], []
    work = data_dir / "sync"
    work.mkdir(exist_ok=True)
    # demo-data wrote the emulator's own demo stream up to now, so the last 50 plays it
    # lists are stored already; a week on, they are 50 plays the history does not have.
    emulator = Emulator(client_id="mtm-demo", clock=lambda: time.time() + SYNC_AHEAD,
                        artists=artists)
    try:
        for i in range(runs * 2):
            copy = work / "copy.sqlite3"
            for leftover in work.glob("copy.sqlite3*"):
                leftover.unlink()
            shutil.copyfile(source, copy)
            label = "plays only (sign-in)" if i % 2 == 0 else "full (scheduler)"
            elapsed, added, had = asyncio.run(one_sync(copy, i % 2 == 0, emulator))
            results[label].append(elapsed)
            stored.append(added)
            before.append(had)
    finally:
        emulator.close()
    return ([Row(label, "emulator in-process, pacing off", sorted(t))
             for label, t in results.items()], stored, before)


# --- the table -----------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def print_table(rows: list[Row], heading: str) -> None:
    """A Markdown table of rows: n, median, p95 (nearest rank) and max."""
    print(f"\n| {heading} | shape | n | median ms | p95 ms | max ms |\n|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.what} | {row.shape} | {len(row.times)} | {_ms(row.median)} | "
              f"{_ms(row.p95)} | {_ms(max(row.times))} |")


def main() -> int:
    """Build the history, run the measurements, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plays", type=int, default=500_000,
                        help="plays to aim for (an extended history also holds short streams, "
                             "so it is generated with about 1.38 streams a play)")
    parser.add_argument("--years", type=float, default=10)
    parser.add_argument("--history", choices=("export", "demo"), default="export",
                        help="an imported extended history (default) or demo-data")
    parser.add_argument("--runs", type=int, default=50, help="samples per warm request")
    parser.add_argument("--cold-runs", type=int, default=P95_MIN_SAMPLES,
                        help="samples per computed (uncached) analytics request")
    parser.add_argument("--sync-runs", type=int, default=P95_MIN_SAMPLES,
                        help="syncs of each kind")
    parser.add_argument("--data", metavar="DIR", type=Path,
                        help="keep the data directory here; reuse its database when it has one")
    parser.add_argument("--no-sync", action="store_true", help="leave the syncs out")
    parser.add_argument("--serve", metavar="DATA_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-cache", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve), args.port, cache=not args.no_cache)
        return 0
    with ExitStack() as stack:
        if args.data is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mtm-bench-")))
        else:
            data_dir = args.data.resolve()
            data_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if (data_dir / "mtm.sqlite3").exists():
            made = f"the history already in {data_dir}"
        else:
            made = build_history(data_dir, args.history, args.plays, args.years)
        generated = time.perf_counter() - started
        size = (data_dir / "mtm.sqlite3").stat().st_size / 1e6
        shape = history_shape(data_dir / "mtm.sqlite3")
        rows = bench_pages(data_dir, args.runs, args.cold_runs)
        syncs, stored, before = ([], [0], [0]) if args.no_sync else \
            bench_sync(data_dir, args.sync_runs)
    print(f"\n{made}: {generated:.1f} s (wall, including start-up); database {size:.0f} MB, "
          f"{shape}")
    print("\nResponse times over HTTP: uvicorn on 127.0.0.1, one keep-alive client, sequential "
          f"requests. p95 is by nearest rank and shown only for n >= {P95_MIN_SAMPLES}.")
    print("\"cache hit\" rows repeat one request, so analytics answers from its cache; "
          "\"computed\" rows show what the work itself costs.")
    print_table(rows, "request")
    if not syncs:
        return 0
    print(f"\nA sync of the demo account into a fresh copy of the {size:.0f} MB database each "
          f"run: {min(before):,} streams stored before (plays and short streams), "
          f"{stored_range(stored)} new plays stored.")
    print_table(syncs, "sync")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
