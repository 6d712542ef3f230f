//! The fenced checkpoint upsert as one fixed statement, so that each
//! connection prepares it once. Diesel never caches an `ON CONFLICT DO
//! UPDATE` its query builder makes (the changeset could differ from one
//! call to the next), so built that way every checkpoint was parsed and
//! planned again: on SQLite in the server's own process, on PostgreSQL in
//! the database server, for the statement written most often.

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Binary};
use diesel::sqlite::Sqlite;

/// Stores a session's checkpoint, replacing the previous one, only while the
/// session's owner epoch is at most `epoch`; writes no row otherwise.
pub(super) struct FencedCheckpoint<'a> {
    pub session: i64,
    pub epoch: i64,
    pub tick: i64,
    pub state_hash: i64,
    pub snapshot: &'a [u8],
    pub written_at: i64,
}

impl FencedCheckpoint<'_> {
    /// `lock`: PostgreSQL locks the session row while it writes (`FOR
    /// UPDATE`), so a concurrent claim waits for the write, and a claim that
    /// commits first makes the select find nothing; SQLite has one writer.
    fn walk<'b, DB>(&'b self, mut out: AstPass<'_, 'b, DB>, lock: bool) -> QueryResult<()>
    where
        DB: Backend,
        i64: diesel::serialize::ToSql<BigInt, DB>,
        [u8]: diesel::serialize::ToSql<Binary, DB>,
    {
        out.push_sql(
            "INSERT INTO checkpoints (session_id, epoch, tick, state_hash, snapshot, written_at) \
             SELECT id, ",
        );
        out.push_bind_param::<BigInt, _>(&self.epoch)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.tick)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.state_hash)?;
        out.push_sql(", ");
        out.push_bind_param::<Binary, _>(self.snapshot)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.written_at)?;
        out.push_sql(" FROM sessions WHERE id = ");
        out.push_bind_param::<BigInt, _>(&self.session)?;
        out.push_sql(" AND owner_epoch <= ");
        out.push_bind_param::<BigInt, _>(&self.epoch)?;
        if lock {
            out.push_sql(" FOR UPDATE");
        }
        out.push_sql(
            " ON CONFLICT (session_id) DO UPDATE SET epoch = excluded.epoch, \
             tick = excluded.tick, state_hash = excluded.state_hash, \
             snapshot = excluded.snapshot, written_at = excluded.written_at",
        );
        Ok(())
    }
}

impl QueryFragment<Pg> for FencedCheckpoint<'_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.walk(out, true)
    }
}

impl QueryFragment<Sqlite> for FencedCheckpoint<'_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.walk(out, false)
    }
}

/// One statement text per backend, whatever the values: cached by type.
impl QueryId for FencedCheckpoint<'_> {
    type QueryId = FencedCheckpoint<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

/// For SQLite's batches, which run on its blocking thread with the
/// synchronous connection.
impl<Conn> diesel::RunQueryDsl<Conn> for FencedCheckpoint<'_> {}
