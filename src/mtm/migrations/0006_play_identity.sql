-- A play's identity, imports, background jobs and the coverage rollup.
--
-- Until now a play was keyed by (user, the UTC second it ended), which merges distinct
-- records of a privacy export that share a second. A play is now keyed by
-- (user, second, record key): the record key is a hash of the fields that identify the
-- record it came from (see mtm.identity). Every stored play is copied with the key it
-- would get today, so a play polled again after the upgrade is still recognised.

-- Background work with its status and progress at one URL (mtm.jobs).
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'running', 'done', 'failed', 'interrupted')),
    -- What the job was asked to do (JSON), so an interrupted job can be run again.
    params       TEXT    NOT NULL DEFAULT '{}',
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    -- Written while the job runs: a job whose process died stops beating.
    heartbeat_at INTEGER,
    holder       TEXT,
    stage        TEXT,
    done         INTEGER NOT NULL DEFAULT 0,
    total        INTEGER,
    result       TEXT,
    error        TEXT
);
CREATE INDEX jobs_user ON jobs(user_id, created_at);
CREATE INDEX jobs_open ON jobs(state) WHERE state IN ('queued', 'running');

-- Every import that stored something or found it all already there: what it read and did.
CREATE TABLE imports (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    job_id        INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
    created_at    INTEGER NOT NULL,
    -- JSON: [{"name": ..., "kind": ..., "records": n}, ...]
    files         TEXT    NOT NULL,
    -- JSON: the report's counts (mtm.importer.Report)
    report        TEXT    NOT NULL,
    plays_added   INTEGER NOT NULL,
    first_played  INTEGER,
    last_played   INTEGER,
    backup_id     INTEGER REFERENCES backups(id) ON DELETE SET NULL,
    undone_at     INTEGER,
    plays_removed INTEGER
);
CREATE INDEX imports_user ON imports(user_id, created_at);

CREATE TABLE plays_new (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    played_at   INTEGER NOT NULL,
    record_key  INTEGER NOT NULL,
    track_id    INTEGER NOT NULL REFERENCES tracks(id),
    artist_id   INTEGER NOT NULL REFERENCES artists(id),
    ms_played   INTEGER NOT NULL CHECK (ms_played >= 0),
    source      TEXT    NOT NULL CHECK (source IN ('api', 'export', 'account', 'demo')),
    context_uri TEXT,
    skipped     INTEGER,
    -- The import that added this play (NULL when polled or generated); undo removes these.
    import_id   INTEGER REFERENCES imports(id) ON DELETE SET NULL,
    -- Spotify counts a stream as a play from 30 s; shorter ones count only their minutes.
    counted     INTEGER GENERATED ALWAYS AS (ms_played >= 30000) VIRTUAL,
    PRIMARY KEY (user_id, played_at, record_key)
) WITHOUT ROWID;

INSERT INTO plays_new (user_id, played_at, record_key, track_id, artist_id, ms_played, source,
                       context_uri, skipped)
SELECT p.user_id, p.played_at,
       mtm_default_key(p.source, p.played_at, t.spotify_id, a.name, t.name),
       p.track_id, p.artist_id, p.ms_played, p.source, p.context_uri, p.skipped
FROM plays p JOIN tracks t ON t.id = p.track_id JOIN artists a ON a.id = t.artist_id;

DROP TABLE plays;
ALTER TABLE plays_new RENAME TO plays;
-- ms_played rides along so a count of plays of a track in a period reads the index alone.
CREATE INDEX plays_user_track ON plays(user_id, track_id, played_at, ms_played);
CREATE INDEX plays_user_artist ON plays(user_id, artist_id, played_at);
CREATE INDEX plays_import ON plays(import_id) WHERE import_id IS NOT NULL;

-- Account data names tracks without URIs: they are recognised by normalised artist and name.
ALTER TABLE tracks ADD COLUMN match_key TEXT;
UPDATE tracks SET match_key = mtm_match_key(
    (SELECT name FROM artists WHERE artists.id = tracks.artist_id), name);
CREATE INDEX tracks_match ON tracks(match_key);
-- Imports find albums known by name only (extended history has no album ids).
CREATE INDEX albums_name ON albums(name, artist_id);
-- New details of an artist reach everyone who played it (their cached analytics change).
CREATE INDEX user_artists_artist ON user_artists(artist_id);

-- Plays per local month and source: the coverage grid in Settings reads no plays.
CREATE TABLE listening_months (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    month     TEXT    NOT NULL,
    source    TEXT    NOT NULL,
    plays     INTEGER NOT NULL,
    streams   INTEGER NOT NULL,
    ms_played INTEGER NOT NULL,
    PRIMARY KEY (user_id, month, source)
) WITHOUT ROWID;
