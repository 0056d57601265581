"""Sign-in through Spotify (authorization code + PKCE) and keeping access tokens fresh."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from mtm import leases, quota, users
from mtm.db import Database, transaction
from mtm.jobs import make_holder
from mtm.spotify import oauth
from mtm.spotify.client import (
    ConsentExpired,
    Forbidden,
    QuotaExceeded,
    SpotifyClient,
    SpotifyError,
    SpotifyUnavailable,
    TokenSet,
    Unauthorized,
)

T = TypeVar("T")
STATE_TTL = 600
REFRESH_MARGIN = 60
REFRESH_LEASE = "token-refresh"
# A token request takes well under a second; with the client's timeout and retries a slow
# one still ends inside the lease, and a holder that crashed lets go when it runs out.
REFRESH_TTL = 20
REFRESH_WAIT = 25.0
REFRESH_POLL = 0.05


@dataclass(frozen=True)
class LoginAttempt:
    """A sign-in started by this browser and not yet completed."""

    verifier: str
    redirect_uri: str
    next_url: str | None


def binding_for(csrf_secret: str) -> str:
    """Tie a sign-in to the browser session that started it without storing the secret."""
    return hashlib.sha256(f"oauth-state:{csrf_secret}".encode()).hexdigest()


def begin_login(conn: sqlite3.Connection, binding: str, redirect_uri: str,
                next_url: str | None) -> tuple[str, str]:
    """Record a new sign-in attempt; return (state, code challenge)."""
    state, verifier = oauth.make_state(), oauth.make_verifier()
    now = int(time.time())
    with transaction(conn):
        conn.execute("DELETE FROM oauth_states WHERE created_at < ?", (now - STATE_TTL,))
        conn.execute(
            """INSERT INTO oauth_states (state, verifier, binding, redirect_uri, next_url,
                                         created_at) VALUES (?, ?, ?, ?, ?, ?)""",
            (state, verifier, binding, redirect_uri, next_url, now))
    return state, oauth.challenge_for(verifier)


def take_login(conn: sqlite3.Connection, state: str, binding: str) -> LoginAttempt | None:
    """Consume a sign-in attempt; None unless it exists, is fresh and belongs to this browser."""
    with transaction(conn):
        row = conn.execute(
            "DELETE FROM oauth_states WHERE state = ? RETURNING verifier, binding, "
            "redirect_uri, next_url, created_at", (state,)).fetchone()
    if row is None or row["binding"] != binding or row["created_at"] < time.time() - STATE_TTL:
        return None
    return LoginAttempt(row["verifier"], row["redirect_uri"], row["next_url"])


def _store(conn: sqlite3.Connection, user_id: int, tokens: TokenSet, new_consent: bool) -> None:
    users.save_tokens(conn, user_id, access_token=tokens.access_token,
                      refresh_token=tokens.refresh_token, expires_at=tokens.expires_at,
                      scope=tokens.scope, new_consent=new_consent)


class SignInRefused(SpotifyError):
    """This account may not sign in here; nothing of it was stored."""

    default_status = 403


NOT_REGISTERED = (
    "Spotify refused this account: this server's Spotify app is in development mode, and "
    "Spotify lets such an app serve only the accounts its owner has added under User "
    "Management in the Spotify developer dashboard, five at most. Ask whoever runs this "
    "server to add your Spotify account there, then sign in again.")


def allowed(profile: dict, allowed_users: frozenset[str] | None) -> bool:
    """Whether a Spotify profile may sign in: everyone without a list, else a listed id.

    The list may name the user id or the stable account id, the two a user is linked by.
    """
    if allowed_users is None:
        return True
    ids = {profile.get("id"), profile.get("account_id")} - {None, ""}
    return bool(ids & allowed_users)


async def complete_login(db: Database, client: SpotifyClient, code: str,
                         attempt: LoginAttempt,
                         allowed_users: frozenset[str] | None = None) -> int:
    """Exchange the code, load the profile, store user and tokens; return the user id.

    An account outside `allowed_users`, or one Spotify will not serve to this app, is refused
    before anything of it is stored.
    """
    tokens = await client.exchange_code(code, code_verifier=attempt.verifier,
                                        redirect_uri=attempt.redirect_uri)
    try:
        profile = await client.me(tokens.access_token)
    except Forbidden as exc:
        raise SignInRefused(NOT_REGISTERED, detail=exc.detail) from exc
    if not allowed(profile, allowed_users):
        raise SignInRefused(
            f"This Music Time Machine is private, and the Spotify account "
            f"{profile.get('display_name') or profile.get('id')!s} (id {profile.get('id')}) is "
            "not among the accounts allowed to sign in. Nothing of it was stored. Ask whoever "
            "runs this server to add that id to its list of members (MTM_ALLOWED_USERS).")
    images = profile.get("images") or []
    user_id = await db.run(users.upsert_user, profile["id"],
                           profile.get("display_name") or profile["id"],
                           profile.get("country"), images[0]["url"] if images else None,
                           profile.get("account_id") or None)
    await db.run(_store, user_id, tokens, True)
    return user_id


async def access_token(db: Database, client: SpotifyClient, user_id: int, *,
                       replacing: str | None = None) -> str:
    """A valid access token, refreshed (and the new refresh token stored) when needed.

    Refresh tokens are single-use, so two refreshes at once (the scheduler and a page, or two
    processes) would spend the same token twice and Spotify would refuse the second as if the
    consent had ended. One refresh runs at a time per user, under a lease in the database;
    whoever finds it taken waits for the new token instead. `replacing` is a token Spotify
    refused (401): any other stored token will do, else it is refreshed whatever its expiry.
    """
    holder = make_holder("token")
    deadline = time.monotonic() + REFRESH_WAIT
    while True:
        stored = await db.run(users.get_tokens, user_id)
        if stored is None:
            raise ConsentExpired()
        if _usable(stored, replacing, client.now()):
            return stored.access_token
        if await db.run(leases.acquire, user_id, REFRESH_LEASE, holder, ttl=REFRESH_TTL):
            try:
                # Read again under the lease: a refresh may have ended since the read above.
                stored = await db.run(users.get_tokens, user_id)
                if stored is None:
                    raise ConsentExpired()
                if _usable(stored, replacing, client.now()):
                    return stored.access_token
                return await _refresh(db, client, user_id, stored)
            finally:
                await db.run(leases.release, user_id, REFRESH_LEASE, holder)
        if time.monotonic() > deadline:
            raise SpotifyUnavailable("Renewing the Spotify sign-in is taking too long; try "
                                     "again in a minute.", status=503)
        await asyncio.sleep(REFRESH_POLL)


def _usable(stored: users.StoredTokens, replaced: str | None, now: float) -> bool:
    """Whether the stored access token will do: not the refused one, and not expiring."""
    return stored.access_token != replaced and stored.expires_at - REFRESH_MARGIN > now


async def _refresh(db: Database, client: SpotifyClient, user_id: int,
                   stored: users.StoredTokens) -> str:
    """Spend the refresh token (the caller holds the refresh lease); store the new pair."""
    try:
        fresh = await client.refresh(stored.refresh_token)
    except ConsentExpired:
        await db.run(users.mark_reconnect_needed, user_id)
        raise
    # Refresh tokens are single-use: losing the new one would lose the connection.
    await db.run(_store, user_id, fresh, False)
    return fresh.access_token


async def with_token(db: Database, client: SpotifyClient, user_id: int,
                     operation: Callable[[str], Awaitable[T]]) -> T:
    """Run an API call with the user's token, refreshing once if Spotify says it expired.

    While the app's daily quota is used up, nothing is sent: Spotify would refuse it too.
    """
    now = int(time.time())
    until = await db.run(quota.exhausted_until, now)
    if until is not None:
        raise QuotaExceeded(until - now)
    try:
        token = await access_token(db, client, user_id)
        try:
            return await operation(token)
        except Unauthorized:
            token = await access_token(db, client, user_id, replacing=token)
            return await operation(token)
    except QuotaExceeded as exc:
        await db.run(quota.record_exhausted, int(time.time()) + exc.retry_after)
        raise
