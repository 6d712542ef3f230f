//! A session's hot state: fenced pipelined writes of snapshots and command
//! streams, adoption (fence, then load) and forgetting.

use super::*;

impl HotStore {
    /// Writes many sessions in one pipeline (one round trip): each session's
    /// commands, then its snapshot if any, fenced per session by the write
    /// script. The outer error is Redis failing the whole call; the inner
    /// results, one per flush in order, say which sessions were refused.
    ///
    /// # Errors
    /// `Redis` for the whole batch.
    pub async fn flush(
        &self,
        flushes: &[SessionFlush<'_>],
    ) -> Result<Vec<Result<(), HotError>>, HotError> {
        if flushes.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        // Loading first makes EVALSHA safe after a Redis restart or failover
        // flushed the script cache; it costs one short command per batch.
        pipe.load_script(&self.write).ignore();
        let ttl = millis(self.options.ttl);
        for flush in flushes {
            let cmd = pipe
                .cmd("EVALSHA")
                .arg(self.write.get_hash())
                .arg(3)
                .arg(self.key(flush.session, "epoch"))
                .arg(self.key(flush.session, "snap"))
                .arg(self.key(flush.session, "cmds"))
                .arg(flush.epoch)
                .arg(ttl)
                .arg(self.options.max_commands);
            match &flush.snapshot {
                Some(snapshot) => cmd
                    .arg("1")
                    .arg(snapshot.tick)
                    .arg(snapshot.state_hash)
                    .arg(snapshot.bytes),
                None => cmd.arg("0").arg(0).arg(0).arg(""),
            };
            match flush.first_command {
                Some(first) => cmd.arg(first),
                None => cmd.arg(""),
            };
            for entry in flush.commands {
                cmd.arg(entry.tick).arg(entry.bytes.as_slice());
            }
        }
        let mut conn = self.conn.clone();
        let replies: Vec<(i64, String)> = pipe.query_async(&mut conn).await?;
        Ok(flushes
            .iter()
            .zip(replies)
            .map(|(flush, (code, value))| {
                let number = || {
                    value.parse::<u64>().map_err(|_| HotError::Corrupt {
                        session: flush.session,
                        what: "epoch or tick",
                    })
                };
                match code {
                    1 => Ok(()),
                    0 => Err(HotError::Fenced {
                        session: flush.session,
                        current: number()?,
                        ours: flush.epoch,
                    }),
                    _ => Err(HotError::OutOfOrder {
                        session: flush.session,
                        tick: flush
                            .commands
                            .first()
                            .map(|c| c.tick)
                            .or(flush.snapshot.as_ref().map(|s| s.tick))
                            .unwrap_or(0),
                        last: number()?,
                    }),
                }
            })
            .collect())
    }

    /// Fences the session at `epoch` (the one [`crate::Database::claim`]
    /// just returned), then loads it. Fencing first matters: until the new
    /// owner's first write, Redis still holds the old epoch and would take
    /// the old owner's writes; after it, the old owner is refused, and
    /// everything it wrote before is in what this returns.
    ///
    /// # Errors
    /// `Fenced` (an even newer owner exists), `Redis` or `Corrupt`.
    pub async fn adopt(&self, session: u64, epoch: u64) -> Result<Option<HotState>, HotError> {
        let raise_epoch = SessionFlush {
            session,
            epoch,
            commands: &[],
            first_command: None,
            snapshot: None,
        };
        let mut outcomes = self.flush(&[raise_epoch]).await?;
        outcomes.pop().unwrap_or(Ok(()))?;
        self.load(session).await
    }

    /// The session's hot state, read atomically: the stored epoch, the
    /// latest snapshot and the commands since. `None` when Redis has nothing
    /// for the session (never written, expired, or Redis lost it). Adopters
    /// use [`HotStore::adopt`]; a state without a snapshot there means
    /// falling back to the database checkpoint (or, with no commands
    /// either, the session's start).
    ///
    /// # Errors
    /// `Redis` or `Corrupt`.
    pub async fn load(&self, session: u64) -> Result<Option<HotState>, HotError> {
        type Snap = (Option<String>, Option<String>, Option<Vec<u8>>);
        let mut conn = self.conn.clone();
        let (epoch, snap, stream): (Option<String>, Snap, StreamRangeReply) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(self.key(session, "epoch"))
            .cmd("HMGET")
            .arg(self.key(session, "snap"))
            .arg("tick")
            .arg("hash")
            .arg("data")
            .cmd("XRANGE")
            .arg(self.key(session, "cmds"))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await?;
        let corrupt = |what| HotError::Corrupt { session, what };
        let parse = |text: &str, what| text.parse::<u64>().map_err(|_| corrupt(what));
        let Some(epoch) = epoch else {
            return Ok(None);
        };
        let epoch = parse(&epoch, "epoch")?;
        let snapshot = match snap {
            (Some(tick), Some(hash), Some(bytes)) => Some(HotSnapshot {
                tick: parse(&tick, "snapshot tick")?,
                state_hash: parse(&hash, "snapshot hash")?,
                bytes,
            }),
            _ => None,
        };
        let from = snapshot.as_ref().map_or(0, |s| s.tick);
        let mut commands = Vec::with_capacity(stream.ids.len());
        for entry in stream.ids {
            let tick = entry
                .id
                .split_once('-')
                .and_then(|(tick, _)| tick.parse::<u64>().ok())
                .ok_or_else(|| corrupt("command id"))?;
            let Some(Value::BulkString(bytes)) = entry.map.get("c") else {
                return Err(corrupt("command bytes"));
            };
            if tick >= from {
                commands.push(CommandEntry {
                    tick,
                    bytes: bytes.clone(),
                });
            }
        }
        Ok(Some(HotState {
            epoch,
            snapshot,
            commands,
        }))
    }

    /// Deletes the session's hot state and lease: it ended and its durable
    /// record is written.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn forget(&self, session: u64) -> Result<(), HotError> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.key(session, "epoch"))
            .arg(self.key(session, "snap"))
            .arg(self.key(session, "cmds"))
            .arg(self.key(session, "lease"))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }
}
