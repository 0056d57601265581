"""A listening history of years in the listener's own rhythm, ending in the live stream."""

from __future__ import annotations

import math
import random
from itertools import accumulate

from mtm.spotify.listener.plays import STORED_KINDS, Columns
from mtm.spotify.listener.sessions import PAUSE_MS, Chooser, choose_style, play_session
from mtm.spotify.listener.stream import SLOT_MS, Stream
from mtm.spotify.listener.taste import DAY, YEAR, Taste, pick

# The history's last hours are the live stream itself, so the first sync's plays (the last
# 50 the stream lists, about four hours) are plays the history already holds, and the two
# never overlap. Longer than the stream's 50 plays, whenever the first sync comes.
TAIL_MS = 6 * 3_600_000
# About 20 hours of music a day on average is as much as a history may ask for: the
# heaviest real listeners reach 2,000,000 plays in the 20 years since 2006.
MAX_DAILY_PLAYS = 300
# Relative chance that a session starts in each UTC hour (the demo account's zone is UTC):
# weekdays have a commute bump and an evening peak, weekends start late and run late.
_WEEKDAY_HOURS = (0.15, 0.06, 0.03, 0.02, 0.02, 0.05, 0.3, 0.9, 1.1, 0.8, 0.6, 0.6,
                  0.8, 0.7, 0.6, 0.6, 0.8, 1.1, 1.4, 1.6, 1.8, 1.7, 1.2, 0.6)
_WEEKEND_HOURS = (0.5, 0.3, 0.15, 0.06, 0.03, 0.02, 0.05, 0.15, 0.35, 0.7, 1.0, 1.2,
                  1.2, 1.1, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.6, 1.3, 0.9)
# Monday first: a little more on Friday and over the weekend.
_WEEKDAY_VOLUME = (0.95, 0.95, 1.0, 1.0, 1.1, 1.25, 1.15)


def joined_history(taste: Taste, stream: Stream, plays: int, start: int, end: int,
                   rng: random.Random) -> Columns:
    """`plays` plays the app would keep, over [start, end] (unix seconds), oldest first.

    The last hours are the stream's own plays up to `end`; before them come sessions drawn
    with `rng`, so another seed gives another past leading into the same present.
    """
    end_ms = end * 1000
    tail_from = max((end_ms - TAIL_MS) // SLOT_MS * SLOT_MS, start * 1000)
    tail = [p for p in stream.between(tail_from, end_ms + 1) if p.kind in STORED_KINDS]
    tail = tail[max(0, len(tail) - plays):]
    out = Columns()
    if plays > len(tail):
        # The stream's plays begin after the hour they belong to has begun.
        sessions(taste, plays - len(tail), start, tail_from // 1000 - 1, rng, out)
    for play in tail:
        out.append(play.played_at_ms, play.track.index, play.ms_played, play.skipped,
                   play.context, play.kind)
    return out


def sessions(taste: Taste, plays: int, start: int, end: int, rng: random.Random,
             out: Columns | None = None) -> Columns:
    """`plays` plays the app would keep in sessions over [start, end] (unix seconds)."""
    if plays > MAX_DAILY_PLAYS * max(end - start + 1, 0) / DAY:
        raise ValueError("more plays than fit in the period")
    out = out if out is not None else Columns()
    first = len(out)
    if not plays:
        return out
    weekday_cum = list(accumulate(_WEEKDAY_HOURS))
    weekend_cum = list(accumulate(_WEEKEND_HOURS))
    cursor = start * 1000  # when the player is next free
    for day, count in sorted(_day_counts(plays, start, end, rng).items()):
        prefs = taste.at(day * DAY + DAY / 2)
        lo, hi = max(day * DAY, start), min((day + 1) * DAY, end + 1)
        hours = weekend_cum if (day + 3) % 7 >= 5 else weekday_cum
        # Light days are one or two sessions; heavy days are fewer, longer sessions.
        length = min(max(count / 4, 6), 25) * rng.lognormvariate(0, 0.25)
        size = max(1, min(count, round(count / length)))
        cuts = [0, *sorted(rng.sample(range(1, count), size - 1)), count]
        for s, moment in enumerate(_session_starts(size, day, lo, hi, hours, rng)):
            # A session that would overlap the last one starts right after it instead.
            cursor = max(cursor + rng.randrange(5_000, 120_000), moment * 1000)
            chooser = Chooser(taste, prefs, rng, choose_style(rng))
            cursor = play_session(chooser, cursor, out, seed=taste.seed,
                                  count=cuts[s + 1] - cuts[s])
    _fit(out, first, start * 1000, end * 1000)
    return out


def _session_starts(count: int, day: int, lo: int, hi: int, hours: list[float],
                    rng: random.Random) -> list[int]:
    """When the day's sessions begin (unix seconds), by the hour's chance, in order."""
    starts = []
    for _ in range(count):
        for _attempt in range(6):
            moment = day * DAY + pick(hours, rng) * 3600 + rng.randrange(3600)
            if lo <= moment < hi:
                break
        else:
            moment = rng.randrange(lo, hi)
        starts.append(moment)
    return sorted(starts)


def _day_counts(plays: int, start: int, end: int, rng: random.Random) -> dict[int, int]:
    """How many plays fall on each UTC day: weekly rhythm, slow trends, days off."""
    first_day, last_day = start // DAY, end // DAY
    days = list(range(first_day, last_day + 1))
    span_years = max((end - start) / YEAR, 1e-9)
    # Slow swings in how much the listener listens (busy months, quiet months).
    waves = [(rng.uniform(0.4, 3.0) * YEAR, rng.uniform(0, 2 * math.pi), rng.uniform(0.1, 0.3))
             for _ in range(3)]
    off = {d for d in days if rng.random() < 0.07}
    for _ in range(round(span_years * 1.5)):
        # Holidays and busy spells: a run of days without music.
        first = rng.choice(days)
        off.update(range(first, first + rng.randint(3, 10)))
    if all(d in off for d in days):
        off = set()
    weights, cover = [], []
    for d in days:
        covered = (min((d + 1) * DAY, end + 1) - max(d * DAY, start)) / DAY
        cover.append(covered)
        if d in off:
            weights.append(0.0)
            continue
        mid = d * DAY + DAY / 2
        trend = sum(a * math.sin(2 * math.pi * mid / period + phase)
                    for period, phase, a in waves)
        weights.append(covered * _WEEKDAY_VOLUME[(d + 3) % 7] * math.exp(trend)
                       * rng.lognormvariate(0, 0.45))
    return _spread(plays, weights, cover, rng, days)


def _spread(plays: int, weights: list[float], cover: list[float], rng: random.Random,
            days: list[int]) -> dict[int, int]:
    """Share `plays` out over the days by weight, no day holding more than it can."""
    total = sum(weights)
    active_cover = sum(c for c, w in zip(cover, weights, strict=True) if w > 0)
    mean = plays / active_cover
    # A day holds at most about 18 hours of music, unless the volume asked for needs more.
    cap = max(math.ceil(1.25 * mean) + 1, min(int(3 * mean) + 1, 280))
    caps = [max(1, math.ceil(cap * c)) if w > 0 else 0
            for c, w in zip(cover, weights, strict=True)]
    counts = [min(int(plays * w / total + rng.random()), c)
              for w, c in zip(weights, caps, strict=True)]
    cum = list(accumulate(weights))
    missing = plays - sum(counts)
    misses = 0
    while missing > 0 and misses < 10_000:
        i = pick(cum, rng)
        if counts[i] < caps[i]:
            counts[i] += 1
            missing -= 1
        else:
            misses += 1
    for i in range(len(days)):
        # Only reached when nearly every day is full: fill the rest in order.
        if missing <= 0:
            break
        more = min(caps[i] - counts[i], missing)
        counts[i] += more
        missing -= more
    while missing < 0:
        i = pick(cum, rng)
        if counts[i]:
            counts[i] -= 1
            missing += 1
    return {d: n for d, n in zip(days, counts, strict=True) if n}


def _fit(out: Columns, first: int, start_ms: int, end_ms: int) -> None:
    """Pull the last sessions back inside the period; no play may begin before the last ended."""
    ends, lengths = out.ended_ms, out.ms_played
    if len(ends) == first or ends[-1] <= end_ms:
        return
    ends[-1] = end_ms
    for i in range(len(ends) - 2, first - 1, -1):
        # Keep the room the next play needs; stop where there was room already.
        limit = ends[i + 1] - lengths[i + 1] - PAUSE_MS[0]
        if ends[i] <= limit:
            break
        ends[i] = limit
    if ends[first] - lengths[first] < start_ms:
        raise ValueError("more music than fits in the period")
