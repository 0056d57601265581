-- Search ignores accents and case: each name's folded form (mtm.search.search_key), stored
-- beside it because SQLite cannot fold accents itself. Rows written in bulk by SQL (imports,
-- restores) are keyed just after (mtm.search.fill_missing_keys), found by the partial indexes.

ALTER TABLE artists ADD COLUMN search_key TEXT;
UPDATE artists SET search_key = mtm_search_key(name);
CREATE INDEX artists_search ON artists(search_key);
CREATE INDEX artists_unkeyed ON artists(id) WHERE search_key IS NULL;

ALTER TABLE albums ADD COLUMN search_key TEXT;
UPDATE albums SET search_key = mtm_search_key(name);
CREATE INDEX albums_search ON albums(search_key);
CREATE INDEX albums_unkeyed ON albums(id) WHERE search_key IS NULL;

ALTER TABLE tracks ADD COLUMN search_key TEXT;
UPDATE tracks SET search_key = mtm_search_key(name);
CREATE INDEX tracks_search ON tracks(search_key);
CREATE INDEX tracks_unkeyed ON tracks(id) WHERE search_key IS NULL;
