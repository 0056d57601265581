-- Leases of the whole instance rather than of one user: the 'scheduler' lease names the one
-- worker (of several on this database) whose loop syncs everybody (mtm.instance).

CREATE TABLE instance_leases (
    name       TEXT PRIMARY KEY,
    -- mtm.jobs.make_holder(): kind:host:pid:nonce, so a dead holder on this host is seen.
    holder     TEXT    NOT NULL,
    -- A holder that stops renewing lets go at this time.
    expires_at INTEGER NOT NULL,
    -- When the holder last said it was alive (/healthz and the admin page read it).
    beat_at    INTEGER NOT NULL
) WITHOUT ROWID;

-- One row /healthz writes to prove the database takes writes (a full or read-only disk).
CREATE TABLE instance_health (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at INTEGER NOT NULL
);
