"""PKCE helpers and the authorize URL."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from mtm.spotify import oauth

# RFC 7636 appendix B: the verifier is the base64url form of 32 given octets.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_challenge_matches_rfc_7636_appendix_b():
    assert oauth.challenge_for(RFC_VERIFIER) == RFC_CHALLENGE


def test_verify_accepts_the_rfc_pair_and_refuses_others():
    assert oauth.verify(RFC_VERIFIER, RFC_CHALLENGE)
    assert not oauth.verify(RFC_VERIFIER[:-1] + "Y", RFC_CHALLENGE)
    assert not oauth.verify("too-short", oauth.challenge_for("too-short"))


def test_verifier_is_long_random_and_unreserved():
    verifiers = {oauth.make_verifier() for _ in range(20)}
    assert len(verifiers) == 20
    for verifier in verifiers:
        assert 43 <= len(verifier) <= 128
        assert set(verifier) <= set(oauth.UNRESERVED)
        assert oauth.is_valid_verifier(verifier)


@pytest.mark.parametrize("length", [43, 128])
def test_verifier_length_bounds_are_allowed(length):
    assert len(oauth.make_verifier(length)) == length


@pytest.mark.parametrize("length", [42, 129])
def test_verifier_length_outside_rfc_is_refused(length):
    with pytest.raises(ValueError):
        oauth.make_verifier(length)


def test_challenge_is_unpadded_base64url():
    for _ in range(20):
        challenge = oauth.challenge_for(oauth.make_verifier())
        assert len(challenge) == 43
        assert "=" not in challenge and "+" not in challenge and "/" not in challenge
        assert oauth.is_valid_challenge(challenge)


def test_state_is_unguessable_and_url_safe():
    states = {oauth.make_state() for _ in range(20)}
    assert len(states) == 20
    for state in states:
        assert len(state) >= 32
        assert set(state) <= set(oauth.UNRESERVED)


def test_authorize_url_carries_every_parameter():
    url = oauth.authorize_url(
        "https://accounts.spotify.com/authorize", client_id="abc",
        redirect_uri="http://127.0.0.1:8000/callback", state="s&t=1",
        code_challenge=RFC_CHALLENGE, scopes=["user-top-read", "user-read-recently-played"])
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "accounts.spotify.com",
                                                        "/authorize")
    assert "%20" in parts.query and "+" not in parts.query
    assert parse_qs(parts.query) == {
        "client_id": ["abc"], "response_type": ["code"],
        "redirect_uri": ["http://127.0.0.1:8000/callback"], "state": ["s&t=1"],
        "code_challenge_method": ["S256"], "code_challenge": [RFC_CHALLENGE],
        "scope": ["user-top-read user-read-recently-played"],
    }


def test_authorize_url_show_dialog_and_existing_query():
    url = oauth.authorize_url("http://127.0.0.1:9/authorize?x=1", client_id="c",
                              redirect_uri="https://example.org/cb", state="s",
                              code_challenge=RFC_CHALLENGE, scopes=(), show_dialog=True)
    query = parse_qs(urlsplit(url).query)
    assert query["x"] == ["1"]
    assert query["show_dialog"] == ["true"]
    plain = oauth.authorize_url("https://a/authorize", client_id="c", redirect_uri="https://b",
                                state="s", code_challenge=RFC_CHALLENGE, scopes=["a"])
    assert "show_dialog" not in plain
