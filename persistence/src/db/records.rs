//! The records the HTTP API reads and the host keeps current: players,
//! maps, leaderboards, player histories and the latest matches.

use super::*;

impl Database {
    /// Records a visit: creates the player, or updates their name and
    /// `last_seen_at`.
    ///
    /// # Errors
    /// `Connect` or `Query`.
    pub async fn upsert_player(&self, id: &str, name: &str) -> Result<(), DbError> {
        let now = now_ms();
        with_conn!(self, |conn| {
            diesel::insert_into(players::table)
                .values((
                    players::id.eq(id),
                    players::name.eq(name),
                    players::created_at.eq(now),
                    players::last_seen_at.eq(now),
                ))
                .on_conflict(players::id)
                .do_update()
                .set((players::name.eq(name), players::last_seen_at.eq(now)))
                .execute(conn)
                .await?
        });
        Ok(())
    }

    /// One player, if known.
    ///
    /// # Errors
    /// `Connect` or `Query`.
    pub async fn player(&self, id: &str) -> Result<Option<PlayerRecord>, DbError> {
        let row: Option<(String, String, i64, i64)> = with_conn!(self, |conn| {
            players::table
                .find(id)
                .select((
                    players::id,
                    players::name,
                    players::created_at,
                    players::last_seen_at,
                ))
                .first(conn)
                .await
                .optional()?
        });
        Ok(
            row.map(|(id, name, created_at, last_seen_at)| PlayerRecord {
                id,
                name,
                created_at,
                last_seen_at,
            }),
        )
    }

    /// Stores a map's metadata (on content load and hot reload).
    ///
    /// # Errors
    /// `Connect` or `Query`.
    pub async fn upsert_map(&self, map: &MapRecord) -> Result<(), DbError> {
        let now = now_ms();
        let width = to_db_u32(map.width, "map width")?;
        let height = to_db_u32(map.height, "map height")?;
        let hash = to_db(map.content_hash);
        with_conn!(self, |conn| {
            diesel::insert_into(maps::table)
                .values((
                    maps::key.eq(&map.key),
                    maps::name.eq(&map.name),
                    maps::content_hash.eq(hash),
                    maps::width.eq(width),
                    maps::height.eq(height),
                    maps::updated_at.eq(now),
                ))
                .on_conflict(maps::key)
                .do_update()
                .set((
                    maps::name.eq(excluded(maps::name)),
                    maps::content_hash.eq(excluded(maps::content_hash)),
                    maps::width.eq(excluded(maps::width)),
                    maps::height.eq(excluded(maps::height)),
                    maps::updated_at.eq(excluded(maps::updated_at)),
                ))
                .execute(conn)
                .await?
        });
        Ok(())
    }

    /// One map's metadata, if stored.
    ///
    /// # Errors
    /// `Connect`, `Query` or `Corrupt`.
    pub async fn map(&self, key: &str) -> Result<Option<MapRecord>, DbError> {
        let row: Option<(String, String, i64, i32, i32)> = with_conn!(self, |conn| {
            maps::table
                .find(key)
                .select(MAP_COLUMNS)
                .first(conn)
                .await
                .optional()?
        });
        row.map(map_record).transpose()
    }

    /// Every stored map's metadata, by key: the primary key's order, so the
    /// read is one index scan and the answer is stable between calls.
    ///
    /// # Errors
    /// `Connect`, `Query` or `Corrupt`.
    pub async fn maps(&self) -> Result<Vec<MapRecord>, DbError> {
        let rows: Vec<(String, String, i64, i32, i32)> = with_conn!(self, |conn| {
            maps::table
                .order(maps::key.asc())
                .select(MAP_COLUMNS)
                .load(conn)
                .await?
        });
        rows.into_iter().map(map_record).collect()
    }

    /// A map's best single-game scores by people (bot seats excluded),
    /// highest first, with names: one query over the `(map, score)` index.
    ///
    /// # Errors
    /// `Connect`, `Query` or `Corrupt`.
    pub async fn leaderboard(
        &self,
        map: &str,
        limit: u32,
    ) -> Result<Vec<LeaderboardEntry>, DbError> {
        type Row = (i64, i16, String, Option<String>, i64, i64, bool);
        let rows: Vec<Row> = with_conn!(self, |conn| {
            results::table
                .left_join(players::table)
                .filter(results::map.eq(map))
                .filter(results::player_id.is_not_null())
                .order((
                    results::score.desc(),
                    results::session_id.asc(),
                    results::seat.asc(),
                ))
                .limit(i64::from(limit))
                .select((
                    results::session_id,
                    results::seat,
                    results::player_id.assume_not_null(),
                    players::name.nullable(),
                    results::score,
                    results::kills,
                    results::victory,
                ))
                .load(conn)
                .await?
        });
        rows.into_iter()
            .map(
                |(session_id, seat, player_id, player_name, score, kills, victory)| {
                    Ok(LeaderboardEntry {
                        session_id: from_db(session_id),
                        seat: narrow(seat, "results.seat")?,
                        player_id,
                        player_name,
                        score: narrow(score, "results.score")?,
                        kills: narrow(kills, "results.kills")?,
                        victory,
                    })
                },
            )
            .collect()
    }

    /// A player's games, newest first: one join of their results (by the
    /// player index) with the history lines.
    ///
    /// # Errors
    /// `Connect`, `Query` or `Corrupt`.
    pub async fn player_history(
        &self,
        player: &str,
        limit: u32,
    ) -> Result<Vec<PlayerGame>, DbError> {
        type Row = (i64, String, i16, String, i64, i64, i64, i64, i64, bool, i64);
        let rows: Vec<Row> = with_conn!(self, |conn| {
            results::table
                .inner_join(match_history::table)
                .filter(results::player_id.eq(player))
                .order((
                    match_history::ended_at.desc(),
                    results::session_id.desc(),
                    results::seat.asc(),
                ))
                .limit(i64::from(limit))
                .select((
                    results::session_id,
                    match_history::map,
                    results::seat,
                    match_history::outcome,
                    match_history::ticks,
                    results::score,
                    results::kills,
                    results::leaks,
                    results::gold_earned,
                    results::victory,
                    match_history::ended_at,
                ))
                .load(conn)
                .await?
        });
        rows.into_iter()
            .map(
                |(
                    session_id,
                    map,
                    seat,
                    outcome,
                    ticks,
                    score,
                    kills,
                    leaks,
                    gold_earned,
                    victory,
                    ended_at,
                )| {
                    Ok(PlayerGame {
                        session_id: from_db(session_id),
                        map,
                        seat: narrow(seat, "results.seat")?,
                        outcome,
                        ticks: from_db(ticks),
                        score: narrow(score, "results.score")?,
                        kills: narrow(kills, "results.kills")?,
                        leaks: narrow(leaks, "results.leaks")?,
                        gold_earned: narrow(gold_earned, "results.gold_earned")?,
                        victory,
                        ended_at,
                    })
                },
            )
            .collect()
    }

    /// A map's latest ended sessions, newest first (the `(map, ended_at)`
    /// index).
    ///
    /// # Errors
    /// `Connect`, `Query` or `Corrupt`.
    pub async fn recent_matches(
        &self,
        map: &str,
        limit: u32,
    ) -> Result<Vec<MatchSummary>, DbError> {
        let rows: Vec<(i64, String, i64, i16, i64)> = with_conn!(self, |conn| {
            match_history::table
                .filter(match_history::map.eq(map))
                .order((
                    match_history::ended_at.desc(),
                    match_history::session_id.desc(),
                ))
                .limit(i64::from(limit))
                .select((
                    match_history::session_id,
                    match_history::outcome,
                    match_history::ticks,
                    match_history::players,
                    match_history::ended_at,
                ))
                .load(conn)
                .await?
        });
        rows.into_iter()
            .map(|(session_id, outcome, ticks, players, ended_at)| {
                Ok(MatchSummary {
                    session_id: from_db(session_id),
                    outcome,
                    ticks: from_db(ticks),
                    players: narrow(players, "match_history.players")?,
                    ended_at,
                })
            })
            .collect()
    }
}
