-- Every command a session accepted, from its start across every instance
-- that ran it: the session's command log, appended with each checkpoint
-- (in its transaction) rather than carried whole inside every checkpoint,
-- so a checkpoint costs what changed, not the whole game. Keyed by the
-- command's tick and its place among that tick's commands, so a retried
-- or an adopter's repeated append writes nothing twice.
CREATE TABLE session_log (
    session_id BIGINT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    tick       BIGINT NOT NULL,
    ordinal    INTEGER NOT NULL,
    command    BYTEA NOT NULL,
    PRIMARY KEY (session_id, tick, ordinal)
);
