"""Runs one real action on a data directory and stops dead at a chosen point, to be killed.

`python -m tests.fault_driver ACTION DATA_DIR MARK` (run by tests/test_faults.py): the
action runs the code the server or the CLI runs, and at the point named below this process
writes MARK and waits to be killed with SIGKILL; if it is not, it carries on and finishes.
MARK `-` runs the action through without stopping (the re-run after the restart).

  import    `mtm import FILE` (a job), inside its write transaction, the plays written
  sync      "Sync now" over HTTP (a job): the run recorded, the plays written, not committed
  restore   Settings' restore of a backup, the user's data replaced, not committed
  clear     Settings' Clear all data, the data deleted, not committed
  timezone  a time-zone change (a job), its third chunk just committed
  timezone-months  the same, its second month (of the monthly rollups) just moved
  hide      hiding the most played artist, inside its second chunk (the first committed)
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from mtm import backups, hiding, history, rezone
from mtm.config import load_settings

ACCOUNT_CHUNK = 150


def settings_for(data_dir: Path):
    """The demo-mode settings the tests and this driver share."""
    return load_settings(env_file=None, force_demo=True, overrides={
        "MTM_DATA_DIR": str(data_dir), "MTM_SECRET_KEY": "fault-secret-key",
        "MTM_DEMO_PLAYS": "0", "MTM_SYNC_INTERVAL": "0"})


def stop_here(mark: Path) -> None:
    """Say where this process is, and wait to be killed."""
    # Written aside and renamed, so the test never reads it half-written.
    aside = mark.with_name(mark.name + ".part")
    aside.write_text(str(os.getpid()))
    aside.rename(mark)
    time.sleep(30)


def after(module: object, name: str, mark: Path | None, calls: int = 1) -> None:
    """Stop once `module.name` has run `calls` times (inside its caller's transaction)."""
    if mark is None:
        return
    real = getattr(module, name)
    seen = []

    def wrapped(*args, **kwargs):
        result = real(*args, **kwargs)
        seen.append(1)
        if len(seen) == calls:
            stop_here(mark)
        return result

    setattr(module, name, wrapped)


async def sync_now(settings, mark: Path | None) -> None:
    """Sign in through the emulator and press Sync now, as a browser does."""
    import httpx

    from mtm.app import create_app
    from mtm.spotify.emulator import Emulator
    from tests.conftest import BASE_URL, Clock, csrf_from, sign_in

    clock = Clock(time.time())
    app = create_app(settings, emulator=Emulator(client_id="mtm-demo", clock=clock))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        await sign_in(client)
        token = csrf_from((await client.get("/settings")).text)
        # Spotify lists new plays a quarter of an hour later (its tokens last an hour). Armed
        # now: the sign-in's own sync has finished.
        clock.advance(900)
        after(history, "apply_incoming", mark)
        response = await client.post("/settings/sync", data={"csrf_token": token})
        assert response.status_code == 303, response.text


def main() -> int:
    """Run the action named on the command line."""
    action, data_dir = sys.argv[1], Path(sys.argv[2])
    mark = None if sys.argv[3] == "-" else Path(sys.argv[3])
    settings = settings_for(data_dir)
    if action == "import":
        from mtm import cli

        after(history, "apply_incoming", mark)
        return cli.main(["import", str(data_dir / "export" / "Streaming_History_Audio_0.json")])
    if action == "sync":
        asyncio.run(sync_now(settings, mark))
        return 0
    from mtm import db

    conn = db.connect(settings.database_path)
    user_id = conn.execute("SELECT id FROM users WHERE spotify_id = 'demo'").fetchone()[0]
    if action == "restore":
        after(backups, "_restore_rows", mark)
        backup = backups.list_backups(conn, settings.backups_dir, user_id)[-1]
        backups.restore_backup(conn, settings.backups_dir, user_id, backup.id)
    elif action == "clear":
        after(backups, "_delete_user_data", mark)
        backups.clear_with_backup(conn, settings.backups_dir, user_id)
    elif action in ("timezone", "timezone-months"):
        from mtm import jobs

        rezone.CHUNK = ACCOUNT_CHUNK
        if action == "timezone":
            after(rezone, "step", mark, calls=3)
        else:
            after(rezone, "move_month", mark, calls=2)
        database = db.Database(settings.database_path)
        job = rezone.queue(conn, user_id, "Pacific/Auckland")
        # The runner the server uses (a time-zone change needs none of its services).
        runner = jobs.JobRunner(database, {rezone.KIND: rezone.rezone_job},
                                holder=jobs.make_holder("cli"))
        asyncio.run(runner.run(job))
    elif action == "hide":
        hiding.CHUNK = ACCOUNT_CHUNK
        after(history, "settle_removed", mark, calls=2)
        # Counted with its hidden plays, so the re-run picks the same artist.
        artist = conn.execute(
            "SELECT artist_id FROM (SELECT artist_id FROM plays WHERE user_id = ? UNION ALL "
            "SELECT artist_id FROM hidden_plays WHERE user_id = ?) GROUP BY artist_id "
            "ORDER BY count(*) DESC, artist_id LIMIT 1", (user_id, user_id)).fetchone()[0]
        hiding.add(conn, user_id, hiding.RuleIn("artist", artist))
    else:
        raise SystemExit(f"unknown action {action!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
