-- What a sync saw besides plays: items of recently played that are not music tracks
-- (podcast episodes, tracks Spotify no longer has), counted so Settings can say so.
ALTER TABLE sync_runs ADD COLUMN items_skipped INTEGER NOT NULL DEFAULT 0;
