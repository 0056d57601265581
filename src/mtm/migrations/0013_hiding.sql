-- Hiding rules: plays a user leaves out of every figure, chart and playlist without deleting
-- them. A play a rule matches moves to hidden_plays, so every reader of plays and of the
-- rollups skips it for free; removing the rule moves it back (mtm.hiding).
CREATE TABLE hide_rules (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL CHECK (kind IN ('track', 'album', 'artist', 'context')),
    -- The track, album or (main) artist row; a context rule names a URI instead.
    target_id   INTEGER,
    context_uri TEXT,
    -- Only plays that ended in [starts_at, ends_at) (UTC seconds) when set: one night's repeat.
    starts_at   INTEGER,
    ends_at     INTEGER,
    created_at  INTEGER NOT NULL,
    CHECK ((kind = 'context') = (context_uri IS NOT NULL)),
    CHECK ((kind = 'context') = (target_id IS NULL)),
    CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
);
CREATE UNIQUE INDEX hide_rules_once ON hide_rules(
    user_id, kind, coalesce(target_id, context_uri), coalesce(starts_at, -1),
    coalesce(ends_at, -1));

-- The same columns as plays, plus the rule that hides each one.
CREATE TABLE hidden_plays (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    played_at   INTEGER NOT NULL,
    record_key  INTEGER NOT NULL,
    track_id    INTEGER NOT NULL REFERENCES tracks(id),
    artist_id   INTEGER NOT NULL REFERENCES artists(id),
    ms_played   INTEGER NOT NULL CHECK (ms_played >= 0),
    source      TEXT    NOT NULL CHECK (source IN ('api', 'export', 'account', 'demo')),
    context_uri TEXT,
    skipped     INTEGER,
    import_id   INTEGER REFERENCES imports(id) ON DELETE SET NULL,
    rule_id     INTEGER NOT NULL REFERENCES hide_rules(id),
    counted     INTEGER GENERATED ALWAYS AS (ms_played >= 30000) VIRTUAL,
    PRIMARY KEY (user_id, played_at, record_key)
) WITHOUT ROWID;
CREATE INDEX hidden_plays_rule ON hidden_plays(rule_id, ms_played);
CREATE INDEX hidden_plays_import ON hidden_plays(import_id) WHERE import_id IS NOT NULL;
CREATE INDEX hidden_plays_track ON hidden_plays(user_id, track_id);
CREATE INDEX hidden_plays_artist ON hidden_plays(user_id, artist_id);
