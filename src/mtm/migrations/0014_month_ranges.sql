-- A period of whole months is summed from the monthly rollups (mtm.period_totals): read by
-- month, a range of three years reads its own months only, not every month of every track.
CREATE INDEX track_months_range ON track_months(user_id, month, track_id, plays, ms_played);
CREATE INDEX artist_months_range ON artist_months(user_id, month, artist_id, plays, ms_played);
CREATE INDEX album_months_range ON album_months(user_id, month, album_id, plays, ms_played);
