"""Settings from the environment and `.env`."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mtm import config, db
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


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    """A project directory (with pyproject.toml) the settings are found in; cwd elsewhere."""
    root = tmp_path / "clone"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.setattr(config, "REPO_ROOT", root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".env").write_text("SPOTIFY_CLIENT_ID=from-the-wrong-place\n")
    monkeypatch.chdir(elsewhere)
    for name in ("SPOTIFY_CLIENT_ID", "MTM_DATA_DIR", "MTM_ENV_FILE", "MTM_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    return root


def test_env_and_data_dir_are_found_in_the_project_wherever_it_runs(project: Path) -> None:
    (project / ".env").write_text("SPOTIFY_CLIENT_ID=abc\n")
    settings = config.load_settings()
    assert settings.spotify_client_id == "abc" and not settings.demo
    assert settings.env_file == project / ".env"
    assert settings.data_dir == project / "data"
    assert config.describe(settings) == [
        f"Settings file: {project / '.env'}",
        f"Data directory: {project / 'data'} (the default: data/ in the project directory)"]


def test_relative_data_dir_is_taken_from_the_project(project: Path) -> None:
    (project / ".env").write_text("MTM_DATA_DIR=state/mtm\n")
    settings = config.load_settings()
    assert settings.data_dir == project / "state" / "mtm"
    assert f"(MTM_DATA_DIR from {project / '.env'})" in config.describe(settings)[1]


def test_another_env_file_and_why_demo_mode(project: Path, tmp_path: Path,
                                            monkeypatch) -> None:
    settings = config.load_settings()
    assert settings.demo and settings.env_file is None
    assert config.describe(settings)[0] == \
        "Settings file: none (settings from the environment only)"
    assert config.describe(settings)[2].startswith(
        f"Demo mode: SPOTIFY_CLIENT_ID is not set in the environment, and there is no "
        f"{project / '.env'}")
    other = tmp_path / "other.env"
    other.write_text(f"MTM_DATA_DIR={tmp_path / 'd'}\n")
    monkeypatch.setenv("MTM_ENV_FILE", str(other))
    settings = config.load_settings()
    assert settings.env_file == other and settings.data_dir == tmp_path / "d"
    assert f"SPOTIFY_CLIENT_ID is not set in the environment or {other}" in \
        config.describe(settings)[2]
    monkeypatch.setenv("MTM_DATA_DIR", str(tmp_path / "e"))
    assert "(MTM_DATA_DIR from the environment)" in \
        config.describe(config.load_settings())[1]
    assert "asked for with --demo" in config.describe(config.load_settings(force_demo=True))[2]


def test_data_directory_and_database_are_private(project: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        settings = config.load_settings()
        assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
        conn = db.connect(settings.database_path)
        conn.execute("CREATE TABLE t (x)")
        conn.close()
        assert stat.S_IMODE(settings.database_path.stat().st_mode) == 0o600
        # An existing directory from an older version is tightened too.
        loose = tmp_path / "loose"
        loose.mkdir(mode=0o755)
        loose.chmod(0o755)
        (loose / "mtm.sqlite3").touch(mode=0o644)
        os.chmod(loose / "mtm.sqlite3", 0o644)
        config.load_settings(overrides={"MTM_DATA_DIR": str(loose)})
        db.connect(loose / "mtm.sqlite3").close()
        assert stat.S_IMODE(loose.stat().st_mode) == 0o700
        assert stat.S_IMODE((loose / "mtm.sqlite3").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_an_existing_data_directory_is_tightened_with_its_key(tmp_path: Path) -> None:
    folder = tmp_path / "kept"
    folder.mkdir()
    folder.chmod(0o755)
    load_settings(env_file=None, overrides={"MTM_DATA_DIR": str(folder)})
    folder.chmod(0o755)
    # Second start: the key exists already, and the directory is still made private.
    load_settings(env_file=None, overrides={"MTM_DATA_DIR": str(folder)})
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
