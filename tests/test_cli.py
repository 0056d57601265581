"""The `mtm` command line."""

from __future__ import annotations

import sqlite3
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


def test_sync_command_uses_the_servers_tokens(tmp_path: Path, monkeypatch, capsys) -> None:
    """A user signed in through the server is synced by `mtm sync` in another process."""
    import asyncio

    import httpx

    from mtm.app import create_app
    from mtm.config import load_settings
    from tests.conftest import BASE_URL, sign_in

    monkeypatch.setenv("MTM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MTM_SECRET_KEY", "k")
    monkeypatch.setenv("MTM_DEMO_PLAYS", "0")
    monkeypatch.setenv("MTM_SYNC_INTERVAL", "0")
    monkeypatch.delenv("SPOTIFY_CLIENT_ID", raising=False)

    async def signed_in_through_the_server() -> None:
        app = create_app(load_settings(env_file=None))
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
            await sign_in(client)
            with sqlite3.connect(tmp_path / "mtm.sqlite3") as conn:
                # The access token has run out by the time cron runs: refresh must work.
                conn.execute("UPDATE tokens SET expires_at = 0")

    asyncio.run(signed_in_through_the_server())
    capsys.readouterr()
    assert main(["sync", "--user", "demo"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("user 1: ok,"), out
    with sqlite3.connect(tmp_path / "mtm.sqlite3") as conn:
        assert conn.execute("SELECT reconnect_needed FROM users").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM top_snapshots").fetchone()[0] > 0
    assert main(["sync", "--user", "nobody"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err


def test_sync_command_reports_failure(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MTM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MTM_SECRET_KEY", "k")
    monkeypatch.delenv("SPOTIFY_CLIENT_ID", raising=False)
    from mtm import db, users

    conn = db.connect(tmp_path / "mtm.sqlite3")
    db.migrate(conn)
    user_id = users.upsert_user(conn, "ghost", "Ghost")
    # Tokens the emulator never issued: the refresh is refused as invalid_grant.
    users.save_tokens(conn, user_id, access_token="x", refresh_token="y", expires_at=0,
                      scope="", new_consent=True)
    conn.close()
    assert main(["sync"]) == 1
    out = capsys.readouterr().out
    assert "failed" in out and "reconnect" in out.lower()


def test_bad_sync_interval_is_a_clear_error(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MTM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MTM_SYNC_INTERVAL", "86400")
    assert main(["sync"]) == 2
    assert "MTM_SYNC_INTERVAL" in capsys.readouterr().err
