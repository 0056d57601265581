"""Speed under load: `python bench/load.py --data /var/tmp/mtm-load` (about 3 min the first
time, when it builds the histories; 1.5 min after).

A household on one instance, as issue #12 sets it: 5 users with 1,000,000 plays each
(`--plays`, `--users`), served by uvicorn with `--workers` processes on one SQLite database,
50 concurrent clients (`--clients`) for 60 s (`--seconds`) over a mix of the dashboard,
analytics ranges (page and HTMX fragment), plays pages, playlist previews and static files,
while the scheduler syncs (MTM_SYNC_INTERVAL=60, the emulator's endless play stream) and one
import runs (an extended-history zip uploaded, previewed and imported by one of the users).

The history is built once (kept in `--data DIR`, reused when it is there): `mtm demo-data`
writes the first user's (its catalogue grows with the plays: about 9,000 artists and 46,000
tracks per 500,000), then SQL copies those plays for the other users under their own ids,
each shifted back by a few hours, and their rollups are rebuilt as a restore would.

The clients are a lean asyncio HTTP/1.1 keep-alive client on raw sockets in this process
(one connection each, a closed loop: the next request as soon as the last answered), each
signed in as one of the users through the emulator, as a browser would be; they send
`Accept-Encoding: gzip` like a browser. The report gives requests/s, p50/p95/p99 per class
(pages, fragments, static), the 5xx count, "database is locked" lines in the server's log,
the syncs and the import done during the run, and the CPU the server and the clients took.
The machine's 2 cores run both, so the clients' share is said too.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from run import sign_in  # noqa: E402

RANGES = ("7d", "30d", "90d", "6m", "12m", "all")
# The first user is the demo account mtm demo-data writes; the others are copies of it.
FIRST_USER = "demo"
TARGETS = {"pages": 250.0, "fragments": 250.0, "static": 20.0}
TARGET_RPS = 300
SYNC_INTERVAL = 60
# Seconds each copied history is moved back, per user after the first.
SHIFT = 3 * 3600 + 17


def bench_users(count: int) -> list[str]:
    """The Spotify ids of the household: the demo account and bench2, bench3, ..."""
    return [FIRST_USER] + [f"bench{n}" for n in range(2, count + 1)]


# --- the history ----------------------------------------------------------------------


def clean_env(data_dir: Path) -> dict[str, str]:
    """The environment for mtm commands: only this data directory, nothing from the shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "MTM_"))}
    env.update(MTM_DATA_DIR=str(data_dir), MTM_DEMO_PLAYS="0", MTM_SECRET_KEY="bench-load")
    return env


def build(data_dir: Path, users: list[str], plays: int, years: float) -> str:
    """Make the household's histories unless they are there; say what was done."""
    path = data_dir / "mtm.sqlite3"
    said = []
    started = time.perf_counter()
    if not _has_plays(path, users[0]):
        subprocess.run([sys.executable, "-m", "mtm", "demo-data", "--plays", str(plays),
                        "--years", str(years)], env=clean_env(data_dir), check=True,
                       cwd=data_dir, stdout=subprocess.DEVNULL)
        said.append(f"mtm demo-data --plays {plays} --years {years:g}")
    copied = [u for u in users[1:] if not _has_plays(path, u)]
    if copied:
        copy_histories(path, users[0], copied)
        said.append(f"copied for {', '.join(copied)}")
    if not said:
        return f"the histories already in {data_dir}"
    return "; ".join(said) + f" ({time.perf_counter() - started:.0f} s)"


def _has_plays(path: Path, spotify_id: str) -> bool:
    if not path.exists():
        return False
    with closing(sqlite3.connect(path)) as conn:
        row = conn.execute("SELECT 1 FROM plays p JOIN users u ON u.id = p.user_id "
                           "WHERE u.spotify_id = ? LIMIT 1", (spotify_id,)).fetchone()
    return row is not None


def copy_histories(path: Path, source: str, targets: list[str]) -> None:
    """Copy the source user's plays to each target (a new user), shifted back in time."""
    from mtm import db, history
    from mtm.db import transaction

    conn = db.connect(path)
    try:
        source_id = conn.execute("SELECT id FROM users WHERE spotify_id = ?",
                                 (source,)).fetchone()[0]
        columns = [r[1] for r in conn.execute("PRAGMA table_info(plays)")]
        rest = ", ".join(c for c in columns if c not in ("user_id", "played_at"))
        for spotify_id in targets:
            # bench2 is the second member: moved back one SHIFT, bench3 two, ...
            index = int(spotify_id.removeprefix("bench")) - 1
            with transaction(conn):
                conn.execute(
                    "INSERT INTO users (spotify_id, display_name, created_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(spotify_id) DO NOTHING",
                    (spotify_id, f"Bench Listener {index + 1}", int(time.time())))
                user_id = conn.execute("SELECT id FROM users WHERE spotify_id = ?",
                                       (spotify_id,)).fetchone()[0]
                conn.execute(
                    f"INSERT INTO plays (user_id, played_at, {rest}) "
                    f"SELECT ?, played_at - ?, {rest} FROM plays WHERE user_id = ?",
                    (user_id, index * SHIFT, source_id))
            history.rebuild_rollups(conn, user_id)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def history_shape(path: Path) -> str:
    """Plays per user, and the catalogue."""
    with closing(sqlite3.connect(path)) as conn:
        per_user = conn.execute(
            "SELECT u.spotify_id, count(*) FROM plays p JOIN users u ON u.id = p.user_id "
            "GROUP BY p.user_id ORDER BY p.user_id").fetchall()
        tracks = conn.execute("SELECT count(*) FROM tracks").fetchone()[0]
        artists = conn.execute("SELECT count(*) FROM artists").fetchone()[0]
    users = ", ".join(f"{name} {count:,}" for name, count in per_user)
    return f"plays: {users}; catalogue {tracks:,} tracks by {artists:,} artists"


def write_import(dest: Path, records: int) -> Path:
    """The export zip one user imports during the run (bench/export_generator.py)."""
    if dest.exists():
        return dest
    sys.path.insert(0, str(BENCH_DIR))
    import export_generator

    with tempfile.TemporaryDirectory(prefix="mtm-load-export-") as tmp:
        files = export_generator.write_extended(Path(tmp) / "extended", records, 10.0,
                                                seed=7)
        export_generator.write_zip(dest.with_suffix(".partial"), extended=files)
    dest.with_suffix(".partial").rename(dest)
    return dest


# --- the server under test -----------------------------------------------------------


def app_factory():
    """The app as each uvicorn worker builds it (uvicorn --factory load:app_factory).

    The emulator knows only its demo accounts: the household's other members are added to
    it here, listening like the demo account does, so each can sign in and be synced.
    """
    import logging

    from mtm.app import create_app
    from mtm.config import load_settings
    from mtm.spotify.emulator.users import USERS, EmulatedUser

    # The lines `mtm serve --workers N` writes, so the log shows what a real one would.
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")

    for spotify_id in os.environ["MTM_BENCH_USERS"].split(","):
        if spotify_id not in USERS:
            USERS[spotify_id] = EmulatedUser(spotify_id, f"Bench {spotify_id}", "SE",
                                             "a bench household member", True)
    return create_app(load_settings(env_file=None, force_demo=True))


def start_server(data_dir: Path, port: int, workers: int, users: list[str],
                 log_path: Path) -> subprocess.Popen:
    """uvicorn with `workers` processes on 127.0.0.1:port, its log in `log_path`."""
    env = clean_env(data_dir)
    env.update(MTM_SYNC_INTERVAL=str(SYNC_INTERVAL), MTM_BENCH_USERS=",".join(users))
    args = [sys.executable, "-m", "uvicorn", "--factory", "load:app_factory",
            "--app-dir", str(BENCH_DIR), "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--log-level", "info", "--no-access-log",
            "--no-proxy-headers"]
    log = log_path.open("w")
    niceness = int(os.environ.get("MTM_BENCH_SERVER_NICE", "0"))
    return subprocess.Popen(args, env=env, cwd=data_dir, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=(lambda: os.nice(niceness)) if niceness else None)


def wait_ready(base: str, proc: subprocess.Popen, workers: int, log_path: Path) -> None:
    """Until every worker has started (its log says so) and /healthz answers."""
    deadline = time.monotonic() + 300
    with httpx.Client(base_url=base, timeout=10) as client:
        while True:
            started = log_path.read_text(errors="replace").count("Application startup complete")
            try:
                if started >= workers and client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: see {log_path}")
            time.sleep(0.2)


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children's threads."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(c) for c in children)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


# --- signing in and what each user asks for --------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request of the mix: its class, path and whether HTMX asks for a fragment."""

    kind: str  # "pages", "fragments" or "static"
    path: str
    hx: bool = False


def mix_for(client: httpx.Client, year: int) -> list[Request]:
    """One round of the mix for a signed-in user, weighed like a household's browsing.

    Per round: 6 static files (a page load with a cold browser cache fetches them),
    the dashboard, every analytics range as a page and as a fragment, two plays pages as
    pages and fragments, and three playlist previews.
    """
    home = client.get("/").text
    statics = sorted(set(re.findall(r'(?:href|src)="(?:https?://[^/"]+)?(/static/[^"]+)"', home)))
    more = unescape(re.search(r'href="[^"]*?(/plays\?before=\d+&amp;key=-?\d+)"',
                              home).group(1))
    mix = [Request("pages", "/")]
    for key in RANGES:
        mix.append(Request("pages", f"/analytics?range={key}"))
        mix.append(Request("fragments", f"/analytics?range={key}", hx=True))
    for path in ("/plays", more):
        mix.append(Request("pages", path))
        mix.append(Request("fragments", path, hx=True))
    for source in ("forgotten_gems", "current_rotation", "year_in_review"):
        mix.append(Request("fragments", f"/playlists/preview?source={source}&count=50"
                                        f"&year={year}", hx=True))
    # Static files take about a third of the requests, spread between the others.
    rounds = []
    for i, request in enumerate(mix):
        rounds.append(request)
        if i % 3 == 0:
            rounds.append(Request("static", statics[(i // 3) % len(statics)]))
    return rounds


# --- the clients -----------------------------------------------------------------------


@dataclass
class Results:
    """Every answered request: its class, status and milliseconds."""

    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    errors: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)


def raw_request(request: Request, cookie: str) -> bytes:
    """The bytes of a GET as a browser sends it (keep-alive, gzip, the session cookie)."""
    lines = [f"GET {request.path} HTTP/1.1", "Host: 127.0.0.1", "User-Agent: mtm-load",
             "Accept: */*", "Accept-Encoding: gzip", f"Cookie: mtm_session={cookie}"]
    if request.hx:
        lines.append("HX-Request: true")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; its status and whether the server keeps the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, headers.get("connection", "").lower() != "close"


async def one_client(port: int, rounds: list[tuple[Request, bytes]], offset: int,
                     deadline: float, results: Results, interval: float = 0.0) -> None:
    """A keep-alive connection sending the mix until the deadline: in a closed loop, or one
    request every `interval` seconds (late ones go at once, none are skipped)."""
    reader = writer = None
    i = offset
    due = time.monotonic() + interval * random.random()
    while time.monotonic() < deadline:
        if interval:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due += interval
        request, raw = rounds[i % len(rounds)]
        i += 1
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.perf_counter()
            writer.write(raw)
            status, keep = await read_response(reader)
            elapsed = (time.perf_counter() - started) * 1000
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            results.errors.append(f"{request.path}: {exc!r}")
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.05)
            continue
        results.times[request.kind].append(elapsed)
        results.statuses[status] += 1
        if status >= 500:
            results.server_errors.append(f"{status} {request.path}")
        if not keep:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def drive(port: int, plans: list[list[tuple[Request, bytes]]], clients: int,
                seconds: float, results: Results, rate: float = 0.0) -> None:
    """`clients` connections, spread over the users' plans, for `seconds`; together they
    send `rate` requests a second, or as many as are answered when it is 0."""
    deadline = time.monotonic() + seconds
    interval = clients / rate if rate else 0.0
    await asyncio.gather(*(
        one_client(port, plans[n % len(plans)], n * 7, deadline, results, interval)
        for n in range(clients)))


# --- the import during the run -----------------------------------------------------------


def run_import(client: httpx.Client, archive: Path, report: dict) -> None:
    """Upload the zip, wait for its preview, confirm, and wait for the import to finish."""
    try:
        token = unescape(re.search(r'name="csrf-token" content="([^"]+)"',
                                   client.get("/settings").text).group(1))
        started = time.perf_counter()
        with archive.open("rb") as handle:
            sent = client.post("/settings/imports", data={"csrf_token": token},
                               files={"files": (archive.name, handle, "application/zip")})
        page = _wait_for(client, sent.headers["location"], "Import ")
        report["previewed"] = time.perf_counter() - started
        action = re.search(r'action="([^"]+/import)"', page).group(1)
        confirmed = client.post(action, data={"csrf_token": token})
        page = _wait_for(client, confirmed.headers["location"], "Imported ")
        report["imported"] = time.perf_counter() - started
        report["outcome"] = "done" if "Imported " in page else "failed"
        report["token"], report["page"] = token, page
    except Exception as exc:  # the report says it; the load goes on
        report["outcome"] = f"failed: {exc!r}"


def undo_import(client: httpx.Client, report: dict) -> str:
    """Undo the import, so that the next run imports the same plays again; say how it went."""
    found = re.search(r'/settings/imports/(\d+)', report.get("page", ""))
    if report.get("outcome") != "done" or found is None:
        return "not undone (the import did not finish)"
    sent = client.post(f"/settings/imports/{found.group(1)}/undo",
                       data={"csrf_token": report["token"], "confirm": "yes"})
    if sent.status_code != 303:
        return f"not undone ({sent.status_code})"
    page = _wait_for(client, sent.headers["location"], "Undone")
    return "undone after the run" if "Undone" in page else "undo failed"


def press_sync_now(clients: list[httpx.Client], stop: threading.Event, every: float,
                   report: dict) -> None:
    """Each user in turn presses "Sync now" (the HTMX button) every `every` seconds."""
    tokens = [unescape(re.search(r'name="csrf-token" content="([^"]+)"',
                                 client.get("/settings").text).group(1)) for client in clients]
    n = 0
    while not stop.wait(every):
        client, token = clients[n % len(clients)], tokens[n % len(clients)]
        n += 1
        try:
            answer = client.post("/settings/sync", data={"csrf_token": token},
                                 headers={"HX-Request": "true"})
            key = str(answer.status_code)
        except httpx.HTTPError as exc:
            key = type(exc).__name__
        report[key] = report.get(key, 0) + 1


def _wait_for(client: httpx.Client, url: str, done: str) -> str:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        page = client.get(url).text
        if done in page or "alert-error" in page:
            return page
        time.sleep(0.5)
    raise TimeoutError(f"{url} never said {done!r}")


# --- the report --------------------------------------------------------------------------


def percentile(ordered: list[float], share: float) -> float:
    """Nearest rank: the ceil(share * n)-th smallest."""
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def syncs_between(path: Path, start: float, end: float) -> tuple[int, int, list[str]]:
    """Sync runs started in the window: how many, plays they added, outcomes not ok."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT outcome, plays_added FROM sync_runs "
                            "WHERE started_at BETWEEN ? AND ?",
                            (int(start), int(end) + 1)).fetchall()
    return (len(rows), sum(r[1] or 0 for r in rows),
            sorted({r[0] for r in rows if r[0] not in ("ok", "running")}))


def loadavg() -> str:
    """The machine's 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def report(results: Results, seconds: float, extra: dict) -> bool:
    """Print the figures against the targets; True when every target is met."""
    total = sum(len(t) for t in results.times.values())
    rps = total / seconds
    print(f"\n{total:,} requests in {seconds:.0f} s: {rps:.0f} requests/s "
          f"(target at least {TARGET_RPS})")
    print("\n| class | n | p50 ms | p95 ms | p99 ms | max ms | target p95 |")
    print("|---|---|---|---|---|---|---|")
    met = rps >= TARGET_RPS
    for kind in ("pages", "fragments", "static"):
        ordered = sorted(results.times.get(kind, []))
        if not ordered:
            print(f"| {kind} | 0 | – | – | – | – | – |")
            met = False
            continue
        p95 = percentile(ordered, 0.95)
        ok = p95 < TARGETS[kind]
        met = met and ok
        print(f"| {kind} | {len(ordered):,} | {percentile(ordered, 0.5):.1f} | {p95:.1f} | "
              f"{percentile(ordered, 0.99):.1f} | {ordered[-1]:.1f} | under "
              f"{TARGETS[kind]:g} ms: {'ok' if ok else 'MISSED'} |")
    statuses = ", ".join(f"{code}: {n:,}" for code, n in sorted(results.statuses.items()))
    fives = len(results.server_errors)
    print(f"\nStatuses: {statuses}. 5xx: {fives} (target 0). Connection errors: "
          f"{len(results.errors)}.")
    for line in sorted(set(results.server_errors))[:10]:
        print(f"  {line}")
    for line in sorted(set(results.errors))[:5]:
        print(f"  {line}")
    print(f"'database is locked' in the server log: {extra['locked']} (target 0)")
    print(f"Syncs during the run: {extra['syncs']} runs, {extra['sync_plays']} plays added"
          + (f", outcomes other than ok: {', '.join(extra['sync_bad'])}"
             if extra["sync_bad"] else ""))
    pressed = ", ".join(f"{k}: {v}" for k, v in sorted(extra["pressed"].items())) or "none"
    print(f"'Sync now' pressed during the run (status: times): {pressed}")
    imp = extra["import"]
    print("Import during the run: none (--import-records 0)" if not extra["import_records"] else
          f"Import during the run ({extra['import_records']:,} extended-history records, "
          f"by {extra['importer']}): {imp.get('outcome', 'unfinished')}"
          + (f", previewed after {imp['previewed']:.1f} s" if "previewed" in imp else "")
          + (f", imported after {imp['imported']:.1f} s" if "imported" in imp else "")
          + ("" if imp.get("in_run", True) else ", finishing after the run ended")
          + (f"; {imp['undo']}" if "undo" in imp else ""))
    print(f"Server CPU per request: {extra['server_cpu'] / max(total, 1) * 1000:.2f} ms "
          f"(all of the server's work, the syncs and the import included, over the requests; "
          f"2 idle cores would serve about {2 * max(total, 1) / max(extra['server_cpu'], 0.01):.0f}"
          " requests/s at that cost)")
    print(f"CPU during the run: server {extra['server_cpu']:.0f} s, clients (this process) "
          f"{extra['client_cpu']:.0f} s, of {2 * seconds:.0f} core-seconds on 2 cores "
          f"(clients: {extra['client_cpu'] / max(seconds, 1) * 100:.0f}% of one core)")
    print(f"Load average before: {extra['load_before']}; after: {loadavg()} "
          f"({os.cpu_count()} cores). Other work on the machine makes the figures noisy.")
    met = (met and fives == 0 and extra["locked"] == 0
           and not any(k.startswith("5") for k in extra["pressed"]))
    print("\nAll targets met." if met else "\nSome targets were missed (see above).")
    return met


def main() -> int:
    """Build or reuse the household, serve it, load it, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", metavar="DIR", type=Path,
                        help="keep the data directory here and reuse it (default: a temporary "
                             "one, built each time)")
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--plays", type=int, default=1_000_000, help="plays per user")
    parser.add_argument("--years", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="requests/s the clients send together (default 0: each sends "
                        "its next request as soon as the last is answered)")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--import-records", type=int, default=100_000,
                        help="extended-history records of the import run during the load "
                             "(0: none)")
    args = parser.parse_args()
    users = bench_users(args.users)
    with ExitStack() as stack:
        if args.data is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mtm-load-")))
        else:
            data_dir = args.data.resolve()
            data_dir.mkdir(parents=True, exist_ok=True)
        made = build(data_dir, users, args.plays, args.years)
        print(f"History: {made}; {history_shape(data_dir / 'mtm.sqlite3')}", flush=True)
        archive = write_import(data_dir / f"load-import-{args.import_records}.zip",
                               args.import_records) if args.import_records else None
        port = _free_port()
        log_path = data_dir / "load-server.log"
        proc = start_server(data_dir, port, args.workers, users, log_path)
        stack.callback(_stop, proc)
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc, args.workers, log_path)
        year = time.gmtime().tm_year - 1
        plans = []
        sessions = []
        for spotify_id in users:
            client = stack.enter_context(httpx.Client(base_url=base, timeout=120))
            sign_in(client, spotify_id)
            sessions.append(client)
            cookie = client.cookies["mtm_session"]
            plans.append([(r, raw_request(r, cookie)) for r in mix_for(client, year)])
        # Warm each worker a little, as a running instance would be.
        asyncio.run(drive(port, plans, args.clients, 5, Results()))
        print(f"Serving with {args.workers} uvicorn workers on 127.0.0.1:{port}; "
              f"{args.clients} clients for {args.seconds:g} s; log {log_path}", flush=True)
        load_before = loadavg()
        import_report: dict = {}
        if archive is not None:
            importer = threading.Thread(target=run_import,
                                        args=(sessions[-1], archive, import_report), daemon=True)
        # The household's other members press "Sync now" now and then, besides the
        # scheduler's passes; the importing member is busy with its import.
        pressed: dict = {}
        stop = threading.Event()
        presser = threading.Thread(target=press_sync_now, daemon=True,
                                   args=(sessions[:-1] or sessions, stop, 6.0, pressed))
        results = Results()
        cpu_server = process_tree_cpu(proc.pid)
        cpu_self = _self_cpu()
        started = time.time()
        if archive is not None:
            importer.start()
        presser.start()
        asyncio.run(drive(port, plans, args.clients, args.seconds, results, args.rate))
        ended = time.time()
        stop.set()
        presser.join(timeout=30)
        if archive is not None:
            # Measured during the run only; it is waited for so that it can be undone.
            import_report["in_run"] = not importer.is_alive()
            importer.join(timeout=600)
            import_report["undo"] = undo_import(sessions[-1], import_report)
        cpu_self = _self_cpu() - cpu_self
        cpu_server = process_tree_cpu(proc.pid) - cpu_server
        syncs, sync_plays, sync_bad = syncs_between(data_dir / "mtm.sqlite3", started, ended)
        locked = log_path.read_text(errors="replace").count("database is locked")
        met = report(results, ended - started, {
            "locked": locked, "syncs": syncs, "sync_plays": sync_plays, "sync_bad": sync_bad,
            "import": dict(import_report), "import_records": args.import_records,
            "importer": users[-1], "server_cpu": cpu_server, "client_cpu": cpu_self,
            "load_before": load_before, "pressed": pressed})
    return 0 if met else 1


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    raise SystemExit(main())
