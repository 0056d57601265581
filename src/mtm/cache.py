"""The read cache shared by the pages that compute over a whole history (analytics, artists).

Each key holds the user's history version, which every write bumps, so an entry is never
served after the figures it holds have changed; old versions simply age out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class Cache:
    """A small LRU of computed pages; keys carry the history version, so never stale.

    `Cache(size=0)` keeps nothing: every request computes (the bench measures that).
    """

    # A household of five, each with a dozen analytics periods, previews and entity pages,
    # must fit: at 64 their entries pushed each other out under load.
    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        """A cached result, freshened in the LRU order."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: Hashable, value: Any) -> None:
        """Keep a result, dropping the least recently used beyond the size."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
