-- One lease table for all work that must not run twice at once (mtm.leases), replacing the
-- sync lease table and the playlists' own lease column; and what a playlist was asked for,
-- so the same request sent again soon after is recognised.

CREATE TABLE leases (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- What the lease is for: 'sync', 'playlist:<id>', ...
    name       TEXT    NOT NULL,
    holder     TEXT    NOT NULL,
    -- A crashed holder never gives its lease back; it lapses at this time instead.
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, name)
) WITHOUT ROWID;

-- A sync, import or clear running while the app is upgraded keeps its lease until it lapses.
INSERT INTO leases (user_id, name, holder, expires_at)
SELECT user_id, 'sync', holder, expires_at FROM sync_leases;
DROP TABLE sync_leases;

-- The old column named no holder; the request that held it can no longer give it back, so it
-- lapses at the same time as before.
INSERT INTO leases (user_id, name, holder, expires_at)
SELECT user_id, 'playlist:' || id, 'before-0009', lease_until FROM playlists
WHERE lease_until > 0 AND deleted_at IS NULL;
ALTER TABLE playlists DROP COLUMN lease_until;

-- The source, year, size and name asked for (JSON), for spotting a repeated request.
ALTER TABLE playlists ADD COLUMN request TEXT;
CREATE INDEX playlists_request ON playlists(user_id, request, created_at);
