"""A local emulator of Spotify's accounts service and Web API, for demo mode and tests."""

from __future__ import annotations

import base64
import bisect
import html
import itertools
import json
import random
import re
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mtm import db as database
from mtm.spotify import oauth
from mtm.spotify.catalogue import Album, Artist, Catalogue, Track, build_catalogue, spotify_id

ACCESS_TOKEN_SECONDS = 3600
CODE_SECONDS = 600
# Spotify ends a consent six months after it was given, whatever the refreshes in between.
CONSENT_SECONDS = 183 * 86400
RECENT_LIMIT = 50
# Recently played lists streams of 30 s or more only.
LISTED_MS = 30_000
# Shares of the stream that recently played shows as something other than a catalogue track.
ODD_KINDS = (("local", 0.015), ("episode", 0.01), ("unavailable", 0.005))
ADD_ITEMS_LIMIT = 100
LIBRARY_LIMIT = 40
TOP_TOTAL = 100
SLOT_MS = 3_600_000
ROTATION_MS = 28 * 86_400_000
# How far back recently-played looks for 50 plays before giving up (never reached for "demo").
MAX_LOOKBACK_SLOTS = 24 * 60
_SLOT_CACHE_SIZE = 4096
# Tokens that can no longer be used are kept this long, then dropped so the state stays small.
PRUNE_AFTER_SECONDS = 86400

STATE_VERSION = 1
# The state shared by every emulator on one file: tokens and playlists. Codes, fault switches
# and the request log stay in memory, since each belongs to one process.
_STATE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS access_tokens (token TEXT PRIMARY KEY, user TEXT NOT NULL, "
    "scope TEXT NOT NULL, expires_at REAL NOT NULL)",
    # used_at is NULL until the token is exchanged; expired is set by expire_consent().
    "CREATE TABLE IF NOT EXISTS refresh_tokens (token TEXT PRIMARY KEY, user TEXT NOT NULL, "
    "scope TEXT NOT NULL, consented_at REAL NOT NULL, used_at REAL, "
    "expired INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS playlists (id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, "
    "owner TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, "
    "public INTEGER NOT NULL, followed INTEGER NOT NULL, version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS playlist_items (playlist_id TEXT NOT NULL "
    "REFERENCES playlists (id), position INTEGER NOT NULL, uri TEXT NOT NULL, "
    "added_at_ms INTEGER NOT NULL, PRIMARY KEY (playlist_id, position)) WITHOUT ROWID",
)

IN_PROCESS_BASE = "http://emulator.invalid"
_BASE62_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_TRACK_URI = re.compile(r"^spotify:track:([0-9A-Za-z]{22})$")
_LIBRARY_URI = re.compile(
    r"^spotify:(track|album|episode|show|audiobook|user|playlist):([0-9A-Za-z]{1,64})$")

KNOWN_SCOPES = frozenset({
    "ugc-image-upload", "user-read-playback-state", "user-modify-playback-state",
    "user-read-currently-playing", "app-remote-control", "streaming", "playlist-read-private",
    "playlist-read-collaborative", "playlist-modify-private", "playlist-modify-public",
    "user-follow-modify", "user-follow-read", "user-read-playback-position", "user-top-read",
    "user-read-recently-played", "user-library-modify", "user-library-read",
    "user-read-email", "user-read-private", "user-personalized",
})
SCOPE_TEXT = {
    "user-read-recently-played": "See the tracks you played recently",
    "user-top-read": "See your top artists and tracks",
    "playlist-modify-private": "Create and change your private playlists",
    "playlist-modify-public": "Create and change your public playlists",
    "playlist-read-private": "See your private playlists",
    "user-read-private": "See your profile: name, country and subscription",
    "user-read-email": "See your email address",
}

# Chance of listening in each local hour (0-23): commute, a quieter working day, long evenings.
_WEEKDAY_CHANCE = (0.06, 0.03, 0.02, 0.01, 0.01, 0.02, 0.10, 0.40, 0.45, 0.25, 0.20, 0.22,
                   0.30, 0.22, 0.20, 0.25, 0.35, 0.55, 0.60, 0.70, 0.75, 0.70, 0.50, 0.20)
_WEEKEND_CHANCE = (0.15, 0.10, 0.05, 0.02, 0.01, 0.01, 0.02, 0.05, 0.12, 0.25, 0.40, 0.45,
                   0.40, 0.40, 0.45, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.65, 0.55, 0.35)


@dataclass(frozen=True)
class EmulatedUser:
    """An account someone can sign in as on the emulator's authorize page."""

    id: str
    display_name: str
    country: str
    blurb: str
    listens: bool


USERS: dict[str, EmulatedUser] = {
    "demo": EmulatedUser("demo", "Demo Listener", "SE", "has an endless play stream", True),
    "newcomer": EmulatedUser("newcomer", "New Listener", "SE", "has never played anything",
                             False),
}


@dataclass(frozen=True)
class EmulatedPlay:
    """One play of the demo stream; `played_at_ms` is when it ended, like Spotify's played_at.

    `kind` is what recently played shows for it: a catalogue "track", a "local" file (no
    ids), an "episode", or "unavailable" (Spotify sends `track: null`).
    """

    played_at_ms: int
    track: Track
    ms_played: int
    skipped: bool
    context: tuple[str, str] | None
    kind: str = "track"

    @property
    def listed(self) -> bool:
        """Recently played leaves out short skips."""
        return self.ms_played >= LISTED_MS

    @property
    def stored(self) -> bool:
        """A listed play the app keeps: music, local files included."""
        return self.listed and self.kind in ("track", "local")


@dataclass
class _Fault:
    prefix: str
    kind: str
    status: int
    remaining: int
    retry_after: int | None


@dataclass
class _Grant:
    user: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str
    expires_at: float


@dataclass
class _Access:
    user: str
    scope: frozenset[str]
    expires_at: float


@dataclass
class _Consent:
    user: str
    scope: str
    consented_at: float


@dataclass(frozen=True)
class _Playlist:
    id: str
    owner: str
    name: str
    description: str
    public: bool
    followed: bool
    version: int
    total: int


class _ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class _AccountsError(Exception):
    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _route_path(scope: Scope) -> str:
    """The request path as seen from where the emulator is mounted."""
    path = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


class _FaultMiddleware:
    """Records every request and answers with an injected failure when one is armed."""

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        self.emulator._record(scope["method"], path)
        fault = self.emulator._take_fault(path, "status")
        if fault is None:
            await self.app(scope, receive, send)
            return
        headers = {}
        if fault.status == 429:
            headers["Retry-After"] = str(fault.retry_after if fault.retry_after is not None
                                         else 60)
        if path.startswith("/accounts"):
            body: dict[str, Any] = {"error": "server_error" if fault.status >= 500 else
                                    "temporarily_unavailable",
                                    "error_description": "Emulated failure"}
        else:
            body = {"error": {"status": fault.status, "message": _reason(fault.status)}}
        await JSONResponse(body, status_code=fault.status, headers=headers)(scope, receive, send)


class EmulatorTransport(httpx.AsyncBaseTransport):
    """An in-process transport to the emulator that also applies its timeout switch."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._asgi = httpx.ASGITransport(app=emulator.app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Raise ReadTimeout when a timeout is armed for this path, else ask the emulator."""
        path = request.url.path
        if self._emulator._take_fault(path, "timeout") is not None:
            self._emulator._record(request.method, path)
            raise httpx.ReadTimeout("emulated timeout", request=request)
        return await self._asgi.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the wrapped ASGI transport."""
        await self._asgi.aclose()


class Emulator:
    """Spotify's accounts service and Web API, emulated in process with a generated catalogue."""

    accounts_url = f"{IN_PROCESS_BASE}/accounts"
    api_url = f"{IN_PROCESS_BASE}/v1"

    def __init__(self, *, seed: int = 2026, clock: Callable[[], float] = time.time,
                 client_id: str = "mtm-demo", state_path: str | Path | None = None) -> None:
        self.seed = seed
        self.clock = clock
        self.client_id = client_id
        self.state_path = Path(state_path) if state_path is not None else None
        self.catalogue: Catalogue = build_catalogue(seed)
        self.omit_artist_details = False
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._codes: dict[str, _Grant] = {}
        self._late: dict[str, list[tuple[EmulatedPlay, int]]] = {}
        # One connection, used under this lock: without a file it is the only copy of the state.
        # Reentrant so helpers can nest; no block under it awaits, so coroutines never interleave.
        self._db_lock = threading.RLock()
        self._db = self._open_state()
        self._slot_cache: OrderedDict[int, tuple[EmulatedPlay, ...]] = OrderedDict()
        self._rotations: dict[int, tuple[int, ...]] = {}
        try:
            self._tz: tzinfo = ZoneInfo("Europe/Stockholm")
        except ZoneInfoNotFoundError:  # pragma: no cover - only without any time zone data
            self._tz = UTC
        self._prepare_taste()
        self.app = Starlette(
            routes=self._routes(),
            middleware=[Middleware(_FaultMiddleware, emulator=self)],
            exception_handlers={_ApiError: self._api_error, _AccountsError: self._accounts_error,
                                HTTPException: self._http_error},
        )

    # Switches and helpers for tests and the demo

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport reaching this emulator in process (never the network)."""
        return EmulatorTransport(self)

    def browser_routes(self) -> list[BaseRoute]:
        """The GET-only routes a browser needs (authorize page and its decision)."""
        return [
            Route("/accounts/authorize", self._authorize, methods=["GET"],
                  name="emulator_authorize"),
            Route("/accounts/authorize/decide", self._decide, methods=["GET"],
                  name="emulator_decide"),
        ]

    def fail(self, path_prefix: str, status: int, *, times: int = 1,
             retry_after: int | None = None) -> None:
        """Answer the next `times` requests under `path_prefix` with `status`."""
        with self._lock:
            self._faults.append(_Fault(path_prefix, "status", status, times, retry_after))

    def timeout(self, path_prefix: str, *, times: int = 1) -> None:
        """Make the transport raise httpx.ReadTimeout for the next `times` matching requests."""
        with self._lock:
            self._faults.append(_Fault(path_prefix, "timeout", 0, times, None))

    def expire_consent(self) -> None:
        """Make every refresh token issued so far answer invalid_grant."""
        with self._write() as db:
            db.execute("UPDATE refresh_tokens SET expired = 1")

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far answer 401, as if an hour had passed."""
        with self._write() as db:
            db.execute("UPDATE access_tokens SET expires_at = MIN(expires_at, ?)",
                       (self.clock(),))

    @property
    def playlists(self) -> dict[str, dict[str, Any]]:
        """A snapshot of every playlist by id, oldest first, with its items in order."""
        with self._read() as db:
            rows = db.execute("SELECT * FROM playlists ORDER BY seq").fetchall()
            entries = db.execute("SELECT playlist_id, uri, added_at_ms FROM playlist_items "
                                 "ORDER BY playlist_id, position").fetchall()
        snapshot = {row["id"]: {
            "name": row["name"], "description": row["description"],
            "public": bool(row["public"]), "owner": row["owner"], "items": [], "added_at": [],
            "followed": bool(row["followed"]), "version": row["version"],
        } for row in rows}
        for playlist_id, uri, added_at_ms in entries:
            snapshot[playlist_id]["items"].append(uri)
            snapshot[playlist_id]["added_at"].append(added_at_ms)
        return snapshot

    def close(self) -> None:
        """Close the state database; the emulator cannot answer requests afterwards."""
        with self._db_lock:
            self._db.close()

    def reset_faults(self) -> None:
        """Disarm every failure and timeout switch."""
        with self._lock:
            self._faults.clear()

    def grant_code(self, user: str = "demo", *, redirect_uri: str, code_challenge: str,
                   scope: str = "") -> str:
        """Issue an authorization code directly, as if `user` had pressed Agree."""
        if user not in USERS:
            raise ValueError(f"unknown emulated user {user!r}")
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _Grant(user, self.client_id, redirect_uri, code_challenge, scope,
                                       self.clock() + CODE_SECONDS)
        return code

    def play_history(self, user: str, start_ms: int, end_ms: int) -> list[EmulatedPlay]:
        """Every play of `user` ending in [start_ms, end_ms), oldest first."""
        if not USERS.get(user, USERS["newcomer"]).listens or end_ms <= start_ms:
            return []
        plays: list[EmulatedPlay] = []
        for slot in range(start_ms // SLOT_MS, (end_ms - 1) // SLOT_MS + 1):
            plays.extend(p for p in self._slot_plays(slot)
                         if start_ms <= p.played_at_ms < end_ms)
        plays.extend(p for p, _ in self._late_plays(user)
                     if start_ms <= p.played_at_ms < end_ms)
        return sorted(plays, key=lambda p: p.played_at_ms)

    def recent_plays(self, user: str, now_ms: int | None = None) -> list[EmulatedPlay]:
        """The last (at most 50) plays ended at or before `now_ms`, newest first."""
        if now_ms is None:
            now_ms = int(self.clock() * 1000)
        if not USERS.get(user, USERS["newcomer"]).listens:
            return []
        # Late plays Spotify knows of by now join the list in their place in time.
        late = sorted((p for p, shown in self._late_plays(user) if shown <= now_ms),
                      key=lambda p: -p.played_at_ms)
        window: list[EmulatedPlay] = []
        slot = now_ms // SLOT_MS
        for _ in range(MAX_LOOKBACK_SLOTS):
            for play in reversed(self._slot_plays(slot)):
                while late and late[0].played_at_ms > play.played_at_ms:
                    window.append(late.pop(0))
                if play.played_at_ms <= now_ms and play.listed:
                    window.append(play)
                if len(window) >= RECENT_LIMIT:
                    return window[:RECENT_LIMIT]
            slot -= 1
        return (window + late)[:RECENT_LIMIT]

    def deliver_late(self, user: str = "demo", *, ended_ms_ago: int = 20 * 60_000,
                     index: int = 0) -> EmulatedPlay:
        """Make a play that ended `ended_ms_ago` ago show up only now, as real late plays do
        (a device that was offline): older than plays recently played returned before."""
        now_ms = int(self.clock() * 1000)
        track = self.catalogue.tracks[index]
        play = EmulatedPlay(now_ms - ended_ms_ago, track, track.duration_ms, False, None)
        with self._lock:
            self._late.setdefault(user, []).append((play, now_ms))
        return play

    def _late_plays(self, user: str) -> list[tuple[EmulatedPlay, int]]:
        with self._lock:
            return list(self._late.get(user, ()))

    def _record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))
            # Demo mode runs for months: keep the log from growing without bound.
            if len(self.requests) > 20_000:
                del self.requests[:10_000]

    def _take_fault(self, path: str, kind: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.remaining > 0 and path.startswith(fault.prefix):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # Durable state

    def _open_state(self) -> sqlite3.Connection:
        """Open (creating when new) the state database, or an in-memory one without a path."""
        conn = database.connect(self.state_path if self.state_path is not None else ":memory:")
        try:
            with database.transaction(conn):
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, STATE_VERSION):
                    raise ValueError(f"{self.state_path} holds emulator state version "
                                     f"{version}; this emulator reads version {STATE_VERSION}")
                for statement in _STATE_SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {STATE_VERSION:d}")
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('seed', ?)",
                             (str(self.seed),))
                stored = conn.execute("SELECT value FROM meta WHERE key = 'seed'").fetchone()[0]
                # Playlists name tracks of one catalogue, and the seed decides the catalogue.
                if stored != str(self.seed):
                    raise ValueError(f"{self.state_path} belongs to an emulator with seed "
                                     f"{stored}, not {self.seed}")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The state database with one consistent snapshot for the reads of a request."""
        with self._db_lock:
            if self._db.in_transaction:
                yield self._db
                return
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction, locked from its start so read-modify-write is atomic."""
        with self._db_lock, database.transaction(self._db) as db:
            yield db

    # The demo listener's taste and play stream

    def _prepare_taste(self) -> None:
        cat = self.catalogue
        rng = random.Random(f"{self.seed}:taste")
        affinity = [rng.random() ** 3 * (0.5 + a.popularity / 100) for a in cat.artists]
        scored = sorted(cat.tracks,
                        key=lambda t: (-affinity[t.artists[0]] * (0.3 + rng.random()), t.index))
        self._favourites = tuple(t.index for t in scored[:600])
        self._fav_weight = [1 / (rank + 8) ** 1.05 for rank in range(len(self._favourites))]
        total = sum(self._fav_weight)
        self._fav_weight = [w / total for w in self._fav_weight]
        self._fav_cum = list(itertools.accumulate(self._fav_weight))
        discovery = [(cat.artists[t.artists[0]].popularity / 100) ** 2 + 0.02 for t in cat.tracks]
        self._disc_cum = list(itertools.accumulate(discovery))
        self._album_tracks: dict[int, list[int]] = defaultdict(list)
        self._track_number: dict[int, int] = {}
        for track in cat.tracks:
            self._track_number[track.index] = len(self._album_tracks[track.album]) + 1
            self._album_tracks[track.album].append(track.index)
        self._context_playlists = tuple(spotify_id("context-playlist", i, self.seed)
                                        for i in range(6))

    def _weighted(self, cum: list[float], rng: random.Random) -> int:
        return min(bisect.bisect_left(cum, rng.random() * cum[-1]), len(cum) - 1)

    def _rotation(self, period: int) -> tuple[int, ...]:
        """The ~50 tracks in heavy rotation during one four-week period."""
        cached = self._rotations.get(period)
        if cached is None:
            rng = random.Random(f"{self.seed}:rotation:{period}")
            picks = {self._weighted(self._disc_cum, rng) for _ in range(40)}
            # Old favourites come back now and then: the material for "forgotten gems".
            picks.update(self._favourites[rng.randrange(100, 600)] for _ in range(10))
            cached = self._rotations[period] = tuple(sorted(picks))
        return cached

    def _pick(self, rng: random.Random, period: int) -> int:
        roll = rng.random()
        if roll < 0.5:
            return self._favourites[self._weighted(self._fav_cum, rng)]
        if roll < 0.85:
            rotation = self._rotation(period)
            return rotation[rng.randrange(len(rotation))]
        return self._weighted(self._disc_cum, rng)

    def _slot_plays(self, slot: int) -> tuple[EmulatedPlay, ...]:
        """The plays ending within one UTC hour; pure function of seed and slot."""
        cached = self._slot_cache.get(slot)
        if cached is not None:
            return cached
        rng = random.Random(f"{self.seed}:slot:{slot}")
        start = slot * SLOT_MS
        local = datetime.fromtimestamp(slot * 3600, self._tz)
        chances = _WEEKEND_CHANCE if local.weekday() >= 5 else _WEEKDAY_CHANCE
        plays: list[EmulatedPlay] = []
        if rng.random() < chances[local.hour]:
            # Half the sessions pick up right at the hour, which stitches long evenings together.
            at = start + rng.randrange(0, 120_000 if rng.random() < 0.5 else 1_800_000)
            stop = start + SLOT_MS
            if rng.random() < 0.4:
                stop = min(stop, at + rng.randrange(10, 45) * 60_000)
            period = start // ROTATION_MS
            # Some devices report whole seconds only; drawn apart so the stream stays the same.
            whole_seconds = random.Random(f"{self.seed}:whole:{slot}").random() < 0.1
            mode = rng.random()
            queue: list[int] = []
            context: tuple[str, str] | None = None
            if mode < 0.25:
                album = self.catalogue.tracks[self._pick(rng, period)].album
                queue = list(self._album_tracks[album])
                context = ("album", self.catalogue.albums[album].spotify_id)
            elif mode < 0.7:
                context = ("playlist", rng.choice(self._context_playlists))
            while True:
                if context and context[0] == "album":
                    if not queue:
                        break
                    index = queue.pop(0)
                else:
                    index = self._pick(rng, period)
                track = self.catalogue.tracks[index]
                skipped = rng.random() < (0.04 if queue else 0.12)
                played = (int(track.duration_ms * rng.uniform(0.05, 0.6)) if skipped
                          else track.duration_ms)
                if at + played > stop:
                    break
                at += played
                if whole_seconds:
                    at = -(-at // 1000) * 1000
                plays.append(EmulatedPlay(at, track, played, skipped, context,
                                          self._odd_kind(at)))
        result = tuple(plays)
        self._slot_cache[slot] = result
        if len(self._slot_cache) > _SLOT_CACHE_SIZE:
            self._slot_cache.popitem(last=False)
        return result

    def _odd_kind(self, at_ms: int) -> str:
        """What recently played makes of a play: mostly a track; a few are something else.

        Drawn apart from the stream, so the stream's plays stay what they always were.
        """
        roll = random.Random(f"{self.seed}:kind:{at_ms}").random()
        for kind, share in ODD_KINDS:
            if roll < share:
                return kind
            roll -= share
        return "track"

    def _top_scores(self, time_range: str, now_ms: int) -> dict[int, float]:
        """Expected share of plays per track over `time_range`, from the stream's own mix."""
        scores: dict[int, float] = defaultdict(float)
        for index, weight in zip(self._favourites, self._fav_weight, strict=True):
            scores[index] += 0.5 * weight
        # Rotations average out over years, so long_term is the favourites alone.
        periods = {"short_term": 1, "medium_term": 6}.get(time_range, 0)
        current = now_ms // ROTATION_MS
        for back in range(periods):
            rotation = self._rotation(current - back)
            for index in rotation:
                scores[index] += 0.35 / len(rotation) / periods
        return scores

    # Routes

    def _routes(self) -> list[BaseRoute]:
        gone = ["GET", "POST", "PUT", "DELETE"]
        return [
            *self.browser_routes(),
            Route("/accounts/api/token", self._token, methods=["POST"]),
            Route("/v1/me", self._me, methods=["GET"]),
            Route("/v1/me/player/recently-played", self._recently_played, methods=["GET"]),
            Route("/v1/me/top/{kind}", self._top, methods=["GET"]),
            Route("/v1/me/playlists", self._my_playlists, methods=["GET"]),
            Route("/v1/me/playlists", self._create_playlist, methods=["POST"]),
            Route("/v1/artists", self._gone, methods=gone),
            Route("/v1/artists/{artist_id}", self._artist, methods=["GET"]),
            Route("/v1/tracks", self._gone, methods=gone),
            Route("/v1/tracks/{track_id}", self._track, methods=["GET"]),
            Route("/v1/users/{user_id}", self._gone, methods=gone),
            Route("/v1/users/{user_id}/playlists", self._gone, methods=gone),
            Route("/v1/playlists/{playlist_id}/tracks", self._gone, methods=gone),
            Route("/v1/playlists/{playlist_id}", self._get_playlist, methods=["GET"]),
            Route("/v1/playlists/{playlist_id}", self._change_playlist, methods=["PUT"]),
            Route("/v1/playlists/{playlist_id}/items", self._playlist_items, methods=["GET"]),
            Route("/v1/playlists/{playlist_id}/items", self._add_items, methods=["POST"]),
            # Removed for development-mode apps in February 2026: use DELETE /me/library.
            Route("/v1/playlists/{playlist_id}/followers", self._gone, methods=gone),
            Route("/v1/me/library", self._remove_from_library, methods=["DELETE"]),
        ]

    async def _api_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _ApiError)
        return JSONResponse({"error": {"status": exc.status, "message": exc.message}},
                            status_code=exc.status, headers=exc.headers)

    async def _accounts_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _AccountsError)
        return JSONResponse({"error": exc.error, "error_description": exc.description},
                            status_code=exc.status)

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        path = _route_path(request.scope)
        message = "Service not found" if exc.status_code == 404 else _reason(exc.status_code)
        if path.startswith("/accounts/api"):
            return JSONResponse({"error": "invalid_request", "error_description": message},
                                status_code=exc.status_code, headers=exc.headers)
        if path.startswith("/accounts"):
            return _page(_reason(exc.status_code), f"<p>{html.escape(message)}</p>",
                         exc.status_code)
        return JSONResponse({"error": {"status": exc.status_code, "message": message}},
                            status_code=exc.status_code, headers=exc.headers)

    # Accounts: authorize page

    def _authorize_problem(self, params: Any, *, check_request: bool) -> str | None:
        """Why an authorize request is refused (Spotify's wording), or None when it is fine."""
        if params.get("client_id") != self.client_id:
            return "INVALID_CLIENT: Invalid client"
        if check_request:
            if params.get("response_type") != "code":
                return "unsupported_response_type: response_type must be code"
            if params.get("code_challenge_method") != "S256":
                return "INVALID_REQUEST: code_challenge_method must be S256"
        if not oauth.is_valid_challenge(params.get("code_challenge", "")):
            return "INVALID_REQUEST: a PKCE code_challenge is required"
        problem = _redirect_problem(params.get("redirect_uri", ""))
        if problem:
            return problem
        unknown = [s for s in params.get("scope", "").split() if s not in KNOWN_SCOPES]
        if unknown:
            return f"INVALID_SCOPE: Invalid scope {' '.join(unknown)}"
        return None

    async def _authorize(self, request: Request) -> Response:
        params = request.query_params
        problem = self._authorize_problem(params, check_request=True)
        if problem:
            return _page("Cannot authorize", f"<p>{html.escape(problem)}</p>", 400)
        scopes = params.get("scope", "").split()
        scope_list = "".join(f"<li>{html.escape(SCOPE_TEXT.get(s, s))} <code>"
                             f"{html.escape(s)}</code></li>" for s in scopes)
        if not scope_list:
            scope_list = "<li>Nothing beyond your public profile</li>"
        accounts = "".join(
            f'<label><input type="radio" name="user" value="{html.escape(u.id)}"'
            f'{" checked" if i == 0 else ""}> {html.escape(u.display_name)} '
            f"<small>({html.escape(u.blurb)})</small></label>"
            for i, u in enumerate(USERS.values()))
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(params.get(name, ""))}">'
            for name in ("client_id", "redirect_uri", "state", "code_challenge", "scope"))
        target = urlsplit(params["redirect_uri"]).netloc
        body = (
            f"<p><strong>{html.escape(params['client_id'])}</strong> wants to connect to your "
            f"Spotify account. This is the local emulator: no real Spotify account is used.</p>"
            f"<h2>It will be able to</h2><ul>{scope_list}</ul>"
            # Relative action: the page works wherever the emulator is mounted.
            f'<form method="get" action="authorize/decide">'
            f"<fieldset><legend>Sign in as</legend>{accounts}</fieldset>{hidden}"
            f"<p>After you decide you will return to <code>{html.escape(target)}</code>.</p>"
            f'<p><button type="submit" name="decision" value="agree" class="button">Agree'
            f'</button> <button type="submit" name="decision" value="cancel" '
            f'class="button button-secondary">Cancel</button></p></form>')
        return _page("Spotify emulator — authorize", body, 200)

    async def _decide(self, request: Request) -> Response:
        params = request.query_params
        problem = self._authorize_problem(params, check_request=False)
        if problem:
            return _page("Cannot authorize", f"<p>{html.escape(problem)}</p>", 400)
        decision = params.get("decision")
        user = params.get("user", "")
        if decision not in ("agree", "cancel") or (decision == "agree" and user not in USERS):
            return _page("Cannot authorize", "<p>Choose an account, then Agree or Cancel.</p>",
                         400)
        answer = {}
        if decision == "agree":
            answer["code"] = self.grant_code(user, redirect_uri=params["redirect_uri"],
                                             code_challenge=params["code_challenge"],
                                             scope=params.get("scope", ""))
        else:
            answer["error"] = "access_denied"
        if "state" in params:
            answer["state"] = params["state"]
        uri = params["redirect_uri"]
        separator = "&" if urlsplit(uri).query else ("" if uri.endswith("?") else "?")
        return RedirectResponse(uri + separator + urlencode(answer), status_code=303)

    # Accounts: token endpoint

    async def _token(self, request: Request) -> Response:
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            raise _AccountsError("invalid_request", "Body must be form encoded")
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"),
                              keep_blank_values=True))
        client_id = _basic_client_id(request.headers.get("authorization")) or \
            form.get("client_id")
        if client_id != self.client_id:
            raise _AccountsError("invalid_client", "Invalid client")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange(form)
        if grant_type == "refresh_token":
            return self._rotate(form)
        raise _AccountsError("unsupported_grant_type",
                             "grant_type must be authorization_code or refresh_token")

    def _exchange(self, form: dict[str, str]) -> Response:
        now = self.clock()
        with self._lock:
            # A code is single use, even when this attempt fails.
            grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant.expires_at < now or grant.client_id != self.client_id:
            raise _AccountsError("invalid_grant", "Invalid authorization code")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise _AccountsError("invalid_grant", "Invalid redirect URI")
        if not oauth.verify(form.get("code_verifier", ""), grant.code_challenge):
            raise _AccountsError("invalid_grant", "code_verifier was incorrect")
        consent = _Consent(grant.user, grant.scope, now)
        with self._write() as db:
            tokens = self._issue(db, consent, now)
        return self._token_response(tokens, consent)

    def _rotate(self, form: dict[str, str]) -> Response:
        token = form.get("refresh_token", "")
        if not token:
            raise _AccountsError("invalid_request", "refresh_token must be supplied")
        now = self.clock()
        tokens = None
        with self._write() as db:
            # A refresh token is single use, even when this attempt fails; the conditional
            # update lets exactly one of several emulators racing on the same token have it.
            row = db.execute("UPDATE refresh_tokens SET used_at = ? "
                             "WHERE token = ? AND used_at IS NULL "
                             "RETURNING user, scope, consented_at, expired",
                             (now, token)).fetchone()
            consent = None if row is None else _Consent(row[0], row[1], row[2])
            if consent is not None and not row[3] and \
                    now <= consent.consented_at + CONSENT_SECONDS:
                tokens = self._issue(db, consent, now)
        if consent is None:
            raise _AccountsError("invalid_grant", "Invalid refresh token")
        if tokens is None:
            raise _AccountsError("invalid_grant", "Refresh token expired")
        return self._token_response(tokens, consent)

    def _issue(self, db: sqlite3.Connection, consent: _Consent, now: float
               ) -> tuple[str, str]:
        """Store a new access and refresh token for `consent` in the open transaction."""
        access = "BQ" + secrets.token_urlsafe(40)
        refresh = "AQ" + secrets.token_urlsafe(48)
        db.execute("INSERT INTO access_tokens (token, user, scope, expires_at) "
                   "VALUES (?, ?, ?, ?)", (access, consent.user, consent.scope,
                                           now + ACCESS_TOKEN_SECONDS))
        db.execute("INSERT INTO refresh_tokens (token, user, scope, consented_at) "
                   "VALUES (?, ?, ?, ?)", (refresh, consent.user, consent.scope,
                                           consent.consented_at))
        # Demo mode runs for months and refreshes hourly: drop tokens nobody can use any more.
        stale = now - PRUNE_AFTER_SECONDS
        db.execute("DELETE FROM access_tokens WHERE expires_at < ?", (stale,))
        db.execute("DELETE FROM refresh_tokens WHERE used_at < ? OR consented_at < ?",
                   (stale, stale - CONSENT_SECONDS))
        return access, refresh

    def _token_response(self, tokens: tuple[str, str], consent: _Consent) -> Response:
        access, refresh = tokens
        return JSONResponse({"access_token": access, "token_type": "Bearer",
                             "expires_in": ACCESS_TOKEN_SECONDS, "refresh_token": refresh,
                             "scope": consent.scope})

    # Web API helpers

    def _authorized(self, request: Request, *scopes: str) -> _Access:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise _ApiError(401, "No token provided")
        with self._read() as db:
            row = db.execute("SELECT user, scope, expires_at FROM access_tokens WHERE token = ?",
                             (header[7:].strip(),)).fetchone()
        if row is None:
            raise _ApiError(401, "Invalid access token")
        access = _Access(row["user"], frozenset(row["scope"].split()), row["expires_at"])
        if access.expires_at <= self.clock():
            raise _ApiError(401, "The access token expired")
        if scopes and not access.scope.intersection(scopes):
            raise _ApiError(403, "Insufficient client scope")
        return access

    def _base(self, request: Request) -> str:
        return str(request.base_url).rstrip("/") + "/v1"

    def _artist_simple(self, base: str, artist: Artist) -> dict[str, Any]:
        return {"external_urls": {"spotify": f"https://open.spotify.com/artist/"
                                             f"{artist.spotify_id}"},
                "href": f"{base}/artists/{artist.spotify_id}", "id": artist.spotify_id,
                "name": artist.name, "type": "artist", "uri": f"spotify:artist:{artist.spotify_id}"}

    def _artist_full(self, base: str, artist: Artist) -> dict[str, Any]:
        data = self._artist_simple(base, artist)
        # No followers or popularity for development-mode apps; genres may be missing too.
        data["images"] = []
        if not self.omit_artist_details:
            data["genres"] = list(artist.genres)
        return data

    def _album_simple(self, base: str, album: Album) -> dict[str, Any]:
        total = len(self._album_tracks[album.index])
        artist = self.catalogue.artists[album.artist]
        return {"album_type": "single" if total <= 3 else "album", "total_tracks": total,
                "artists": [self._artist_simple(base, artist)],
                "external_urls": {"spotify": f"https://open.spotify.com/album/"
                                             f"{album.spotify_id}"},
                "href": f"{base}/albums/{album.spotify_id}", "id": album.spotify_id,
                "images": [], "name": album.name, "release_date": album.release_date,
                "release_date_precision": "day", "type": "album",
                "uri": f"spotify:album:{album.spotify_id}"}

    def _track_full(self, base: str, track: Track) -> dict[str, Any]:
        artists = self.catalogue.artists
        return {"album": self._album_simple(base, self.catalogue.albums[track.album]),
                "artists": [self._artist_simple(base, artists[i]) for i in track.artists],
                "disc_number": 1, "duration_ms": track.duration_ms, "explicit": track.explicit,
                "external_ids": {"isrc": f"QZEMU{self.seed % 100:02d}{track.index:05d}"},
                "external_urls": {"spotify": f"https://open.spotify.com/track/"
                                             f"{track.spotify_id}"},
                "href": f"{base}/tracks/{track.spotify_id}", "id": track.spotify_id,
                "is_local": False, "is_playable": True, "name": track.name,
                "preview_url": None, "track_number": self._track_number[track.index],
                "type": "track", "uri": f"spotify:track:{track.spotify_id}"}

    def _recent_item(self, base: str, play: EmulatedPlay) -> dict[str, Any] | None:
        """The `track` of a recently played item, which is not always a catalogue track."""
        track = play.track
        if play.kind == "unavailable":
            return None
        if play.kind == "episode":
            show = spotify_id("show", track.album, self.seed)
            episode = spotify_id("episode", track.index, self.seed)
            return {"type": "episode", "id": episode, "uri": f"spotify:episode:{episode}",
                    "name": f"Episode {track.index}: {track.name}", "duration_ms":
                    track.duration_ms, "href": f"{base}/episodes/{episode}",
                    "show": {"id": show, "name": f"The {track.name} Show", "type": "show",
                             "uri": f"spotify:show:{show}"}}
        data = self._track_full(base, track)
        if play.kind == "local":
            # A file on the listener's own device: names only, no ids, links or album art.
            artist = self.catalogue.artists[track.artists[0]].name
            album = self.catalogue.albums[track.album].name
            data.update(id=None, href=None, external_urls={}, is_local=True,
                        uri=f"spotify:local:{quote_plus(artist)}:{quote_plus(album)}:"
                            f"{quote_plus(track.name)}:{track.duration_ms // 1000}",
                        artists=[{"id": None, "name": artist, "type": "artist", "uri": None,
                                  "href": None, "external_urls": {}}],
                        album={"id": None, "name": album, "type": "album", "uri": None,
                               "images": [], "artists": [], "href": None})
        return data

    def _context(self, base: str, context: tuple[str, str] | None) -> dict[str, Any] | None:
        if context is None:
            return None
        kind, ident = context
        return {"type": kind, "href": f"{base}/{kind}s/{ident}",
                "external_urls": {"spotify": f"https://open.spotify.com/{kind}/{ident}"},
                "uri": f"spotify:{kind}:{ident}"}

    def _user_object(self, base: str, user: EmulatedUser) -> dict[str, Any]:
        return {"display_name": user.display_name,
                "external_urls": {"spotify": f"https://open.spotify.com/user/{user.id}"},
                "href": f"{base}/users/{user.id}", "id": user.id, "type": "user",
                "uri": f"spotify:user:{user.id}"}

    def _paging(self, request: Request, items: list, *, total: int, limit: int,
                offset: int) -> dict[str, Any]:
        url = str(request.url.remove_query_params(["limit", "offset"]))
        sep = "&" if "?" in url else "?"
        return {"href": str(request.url), "items": items, "limit": limit, "offset": offset,
                "total": total,
                "next": f"{url}{sep}offset={offset + limit}&limit={limit}"
                        if offset + limit < total else None,
                "previous": f"{url}{sep}offset={max(0, offset - limit)}&limit={limit}"
                            if offset > 0 else None}

    # Web API endpoints

    async def _gone(self, request: Request) -> Response:
        # Spotify answers removed endpoints with a plain 403, not 410 Gone.
        raise _ApiError(403, "Forbidden: this endpoint is no longer available to "
                             "development mode apps")

    async def _me(self, request: Request) -> Response:
        access = self._authorized(request)
        user = USERS[access.user]
        base = self._base(request)
        data = self._user_object(base, user)
        # Development-mode apps get no country, email, product or followers (February 2026);
        # account_id is the stable id to link accounts with (May 2026).
        data.update({"account_id": spotify_id("account", list(USERS).index(user.id), self.seed),
                     "images": []})
        return JSONResponse(data)

    async def _recently_played(self, request: Request) -> Response:
        access = self._authorized(request, "user-read-recently-played")
        query = request.query_params
        limit = _int_param(query, "limit", 20, 1, RECENT_LIMIT)
        after = _int_param(query, "after", None, 0, None)
        before = _int_param(query, "before", None, 0, None)
        if after is not None and before is not None:
            raise _ApiError(400, "Only one of after or before can be given")
        plays = self.recent_plays(access.user)
        if after is not None:
            plays = [p for p in plays if p.played_at_ms > after]
            # Paging forward from `after` takes the plays right after it, so none are skipped.
            page, more = plays[-limit:], len(plays) > limit
        else:
            if before is not None:
                plays = [p for p in plays if p.played_at_ms < before]
            page, more = plays[:limit], len(plays) > limit
        base = self._base(request)
        items = [{"track": self._recent_item(base, p), "played_at": _played_at(p.played_at_ms),
                  "context": self._context(base, p.context)} for p in page]
        cursors = None
        next_url = None
        if page:
            cursors = {"after": str(page[0].played_at_ms), "before": str(page[-1].played_at_ms)}
            if more:
                cursor = ("after", cursors["after"]) if after is not None else \
                    ("before", cursors["before"])
                next_url = (f"{base}/me/player/recently-played?"
                            f"{urlencode({cursor[0]: cursor[1], 'limit': limit})}")
        return JSONResponse({"items": items, "next": next_url, "cursors": cursors,
                             "limit": limit, "href": str(request.url)})

    async def _top(self, request: Request) -> Response:
        access = self._authorized(request, "user-top-read")
        kind = request.path_params["kind"]
        if kind not in ("tracks", "artists"):
            raise _ApiError(404, "Service not found")
        query = request.query_params
        time_range = query.get("time_range", "medium_term")
        if time_range not in ("short_term", "medium_term", "long_term"):
            raise _ApiError(400, "Invalid time range")
        limit = _int_param(query, "limit", 20, 1, 50)
        offset = _int_param(query, "offset", 0, 0, None)
        ranked: list[int] = []
        if USERS[access.user].listens:
            scores = self._top_scores(time_range, int(self.clock() * 1000))
            if kind == "artists":
                by_artist: dict[int, float] = defaultdict(float)
                for index, score in scores.items():
                    by_artist[self.catalogue.tracks[index].artists[0]] += score
                scores = by_artist
            ranked = sorted(scores, key=lambda i: (-scores[i], i))[:TOP_TOTAL]
        base = self._base(request)
        page = ranked[offset:offset + limit]
        if kind == "tracks":
            items = [self._track_full(base, self.catalogue.tracks[i]) for i in page]
        else:
            items = [self._artist_full(base, self.catalogue.artists[i]) for i in page]
        return JSONResponse(self._paging(request, items, total=len(ranked), limit=limit,
                                         offset=offset))

    async def _artist(self, request: Request) -> Response:
        self._authorized(request)
        artist = _lookup(self.catalogue.artists_by_id, request.path_params["artist_id"])
        return JSONResponse(self._artist_full(self._base(request), artist))

    async def _track(self, request: Request) -> Response:
        self._authorized(request)
        track = _lookup(self.catalogue.tracks_by_id, request.path_params["track_id"])
        return JSONResponse(self._track_full(self._base(request), track))

    def _select_playlists(self, db: sqlite3.Connection, where: str, params: tuple[Any, ...]
                          ) -> list[_Playlist]:
        rows = db.execute("SELECT p.id, p.owner, p.name, p.description, p.public, p.followed, "
                          "p.version, (SELECT COUNT(*) FROM playlist_items i "
                          f"WHERE i.playlist_id = p.id) FROM playlists p {where}", params)
        return [_Playlist(r[0], r[1], r[2], r[3], bool(r[4]), bool(r[5]), r[6], r[7])
                for r in rows]

    def _load_playlist(self, db: sqlite3.Connection, playlist_id: str) -> _Playlist | None:
        found = self._select_playlists(db, "WHERE p.id = ?", (playlist_id,))
        return found[0] if found else None

    def _playlist_object(self, db: sqlite3.Connection, base: str, playlist: _Playlist, *,
                         with_items: bool) -> dict[str, Any]:
        playlist_id = playlist.id
        data: dict[str, Any] = {
            "collaborative": False, "description": playlist.description,
            "external_urls": {"spotify": f"https://open.spotify.com/playlist/{playlist_id}"},
            "href": f"{base}/playlists/{playlist_id}", "id": playlist_id, "images": [],
            "name": playlist.name, "owner": self._user_object(base, USERS[playlist.owner]),
            "public": playlist.public, "snapshot_id": _snapshot(playlist.version),
            "type": "playlist", "uri": f"spotify:playlist:{playlist_id}",
        }
        if with_items:
            entries = self._entries(db, base, playlist, 0, ADD_ITEMS_LIMIT)
            data["items"] = {"href": f"{base}/playlists/{playlist_id}/items", "items": entries,
                             "limit": ADD_ITEMS_LIMIT, "offset": 0, "previous": None,
                             "next": None, "total": playlist.total}
        return data

    def _entries(self, db: sqlite3.Connection, base: str, playlist: _Playlist, offset: int,
                 limit: int) -> list[dict[str, Any]]:
        owner = self._user_object(base, USERS[playlist.owner])
        tracks = self.catalogue.tracks_by_id
        rows = db.execute("SELECT uri, added_at_ms FROM playlist_items WHERE playlist_id = ? "
                          "ORDER BY position LIMIT ? OFFSET ?",
                          (playlist.id, limit, offset)).fetchall()
        return [{"added_at": _iso_ms(added)[:-5] + "Z", "added_by": owner, "is_local": False,
                 "item": self._track_full(base, tracks[uri.rsplit(":", 1)[1]])}
                for uri, added in rows]

    def _own_playlist(self, access: _Access, playlist_id: str, verb: str) -> _Playlist:
        with self._read() as db:
            playlist = self._load_playlist(db, playlist_id)
        if playlist is None:
            raise _ApiError(404, "Resource not found")
        if playlist.owner != access.user:
            raise _ApiError(403, f"You cannot {verb} a playlist you do not own")
        needed = "playlist-modify-public" if playlist.public else "playlist-modify-private"
        if needed not in access.scope:
            raise _ApiError(403, "Insufficient client scope")
        return playlist

    async def _my_playlists(self, request: Request) -> Response:
        access = self._authorized(request)
        limit = _int_param(request.query_params, "limit", 20, 1, 50)
        offset = _int_param(request.query_params, "offset", 0, 0, None)
        base = self._base(request)
        with self._read() as db:
            mine = self._select_playlists(db, "WHERE p.owner = ? AND p.followed ORDER BY p.seq",
                                          (access.user,))
            items = [self._playlist_object(db, base, p, with_items=False)
                     for p in mine[offset:offset + limit]]
        return JSONResponse(self._paging(request, items, total=len(mine), limit=limit,
                                         offset=offset))

    async def _create_playlist(self, request: Request) -> Response:
        access = self._authorized(request, "playlist-modify-private", "playlist-modify-public")
        body = await _json_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _ApiError(400, "Missing required field: name")
        public = bool(body.get("public", True))
        needed = "playlist-modify-public" if public else "playlist-modify-private"
        if needed not in access.scope:
            raise _ApiError(403, "Insufficient client scope")
        description = str(body.get("description") or "")
        with self._write() as db:
            # Numbered in the shared state, so emulators on one file never reuse an id.
            seq = db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM playlists").fetchone()[0]
            playlist = _Playlist(spotify_id("emulated-playlist", seq, self.seed), access.user,
                                 name, description, public, True, 1, 0)
            db.execute("INSERT INTO playlists (id, seq, owner, name, description, public, "
                       "followed, version) VALUES (?, ?, ?, ?, ?, ?, 1, 1)",
                       (playlist.id, seq, access.user, name, description, int(public)))
            data = self._playlist_object(db, self._base(request), playlist, with_items=True)
        return JSONResponse(data, status_code=201)

    async def _get_playlist(self, request: Request) -> Response:
        access = self._authorized(request)
        with self._read() as db:
            playlist = self._load_playlist(db, request.path_params["playlist_id"])
            if playlist is None:
                raise _ApiError(404, "Resource not found")
            # Development-mode apps get only metadata for playlists the user does not own.
            data = self._playlist_object(db, self._base(request), playlist,
                                         with_items=playlist.owner == access.user)
        return JSONResponse(data)

    async def _playlist_items(self, request: Request) -> Response:
        access = self._authorized(request)
        limit = _int_param(request.query_params, "limit", 100, 1, 100)
        offset = _int_param(request.query_params, "offset", 0, 0, None)
        with self._read() as db:
            playlist = self._load_playlist(db, request.path_params["playlist_id"])
            if playlist is None:
                raise _ApiError(404, "Resource not found")
            if playlist.owner != access.user:
                raise _ApiError(403, "Forbidden")
            items = self._entries(db, self._base(request), playlist, offset, limit)
        return JSONResponse(self._paging(request, items, total=playlist.total, limit=limit,
                                         offset=offset))

    async def _add_items(self, request: Request) -> Response:
        access = self._authorized(request)
        playlist_id = self._own_playlist(access, request.path_params["playlist_id"],
                                         "change").id
        if request.headers.get("content-length", "0") != "0":
            body = await _json_body(request)
        else:
            body = {}
        uris = body.get("uris")
        if uris is None and "uris" in request.query_params:
            uris = request.query_params["uris"].split(",")
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
            raise _ApiError(400, "No uris provided")
        if len(uris) > ADD_ITEMS_LIMIT:
            raise _ApiError(400, f"Too many items: at most {ADD_ITEMS_LIMIT} per request")
        for uri in uris:
            match = _TRACK_URI.match(uri)
            if match is None:
                raise _ApiError(400, f"Invalid track uri: {uri}")
            if match.group(1) not in self.catalogue.tracks_by_id:
                raise _ApiError(400, "Payload contains a non-existing ID")
        position = body.get("position")
        now_ms = int(self.clock() * 1000)
        count = len(uris)
        with self._write() as db:
            total = db.execute("SELECT COUNT(*) FROM playlist_items WHERE playlist_id = ?",
                               (playlist_id,)).fetchone()[0]
            at = total if not isinstance(position, int) else max(0, min(position, total))
            # SQLite checks the key row by row, so shift the tail through negative positions.
            db.execute("UPDATE playlist_items SET position = -position - 1 - ? "
                       "WHERE playlist_id = ? AND position >= ?", (count, playlist_id, at))
            db.execute("UPDATE playlist_items SET position = -position - 1 "
                       "WHERE playlist_id = ? AND position < 0", (playlist_id,))
            db.executemany("INSERT INTO playlist_items (playlist_id, position, uri, added_at_ms) "
                           "VALUES (?, ?, ?, ?)",
                           [(playlist_id, at + i, uri, now_ms) for i, uri in enumerate(uris)])
            version = db.execute("UPDATE playlists SET version = version + 1 WHERE id = ? "
                                 "RETURNING version", (playlist_id,)).fetchone()[0]
        return JSONResponse({"snapshot_id": _snapshot(version)}, status_code=201)

    async def _change_playlist(self, request: Request) -> Response:
        access = self._authorized(request)
        playlist_id = self._own_playlist(access, request.path_params["playlist_id"],
                                         "change").id
        body = await _json_body(request)
        if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
            raise _ApiError(400, "Invalid playlist name")
        changes: dict[str, Any] = {key: str(body[key]) for key in ("name", "description")
                                   if key in body}
        if "public" in body:
            changes["public"] = int(bool(body["public"]))
        # The column names come from the fixed keys above, never from the request.
        assignments = "".join(f"{column} = ?, " for column in changes)
        with self._write() as db:
            db.execute(f"UPDATE playlists SET {assignments}version = version + 1 WHERE id = ?",
                       (*changes.values(), playlist_id))
        return Response(status_code=200)

    async def _remove_from_library(self, request: Request) -> Response:
        access = self._authorized(request)
        if "user-library-modify" not in access.scope:
            raise _ApiError(403, "Insufficient client scope")
        raw = request.query_params.get("uris", "")
        uris = [u for u in raw.split(",") if u]
        if not uris:
            raise _ApiError(400, "Missing required parameter: uris")
        if len(uris) > LIBRARY_LIMIT:
            raise _ApiError(400, f"Too many ids requested (at most {LIBRARY_LIMIT})")
        parsed = [_LIBRARY_URI.match(u) for u in uris]
        if not all(parsed):
            raise _ApiError(400, "Invalid or unsupported URI")
        with self._write() as db:
            for match in parsed:
                if match.group(1) == "playlist":
                    # Removing a playlist from the owner's library is Spotify's way to delete it.
                    db.execute("UPDATE playlists SET followed = 0 WHERE id = ? AND owner = ?",
                               (match.group(2), access.user))
        return Response(status_code=200)


def _page(title: str, body: str, status: int) -> HTMLResponse:
    """A complete HTML page in the app's style: no inline script or style, CSP friendly."""
    document = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        '<link rel="stylesheet" href="/static/css/app.css">\n</head>\n'
        f'<body class="emulator">\n<main class="card">\n<h1>{html.escape(title)}</h1>\n'
        f"{body}\n</main>\n</body>\n</html>\n")
    return HTMLResponse(document, status_code=status)


def _redirect_problem(uri: str) -> str | None:
    """Spotify's redirect URI rules: https, or http on a loopback literal with a port."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return "INVALID_CLIENT: Invalid redirect URI"
    host = (parts.hostname or "").lower()
    if not host or parts.fragment:
        return "INVALID_CLIENT: Invalid redirect URI"
    if host == "localhost" or host.endswith(".localhost"):
        return ("INVALID_CLIENT: Insecure redirect URI. localhost is not allowed; use the "
                "loopback address, such as http://127.0.0.1:8000/callback")
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and host in ("127.0.0.1", "::1") and port is not None:
        return None
    return "INVALID_CLIENT: Insecure redirect URI"


def _basic_client_id(header: str | None) -> str | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0]


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise _ApiError(400, "Error parsing JSON.") from exc
    if not isinstance(body, dict):
        raise _ApiError(400, "Error parsing JSON.")
    return body


def _int_param(query: Any, name: str, default: int | None, low: int,
               high: int | None) -> Any:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _ApiError(400, f"Invalid {name}") from None
    if value < low or (high is not None and value > high):
        raise _ApiError(400, f"Invalid {name}")
    return value


def _lookup(index: dict[str, Any], ident: str) -> Any:
    if not _BASE62_ID.match(ident):
        raise _ApiError(400, "Invalid base62 id")
    try:
        return index[ident]
    except KeyError:
        raise _ApiError(404, "Resource not found") from None


def _iso_ms(ms: int) -> str:
    """Spotify's played_at form: UTC with milliseconds and a Z."""
    seconds, millis = divmod(ms, 1000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{millis:03d}Z"


def _played_at(ms: int) -> str:
    """played_at as Spotify writes it: 0 to 6 fractional digits, never losing a millisecond.

    Some clients trim trailing zeros (".12Z", or none at all on a whole second), some add
    microseconds (".123000Z"); most write milliseconds.
    """
    seconds, millis = divmod(ms, 1000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{millis:03d}"
    if seconds % 6 == 1:
        fraction += "000"
    elif seconds % 2 == 0:
        fraction = fraction.rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


def _snapshot(version: int) -> str:
    return base64.urlsafe_b64encode(f"v{version}".encode()).decode().rstrip("=")


def _reason(status: int) -> str:
    reasons = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
               405: "Method not allowed", 410: "Gone", 429: "API rate limit exceeded",
               500: "Server error", 502: "Bad gateway", 503: "Service unavailable",
               504: "Gateway timeout"}
    return reasons.get(status, "Error")

