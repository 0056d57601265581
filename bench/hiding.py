"""Hiding rules on a large history: `python bench/hiding.py [--plays 500000]`.

Builds the same history as bench/run.py (a generated extended streaming history imported
with `mtm import`, or `--history demo`), serves it with uvicorn with the read cache off (every
request computes), and times over real HTTP:

  hide / show again   POST /hidden for the most played artist, then POST /hidden/<id>/delete,
                      each the HTMX request the page sends (its plays move out of the plays
                      table and the rollups, and back); also for the most played playlist
  pages               all-time and 12-month analytics, last year's review and the page of the
                      second most played artist, computed, without a rule and with the most
                      played artist hidden: hiding must not slow the pages down

p95 is by nearest rank and shown only for n >= 20, as in bench/run.py. `--data DIR` keeps
(and reuses) the data directory, as bench/run.py's does; the rule is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import HX, Row, build_history, history_shape, measure, print_table, server  # noqa: E402


def _csrf(client: httpx.Client) -> str:
    page = client.get("/hidden").text
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def _timed_post(client: httpx.Client, path: str, data: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    response = client.post(path, data=data, headers=HX)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response.text


def cycles(client: httpx.Client, form: dict[str, str], runs: int) -> tuple[list[float],
                                                                            list[float], str]:
    """Hide and show again `runs` times: sorted times of each, and what one hide said."""
    token = _csrf(client)
    hides, shows, said = [], [], ""
    for _ in range(runs):
        elapsed, body = _timed_post(client, "/hidden", {"csrf_token": token, **form})
        hides.append(elapsed)
        said = re.search(r'class="flash flash-success"[^>]*>([^<]+)<', body).group(1)
        rule = re.search(r'id="rule-(\d+)"', body).group(1)
        elapsed, _ = _timed_post(client, f"/hidden/{rule}/delete", {"csrf_token": token})
        shows.append(elapsed)
    return sorted(hides), sorted(shows), said


def pages() -> list[tuple[str, str]]:
    """The pages measured with and without a rule (besides an artist page)."""
    year = time.gmtime().tm_year - 1
    return [("/analytics?range=all", "all-time analytics"),
            ("/analytics?range=12m", "12-month analytics"),
            (f"/review?year={year}", f"review of {year}")]


def top_artists(client: httpx.Client) -> list[str]:
    """Ids of the two most played artists of all time."""
    page = client.get("/analytics?range=all").text
    return re.findall(r'href="[^"]*?/artists/(\d+)"', page)[:2]


def top_context(data_dir: Path) -> str:
    """The playing context most plays came from."""
    import sqlite3

    with sqlite3.connect(data_dir / "mtm.sqlite3") as conn:
        found = conn.execute("SELECT context_uri FROM plays WHERE context_uri IS NOT NULL "
                             "GROUP BY context_uri ORDER BY count(*) DESC LIMIT 1").fetchone()
    return found[0] if found else ""


def main() -> int:
    """Build the history, time hiding and the pages with and without a rule."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plays", type=int, default=500_000)
    parser.add_argument("--years", type=float, default=10)
    parser.add_argument("--history", choices=("export", "demo"), default="export")
    parser.add_argument("--runs", type=int, default=20, help="samples of each request")
    parser.add_argument("--data", metavar="DIR", type=Path,
                        help="keep the data directory here; reuse its database when it has one")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.data is None:
            data_dir = Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="mtm-bench-hiding-")))
        else:
            data_dir = args.data.resolve()
            data_dir.mkdir(parents=True, exist_ok=True)
        if (data_dir / "mtm.sqlite3").exists():
            made = f"the history already in {data_dir}"
        else:
            made = build_history(data_dir, args.history, args.plays, args.years)
        shape = history_shape(data_dir / "mtm.sqlite3")
        context = top_context(data_dir)
        rows: list[Row] = []
        notes: list[str] = []
        with server(data_dir, cache=False) as client:
            first, second = top_artists(client)
            measured = [*pages(), (f"/artists/{second}", "second most played artist")]
            for path, label in measured:
                rows.append(Row(f"{label} ({path})", "fragment, computed, no rule",
                                measure(client, path, HX, args.runs)))
            hides, shows, said = cycles(client, {"kind": "artist", "target": first}, args.runs)
            rows.append(Row("hide the most played artist", "POST, fragment", hides))
            rows.append(Row("show it again", "POST, fragment", shows))
            notes.append(f"most played artist: {said}")
            if context:
                hides, shows, said = cycles(client, {"kind": "context", "context": context},
                                            args.runs)
                rows.append(Row("hide the most played context", "POST, fragment", hides))
                rows.append(Row("show it again", "POST, fragment", shows))
                notes.append(f"most played context: {said}")
            token = _csrf(client)
            hidden = client.post("/hidden", data={"csrf_token": token, "kind": "artist",
                                                  "target": first}, headers=HX)
            hidden.raise_for_status()
            for path, label in measured:
                rows.append(Row(f"{label} ({path})",
                                "fragment, computed, most played artist hidden",
                                measure(client, path, HX, args.runs)))
            rule = re.search(r'id="rule-(\d+)"', hidden.text).group(1)
            client.post(f"/hidden/{rule}/delete", data={"csrf_token": token},
                        headers=HX).raise_for_status()
    print(f"\n{made}; {shape}")
    for note in notes:
        print(f"- {note}")
    print("\nOver HTTP (uvicorn on 127.0.0.1, one keep-alive client), read cache off.")
    print_table(rows, "request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
