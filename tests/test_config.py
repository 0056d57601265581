"""Settings from the environment and `.env`."""

from __future__ import annotations

import stat
from pathlib import Path

from mtm.config import load_settings


def test_demo_without_credentials_and_generated_secret(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SPOTIFY_CLIENT_ID", raising=False)
    monkeypatch.delenv("MTM_SECRET_KEY", raising=False)
    monkeypatch.setenv("MTM_DATA_DIR", str(tmp_path))
    first = load_settings(env_file=None)
    assert first.demo and first.spotify_client_id is None
    key_file = tmp_path / "secret_key"
    assert key_file.read_text() == first.secret_key and len(first.secret_key) >= 40
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # Kept across restarts, so sessions survive them.
    assert load_settings(env_file=None).secret_key == first.secret_key


def test_env_file_and_environment(tmp_path: Path, monkeypatch) -> None:
    env = tmp_path / ".env"
    env.write_text(f"SPOTIFY_CLIENT_ID=abc123\nMTM_DATA_DIR={tmp_path / 'd'}\n"
                   "MTM_SECRET_KEY=from-file\nMTM_ADMINS=alice, bob\nMTM_SYNC_INTERVAL=600\n")
    monkeypatch.delenv("SPOTIFY_CLIENT_ID", raising=False)
    monkeypatch.delenv("MTM_DATA_DIR", raising=False)
    monkeypatch.setenv("MTM_SECRET_KEY", "from-environment")
    settings = load_settings(env_file=env)
    assert not settings.demo and settings.spotify_client_id == "abc123"
    assert settings.secret_key == "from-environment"
    assert settings.admins == frozenset({"alice", "bob"})
    assert settings.sync_interval == 600
    assert settings.database_path == (tmp_path / "d" / "mtm.sqlite3").resolve()
    assert load_settings(env_file=env, force_demo=True).demo
