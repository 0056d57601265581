"""The instance's scheduler lease: one scheduler across workers, taken over when its holder dies."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mtm import db, instance
from mtm.jobs import make_holder
from mtm.scheduler import LEASE_SECONDS, Scheduler
from tests.conftest import Clock

NOW = 1_790_000_000


def dead_holder() -> str:
    """A holder name of a process on this machine that has ended."""
    proc = subprocess.run([sys.executable, "-c", "from mtm.jobs import make_holder; "
                           "print(make_holder())"], capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def test_one_holder_at_a_time_and_renewal(conn: sqlite3.Connection) -> None:
    one, two = make_holder(), make_holder("other")
    assert instance.acquire(conn, instance.SCHEDULER, one, ttl=30, now=NOW)
    assert not instance.acquire(conn, instance.SCHEDULER, two, ttl=30, now=NOW + 10)
    assert instance.acquire(conn, instance.SCHEDULER, one, ttl=30, now=NOW + 20)
    lease = instance.get(conn, instance.SCHEDULER)
    assert (lease.holder, lease.expires_at, lease.beat_at) == (one, NOW + 50, NOW + 20)
    # Not renewed: it lapses, and the other takes it.
    assert not instance.acquire(conn, instance.SCHEDULER, two, ttl=30, now=NOW + 49)
    assert instance.acquire(conn, instance.SCHEDULER, two, ttl=30, now=NOW + 50)
    assert instance.get(conn, instance.SCHEDULER).holder == two


def test_a_dead_holder_on_this_machine_is_replaced_at_once(conn: sqlite3.Connection) -> None:
    dead = dead_holder()
    assert instance.acquire(conn, instance.SCHEDULER, dead, ttl=30, now=NOW)
    assert instance.acquire(conn, instance.SCHEDULER, make_holder(), ttl=30, now=NOW + 1)


def test_a_holder_on_another_machine_is_waited_for(conn: sqlite3.Connection) -> None:
    elsewhere = "app:another-host:1234:abcdef12"
    assert instance.acquire(conn, instance.SCHEDULER, elsewhere, ttl=30, now=NOW)
    assert not instance.acquire(conn, instance.SCHEDULER, make_holder(), ttl=30, now=NOW + 29)


def test_only_the_holder_releases(conn: sqlite3.Connection) -> None:
    one = make_holder()
    instance.acquire(conn, instance.SCHEDULER, one, ttl=30, now=NOW)
    assert not instance.release(conn, instance.SCHEDULER, make_holder())
    assert instance.release(conn, instance.SCHEDULER, one)
    assert instance.get(conn, instance.SCHEDULER) is None


def test_a_nudge_is_taken_once(conn: sqlite3.Connection) -> None:
    assert not instance.take_nudge(conn, NOW)
    instance.nudge(conn, make_holder(), NOW)
    assert instance.take_nudge(conn, NOW + 1)
    assert not instance.take_nudge(conn, NOW + 2)
    instance.nudge(conn, make_holder(), NOW)
    assert not instance.take_nudge(conn, NOW + instance.NUDGE_SECONDS + 1)


class CountingScheduler(Scheduler):
    """A scheduler that counts its passes instead of syncing."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.passes = 0

    async def run_once(self, user_ids=None):
        self.passes += 1
        return []


@pytest.fixture
def pool(tmp_path: Path):
    path = tmp_path / "instance.sqlite3"
    conn = db.connect(path)
    db.migrate(conn)
    conn.close()
    pools = [db.Database(path), db.Database(path)]
    yield pools
    for p in pools:
        p.close()


async def wait_for(condition, beats: int = 200) -> None:
    for _ in range(beats):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


async def test_of_two_schedulers_only_the_holder_runs_passes(pool) -> None:
    clock = Clock(NOW)
    # Steps of the clock stay below the lease's length, as the holder renews it every beat.
    one = CountingScheduler(pool[0], None, interval=20, clock=clock, beat=0.01)
    two = CountingScheduler(pool[1], None, interval=20, clock=clock, beat=0.01)
    one.start()
    await wait_for(lambda: one.passes == 1)
    two.start()
    await asyncio.sleep(0.2)
    assert (one.holding, two.holding) == (True, False)
    assert (one.passes, two.passes) == (1, 0)
    # The interval passes: the holder runs the next pass, the other still none.
    clock.advance(21)
    await wait_for(lambda: one.passes == 2)
    assert two.passes == 0
    # The holder stops (a worker shutting down): it hands the lease on at once.
    await one.stop()
    clock.advance(1)
    await wait_for(lambda: two.passes == 1)
    assert two.holding
    await two.stop()


async def test_a_holder_that_stops_beating_is_taken_over_after_the_lease(pool) -> None:
    clock = Clock(NOW)
    one = CountingScheduler(pool[0], None, interval=3600, clock=clock, beat=0.01)
    one.start()
    await wait_for(lambda: one.holding)
    # Frozen, not stopped: its task is cancelled without giving the lease back.
    one._task.cancel()
    await asyncio.sleep(0.05)
    two = CountingScheduler(pool[1], None, interval=3600, clock=clock, beat=0.01)
    two.start()
    await asyncio.sleep(0.1)
    assert not two.holding and two.passes == 0
    clock.advance(LEASE_SECONDS)
    await wait_for(lambda: two.passes == 1)
    await two.stop()


async def test_a_nudge_in_another_worker_reaches_the_holder(pool) -> None:
    clock = Clock(NOW)
    one = CountingScheduler(pool[0], None, interval=3600, clock=clock, beat=0.01)
    two = CountingScheduler(pool[1], None, interval=3600, clock=clock, beat=0.01)
    one.start()
    await wait_for(lambda: one.passes == 1)
    two.start()
    await asyncio.sleep(0.05)
    # A sign-in answered by the worker that does not run the scheduler.
    two.nudge()
    await wait_for(lambda: one.passes == 2)
    assert two.passes == 0
    await one.stop()
    await two.stop()
