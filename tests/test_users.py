"""Users: matching a returning Spotify account, on account_id first."""

from __future__ import annotations

import sqlite3

from mtm import users


def _row(conn: sqlite3.Connection, user_id: int) -> tuple:
    return tuple(conn.execute("SELECT spotify_id, account_id, display_name FROM users "
                              "WHERE id = ?", (user_id,)).fetchone())


def test_a_returning_user_is_matched_on_account_id(conn: sqlite3.Connection) -> None:
    first = users.upsert_user(conn, "old-id", "Ann", account_id="acc-1")
    # Spotify sends the same stable account under another user id: the same person.
    again = users.upsert_user(conn, "new-id", "Ann B.", account_id="acc-1")
    assert again == first
    assert _row(conn, first) == ("new-id", "acc-1", "Ann B.")
    assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 1


def test_a_user_known_before_account_ids_learns_theirs(conn: sqlite3.Connection) -> None:
    first = users.upsert_user(conn, "ann", "Ann")
    assert _row(conn, first) == ("ann", None, "Ann")
    assert users.upsert_user(conn, "ann", "Ann", account_id="acc-1") == first
    assert _row(conn, first) == ("ann", "acc-1", "Ann")
    # A later sign-in without the field keeps what is known.
    assert users.upsert_user(conn, "ann", "Ann") == first
    assert _row(conn, first)[1] == "acc-1"


def test_different_accounts_stay_apart(conn: sqlite3.Connection) -> None:
    ann = users.upsert_user(conn, "ann", "Ann", account_id="acc-1")
    bob = users.upsert_user(conn, "bob", "Bob", account_id="acc-2")
    assert ann != bob
    assert users.upsert_user(conn, "bob", "Bob", account_id="acc-2") == bob
