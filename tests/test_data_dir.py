"""A data directory that is missing and cannot be made, or is read-only: one sentence, no trace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mtm import config
from mtm.cli import main


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "MTM_"))}
    env.update(MTM_DATA_DIR=str(data_dir), MTM_DEMO_PLAYS="0", MTM_SYNC_INTERVAL="0")
    return env


def _run(args: list[str], data_dir: Path, cwd: Path, *, bound: bool = False
         ) -> subprocess.CompletedProcess[str]:
    """Run `mtm` in a subprocess; `bound`: as root without the power to ignore permissions."""
    prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if bound else []
    return subprocess.run([*prefix, sys.executable, "-m", "mtm", *args], cwd=cwd,
                          env=_env(data_dir), capture_output=True, text=True, timeout=60,
                          check=False)


def _one_sentence(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["sync"], ["demo-data"],
                                     ["import", "x.json"], ["backup", "out.tar"],
                                     ["restore", "in.tar"]])
def test_an_uncreatable_data_directory_is_said_in_a_sentence(tmp_path: Path,
                                                              command: list[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = _run(command, blocker / "data", tmp_path)
    assert done.returncode != 0
    line = _one_sentence(done.stderr)
    assert line == (f"error: The data directory {blocker / 'data'} cannot be created (Not a "
                    "directory); set MTM_DATA_DIR to a directory this user can write.")


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["sync"], ["demo-data"],
                                     ["backup", "/tmp"]])
def test_a_read_only_data_directory_is_said_in_a_sentence(tmp_path: Path,
                                                          command: list[str]) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    folder.chmod(0o555)
    # Root ignores a folder's permissions unless it gives up CAP_DAC_OVERRIDE.
    done = _run(command, folder, tmp_path, bound=os.getuid() == 0)
    folder.chmod(0o755)
    assert done.returncode != 0
    line = _one_sentence(done.stderr)
    assert line.startswith(f"error: The data directory {folder} is not writable by this user")
    assert line.endswith("set MTM_DATA_DIR to a directory this user can write.")
    assert list(folder.iterdir()) == []


def test_a_read_only_database_in_a_writable_directory_is_refused(tmp_path: Path,
                                                                 monkeypatch, capsys) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "mtm.sqlite3").write_bytes(b"")
    real_open = Path.open

    def read_only(self: Path, mode: str = "r", *args, **kwargs):
        if self.name == "mtm.sqlite3" and mode != "r" and mode != "rb":
            raise PermissionError(13, "Permission denied")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", read_only)
    monkeypatch.setenv("MTM_DATA_DIR", str(folder))
    assert main(["sync"]) == 1
    assert capsys.readouterr().err == (
        f"error: The data directory {folder} is not writable by this user (Permission denied); "
        "set MTM_DATA_DIR to a directory this user can write.\n")


def test_an_unreadable_session_key_is_said_in_a_sentence(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "secret_key").mkdir()  # not a file: reading it fails for root too
    with pytest.raises(config.DataDirError, match="The session key .* cannot be read"):
        config.load_settings(env_file=None, overrides={"MTM_DATA_DIR": str(folder)})


def test_installed_without_a_clone_the_data_directory_is_the_users(tmp_path: Path,
                                                                   monkeypatch) -> None:
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path / "site-packages")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("MTM_DATA_DIR", raising=False)
    monkeypatch.setenv("MTM_SECRET_KEY", "k")
    settings = config.load_settings(env_file=None)
    assert settings.data_dir == tmp_path / "home" / ".local" / "share" / "music-time-machine"
    assert settings.data_dir_origin == "the default of an installed copy"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert config.load_settings(env_file=None).data_dir == tmp_path / "xdg" / \
        "music-time-machine"
    # MTM_DATA_DIR wins; a relative one is taken from the current directory.
    monkeypatch.setenv("MTM_DATA_DIR", "here")
    assert config.load_settings(env_file=None).data_dir == tmp_path / "here"
