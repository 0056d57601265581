"""The accounts someone can sign in as on the emulator's authorize page."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mtm.spotify.catalogue import BASE62


@dataclass(frozen=True)
class EmulatedUser:
    """An emulated Spotify account."""

    id: str
    display_name: str
    country: str
    blurb: str
    listens: bool

    @property
    def account_id(self) -> str:
        """The stable id /me has carried since May 2026, recommended over `id` for linking.

        Derived from the account alone (not the emulator's seed), so it never changes for an
        account, and it differs from `id`.
        """
        digest = int.from_bytes(hashlib.sha256(f"account:{self.id}".encode()).digest(), "big")
        chars = []
        for _ in range(22):
            digest, rem = divmod(digest, 62)
            chars.append(BASE62[rem])
        return "".join(chars)


USERS: dict[str, EmulatedUser] = {
    "demo": EmulatedUser("demo", "Demo Listener", "SE", "has an endless play stream", True),
    "newcomer": EmulatedUser("newcomer", "New Listener", "SE", "has never played anything",
                             False),
}


def user(ident: str) -> EmulatedUser:
    """The emulated account with this id; an unknown one listens to nothing."""
    return USERS.get(ident, USERS["newcomer"])
