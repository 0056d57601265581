-- Whole-history totals per album, as user_tracks and user_artists hold them per track and
-- artist: all-time analytics rank albums without summing every month of every album.
-- Kept on write (mtm.history) and moved with a track that learns its album (below).
CREATE TABLE user_albums (
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    album_id  INTEGER NOT NULL REFERENCES albums(id),
    plays     INTEGER NOT NULL,
    ms_played INTEGER NOT NULL,
    PRIMARY KEY (user_id, album_id)
) WITHOUT ROWID;
CREATE INDEX user_albums_album ON user_albums(album_id);

INSERT INTO user_albums (user_id, album_id, plays, ms_played)
SELECT ut.user_id, t.album_id, sum(ut.plays), sum(ut.ms_played)
FROM user_tracks ut JOIN tracks t ON t.id = ut.track_id
WHERE t.album_id IS NOT NULL GROUP BY ut.user_id, t.album_id;

CREATE TRIGGER track_album_moves_totals AFTER UPDATE OF album_id ON tracks
WHEN old.album_id IS NOT new.album_id
BEGIN
    UPDATE user_albums SET
        plays = plays - (SELECT ut.plays FROM user_tracks ut
                         WHERE ut.user_id = user_albums.user_id AND ut.track_id = new.id),
        ms_played = ms_played - (SELECT ut.ms_played FROM user_tracks ut
                                 WHERE ut.user_id = user_albums.user_id
                                   AND ut.track_id = new.id)
    WHERE album_id = old.album_id AND EXISTS (
        SELECT 1 FROM user_tracks ut WHERE ut.user_id = user_albums.user_id
          AND ut.track_id = new.id);
    -- An album none of whose tracks the listener played any more is gone, as a rebuild
    -- would leave it.
    DELETE FROM user_albums WHERE album_id = old.album_id AND NOT EXISTS (
        SELECT 1 FROM tracks t JOIN user_tracks ut ON ut.track_id = t.id
        WHERE t.album_id = old.album_id AND ut.user_id = user_albums.user_id);
    INSERT INTO user_albums (user_id, album_id, plays, ms_played)
        SELECT user_id, new.album_id, plays, ms_played FROM user_tracks
        WHERE track_id = new.id AND new.album_id IS NOT NULL AND true
        ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
            ms_played = ms_played + excluded.ms_played;
END;
