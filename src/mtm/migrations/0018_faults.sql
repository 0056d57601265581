-- What holds each lease (a sync, an import, a restore, a time-zone change, ...), so a page
-- can say what is running instead of "a sync" for everything; NULL for leases taken before.
ALTER TABLE leases ADD COLUMN purpose TEXT;

-- A time-zone change recounts the rollups in chunks under the sync lease (mtm.rezone): the
-- zones from and to, how far through the plays it has got, and the rows built so far
-- (rebuild_hours: the new hours; the others: how each month's figures change, only plays
-- near a month's edge moving), put in place at the end, so a crash resumes where it stopped
-- and pages keep reading the old zone's figures until then.
CREATE TABLE rollup_rebuilds (
    user_id   INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    timezone  TEXT    NOT NULL,
    from_timezone TEXT NOT NULL,
    -- The played_at and record_key of the last play summed so far (NULL: none yet).
    after_at  INTEGER,
    after_key INTEGER,
    -- users.history_version when the sums began: any write to the plays since starts again.
    history_version INTEGER NOT NULL,
    -- Once every play is summed, the monthly rollups are moved a month at a time: the last
    -- month moved ('' before the first). Pages sum those months from the plays meanwhile.
    months_after TEXT,
    started_at INTEGER NOT NULL
);

CREATE TABLE rebuild_hours (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day       TEXT    NOT NULL,
    hour      INTEGER NOT NULL,
    weekday   INTEGER NOT NULL,
    plays     INTEGER NOT NULL,
    ms_played INTEGER NOT NULL,
    PRIMARY KEY (user_id, day, hour)
) WITHOUT ROWID;

CREATE TABLE rebuild_months (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    month     TEXT    NOT NULL,
    source    TEXT    NOT NULL,
    plays     INTEGER NOT NULL,
    streams   INTEGER NOT NULL,
    ms_played INTEGER NOT NULL,
    PRIMARY KEY (user_id, month, source)
) WITHOUT ROWID;

CREATE TABLE rebuild_track_months (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    track_id  INTEGER NOT NULL,
    month     TEXT    NOT NULL,
    plays     INTEGER NOT NULL,
    ms_played INTEGER NOT NULL,
    PRIMARY KEY (user_id, track_id, month)
) WITHOUT ROWID;

CREATE TABLE rebuild_artist_months (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    artist_id INTEGER NOT NULL,
    month     TEXT    NOT NULL,
    plays     INTEGER NOT NULL,
    ms_played INTEGER NOT NULL,
    PRIMARY KEY (user_id, artist_id, month)
) WITHOUT ROWID;

-- A rule being removed is shown again a chunk at a time (mtm.hiding): while it is, it hides
-- nothing new, so the plays moved back stay counted; a crash leaves it set, and removing the
-- rule again finishes.
ALTER TABLE hide_rules ADD COLUMN removing INTEGER NOT NULL DEFAULT 0;
