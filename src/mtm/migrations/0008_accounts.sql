-- Spotify's stable account id (GET /me `account_id`, since May 2026), which Spotify
-- recommends over `id` for linking accounts: a returning user is matched on it first.
ALTER TABLE users ADD COLUMN account_id TEXT;
CREATE UNIQUE INDEX users_account_id ON users (account_id) WHERE account_id IS NOT NULL;
