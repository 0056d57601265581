"""Several server processes on one database: started together, one scheduler, taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mtm import db, instance
from mtm.jobs import holder_alive

STARTUP_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "MTM_"))}
    env.update({"MTM_DATA_DIR": str(data_dir), "MTM_SECRET_KEY": "workers-test-key",
                "MTM_DEMO_PLAYS": "0", "MTM_ENV_FILE": str(data_dir.parent / "none.env"),
                "PYTHONUNBUFFERED": "1", **extra})
    return env


class Server:
    """`mtm serve` in its own process group, its output in a file."""

    def __init__(self, data_dir: Path, *args: str, **env: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"serve-{self.port}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mtm", "serve", "--port", str(self.port), *args],
                cwd=data_dir.parent, env=_env(data_dir, **env), stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def healthz(self) -> int | None:
        try:
            return httpx.get(f"{self.base}/healthz", timeout=5).status_code
        except httpx.TransportError:
            return None

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"mtm serve exited with {self.proc.returncode}:\n{self.output()}")
            if self.healthz() == 200:
                return
            time.sleep(0.1)
        pytest.fail(f"mtm serve never answered /healthz:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


MIGRATE = "import sys; from mtm import db; db.migrate(db.connect(sys.argv[1]))"


def test_processes_migrating_one_new_database_together_all_succeed(tmp_path: Path) -> None:
    for attempt in range(5):
        path = tmp_path / f"race-{attempt}.sqlite3"
        procs = [subprocess.Popen([sys.executable, "-c", MIGRATE, str(path)],
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, errors
        with db.connect(path) as conn:
            assert db.schema_version(conn) == db.migrations()[-1][0]


def test_two_servers_started_together_on_an_empty_directory_both_come_up(
        tmp_path: Path, servers: list[Server]) -> None:
    for attempt in range(3):
        data_dir = tmp_path / f"data-{attempt}"
        pair = [Server(data_dir, MTM_SYNC_INTERVAL="0"), Server(data_dir, MTM_SYNC_INTERVAL="0")]
        servers.extend(pair)
        for server in pair:
            server.wait_healthy()
        for server in pair:
            server.stop()
            assert "Traceback" not in server.output(), server.output()


def _scheduler_holder(data_dir: Path) -> str | None:
    with db.connect(data_dir / "mtm.sqlite3") as conn:
        lease = instance.get(conn, instance.SCHEDULER)
    return lease.holder if lease else None


def _log(server: Server) -> list[dict]:
    return [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]


def test_of_two_workers_one_runs_the_scheduler_and_another_takes_over(
        tmp_path: Path, servers: list[Server]) -> None:
    data_dir = tmp_path / "data"
    server = Server(data_dir, "--workers", "2", "--production", MTM_SYNC_INTERVAL="60",
                    MTM_ALLOWED_HOSTS="127.0.0.1")
    servers.append(server)
    server.wait_healthy()
    deadline = time.monotonic() + STARTUP_SECONDS
    while len([e for e in _log(server) if "Application startup complete" in e["message"]]) < 2:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)
    # Both workers beat a few times: still one scheduler.
    time.sleep(6)
    runs = [e for e in _log(server) if "runs the scheduler" in e["message"]]
    assert len(runs) == 1, server.output()
    holder = _scheduler_holder(data_dir)
    assert holder and holder in runs[0]["message"] and holder_alive(holder)
    workers = {int(e["message"].split("[")[1].rstrip("]")) for e in _log(server)
               if e["message"].startswith("Started server process")}
    pid = int(holder.split(":")[-2])
    assert len(workers) == 2 and pid in workers

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        taken = _scheduler_holder(data_dir)
        if taken and taken != holder and holder_alive(taken):
            break
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.2)
    assert int(taken.split(":")[-2]) != pid
    # And the instance is healthy again, its scheduler included.
    deadline = time.monotonic() + 30
    while server.healthz() != 200:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.2)
    assert not [e for e in _log(server) if "database is locked" in json.dumps(e)]


PREPARE = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(message)s")
from mtm.app import prepare_database
from mtm.config import load_settings
prepare_database(load_settings(force_demo=True))
"""


def test_workers_preparing_together_generate_the_demo_history_once(tmp_path: Path) -> None:
    for attempt in range(3):
        data_dir = tmp_path / f"data-{attempt}"
        env = _env(data_dir, MTM_DEMO_PLAYS="300")
        procs = [subprocess.Popen([sys.executable, "-c", PREPARE], env=env, text=True,
                                  stderr=subprocess.PIPE) for _ in range(3)]
        logs = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 3, logs
        assert "".join(logs).count("generated a demo history") == 1, logs
        assert "".join(logs).count("applied migrations") == 1, logs


def test_preparing_never_closes_a_live_workers_job(tmp_path: Path) -> None:
    from mtm import jobs, users
    from mtm.app import prepare_database
    from mtm.config import load_settings

    settings = load_settings(env_file=None, force_demo=True, overrides={
        "MTM_DATA_DIR": str(tmp_path / "data"), "MTM_SECRET_KEY": "k", "MTM_DEMO_PLAYS": "0"})
    prepare_database(settings)
    with db.connect(settings.database_path) as conn:
        user = users.upsert_user(conn, "listener", "Listener")
        # A job of this (live) process whose heartbeat is long overdue: a busy import.
        job = jobs.create(conn, user, "import", now=1_000)
        assert jobs.start(conn, job.id, jobs.make_holder("jobs"), now=1_000)
    # Another worker starts (or restarts) meanwhile.
    prepare_database(settings)
    with db.connect(settings.database_path) as conn:
        assert jobs.get_any(conn, job.id).state == "running"


async def test_a_code_issued_by_one_workers_emulator_is_exchanged_by_another(
        tmp_path: Path) -> None:
    """In demo mode the authorize page and /callback may be answered by different workers."""
    from mtm.spotify import oauth
    from mtm.spotify.emulator import IN_PROCESS_BASE, Emulator
    from tests.conftest import Clock
    from tests.test_spotify_emulator import REDIRECT, START

    clock = Clock(START)
    path = tmp_path / "emulator.sqlite3"
    first = Emulator(client_id="mtm-demo", clock=clock, state_path=path)
    second = Emulator(client_id="mtm-demo", clock=clock, state_path=path)
    try:
        verifier = oauth.make_verifier()
        code = first.grant_code("demo", redirect_uri=REDIRECT,
                                code_challenge=oauth.challenge_for(verifier))
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                "code_verifier": verifier, "client_id": "mtm-demo"}
        async with httpx.AsyncClient(transport=second.transport(),
                                     base_url=IN_PROCESS_BASE) as http:
            exchanged = await http.post("/accounts/api/token", data=form)
            again = await http.post("/accounts/api/token", data=form)
        async with httpx.AsyncClient(transport=first.transport(),
                                     base_url=IN_PROCESS_BASE) as http:
            elsewhere = await http.post("/accounts/api/token", data=form)
    finally:
        first.close()
        second.close()
    assert exchanged.status_code == 200, exchanged.text
    # Still single use, on every worker.
    assert again.json()["error"] == elsewhere.json()["error"] == "invalid_grant"


async def test_pages_read_while_another_process_holds_the_write_lock(client, settings) -> None:
    """WAL readers never wait for a writer: a long import elsewhere blocks no page."""
    from tests.conftest import sign_in

    await sign_in(client)
    blocker = db.connect(settings.database_path)
    blocker.execute("BEGIN IMMEDIATE")
    blocker.execute("INSERT INTO instance_health (id, checked_at) VALUES (1, 1) "
                    "ON CONFLICT (id) DO UPDATE SET checked_at = 1")
    try:
        for path in ("/", "/plays", "/analytics", "/settings"):
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text[:300])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
