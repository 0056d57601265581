"""Speed figures on a large generated history: `python bench/run.py [--plays 500000]`.

Builds the history with `mtm demo-data` in a temporary data directory, signs in through
the emulator, and reports the median and p95 server time of each page, measured
in-process through the ASGI transport (no network, no browser).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from html import unescape
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

BASE = "http://127.0.0.1:8000"


async def sign_in(client: httpx.AsyncClient) -> None:
    """Sign in as the demo account through the emulator's pages."""
    login = await client.get("/login")
    page = await client.get(login.headers["location"])
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text).group(1)
    fields = {k: unescape(v) for k, v in
              re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)}
    decided = await client.get(urljoin(str(page.url), unescape(action)),
                               params={**fields, "user": "demo", "decision": "agree"})
    target = urlsplit(decided.headers["location"])
    done = await client.get(f"{target.path}?{target.query}")
    assert done.status_code == 303, done.text


def p95(ordered: list[float]) -> float:
    """The 95th percentile by nearest rank: of 50 samples the 48th, of 10 the 10th."""
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


async def measure(client: httpx.AsyncClient, path: str, headers: dict[str, str],
                  runs: int) -> tuple[float, float]:
    """Median and p95 in milliseconds of `runs` requests after two warm-ups."""
    for _ in range(2):
        (await client.get(path, headers=headers)).raise_for_status()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = await client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    times.sort()
    return statistics.median(times), p95(times)


RANGES = ("7d", "30d", "90d", "6m", "12m", "all")


def plays_figure(html: str) -> int:
    """The Plays headline figure of the analytics page."""
    return int(re.search(r"<dt>Plays</dt><dd>([\d,]+)", html).group(1).replace(",", ""))


# Seconds, going back from two hours ago, that no play has used yet.
_fresh_seconds = iter(range(int(time.time()) - 7200, 0, -7))


async def cold(client: httpx.AsyncClient, app, path: str, runs: int) -> tuple[float, float]:
    """Time the first request after a new play: the cache must miss and nothing be stale."""
    from mtm import history
    from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn

    db = app.state.services.db
    track = TrackIn("benchtrack0000000000001", "Bench Track", (ArtistIn(
        "benchartist00000000001", "Bench Artist"),), AlbumIn(None, "Bench Album"), 200_000)
    times = []
    for _ in range(runs):
        before = plays_figure((await client.get(path)).text)
        # A second no play has used yet: a duplicate would change nothing and hit the cache.
        when = next(_fresh_seconds)
        added = await db.run(history.add_plays, 1, [PlayIn(when, track, 200_000, "api")])
        assert added == 1
        started = time.perf_counter()
        response = await client.get(path, headers={"HX-Request": "true"})
        times.append((time.perf_counter() - started) * 1000)
        assert plays_figure(response.text) == before + added, "stale analytics after a new play"
    times.sort()
    return statistics.median(times), p95(times)


async def bench_pages(data_dir: Path, runs: int) -> list[tuple[str, str, float, float]]:
    """Time each page, full and fragment, warm; and analytics right after new plays."""
    from mtm.app import create_app
    from mtm.config import load_settings

    settings = load_settings(env_file=None, force_demo=True, overrides={
        "MTM_DATA_DIR": str(data_dir), "MTM_DEMO_PLAYS": "0", "MTM_SYNC_INTERVAL": "0"})
    app = create_app(settings)
    rows = []
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        await sign_in(client)
        home = (await client.get("/")).text
        more = unescape(re.search(
            r'href="http://127\.0\.0\.1:8000(/plays\?before=\d+&amp;key=-?\d+)"', home).group(1))
        pages = [("/ (dashboard)", "/"), ("/plays?before=…", more)]
        pages += [(f"/analytics?range={key}", f"/analytics?range={key}") for key in RANGES]
        for label, path in pages:
            for shape, headers in (("page", {}), ("fragment", {"HX-Request": "true"})):
                rows.append((label, shape, *await measure(client, path, headers, runs)))
        for key in RANGES:
            path = f"/analytics?range={key}"
            rows.append((path, "fragment, first after a new play", *await cold(
                client, app, path, max(5, runs // 5))))
        rows += await previews(client, runs)
    return rows


async def previews(client: httpx.AsyncClient, runs: int) -> list[tuple[str, str, float, float]]:
    """Time the playlist preview of every source (the fragment HTMX swaps in, and a page)."""
    year = time.gmtime().tm_year - 1  # the last full year: the most plays to rank
    rows = []
    for source, count in (("forgotten_gems", 50), ("recent_discoveries", 50),
                          ("current_rotation", 50), ("on_this_day", 50),
                          ("year_in_review", 50), ("year_in_review", 200)):
        path = f"/playlists/preview?source={source}&count={count}&year={year}"
        shapes = (("fragment", {"HX-Request": "true"}),)
        if count == 200:
            shapes += (("page", {}),)
        for shape, headers in shapes:
            rows.append((path, shape, *await measure(client, path, headers, runs)))
    return rows


async def bench_sync(data_dir: Path, runs: int) -> list[tuple[str, float, float]]:
    """Server time of a sync that stores 50 new plays, against the in-process emulator."""
    from mtm import accounts, db, sync
    from mtm.config import SCOPES
    from mtm.spotify import oauth
    from mtm.spotify.client import SpotifyClient
    from mtm.spotify.emulator import Emulator

    results: dict[str, list[float]] = {"plays only (sign-in)": [], "full (scheduler)": []}
    for i in range(runs):
        path = data_dir / f"sync-{i}.sqlite3"
        conn = db.connect(path)
        db.migrate(conn)
        conn.close()
        emulator = Emulator(client_id="mtm-demo")
        client = SpotifyClient(client_id="mtm-demo", client_secret=None,
                               accounts_url=Emulator.accounts_url, api_url=Emulator.api_url,
                               transport=emulator.transport())
        database = db.Database(path)
        verifier = oauth.make_verifier()
        code = emulator.grant_code("demo", redirect_uri=BASE + "/callback",
                                   code_challenge=oauth.challenge_for(verifier),
                                   scope=" ".join(SCOPES))
        user = await accounts.complete_login(database, client, code, accounts.LoginAttempt(
            verifier, BASE + "/callback", None))
        label = "plays only (sign-in)" if i % 2 == 0 else "full (scheduler)"
        started = time.perf_counter()
        run = await sync.sync_user(database, client, user, holder="bench",
                                   plays_only=i % 2 == 0, pacer=sync.Pacer(interval=0))
        results[label].append((time.perf_counter() - started) * 1000)
        assert run is not None and run.plays_added > 0, run
        await client.aclose()
        database.close()
        emulator.close()
    return [(label, statistics.median(t), max(t)) for label, t in results.items()]


def main() -> int:
    """Build the history, run the measurements, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plays", type=int, default=500_000)
    parser.add_argument("--years", type=float, default=10)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mtm-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "MTM_"))}
        env["MTM_DATA_DIR"] = tmp
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mtm", "demo-data", "--plays", str(args.plays),
                        "--years", str(args.years)], env=env, check=True, cwd=tmp)
        generated = time.perf_counter() - started
        os.environ.update({"MTM_DATA_DIR": tmp})
        rows = asyncio.run(bench_pages(Path(tmp), args.runs))
        size = (Path(tmp) / "mtm.sqlite3").stat().st_size / 1e6
        syncs = asyncio.run(bench_sync(Path(tmp), 20))
    print(f"\nmtm demo-data --plays {args.plays} --years {args.years:g}: {generated:.1f} s "
          f"(wall, including start-up); database {size:.0f} MB")
    print("\n| page | shape | median ms | p95 ms |\n|---|---|---|---|")
    for label, shape, median, p95 in rows:
        print(f"| {label} | {shape} | {median:.1f} | {p95:.1f} |")
    print("\n| sync storing 50 new plays (emulator in-process, pacing off) | median ms | max ms |"
          "\n|---|---|---|")
    for label, median, worst in syncs:
        print(f"| {label} | {median:.1f} | {worst:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
