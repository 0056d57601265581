"""A normal (non-editable) install carries every file the app reads, and runs outside a clone."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "mtm"
STATIC = REPO / "static"
BUILD_TIMEOUT = 180


def _files(root: Path) -> set[str]:
    """Every file under `root` (not following links), relative, without Python's caches."""
    found = set()
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            path = Path(folder) / name
            if path.is_file() and not name.endswith(".pyc"):
                found.add(path.relative_to(root).as_posix())
    return found


def _hook(hook: str, source: Path, out: Path) -> Path:
    """Run one PEP 517 hook of setuptools in `source`, offline, and return what it built."""
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c",
         f"import sys; from setuptools import build_meta; print(build_meta.{hook}(sys.argv[1]))",
         str(out)],
        cwd=source, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from the sdist, as pip builds it from a release (no network)."""
    tmp = tmp_path_factory.mktemp("packaging")
    # A copy of what the build reads, so the build leaves the clone as it was.
    tree = tmp / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(REPO / "src", tree / "src", symlinks=True, ignore=ignore)
    shutil.copytree(STATIC, tree / "static", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, tree / name)
    sdist = _hook("build_sdist", tree, tmp / "sdist")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    return _hook("build_wheel", unpacked, tmp / "wheel")


def test_the_wheel_holds_every_module_template_migration_and_static_file(wheel: Path) -> None:
    package = _files(PACKAGE)
    expected = {f"mtm/{name}" for name in package} | {f"mtm/static/{name}" for name in
                                                      _files(STATIC)}
    assert any(name.startswith("mtm/macros/") for name in expected), "derived from the tree"
    assert {"mtm/static/vendor/htmx-4.0.1.min.js", "mtm/static/favicon.svg",
            "mtm/migrations/0001_initial.sql", "mtm/pages/base.html"} <= expected
    with zipfile.ZipFile(wheel) as archive:
        held = set(archive.namelist())
        missing = sorted(expected - held)
        assert not missing, f"the wheel lacks {missing}"
        # The copies are the files themselves, not links or stand-ins.
        for name in ("static/css/app.css", "static/vendor/chart-4.6.1.umd.min.js"):
            assert archive.read(f"mtm/{name}") == (STATIC / name.removeprefix("static/")
                                                   ).read_bytes()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def installed(wheel: Path, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """The wheel installed into its own folder, and an environment that imports it first."""
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-compile", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "MTM_"))}
    # The installed copy comes before the clone's editable install on sys.path.
    env.update(PYTHONPATH=str(site), HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1",
               MTM_DEMO_PLAYS="0", MTM_SYNC_INTERVAL="0")
    env.pop("XDG_DATA_HOME", None)
    yield site, env


def test_an_installed_copy_serves_pages_and_static_files_from_anywhere(
        installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    site, env = installed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mtm", "serve", "--port", str(port)],
                                cwd=elsewhere, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=5) as http:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            page = http.get("/signin")
            assert page.status_code == 200 and "Sign in with Spotify" in page.text
            for name in ("css/app.css", "js/csrf.js", "vendor/htmx-4.0.1.min.js",
                         "vendor/chart-4.6.1.umd.min.js", "favicon.svg"):
                answer = http.get(f"/static/{name}")
                assert answer.status_code == 200, name
                assert answer.content == (STATIC / name).read_bytes(), name
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    started = log.read_text()
    # Installed without a clone: the data directory is the user's, not the current directory.
    data_dir = tmp_path / "home" / ".local" / "share" / "music-time-machine"
    assert f"Data directory: {data_dir} (the default of an installed copy)" in started
    assert (data_dir / "mtm.sqlite3").is_file() and not any(elsewhere.iterdir())
    served_from = subprocess.run(
        [sys.executable, "-c", "import mtm.config as c; print(c.STATIC_DIR)"], cwd=elsewhere,
        env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(served_from) == site / "mtm" / "static"
