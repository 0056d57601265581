"""The background loop that syncs every connected user on an interval.

Every worker of the server starts one, but only the holder of the instance's `scheduler`
lease (mtm.instance) runs passes; the others renew nothing and wait to take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from mtm import enrich, instance, sync
from mtm.db import Database, DatabaseUnavailable
from mtm.jobs import make_holder
from mtm.spotify.client import SpotifyClient

log = logging.getLogger("mtm.scheduler")
# The holder says it is alive this often; a lease not renewed for LEASE_SECONDS is free.
BEAT_SECONDS = 5
LEASE_SECONDS = 30


class Scheduler:
    """Syncs due users one after another; one user's failure never stops the others."""

    def __init__(self, db: Database, client: SpotifyClient, *, interval: float,
                 holder: str | None = None, pacer: sync.Pacer | None = None,
                 clock: Callable[[], float] = time.time, beat: float = BEAT_SECONDS) -> None:
        self.db = db
        self.client = client
        self.interval = interval
        self.holder = holder or make_holder()
        self.pacer = pacer or sync.Pacer()
        self.clock = clock
        self.beat = beat
        # Whether this process holds the instance's scheduler lease (as of its last beat).
        self.holding = False
        self._wake = asyncio.Event()
        self._nudged = False
        self._task: asyncio.Task | None = None
        self._pass: asyncio.Task | None = None
        self._next_pass = 0.0
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
                run = await sync.sync_user(self.db.patient(), self.client, user_id,
                                           holder=self.holder, pacer=self.pacer)
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
        """Run a pass soon instead of waiting for the interval (e.g. after a sign-in).

        In a worker that does not hold the lease, the nudge is passed on through the database.
        """
        self._nudged = True
        self._wake.set()

    async def run_forever(self) -> None:
        """Hold (or wait for) the scheduler lease; while holding it, run a pass when one is due.

        Deferrals live in the database, not in sleeps.
        """
        try:
            while True:
                self._wake.clear()
                await self._tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.beat)
        finally:
            if self._pass is not None:
                self._pass.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._pass

    async def _tick(self) -> None:
        now = int(self.clock())
        nudged, self._nudged = self._nudged, False
        try:
            was_holding = self.holding
            self.holding = await self.db.run(instance.acquire, instance.SCHEDULER, self.holder,
                                             ttl=LEASE_SECONDS, now=now)
            if self.holding and not was_holding:
                log.info("this process (%s) runs the scheduler", self.holder)
            if not self.holding:
                if nudged:
                    await self.db.run(instance.nudge, self.holder, now)
                return
            nudged = await self.db.run(instance.take_nudge, now) or nudged
        except DatabaseUnavailable:
            # A long write holds the lock (or the file is gone): the lease outlasts a few
            # missed beats, and /healthz reports a database that stays unusable.
            log.warning("the scheduler's lease was not renewed this beat: the database is "
                        "busy or unavailable")
            self._nudged = self._nudged or nudged
            return
        except Exception:
            log.exception("could not renew the scheduler lease")
            self._nudged = self._nudged or nudged
            return
        if self._pass is None and (nudged or now >= self._next_pass):
            self._pass = asyncio.create_task(self._one_pass(), name="mtm-scheduler-pass")
        elif nudged:
            # A pass is running; the one asked for follows it.
            self._nudged = True

    async def _one_pass(self) -> None:
        try:
            await self.run_once()
        except Exception:
            log.exception("scheduler pass failed")
        finally:
            self._next_pass = self.clock() + self.interval
            self._pass = None
            self._wake.set()

    def start(self) -> None:
        """Start the loop as a task of the running event loop."""
        if self.interval > 0 and self._task is None:
            self._task = asyncio.create_task(self.run_forever(), name="mtm-scheduler")

    async def stop(self) -> None:
        """Cancel the loop, wait for it to end, and hand the lease on at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            if self.holding:
                self.holding = False
                with contextlib.suppress(Exception):
                    await self.db.run(instance.release, instance.SCHEDULER, self.holder)
