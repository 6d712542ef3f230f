-- The content files of every version a session was started from, keyed by
-- the content version (its hash, bit-cast as BIGINT like every u64). A
-- server that reloads content, or restarts on changed assets, rebuilds a
-- saved session from its own version's files, not from what is on disk now.
-- Written once per version (a repeat writes nothing), never updated.
CREATE TABLE content_versions (
    version    BIGINT PRIMARY KEY,
    files      BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
