-- Backups a user made from Settings, or that were taken automatically before a destructive
-- action. The files live under MTM_DATA_DIR/backups/<user id>/; this table is their index.
CREATE TABLE backups (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('manual', 'auto')),
    -- Why an automatic backup was taken, e.g. "before clearing all data".
    reason     TEXT,
    file_name  TEXT    NOT NULL,
    size_bytes INTEGER NOT NULL,
    plays      INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, file_name)
);
CREATE INDEX backups_user ON backups(user_id, created_at);
