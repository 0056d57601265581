"""The demo listener: one taste and one way of listening for the emulator's live stream and
the demo history, so the generated past runs straight into what the emulator plays now."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from mtm.spotify.catalogue import BASE_ARTISTS, Catalogue, build_catalogue
from mtm.spotify.listener.history import joined_history, sessions
from mtm.spotify.listener.plays import (
    LISTED_MS,
    ODD_KINDS,
    STORED_KINDS,
    Columns,
    EmulatedPlay,
    odd_kind,
)
from mtm.spotify.listener.stream import GAP_MS, SLOT_MS, Stream
from mtm.spotify.listener.taste import Taste

__all__ = ["GAP_MS", "LISTED_MS", "ODD_KINDS", "SLOT_MS", "STORED_KINDS", "Columns",
           "EmulatedPlay", "Listener", "listener", "odd_kind"]


@dataclass(frozen=True)
class Listener:
    """The catalogue, the taste and the live stream of one seed."""

    seed: int
    catalogue: Catalogue
    taste: Taste
    stream: Stream

    def history(self, plays: int, start: int, end: int, seed: int) -> Columns:
        """`plays` plays over [start, end] (unix seconds) that end in the live stream."""
        return joined_history(self.taste, self.stream, plays, start, end, random.Random(seed))

    def sessions(self, plays: int, start: int, end: int, seed: int) -> Columns:
        """`plays` plays in sessions over [start, end], not joined to the stream."""
        return sessions(self.taste, plays, start, end, random.Random(seed))


@lru_cache(maxsize=4)
def listener(seed: int = 2026, artists: int = BASE_ARTISTS) -> Listener:
    """The listener of the emulator with this seed and catalogue size (shared: it only ever
    caches)."""
    catalogue = build_catalogue(seed, artists)
    taste = Taste(catalogue, seed)
    return Listener(seed, catalogue, taste, Stream(taste, seed))
