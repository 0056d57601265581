-- Top-items snapshots (at most one set a day per user) and the sync lease.

-- Spotify's own view of a user's taste, kept daily so rankings can be compared over months.
CREATE TABLE top_snapshots (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    taken_on   TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('tracks', 'artists')),
    time_range TEXT    NOT NULL CHECK (time_range IN ('short_term', 'medium_term', 'long_term')),
    rank       INTEGER NOT NULL CHECK (rank >= 1),
    track_id   INTEGER REFERENCES tracks(id),
    artist_id  INTEGER REFERENCES artists(id),
    PRIMARY KEY (user_id, taken_on, kind, time_range, rank),
    CHECK ((kind = 'tracks') = (track_id IS NOT NULL)),
    CHECK ((kind = 'artists') = (artist_id IS NOT NULL))
) WITHOUT ROWID;

-- Whoever holds a user's lease may sync that user; it expires so a crashed process
-- cannot block syncs for ever. Two app processes on one database never sync a user twice.
CREATE TABLE sync_leases (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX sync_runs_outcome ON sync_runs(outcome, started_at);
