"""A local emulator of Spotify's accounts service and Web API, for demo mode and tests.

Where things are:

- core.py: `Emulator`, its switches (`fail`, `timeout`, `expire_*`) and what it has played;
- accounts.py: the authorize page, codes, the token endpoint, rotating refresh tokens;
- webapi.py: /me, recently played, top items, one artist or track, removed endpoints (403);
- playlists.py: create, read, add items, rename, delete (DELETE /me/library);
- objects.py: the JSON objects, as Spotify writes them for a development-mode app;
- listening.py: whose stream, late plays and top items (the model is mtm.spotify.listener);
- state.py: the SQLite state file (tokens, playlists); faults.py: switches, log, transport;
- pages.py: the HTML pages (authorize, and /open/{kind}/{id} standing in for
  open.spotify.com); images.py: generated album and artist images (/image/{id}, as
  i.scdn.co's); users.py: the accounts; wire.py: errors and formats.
"""

from mtm.spotify.emulator.core import IN_PROCESS_BASE, Emulator
from mtm.spotify.emulator.faults import EmulatorTransport
from mtm.spotify.emulator.users import USERS, EmulatedUser
from mtm.spotify.emulator.wire import played_at
from mtm.spotify.listener import EmulatedPlay

# The name tests have imported it by.
_played_at = played_at

__all__ = ["IN_PROCESS_BASE", "USERS", "EmulatedPlay", "EmulatedUser", "Emulator",
           "EmulatorTransport", "_played_at", "played_at"]
