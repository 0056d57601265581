"""OAuth 2.0 authorization code with PKCE (RFC 7636), as Spotify requires it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Iterable
from urllib.parse import quote, urlencode

UNRESERVED = string.ascii_letters + string.digits + "-._~"
_VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def make_verifier(length: int = 64) -> str:
    """A fresh random PKCE code verifier of `length` (43-128) unreserved characters."""
    if not 43 <= length <= 128:
        raise ValueError("a PKCE code verifier is 43 to 128 characters long")
    return "".join(secrets.choice(UNRESERVED) for _ in range(length))


def is_valid_verifier(verifier: str) -> bool:
    """Whether `verifier` has the form RFC 7636 section 4.1 requires."""
    return bool(_VERIFIER_RE.match(verifier))


def is_valid_challenge(challenge: str) -> bool:
    """Whether `challenge` looks like an S256 challenge (43 base64url characters)."""
    return bool(_CHALLENGE_RE.match(challenge))


def challenge_for(verifier: str) -> str:
    """The S256 code challenge for `verifier`: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(verifier: str, challenge: str) -> bool:
    """Whether `verifier` answers the S256 `challenge`, compared in constant time."""
    if not is_valid_verifier(verifier):
        return False
    return hmac.compare_digest(challenge_for(verifier), challenge)


def make_state() -> str:
    """An unguessable value tying the callback to the browser that started the sign-in."""
    return secrets.token_urlsafe(32)


def authorize_url(authorize_endpoint: str, *, client_id: str, redirect_uri: str, state: str,
                  code_challenge: str, scopes: Iterable[str], show_dialog: bool = False) -> str:
    """The URL to send the browser to so the user can grant this app access."""
    params = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "code_challenge_method": "S256",
        "code_challenge": code_challenge,
        "state": state,
        "scope": " ".join(scopes),
    }
    if show_dialog:
        params["show_dialog"] = "true"
    separator = "&" if "?" in authorize_endpoint else "?"
    # quote (not quote_plus) so scopes are joined by %20, which every OAuth server reads alike.
    return authorize_endpoint + separator + urlencode(params, quote_via=quote)
