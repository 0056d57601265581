-- Hour-of-day rollup for the heatmap, and a version that changes with every history write.

-- Like listening_days, local to the user's time zone (computed with zoneinfo on write,
-- so daylight-saving changes land in the right hour) and rebuilt when the zone changes.
CREATE TABLE listening_hours (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day       TEXT    NOT NULL,
    hour      INTEGER NOT NULL CHECK (hour BETWEEN 0 AND 23),
    -- Monday 0 .. Sunday 6, stored so the heatmap does not parse dates per row.
    weekday   INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    plays     INTEGER NOT NULL,
    ms_played INTEGER NOT NULL,
    PRIMARY KEY (user_id, day, hour)
) WITHOUT ROWID;

-- The whole-history heatmap: at most 168 rows a user, so "All time" reads no day rows.
CREATE TABLE listening_weekhours (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    weekday   INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    hour      INTEGER NOT NULL CHECK (hour BETWEEN 0 AND 23),
    plays     INTEGER NOT NULL,
    ms_played INTEGER NOT NULL,
    PRIMARY KEY (user_id, weekday, hour)
) WITHOUT ROWID;

-- Bumped by every write to a user's plays; cached analytics are keyed by it.
ALTER TABLE users ADD COLUMN history_version INTEGER NOT NULL DEFAULT 0;
-- Which generation of rollups a user has; start-up rebuilds users behind the current one.
ALTER TABLE users ADD COLUMN rollups_version INTEGER NOT NULL DEFAULT 0;
