-- Plays per local month of every album a user played, so an album page ranks it against
-- every album of each month with a range count, as artists and tracks are ranked.
-- Filled by the rollup rebuild at start-up (history.ROLLUPS_VERSION 4).
CREATE TABLE album_months (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    album_id  INTEGER NOT NULL REFERENCES albums(id),
    month     TEXT    NOT NULL,
    plays     INTEGER NOT NULL,
    ms_played INTEGER NOT NULL,
    PRIMARY KEY (user_id, album_id, month)
) WITHOUT ROWID;
CREATE INDEX album_months_rank ON album_months(user_id, month, plays);
CREATE INDEX album_months_album ON album_months(album_id);
CREATE INDEX track_months_track ON track_months(track_id);

-- A track can learn its album later (an import's name-only album, then the API's): its
-- months move with it, for every listener, whichever code changed the track.
CREATE TRIGGER track_album_moves AFTER UPDATE OF album_id ON tracks
WHEN old.album_id IS NOT new.album_id
BEGIN
    UPDATE album_months SET
        plays = plays - (SELECT m.plays FROM track_months m WHERE m.user_id = album_months.user_id
                         AND m.track_id = new.id AND m.month = album_months.month),
        ms_played = ms_played - (SELECT m.ms_played FROM track_months m
                                 WHERE m.user_id = album_months.user_id
                                   AND m.track_id = new.id AND m.month = album_months.month)
    WHERE album_id = old.album_id AND EXISTS (
        SELECT 1 FROM track_months m WHERE m.user_id = album_months.user_id
          AND m.track_id = new.id AND m.month = album_months.month);
    -- A month the album no longer has is gone, as a rebuild would leave it.
    DELETE FROM album_months WHERE album_id = old.album_id AND plays = 0 AND ms_played = 0;
    INSERT INTO album_months (user_id, album_id, month, plays, ms_played)
        SELECT user_id, new.album_id, month, plays, ms_played FROM track_months
        WHERE track_id = new.id AND new.album_id IS NOT NULL AND true
        ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
            ms_played = ms_played + excluded.ms_played;
END;
