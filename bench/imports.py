"""Import speed on a realistic privacy export: `python bench/imports.py [--records 500000]`.

Writes an extended streaming history of 500,000 records over 10 years (about 9,000 artists
and 46,000 tracks, skips and same-second records, podcasts and video) and 100,000 records
of account data overlapping its last months (bench/export_generator.py), then times, each
in a fresh process so its peak memory is its own:

  preview     the 500k export, changing nothing
  import      the 500k export into an empty account (an automatic backup is taken first)
  again       the same files again: everything is already there, nothing is added
  account     the account data after it: matched by artist and title, only its own plays new
  http        upload of the zip as Spotify sends it through a real server (uvicorn), preview
              and import, timed from the first byte sent to the finished report

Every figure is the median of --runs runs (min and max beside it); nothing is cached. Peak
memory is sampled every 10 ms as the importing process and the helper process that reads
part of a big upload (mtm.readers) hold it together; each one's own peak is shown beside.
Targets: import under 10 s at under 250 MB, again under 8 s, account under 5 s, preview
under 5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from html import unescape
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import export_generator  # noqa: E402
from run import sign_in  # noqa: E402

TARGETS = {"preview": 5.0, "import": 10.0, "again": 8.0, "account": 5.0}


def _rss_kb(pid: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Together:
    """Samples the resident memory of this process and its helper together, every 10 ms."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            children = []
            for task in Path("/proc/self/task").iterdir():
                with contextlib.suppress(OSError):
                    children += (task / "children").read_text().split()
            self.peak_kb = max(self.peak_kb, _rss_kb("self") + sum(map(_rss_kb, children)))

    def __enter__(self) -> Together:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _child(action: str, data_dir: str, files: list[str]) -> None:
    """Run one step in this (fresh) process and print its figures as JSON."""
    from mtm import db, importer, users
    from mtm.app import prepare_database
    from mtm.config import load_settings

    settings = load_settings(env_file=None, overrides={"MTM_DATA_DIR": data_dir,
                                                       "MTM_DEMO_PLAYS": "0"})
    prepare_database(settings)
    conn = db.connect(settings.database_path)
    user_id = users.upsert_user(conn, "bench-listener", "Bench Listener")
    conn.close()
    paths = [Path(f) for f in files]
    together = Together().__enter__()
    started = time.perf_counter()
    if action == "preview":
        report = importer.preview(settings.database_path, user_id, paths)
    else:
        from mtm import backups
        from mtm import db as database

        pool = database.Database(settings.database_path)

        def backup(_: importer.Report) -> int:
            return pool.call(backups.create_backup, settings.backups_dir, user_id, "auto",
                             "before an import").id

        report = importer.run(settings.database_path, user_id, paths, before_write=backup).report
        pool.close()
    elapsed = time.perf_counter() - started
    together.__exit__()
    # Big uploads are read partly by a helper process (mtm.readers): its memory counts too.
    helper_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "rss_mb": resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024, "helper_mb": helper_mb,
        "together_mb": together.peak_kb / 1024,
        "read": report.read, "new": report.new,
        "stored": report.stored, "present": report.present, "adds_up": report.adds_up}))


def step(action: str, data_dir: Path, files: list[Path]) -> dict:
    """One step in a new Python process."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", action, str(data_dir), *map(str, files)],
        capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{action} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def summary(name: str, runs: list[dict]) -> str:
    seconds = sorted(r["seconds"] for r in runs)
    rss = max(r["rss_mb"] for r in runs)
    helper = max(r["helper_mb"] for r in runs)
    together = max(r["together_mb"] for r in runs)
    last = runs[-1]
    rate = last["read"] / statistics.median(seconds)
    target = TARGETS.get(name)
    verdict = "" if target is None else (" ok" if statistics.median(seconds) < target
                                         else f" OVER the {target:g} s target")
    return (f"{name:<8} {statistics.median(seconds):6.2f} s  (min {seconds[0]:.2f}, max "
            f"{seconds[-1]:.2f})  {rate:9,.0f} records/s  peak {together:4.0f} MB together "
            f"(importer {rss:.0f} MB" + (f", helper {helper:.0f} MB" if helper else "")
            + ", each at its own peak)  "
            f"read {last['read']:,}, new plays {last['new']:,}, stored {last['stored']:,}, "
            f"already there {last['present']:,}{verdict}")


# --- through a real server ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(client: httpx.Client, url: str, done: str) -> str:
    while True:
        page = client.get(url).text
        if done in page or "alert-error" in page:
            return page
        time.sleep(0.1)


def over_http(zip_path: Path) -> dict:
    """Upload, preview and import the zip through `mtm serve`; seconds of each part."""
    with tempfile.TemporaryDirectory(prefix="mtm-bench-http-") as tmp:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "MTM_"))}
        env.update(MTM_DATA_DIR=tmp, MTM_SECRET_KEY="bench", MTM_DEMO_PLAYS="0",
                   MTM_SYNC_INTERVAL="0")
        server = subprocess.Popen([sys.executable, "-m", "mtm", "serve", "--port", str(port),
                                   "--log-level", "warning"], cwd=tmp, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=120) as client:
                for _ in range(200):
                    try:
                        if client.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.1)
                sign_in(client, "newcomer")
                token = re.search(r'name="csrf-token" content="([^"]+)"',
                                  client.get("/settings").text).group(1)
                started = time.perf_counter()
                with zip_path.open("rb") as handle:
                    sent = client.post("/settings/imports", data={"csrf_token": unescape(token)},
                                       files={"files": (zip_path.name, handle,
                                                        "application/zip")})
                uploaded = time.perf_counter()
                page = _wait_for(client, sent.headers["location"], "Import ")
                previewed = time.perf_counter()
                action = re.search(r'action="([^"]+/import)"', page).group(1)
                confirmed = client.post(action, data={"csrf_token": unescape(token)})
                _wait_for(client, confirmed.headers["location"], "Imported ")
                imported = time.perf_counter()
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {"upload": uploaded - started, "preview": previewed - uploaded,
            "import": imported - previewed, "total": imported - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--account", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", help="write the export here and keep it (default: temp)")
    parser.add_argument("--no-http", action="store_true", help="skip the uvicorn measurement")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="mtm-bench-imports-"))
    try:
        started = time.perf_counter()
        extended = export_generator.write_extended(work / "extended", args.records)
        account = [p for p in export_generator.write_account(
            work / "account", args.account, extended_records=args.records)
            if p.name.startswith("StreamingHistory_music")]
        archive = export_generator.write_zip(work / "my_spotify_data.zip", extended=extended,
                                             account=account)
        print(f"Export: {args.records:,} extended records in {len(extended)} files, "
              f"{args.account:,} account-data records, zip {archive.stat().st_size / 1e6:.0f} MB "
              f"(written in {time.perf_counter() - started:.0f} s)")
        print(f"Machine: {os.cpu_count()} cores; each step in a fresh process; "
              f"{args.runs} runs each.")
        rows = {name: [] for name in ("preview", "import", "again", "account")}
        for _ in range(args.runs):
            data = work / "data"
            shutil.rmtree(data, ignore_errors=True)
            rows["preview"].append(step("preview", data, extended))
            rows["import"].append(step("import", data, extended))
            rows["again"].append(step("import", data, extended))
            rows["account"].append(step("import", data, account))
        for name, runs in rows.items():
            print(summary(name, runs))
        if not args.no_http:
            http = [over_http(archive) for _ in range(args.runs)]
            parts = {key: statistics.median(h[key] for h in http) for key in http[0]}
            print(f"http     {parts['total']:6.2f} s  for the zip ({args.records + args.account:,} "
                  f"records) through uvicorn: upload {parts['upload']:.2f} s, preview "
                  f"{parts['preview']:.2f} s, import {parts['import']:.2f} s (medians)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        main()
