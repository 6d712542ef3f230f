//! Sessions in the durable store: creating and claiming them (owner
//! epochs), fenced checkpoints with the command log lines since, reading
//! them back for adoption and `export-log`, and a session's end (results
//! and history in one transaction).

use super::fenced_checkpoint::FencedCheckpoint;
use super::*;

impl Database {
    /// Records a new session, unowned (epoch 0): the creator claims it next.
    ///
    /// # Errors
    /// `SessionExists`, `Connect` or `Query`.
    pub async fn create_session(&self, row: &SessionRow) -> Result<(), DbError> {
        let now = now_ms();
        let values = (
            sessions::id.eq(to_db(row.id)),
            sessions::map.eq(&row.map),
            sessions::scenario.eq(row.scenario.as_deref()),
            sessions::seed.eq(to_db(row.seed)),
            sessions::players.eq(i16::from(row.players)),
            sessions::tick_hz.eq(to_db_u16(row.tick_hz, "tick rate")?),
            sessions::content_version.eq(to_db(row.content_version)),
            sessions::state.eq(row.state.as_str()),
            sessions::created_at.eq(now),
        );
        let inserted = with_conn!(self, |conn| {
            diesel::insert_into(sessions::table)
                .values(values)
                .execute(conn)
                .await
        });
        match inserted {
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                Err(DbError::SessionExists(row.id))
            }
            other => other.map(|_| ()).map_err(DbError::from),
        }
    }

    /// Takes ownership of a session that is not ended: sets the owner and
    /// increments the owner epoch in one statement, and returns the new
    /// epoch, the fencing token every later write of this owner carries.
    /// Writes carrying an older epoch are refused from now on.
    ///
    /// # Errors
    /// `UnknownSession` (absent or ended), `Connect` or `Query`.
    pub async fn claim(&self, session: u64, instance: &str) -> Result<u64, DbError> {
        let epoch: Option<i64> = with_conn!(self, |conn| {
            diesel::update(
                sessions::table
                    .filter(sessions::id.eq(to_db(session)))
                    .filter(sessions::state.ne(RowState::Ended.as_str())),
            )
            .set((
                sessions::owner_epoch.eq(sessions::owner_epoch + 1),
                sessions::owner_instance.eq(instance),
            ))
            .returning(sessions::owner_epoch)
            .get_result(conn)
            .await
            .optional()?
        });
        epoch.map(from_db).ok_or(DbError::UnknownSession(session))
    }

    /// Stores the session's latest checkpoint, replacing the previous one,
    /// and appends `log` (the commands accepted since the last checkpoint)
    /// to the session's command log, in one transaction, unless a newer
    /// owner has claimed the session since `epoch` was issued: then nothing
    /// is written and `Fenced` says so. Log lines already stored (a retry,
    /// an adopter repeating its predecessor's last ones) are kept as they
    /// are.
    ///
    /// # Errors
    /// `Fenced`, `UnknownSession`, `OutOfRange`, `Connect` or `Query`.
    pub async fn checkpoint(
        &self,
        session: u64,
        epoch: u64,
        tick: u64,
        state_hash: u64,
        snapshot: &[u8],
        log: &[LoggedCommand],
    ) -> Result<(), DbError> {
        let write = CheckpointWrite {
            session,
            epoch,
            tick,
            state_hash,
            snapshot: Arc::from(snapshot),
            log: Arc::from(log),
        };
        let mut answers = self.checkpoints(vec![write]).await?;
        answers.pop().unwrap_or(Ok(()))
    }

    /// Writes many sessions' checkpoints as [`Database::checkpoint`] writes
    /// one, all in one transaction: one commit for the batch, and on SQLite
    /// one trip to a blocking thread instead of one per statement. Hosting
    /// a thousand sessions without Redis checkpoints a thousand a second;
    /// written one by one, waking threads for them cost the server about a
    /// quarter of its CPU.
    ///
    /// Answers each write in order: `Ok`, or why that one wrote nothing
    /// (`Fenced`, `UnknownSession`, `OutOfRange`); the others are written
    /// all the same.
    ///
    /// # Errors
    /// `Connect` or `Query`: then nothing of the batch is written.
    pub async fn checkpoints(
        &self,
        batch: Vec<CheckpointWrite>,
    ) -> Result<Vec<Result<(), DbError>>, DbError> {
        let prepared = batch
            .into_iter()
            .map(PreparedCheckpoint::new)
            .collect::<Vec<_>>();
        match &self.backend {
            Backend::Postgres(pool) => {
                let mut pooled = pool
                    .get()
                    .await
                    .map_err(|error| DbError::Connect(error.to_string()))?;
                let conn: &mut AsyncPgConnection = &mut pooled;
                conn.transaction(async |conn| {
                    let mut answers = Vec::with_capacity(prepared.len());
                    for item in prepared {
                        let item = match item {
                            Ok(item) => item,
                            Err(refused) => {
                                answers.push(Err(refused));
                                continue;
                            }
                        };
                        if item.fenced().execute(conn).await? == 0 {
                            answers.push(Err(refusal!(conn, item.session, item.epoch)));
                            continue;
                        }
                        // Bound parameters per statement are limited (65,535).
                        for chunk in item.lines().chunks(4096) {
                            diesel::insert_into(session_log::table)
                                .values(chunk)
                                .on_conflict_do_nothing()
                                .execute(conn)
                                .await?;
                        }
                        answers.push(Ok(()));
                    }
                    Ok::<_, DbError>(answers)
                })
                .await
            }
            Backend::Sqlite { conn, .. } => {
                let mut guard = conn.lock().await;
                let answers = guard
                    .spawn_blocking(move |conn| {
                        conn.transaction(|conn| {
                            let mut answers = Vec::with_capacity(prepared.len());
                            for item in prepared {
                                answers.push(match item {
                                    Ok(item) => write_sqlite(conn, &item)?,
                                    Err(refused) => Err(refused),
                                });
                            }
                            Ok(answers)
                        })
                    })
                    .await?;
                Ok(answers)
            }
        }
    }

    /// The session's command log: every command it accepted, from its start
    /// across every instance that ran it, in order, up to its latest
    /// checkpoint. For `rampart export-log` and audits.
    ///
    /// # Errors
    /// `Connect`, `Query` or `Corrupt`.
    pub async fn command_log(&self, session: u64) -> Result<Vec<LoggedCommand>, DbError> {
        let rows: Vec<(i64, i32, Vec<u8>)> = with_conn!(self, |conn| {
            session_log::table
                .filter(session_log::session_id.eq(to_db(session)))
                .order((session_log::tick.asc(), session_log::ordinal.asc()))
                .select((
                    session_log::tick,
                    session_log::ordinal,
                    session_log::command,
                ))
                .load(conn)
                .await?
        });
        rows.into_iter()
            .map(|(tick, ordinal, command)| {
                Ok(LoggedCommand {
                    tick: from_db(tick),
                    ordinal: u32::try_from(ordinal).map_err(|_| DbError::Corrupt {
                        what: "command ordinal",
                        value: ordinal.to_string(),
                    })?,
                    command,
                })
            })
            .collect()
    }

    /// The session's latest checkpoint, for adoption without Redis.
    ///
    /// # Errors
    /// `Connect` or `Query`.
    pub async fn load_checkpoint(&self, session: u64) -> Result<Option<Checkpoint>, DbError> {
        let row: Option<(i64, i64, i64, i64, Vec<u8>, i64)> = with_conn!(self, |conn| {
            checkpoints::table
                .find(to_db(session))
                .select(CHECKPOINT_COLUMNS)
                .first(conn)
                .await
                .optional()?
        });
        Ok(
            row.map(|(id, epoch, tick, hash, snapshot, written_at)| Checkpoint {
                session_id: from_db(id),
                epoch: from_db(epoch),
                tick: from_db(tick),
                state_hash: from_db(hash),
                snapshot,
                written_at,
            }),
        )
    }

    /// One session with its ownership, for adoption (what to rebuild) and
    /// the admin API.
    ///
    /// # Errors
    /// `Connect`, `Query` or `Corrupt`.
    pub async fn session(&self, session: u64) -> Result<Option<SessionRecord>, DbError> {
        type Row = (
            i64,
            String,
            Option<String>,
            i64,
            i16,
            i16,
            i64,
            String,
            Option<String>,
            i64,
            i64,
            Option<i64>,
            Option<String>,
        );
        let row: Option<Row> = with_conn!(self, |conn| {
            sessions::table
                .find(to_db(session))
                .select((
                    sessions::id,
                    sessions::map,
                    sessions::scenario,
                    sessions::seed,
                    sessions::players,
                    sessions::tick_hz,
                    sessions::content_version,
                    sessions::state,
                    sessions::owner_instance,
                    sessions::owner_epoch,
                    sessions::created_at,
                    sessions::ended_at,
                    sessions::end_reason,
                ))
                .first(conn)
                .await
                .optional()?
        });
        let Some((
            id,
            map,
            scenario,
            seed,
            seats,
            tick_hz,
            content_version,
            state,
            owner_instance,
            owner_epoch,
            created_at,
            ended_at,
            end_reason,
        )) = row
        else {
            return Ok(None);
        };
        let state = RowState::parse(&state).ok_or_else(|| DbError::Corrupt {
            what: "sessions.state",
            value: state.clone(),
        })?;
        Ok(Some(SessionRecord {
            row: SessionRow {
                id: from_db(id),
                map,
                scenario,
                seed: from_db(seed),
                players: narrow(seats, "sessions.players")?,
                tick_hz: narrow(tick_hz, "sessions.tick_hz")?,
                content_version: from_db(content_version),
                state,
            },
            owner_instance,
            owner_epoch: from_db(owner_epoch),
            created_at,
            ended_at,
            end_reason,
        }))
    }

    /// Every running session with its owner and epoch: an instance that
    /// starts, or sees a lease expire, adopts the ones whose owner is gone.
    ///
    /// # Errors
    /// `Connect` or `Query`.
    pub async fn running_sessions(&self) -> Result<Vec<RunningSession>, DbError> {
        let rows: Vec<(i64, Option<String>, i64)> = with_conn!(self, |conn| {
            sessions::table
                .filter(sessions::state.eq(RowState::Running.as_str()))
                .order(sessions::id.asc())
                .select((
                    sessions::id,
                    sessions::owner_instance,
                    sessions::owner_epoch,
                ))
                .load(conn)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, owner_instance, epoch)| RunningSession {
                id: from_db(id),
                owner_instance,
                owner_epoch: from_db(epoch),
            })
            .collect())
    }

    /// Ends a session (fenced) and writes its per-seat results and its
    /// history line in the same transaction, so a reader never sees an
    /// ended session without results. Repeating it (a retry after a lost
    /// reply) rewrites the same rows.
    ///
    /// # Errors
    /// `Fenced`, `UnknownSession`, `Connect` or `Query`.
    pub async fn finish(
        &self,
        session: u64,
        epoch: u64,
        end_reason: &str,
        seats: &[SeatResult],
        outcome: &MatchOutcome,
    ) -> Result<(), DbError> {
        let now = now_ms();
        let id = to_db(session);
        let ticks = to_db(outcome.ticks);
        let players = i16::from(outcome.players);
        with_conn!(self, |conn| {
            conn.transaction(async |conn| {
                fence!(conn, session, epoch);
                let map: String = diesel::update(sessions::table.find(id))
                    .set((
                        sessions::state.eq(RowState::Ended.as_str()),
                        sessions::ended_at.eq(now),
                        sessions::end_reason.eq(end_reason),
                    ))
                    .returning(sessions::map)
                    .get_result(conn)
                    .await?;
                // One statement per seat (at most eight): diesel-async cannot
                // batch inserts on SQLite, and the transaction makes them one
                // commit.
                for seat in seats {
                    let values = (
                        results::session_id.eq(id),
                        results::seat.eq(i16::from(seat.seat)),
                        results::map.eq(&map),
                        results::player_id.eq(seat.player_id.as_deref()),
                        results::score.eq(i64::from(seat.score)),
                        results::kills.eq(i64::from(seat.kills)),
                        results::leaks.eq(i64::from(seat.leaks)),
                        results::gold_earned.eq(i64::from(seat.gold_earned)),
                        results::victory.eq(seat.victory),
                    );
                    diesel::insert_into(results::table)
                        .values(values)
                        .on_conflict((results::session_id, results::seat))
                        .do_update()
                        .set((
                            results::player_id.eq(excluded(results::player_id)),
                            results::score.eq(excluded(results::score)),
                            results::kills.eq(excluded(results::kills)),
                            results::leaks.eq(excluded(results::leaks)),
                            results::gold_earned.eq(excluded(results::gold_earned)),
                            results::victory.eq(excluded(results::victory)),
                        ))
                        .execute(conn)
                        .await?;
                }
                diesel::insert_into(match_history::table)
                    .values((
                        match_history::session_id.eq(id),
                        match_history::map.eq(&map),
                        match_history::outcome.eq(&outcome.outcome),
                        match_history::ticks.eq(ticks),
                        match_history::players.eq(players),
                        match_history::ended_at.eq(now),
                    ))
                    .on_conflict(match_history::session_id)
                    .do_update()
                    .set((
                        match_history::outcome.eq(excluded(match_history::outcome)),
                        match_history::ticks.eq(excluded(match_history::ticks)),
                        match_history::players.eq(excluded(match_history::players)),
                        match_history::ended_at.eq(excluded(match_history::ended_at)),
                    ))
                    .execute(conn)
                    .await?;
                Ok::<_, DbError>(())
            })
            .await
        })
    }
}

/// One session's checkpoint for [`Database::checkpoints`]: what
/// [`Database::checkpoint`] takes, owned, so a batch can move to SQLite's
/// blocking thread.
#[derive(Clone, Debug)]
pub struct CheckpointWrite {
    /// The session.
    pub session: u64,
    /// The writer's owner epoch (its fencing token).
    pub epoch: u64,
    /// The tick the snapshot was taken at.
    pub tick: u64,
    /// The simulation's state hash at that tick.
    pub state_hash: u64,
    /// The saved session.
    pub snapshot: Arc<[u8]>,
    /// The commands accepted since the previous checkpoint (shared with
    /// the writer, which keeps them until this write is answered).
    pub log: Arc<[LoggedCommand]>,
}

/// A checkpoint with its values converted for the database.
struct PreparedCheckpoint {
    session: u64,
    epoch: u64,
    tick: i64,
    state_hash: i64,
    snapshot: Arc<[u8]>,
    written_at: i64,
    log: Arc<[LoggedCommand]>,
}

/// A row of `session_log`.
#[derive(Insertable)]
#[diesel(table_name = session_log)]
struct LogLine<'a> {
    session_id: i64,
    tick: i64,
    ordinal: i32,
    command: &'a [u8],
}

impl PreparedCheckpoint {
    /// `OutOfRange` when a command's ordinal does not fit the column.
    fn new(write: CheckpointWrite) -> Result<Self, DbError> {
        if let Some(line) = write.log.iter().find(|line| ordinal(line).is_none()) {
            return Err(DbError::OutOfRange {
                what: "command ordinal",
                value: line.ordinal.to_string(),
            });
        }
        Ok(Self {
            session: write.session,
            epoch: write.epoch,
            tick: to_db(write.tick),
            state_hash: to_db(write.state_hash),
            snapshot: write.snapshot,
            written_at: now_ms(),
            log: write.log,
        })
    }

    fn fenced(&self) -> FencedCheckpoint<'_> {
        FencedCheckpoint {
            session: to_db(self.session),
            epoch: to_db(self.epoch),
            tick: self.tick,
            state_hash: self.state_hash,
            snapshot: &self.snapshot,
            written_at: self.written_at,
        }
    }

    fn lines(&self) -> Vec<LogLine<'_>> {
        let session_id = to_db(self.session);
        self.log
            .iter()
            .filter_map(|line| {
                Some(LogLine {
                    session_id,
                    tick: to_db(line.tick),
                    // Every ordinal fits: `new` refused the checkpoint otherwise.
                    ordinal: ordinal(line)?,
                    command: &line.command,
                })
            })
            .collect()
    }
}

/// A command's ordinal as its column stores it, if it fits.
fn ordinal(line: &LoggedCommand) -> Option<i32> {
    i32::try_from(line.ordinal).ok()
}

/// One checkpoint of a batch on SQLite's blocking thread, inside the
/// batch's transaction: the inner error is why this one wrote nothing, the
/// outer one aborts the batch.
fn write_sqlite(
    conn: &mut SqliteConnection,
    item: &PreparedCheckpoint,
) -> Result<Result<(), DbError>, DieselError> {
    if diesel::RunQueryDsl::execute(item.fenced(), conn)? == 0 {
        let current: Option<i64> = diesel::RunQueryDsl::first(
            sessions::table
                .find(to_db(item.session))
                .select(sessions::owner_epoch),
            conn,
        )
        .optional()?;
        return Ok(Err(refused(item.session, item.epoch, current)));
    }
    // diesel cannot batch inserts on SQLite; the transaction makes them
    // one commit.
    for line in item.lines() {
        diesel::RunQueryDsl::execute(
            diesel::insert_into(session_log::table)
                .values(&line)
                .on_conflict_do_nothing(),
            conn,
        )?;
    }
    Ok(Ok(()))
}
