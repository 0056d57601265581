-- Spotify's stable account id (GET /me `account_id`, since May 2026), which Spotify
-- recommends over `id` for linking accounts: a returning user is matched on it first.
ALTER TABLE users ADD COLUMN account_id TEXT;
CREATE UNIQUE INDEX users_account_id ON users (account_id) WHERE account_id IS NOT NULL;

-- The app's daily Spotify quota (429 with reason QUOTA_EXCEEDED) is the app's, not a user's:
-- one row while it is used up, so every process stops calling Spotify until it resets.
CREATE TABLE spotify_quota (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    until       INTEGER NOT NULL,
    noticed_at  INTEGER NOT NULL
);
