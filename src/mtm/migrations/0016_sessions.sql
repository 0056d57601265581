-- Server-side sign-in sessions: the cookie holds a random id, and this table says whose it
-- is, so signing out or disconnecting ends it for every copy of the cookie. The id is kept
-- only as its SHA-256, so a copy of the database holds no cookie that would sign anyone in.
CREATE TABLE sessions (
    id           TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    -- A short summary of the browser ("Firefox on Linux"), for the owner's eyes only.
    user_agent   TEXT
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id);

-- Rate limits shared by every worker: one counter per key (what and who) and fixed window.
CREATE TABLE rate_limits (
    key          TEXT    NOT NULL,
    window_start INTEGER NOT NULL,
    hits         INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
) WITHOUT ROWID;
