"""The background loop that syncs every connected user on an interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from mtm import enrich, sync
from mtm.db import Database
from mtm.jobs import make_holder
from mtm.spotify.client import SpotifyClient

log = logging.getLogger("mtm.scheduler")


class Scheduler:
    """Syncs due users one after another; one user's failure never stops the others."""

    def __init__(self, db: Database, client: SpotifyClient, *, interval: float,
                 holder: str | None = None, pacer: sync.Pacer | None = None) -> None:
        self.db = db
        self.client = client
        self.interval = interval
        self.holder = holder or make_holder()
        self.pacer = pacer or sync.Pacer()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        # The app's services, when running in the server: artist lookups left over from an
        # import (or put off by a rate limit) are restarted from here.
        self.services: Any = None

    async def run_once(self, user_ids: list[int] | None = None
                       ) -> list[tuple[int, sync.SyncRun | None]]:
        """Sync the given users (default: every due user); (user id, run or None if leased)."""
        due = user_ids if user_ids is not None else await self.db.run(
            sync.users_due, int(time.time()))
        results = []
        for user_id in due:
            try:
                run = await sync.sync_user(self.db, self.client, user_id, holder=self.holder,
                                           pacer=self.pacer)
            except Exception:
                # Even a database error for one user must not starve the rest.
                log.exception("sync of user %s failed outside the run log", user_id)
                run = None
            if run is not None:
                log.info("user %s: %s, %d new plays%s", user_id, run.outcome, run.plays_added,
                         f" ({run.error})" if run.error else "")
            results.append((user_id, run))
            if self.services is not None and run is not None and run.outcome == "ok":
                await self._resume_lookups(user_id)
        return results

    async def _resume_lookups(self, user_id: int) -> None:
        try:
            if await self.db.run(enrich.due, user_id, int(time.time())):
                await enrich.request(self.services, user_id)
        except Exception:
            log.exception("could not restart the artist lookups of user %s", user_id)

    def nudge(self) -> None:
        """Run a pass soon instead of waiting for the interval (e.g. after a sign-in)."""
        self._wake.set()

    async def run_forever(self) -> None:
        """Pass after pass until cancelled; deferrals live in the database, not in sleeps."""
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except Exception:
                log.exception("scheduler pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)

    def start(self) -> None:
        """Start the loop as a task of the running event loop."""
        if self.interval > 0 and self._task is None:
            self._task = asyncio.create_task(self.run_forever(), name="mtm-scheduler")

    async def stop(self) -> None:
        """Cancel the loop and wait for it to end."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
