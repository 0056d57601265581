"""The `mtm` command line."""

from __future__ import annotations

import os
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
