-- Playlist Manager: what each playlist should hold and how far making it on Spotify got.

-- The year a year_in_review playlist covers (NULL for the other sources).
ALTER TABLE playlists ADD COLUMN year INTEGER;
-- A request creating the playlist or adding its tracks holds it until then; a crashed request
-- lets go when the time passes, so the same form (or "Retry adding tracks") can finish the job.
ALTER TABLE playlists ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
-- What Spotify said when the last attempt failed, as shown to the user.
ALTER TABLE playlists ADD COLUMN last_error TEXT;
-- Deleted (unfollowed) playlists stay as tombstones so a resubmitted form cannot recreate them.
ALTER TABLE playlists ADD COLUMN deleted_at INTEGER;

-- The tracks chosen when the playlist was reserved, in order. playlists.tracks_added counts how
-- many of them (from position 0) are on Spotify, so a retry adds exactly the missing ones.
CREATE TABLE playlist_tracks (
    playlist_id INTEGER NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL CHECK (position >= 0),
    track_id    INTEGER NOT NULL REFERENCES tracks(id),
    PRIMARY KEY (playlist_id, position)
) WITHOUT ROWID;
