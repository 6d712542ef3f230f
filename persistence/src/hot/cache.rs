//! The cache of the records the HTTP API reads from the database:
//! cache-aside reads, writes with a TTL, and invalidation after an end.

use super::*;

/// A record the HTTP API serves from the database through Redis
/// (cache-aside), named by what a write changes rather than by request.
///
/// Each record is one Redis hash, `<prefix>cache:<kind>:<name>`, with one
/// field per form of the answer (for a page, its size: `leaderboard?limit=10`
/// and `?limit=20` are two fields of one hash). A written result therefore
/// invalidates a record with one `DEL` whatever page sizes were asked for,
/// without knowing them. The kinds end in `:` and never prefix one another,
/// so no two records share a key whatever the names contain. Each record is
/// its own key (no hash tag): they are deleted one `DEL` each, so Redis
/// Cluster may put them in any slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CachedRecord<'a> {
    /// Every map's metadata.
    Maps,
    /// One map's metadata, by key.
    Map(&'a str),
    /// A map's leaderboard, by map key.
    Leaderboard(&'a str),
    /// A map's latest ended sessions, by map key.
    RecentMatches(&'a str),
    /// A player's games, by player id.
    PlayerHistory(&'a str),
}

impl CachedRecord<'_> {
    fn key(self, prefix: &str) -> String {
        match self {
            Self::Maps => format!("{prefix}cache:maps"),
            Self::Map(key) => format!("{prefix}cache:map:{key}"),
            Self::Leaderboard(map) => format!("{prefix}cache:leaderboard:{map}"),
            Self::RecentMatches(map) => format!("{prefix}cache:matches:{map}"),
            Self::PlayerHistory(player) => format!("{prefix}cache:history:{player}"),
        }
    }
}

impl HotStore {
    /// One form (e.g. a page size) of a cached record, if Redis has it.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn cached_record(
        &self,
        record: CachedRecord<'_>,
        form: &str,
    ) -> Result<Option<Vec<u8>>, HotError> {
        let mut conn = self.conn.clone();
        let bytes: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(record.key(&self.options.prefix))
            .arg(form)
            .query_async(&mut conn)
            .await?;
        Ok(bytes)
    }

    /// Stores one form of a record for at most `ttl` (counted from the
    /// record's first form; see [`CachedRecord`]). The TTL bounds how long a
    /// missed invalidation leaves a stale answer.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn cache_record(
        &self,
        record: CachedRecord<'_>,
        form: &str,
        bytes: &[u8],
        ttl: Duration,
    ) -> Result<(), HotError> {
        let mut conn = self.conn.clone();
        self.cache
            .key(record.key(&self.options.prefix))
            .arg(form)
            .arg(bytes)
            .arg(millis(ttl))
            .invoke_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Deletes records, every form of each, in one round trip: a write
    /// changed what they were read from.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn invalidate_records(&self, records: &[CachedRecord<'_>]) -> Result<(), HotError> {
        if records.is_empty() {
            return Ok(());
        }
        // One `DEL` per key, not one for all: keys in different Redis
        // Cluster slots cannot share a command.
        let mut pipe = redis::pipe();
        for record in records {
            pipe.cmd("DEL")
                .arg(record.key(&self.options.prefix))
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }
}
