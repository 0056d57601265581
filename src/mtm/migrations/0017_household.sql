-- The household page (mtm.household): who shares their listening with the other members of
-- this instance. Off by default: a user is a member only while their row is here, and
-- leaving deletes it, so nobody sees them from the next request on.
CREATE TABLE household_members (
    user_id   INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    joined_at INTEGER NOT NULL
);
