-- Plays per local month of every artist and track a user played: their pages chart them
-- and rank them against everything else played that month without reading the plays.
-- Filled by the rollup rebuild at start-up (history.ROLLUPS_VERSION 3).
CREATE TABLE artist_months (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    artist_id INTEGER NOT NULL REFERENCES artists(id),
    month     TEXT    NOT NULL,
    plays     INTEGER NOT NULL,
    ms_played INTEGER NOT NULL,
    PRIMARY KEY (user_id, artist_id, month)
) WITHOUT ROWID;
-- A rank is how many rows of the same month have more plays: a range count on this index.
CREATE INDEX artist_months_rank ON artist_months(user_id, month, plays);

CREATE TABLE track_months (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    track_id  INTEGER NOT NULL REFERENCES tracks(id),
    month     TEXT    NOT NULL,
    plays     INTEGER NOT NULL,
    ms_played INTEGER NOT NULL,
    PRIMARY KEY (user_id, track_id, month)
) WITHOUT ROWID;
CREATE INDEX track_months_rank ON track_months(user_id, month, plays);
