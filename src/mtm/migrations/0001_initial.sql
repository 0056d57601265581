-- Users, tokens, catalogue, plays and the rollups the dashboard reads.
CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    spotify_id      TEXT    NOT NULL UNIQUE,
    display_name    TEXT    NOT NULL,
    image_url       TEXT,
    country         TEXT,
    created_at      INTEGER NOT NULL,
    last_login_at   INTEGER,
    -- Set when Spotify answers invalid_grant: the history stays, the user is asked to reconnect.
    reconnect_needed INTEGER NOT NULL DEFAULT 0
);

-- Spotify tokens live here only: never in a cookie or a page.
CREATE TABLE tokens (
    user_id       INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    access_token  TEXT    NOT NULL,
    refresh_token TEXT    NOT NULL,
    expires_at    INTEGER NOT NULL,
    scope         TEXT    NOT NULL,
    consented_at  INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE preferences (
    user_id        INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    timezone       TEXT NOT NULL DEFAULT 'UTC',
    week_start     INTEGER NOT NULL DEFAULT 0 CHECK (week_start IN (0, 6)),
    chart_metric   TEXT NOT NULL DEFAULT 'plays' CHECK (chart_metric IN ('plays', 'minutes')),
    playlist_source TEXT NOT NULL DEFAULT 'current_rotation'
);

CREATE TABLE artists (
    id                 INTEGER PRIMARY KEY,
    spotify_id         TEXT UNIQUE,
    name               TEXT NOT NULL,
    image_url          TEXT,
    popularity         INTEGER,
    details_fetched_at INTEGER
);
CREATE INDEX artists_name ON artists(name);

CREATE TABLE genres (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE artist_genres (
    artist_id INTEGER NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
    genre_id  INTEGER NOT NULL REFERENCES genres(id) ON DELETE CASCADE,
    PRIMARY KEY (artist_id, genre_id)
) WITHOUT ROWID;
CREATE INDEX artist_genres_genre ON artist_genres(genre_id);

CREATE TABLE albums (
    id           INTEGER PRIMARY KEY,
    spotify_id   TEXT UNIQUE,
    name         TEXT NOT NULL,
    artist_id    INTEGER REFERENCES artists(id),
    release_date TEXT,
    image_url    TEXT
);

CREATE TABLE tracks (
    id          INTEGER PRIMARY KEY,
    spotify_id  TEXT UNIQUE,
    name        TEXT NOT NULL,
    album_id    INTEGER REFERENCES albums(id),
    artist_id   INTEGER NOT NULL REFERENCES artists(id),
    duration_ms INTEGER,
    explicit    INTEGER
);
CREATE INDEX tracks_artist ON tracks(artist_id);
CREATE INDEX tracks_album ON tracks(album_id);

-- Every credited artist; tracks.artist_id is the first of them.
CREATE TABLE track_artists (
    track_id  INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    artist_id INTEGER NOT NULL REFERENCES artists(id),
    PRIMARY KEY (track_id, position)
) WITHOUT ROWID;
CREATE INDEX track_artists_artist ON track_artists(artist_id);

-- One row per play. The key (user, second the play ended) is what makes a play
-- seen by the API and again in a privacy export the same row.
CREATE TABLE plays (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    played_at   INTEGER NOT NULL,
    track_id    INTEGER NOT NULL REFERENCES tracks(id),
    artist_id   INTEGER NOT NULL REFERENCES artists(id),
    ms_played   INTEGER NOT NULL CHECK (ms_played >= 0),
    source      TEXT    NOT NULL CHECK (source IN ('api', 'export', 'demo')),
    context_uri TEXT,
    skipped     INTEGER,
    PRIMARY KEY (user_id, played_at)
) WITHOUT ROWID;
CREATE INDEX plays_user_track ON plays(user_id, track_id, played_at);
CREATE INDEX plays_user_artist ON plays(user_id, artist_id, played_at);

-- Rollups kept up to date on every write (history.add_plays), so that whole-history
-- figures never scan the plays table.
CREATE TABLE user_tracks (
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    track_id     INTEGER NOT NULL REFERENCES tracks(id),
    plays        INTEGER NOT NULL,
    ms_played    INTEGER NOT NULL,
    first_played INTEGER NOT NULL,
    last_played  INTEGER NOT NULL,
    PRIMARY KEY (user_id, track_id)
) WITHOUT ROWID;

CREATE TABLE user_artists (
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    artist_id    INTEGER NOT NULL REFERENCES artists(id),
    plays        INTEGER NOT NULL,
    ms_played    INTEGER NOT NULL,
    first_played INTEGER NOT NULL,
    last_played  INTEGER NOT NULL,
    PRIMARY KEY (user_id, artist_id)
) WITHOUT ROWID;

-- Days are local to the user's time zone; rebuilt when the time zone changes.
CREATE TABLE listening_days (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day       TEXT    NOT NULL,
    plays     INTEGER NOT NULL,
    ms_played INTEGER NOT NULL,
    PRIMARY KEY (user_id, day)
) WITHOUT ROWID;

CREATE TABLE sync_runs (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL DEFAULT 'recently_played',
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    outcome     TEXT    NOT NULL DEFAULT 'running'
                CHECK (outcome IN ('running', 'ok', 'failed', 'deferred')),
    plays_added INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    retry_at    INTEGER
);
CREATE INDEX sync_runs_user ON sync_runs(user_id, started_at);

CREATE TABLE playlists (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    spotify_id   TEXT,
    name         TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    track_count  INTEGER NOT NULL DEFAULT 0,
    tracks_added INTEGER NOT NULL DEFAULT 0,
    url          TEXT,
    idempotency_key TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX playlists_user ON playlists(user_id, created_at);

-- A sign-in in progress: the PKCE verifier stays on the server, bound to the browser
-- session that started it, and is used once.
CREATE TABLE oauth_states (
    state        TEXT PRIMARY KEY,
    verifier     TEXT    NOT NULL,
    binding      TEXT    NOT NULL,
    redirect_uri TEXT    NOT NULL,
    next_url     TEXT,
    created_at   INTEGER NOT NULL
);
