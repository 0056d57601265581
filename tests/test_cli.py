"""The `mtm` command line."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mtm.cli import build_parser, main


def test_serve_defaults() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.demo) == ("127.0.0.1", 8000, False)


def test_demo_data_writes_the_requested_history(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MTM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MTM_SECRET_KEY", "k")
    assert main(["demo-data", "--plays", "3000", "--years", "1", "--seed", "3"]) == 0
    assert "Wrote 3,000 plays" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "mtm.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM plays").fetchone()[0] == 3000
    # Running it again replaces the history instead of adding to it.
    assert main(["demo-data", "--plays", "1000", "--years", "1"]) == 0
    with sqlite3.connect(tmp_path / "mtm.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM plays").fetchone()[0] == 1000


def test_demo_data_grows_the_catalogue_the_emulator_then_serves(tmp_path: Path, monkeypatch,
                                                                capsys) -> None:
    from mtm.app import demo_catalogue_artists
    from mtm.config import load_settings
    from mtm.spotify.catalogue import catalogue_artists
    from mtm.spotify.emulator import Emulator

    monkeypatch.setenv("MTM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MTM_SECRET_KEY", "k")
    assert main(["demo-data", "--plays", "3000", "--years", "1"]) == 0
    artists = catalogue_artists(3000)
    assert artists > 400 and f"catalogue of {artists:,} artists" in capsys.readouterr().out
    assert demo_catalogue_artists(load_settings()) == artists
    emulator = Emulator(state_path=tmp_path / "emulator.sqlite3")
    try:
        with sqlite3.connect(tmp_path / "mtm.sqlite3") as conn:
            ids = {r[0] for r in conn.execute("SELECT spotify_id FROM tracks "
                                               "WHERE spotify_id IS NOT NULL")}
        assert emulator.artists == artists and ids <= emulator.catalogue.tracks_by_id.keys()
    finally:
        emulator.close()


def test_demo_data_rejects_bad_numbers(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MTM_DATA_DIR", str(tmp_path))
    assert main(["demo-data", "--plays", "-1"]) == 2
    assert "--plays" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo-data", "--plays", "many"])


def test_vendor_check_passes_on_the_committed_files(capsys) -> None:
    assert main(["vendor", "--check"]) == 0


def run_cli(args: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    """Run `python -m mtm` in its own process, as cron would."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "MTM_"))}
    environ.update({"MTM_DATA_DIR": str(data_dir), "MTM_SECRET_KEY": "k", **env})
    return subprocess.run([sys.executable, "-m", "mtm", *args], env=environ, cwd=data_dir,
                          capture_output=True, text=True, timeout=120)


async def test_sync_command_uses_the_servers_tokens(tmp_path: Path) -> None:
    """A user signed in through the server is synced by `mtm sync` in another process."""
    import asyncio

    import httpx

    from mtm.app import create_app
    from mtm.config import load_settings
    from tests.conftest import BASE_URL, sign_in

    settings = load_settings(env_file=None, force_demo=True, overrides={
        "MTM_DATA_DIR": str(tmp_path), "MTM_SECRET_KEY": "k", "MTM_DEMO_PLAYS": "0",
        "MTM_SYNC_INTERVAL": "0"})
    app = create_app(settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        await sign_in(client)
    with sqlite3.connect(tmp_path / "mtm.sqlite3") as conn:
        # The access token has run out by the time cron runs: the refresh must work.
        conn.execute("UPDATE tokens SET expires_at = 0")

    done = await asyncio.to_thread(run_cli, ["sync", "--user", "demo"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("user 1: ok,"), done.stdout
    with sqlite3.connect(tmp_path / "mtm.sqlite3") as conn:
        assert conn.execute("SELECT reconnect_needed FROM users").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM top_snapshots").fetchone()[0] > 0
    unknown = await asyncio.to_thread(run_cli, ["sync", "--user", "nobody"], tmp_path)
    assert unknown.returncode == 2 and "no user 'nobody'" in unknown.stderr


def test_sync_command_reports_failure(tmp_path: Path) -> None:
    from mtm import db, users

    conn = db.connect(tmp_path / "mtm.sqlite3")
    db.migrate(conn)
    user_id = users.upsert_user(conn, "ghost", "Ghost")
    # Tokens the emulator never issued: the refresh is refused as invalid_grant.
    users.save_tokens(conn, user_id, access_token="x", refresh_token="y", expires_at=0,
                      scope="", new_consent=True)
    conn.close()
    done = run_cli(["sync"], tmp_path)
    assert done.returncode == 1
    assert "failed" in done.stdout and "reconnect" in done.stdout.lower()


def test_bad_sync_interval_is_a_clear_error(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MTM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MTM_SYNC_INTERVAL", "86400")
    assert main(["sync"]) == 2
    assert "MTM_SYNC_INTERVAL" in capsys.readouterr().err


# --- mtm import ----------------------------------------------------------------------------


def _export(folder: Path, n: int = 5) -> Path:
    import json

    from tests.test_importer import BASE, extended

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "Streaming_History_Audio_2019_0.json"
    path.write_text(json.dumps([extended(BASE + i * 300, i) for i in range(n)]))
    return path


def test_import_dry_run_then_import(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    export = _export(tmp_path / "export")
    dry = run_cli(["import", "--dry-run", str(export)], data, MTM_DEMO_PLAYS="0")
    assert dry.returncode == 0, dry.stderr
    assert "New plays" in dry.stdout and "Nothing was changed (dry run)" in dry.stdout
    assert "Reading the files" in dry.stderr, "progress goes to the terminal"
    with sqlite3.connect(data / "mtm.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM plays").fetchone()[0] == 0
    done = run_cli(["import", str(export)], data, MTM_DEMO_PLAYS="0")
    assert done.returncode == 0, done.stderr
    assert re.search(r"New plays\s+5\s+were added", done.stdout)
    again = run_cli(["import", str(export.parent)], data, MTM_DEMO_PLAYS="0")
    assert re.search(r"New plays\s+0", again.stdout) and re.search(r"Already here\s+5",
                                                                    again.stdout)
    with sqlite3.connect(data / "mtm.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM plays WHERE source = 'export'").fetchone()[0] == 5
        # Recorded like an import from the browser: a job and an import each time.
        assert conn.execute("SELECT count(*) FROM imports").fetchone()[0] == 2
        assert conn.execute("SELECT group_concat(DISTINCT state) FROM jobs").fetchone()[0] == "done"


def test_import_needs_to_know_whose_history(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    export = _export(tmp_path / "export")
    env = {"SPOTIFY_CLIENT_ID": "real-app", "MTM_DEMO_PLAYS": "0"}
    nobody = run_cli(["import", str(export)], data, **env)
    assert nobody.returncode == 2 and "nobody has signed in" in nobody.stderr
    with sqlite3.connect(data / "mtm.sqlite3") as conn:
        for spotify_id in ("anna", "ben"):
            conn.execute("INSERT INTO users (spotify_id, display_name, created_at) "
                         "VALUES (?, ?, 0)", (spotify_id, spotify_id.title()))
    several = run_cli(["import", str(export)], data, **env)
    assert several.returncode == 2 and "--user" in several.stderr
    unknown = run_cli(["import", "--user", "carl", str(export)], data, **env)
    assert unknown.returncode == 2 and "no user 'carl'" in unknown.stderr
    ben = run_cli(["import", "--user", "ben", str(export)], data, **env)
    assert ben.returncode == 0, ben.stderr
    with sqlite3.connect(data / "mtm.sqlite3") as conn:
        owners = conn.execute("SELECT DISTINCT u.spotify_id FROM plays p JOIN users u "
                              "ON u.id = p.user_id").fetchall()
    assert owners == [("ben",)]


def test_import_explains_bad_input(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    missing = run_cli(["import", str(tmp_path / "nope.zip")], data, MTM_DEMO_PLAYS="0")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    broken = tmp_path / "Streaming_History_Audio_2019_0.json"
    broken.write_text('[{"ts": "2019-')
    result = run_cli(["import", str(broken)], data, MTM_DEMO_PLAYS="0")
    assert result.returncode == 1 and "truncated" in result.stderr
    with sqlite3.connect(data / "mtm.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM imports").fetchone()[0] == 0
        assert conn.execute("SELECT state FROM jobs").fetchone()[0] == "failed"
