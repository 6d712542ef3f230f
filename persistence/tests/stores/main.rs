//! The store tests, in one binary so the fixtures are shared and built once:
//! the durable store on SQLite and PostgreSQL, the hot store on Redis, and
//! takeovers across both, and the write-behind `Persister` over them.

#![allow(clippy::unwrap_used)]

/// Polls `$cond` (which may `.await`) every 10 ms until it holds, failing
/// the test after `$limit` (10 s unless given).
macro_rules! eventually {
    ($what:expr, $cond:expr) => {
        eventually!($what, $cond, std::time::Duration::from_secs(10))
    };
    ($what:expr, $cond:expr, $limit:expr) => {{
        let deadline = std::time::Instant::now() + $limit;
        loop {
            if $cond {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {}",
                $what
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }};
}

/// Runs `$body(&Database, &TestRedis)` as two tests, `$sqlite` and
/// `$postgres`, each beside the test Redis.
macro_rules! with_redis_on_both_backends {
    ($body:ident => $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let Some(redis) = crate::support::TestRedis::open().await else {
                return;
            };
            let test = crate::support::TestDb::sqlite().await;
            $body(&test.db, &redis).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(redis) = crate::support::TestRedis::open().await else {
                return;
            };
            let Some(test) = crate::support::TestDb::postgres().await else {
                return;
            };
            $body(&test.db, &redis).await;
        }
    };
}

mod bench;
mod database;
mod hot;
mod persister;
mod support;
