//! Ownership leases (one holder until it lapses or is released), renewed in
//! batches, and where each live instance is reached.

use super::*;

impl HotStore {
    /// Takes the session's lease if nobody holds it (`SET NX PX`): true when
    /// `instance` now holds it for `ttl`.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn acquire_lease(
        &self,
        session: u64,
        instance: &str,
        ttl: Duration,
    ) -> Result<bool, HotError> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(session, "lease"))
            .arg(instance)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    /// Extends the lease to `ttl` from now, only if `instance` holds it:
    /// false means the lease lapsed or another instance took it.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn renew_lease(
        &self,
        session: u64,
        instance: &str,
        ttl: Duration,
    ) -> Result<bool, HotError> {
        let mut conn = self.conn.clone();
        let renewed: i64 = self
            .renew
            .key(self.key(session, "lease"))
            .arg(instance)
            .arg(millis(ttl))
            .invoke_async(&mut conn)
            .await?;
        Ok(renewed == 1)
    }

    /// Gives the lease up (drain, end) so another instance can adopt at
    /// once; false when `instance` did not hold it.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn release_lease(&self, session: u64, instance: &str) -> Result<bool, HotError> {
        let mut conn = self.conn.clone();
        let released: i64 = self
            .release
            .key(self.key(session, "lease"))
            .arg(instance)
            .invoke_async(&mut conn)
            .await?;
        Ok(released == 1)
    }

    /// Who holds the session's lease now.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn lease_holder(&self, session: u64) -> Result<Option<String>, HotError> {
        let mut conn = self.conn.clone();
        let holder: Option<String> = redis::cmd("GET")
            .arg(self.key(session, "lease"))
            .query_async(&mut conn)
            .await?;
        Ok(holder)
    }

    /// Publishes where players reach `instance` (its public HTTP base URL)
    /// for `ttl`, so another instance can send a player whose session moved
    /// here on to it. Refreshed like a lease, it lapses with its instance.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn advertise(
        &self,
        instance: &str,
        url: &str,
        ttl: Duration,
    ) -> Result<(), HotError> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.instance_key(instance))
            .arg(url)
            .arg("PX")
            .arg(millis(ttl))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Where players reach `instance`, if it has advertised lately.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn advertised(&self, instance: &str) -> Result<Option<String>, HotError> {
        let mut conn = self.conn.clone();
        let url: Option<String> = redis::cmd("GET")
            .arg(self.instance_key(instance))
            .query_async(&mut conn)
            .await?;
        Ok(url)
    }

    fn instance_key(&self, instance: &str) -> String {
        format!("{}instance:{instance}", self.options.prefix)
    }

    /// [`HotStore::renew_lease`] for many sessions in one pipeline: the
    /// owner renews every session it runs each third of the lease, and one
    /// round trip per session would not scale to thousands.
    ///
    /// # Errors
    /// `Redis` for the whole batch.
    pub async fn renew_leases(
        &self,
        sessions: &[u64],
        instance: &str,
        ttl: Duration,
    ) -> Result<Vec<bool>, HotError> {
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.load_script(&self.renew).ignore();
        for &session in sessions {
            pipe.cmd("EVALSHA")
                .arg(self.renew.get_hash())
                .arg(1)
                .arg(self.key(session, "lease"))
                .arg(instance)
                .arg(millis(ttl));
        }
        let mut conn = self.conn.clone();
        let renewed: Vec<i64> = pipe.query_async(&mut conn).await?;
        Ok(renewed.into_iter().map(|r| r == 1).collect())
    }
}
