//! A per-client-IP token bucket for the `/v1` API.
//!
//! Memory stays bounded however many addresses call: a bucket that has been
//! idle long enough to refill completely carries no information, so sweeps
//! drop it; IPv6 clients are keyed by their /64, which one host usually owns
//! whole; and past a hard cap, newcomers share a single overflow bucket
//! instead of growing the table.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Tracked addresses beyond which newcomers share the overflow bucket.
const MAX_TRACKED: usize = 65_536;

/// How often idle buckets are swept when the table is below its cap.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The key shared by newcomers once the table is full.
const OVERFLOW: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    last_sweep: Instant,
}

/// Token buckets keyed by client address.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    table: Mutex<Table>,
}

impl RateLimiter {
    /// A limiter refilling `per_second` tokens per second up to `burst`.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// Takes a token for `ip` at `now`; on refusal, returns how long until
    /// the next token (for `Retry-After`).
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let full = table.buckets.len() >= MAX_TRACKED;
        if full || now.saturating_duration_since(table.last_sweep) >= SWEEP_EVERY {
            self.sweep(&mut table, now);
        }
        let mut key = client_key(ip);
        if table.buckets.len() >= MAX_TRACKED && !table.buckets.contains_key(&key) {
            key = OVERFLOW;
        }
        let bucket = table.buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }

    /// Drops buckets that would have refilled completely by `now`.
    fn sweep(&self, table: &mut Table, now: Instant) {
        let refill = Duration::from_secs_f64(self.burst / self.per_second);
        table
            .buckets
            .retain(|_, bucket| now.saturating_duration_since(bucket.updated) < refill);
        table.last_sweep = now;
    }

    /// Addresses currently tracked.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .buckets
            .len()
    }
}

/// IPv4 addresses as they are; IPv6 by /64, except IPv4-mapped addresses,
/// which are the IPv4 client.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = v6.to_bits() & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from_bits(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn burst_then_rate() {
        let limiter = RateLimiter::new(2, 3);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(ip, t0).is_ok());
        }
        let wait = limiter.check(ip, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        assert!(limiter.check(ip, t0 + Duration::from_millis(500)).is_ok());
        assert!(limiter.check(ip, t0 + Duration::from_millis(500)).is_err());
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limiter.check(other, t0).is_ok(), "others are unaffected");
    }

    #[test]
    fn idle_buckets_are_pruned() {
        let limiter = RateLimiter::new(10, 10);
        let t0 = Instant::now();
        for i in 0..100u32 {
            limiter.check(IpAddr::from(i.to_be_bytes()), t0).unwrap();
        }
        assert_eq!(limiter.tracked(), 100);
        let later = t0 + SWEEP_EVERY;
        limiter.check("10.9.9.9".parse().unwrap(), later).unwrap();
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        let limiter = RateLimiter::new(1, 1);
        let t0 = Instant::now();
        limiter.check("2001:db8::1".parse().unwrap(), t0).unwrap();
        assert!(limiter.check("2001:db8::2".parse().unwrap(), t0).is_err());
        assert!(
            limiter
                .check("2001:db8:0:1::1".parse().unwrap(), t0)
                .is_ok()
        );
        limiter
            .check("::ffff:10.0.0.1".parse().unwrap(), t0)
            .unwrap();
        assert!(limiter.check("10.0.0.1".parse().unwrap(), t0).is_err());
    }
}
