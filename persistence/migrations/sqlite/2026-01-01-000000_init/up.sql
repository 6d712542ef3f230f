-- The durable records of rampart (SQLite). Times are milliseconds since
-- the Unix epoch (BIGINT) so the same Diesel schema serves SQLite too; u64
-- values (session ids, seeds, hashes, content versions) are stored bit-cast
-- as BIGINT.

CREATE TABLE players (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);

CREATE TABLE maps (
    key          TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    content_hash BIGINT NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE sessions (
    id              BIGINT PRIMARY KEY,
    map             TEXT NOT NULL,
    scenario        TEXT,
    seed            BIGINT NOT NULL,
    players         SMALLINT NOT NULL,
    tick_hz         SMALLINT NOT NULL,
    content_version BIGINT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('lobby', 'running', 'ended')),
    owner_instance  TEXT,
    owner_epoch     BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    ended_at        BIGINT,
    end_reason      TEXT
);
-- Adoption: running sessions, and those one instance owns.
CREATE INDEX sessions_state_owner ON sessions (state, owner_instance);

CREATE TABLE checkpoints (
    session_id BIGINT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    epoch      BIGINT NOT NULL,
    tick       BIGINT NOT NULL,
    state_hash BIGINT NOT NULL,
    snapshot   BLOB NOT NULL,
    written_at BIGINT NOT NULL
);

-- One row per seat of an ended session. `map` is copied from the session so
-- the leaderboard is one index range scan, not a join over every session.
CREATE TABLE results (
    session_id  BIGINT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seat        SMALLINT NOT NULL,
    map         TEXT NOT NULL,
    player_id   TEXT,
    score       BIGINT NOT NULL,
    kills       BIGINT NOT NULL,
    leaks       BIGINT NOT NULL,
    gold_earned BIGINT NOT NULL,
    victory     BOOLEAN NOT NULL,
    PRIMARY KEY (session_id, seat)
);
CREATE INDEX results_player ON results (player_id);
-- The leaderboard: people's results of one map, best first, read in index
-- order (no sort) down to the limit.
CREATE INDEX results_leaderboard ON results (map, score DESC, session_id, seat)
    WHERE player_id IS NOT NULL;

CREATE TABLE match_history (
    session_id BIGINT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    map        TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    ticks      BIGINT NOT NULL,
    players    SMALLINT NOT NULL,
    ended_at   BIGINT NOT NULL
);
CREATE INDEX match_history_map_ended ON match_history (map, ended_at DESC, session_id DESC);
