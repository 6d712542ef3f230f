//! Real stores for the store tests: a fresh PostgreSQL schema, a fresh
//! SQLite file or a fresh Redis key prefix per test, each removed when the
//! test ends (even by a panic), so tests run in parallel and leave nothing
//! behind. Outside CI a missing or unreachable service skips the test with
//! the reason printed; with `CI=true` it fails.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use rampart_persistence::{Database, DbOptions, HotOptions, HotStore};
use redis::Commands as _;

/// A name no other test (in this process or another) is using.
pub fn unique(stem: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{stem}_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A session id no other test uses either (ids share Redis hash slots and,
/// on PostgreSQL, nothing else: each test has its own schema).
pub fn session_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let base = u64::from(std::process::id()) << 32;
    base | NEXT.fetch_add(1, Ordering::Relaxed)
}

fn skip_or_fail(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {reason}");
    }
    eprintln!("skipping: {reason}");
}

/// A migrated database, dropped with the value.
pub struct TestDb {
    pub db: Database,
    cleanup: Cleanup,
}

enum Cleanup {
    Schema { url: String, name: String },
    File(PathBuf),
}

impl TestDb {
    /// A SQLite file under the temp directory (in a new subdirectory, so
    /// `open` has a parent to create).
    pub async fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(unique("rampart_test"));
        let db = Database::open(dir.join("data").join("rampart.db").to_str().unwrap())
            .await
            .unwrap();
        db.migrate().await.unwrap();
        Self {
            db,
            cleanup: Cleanup::File(dir),
        }
    }

    /// A new schema in `RAMPART_TEST_DATABASE_URL`, or `None` (skipped).
    pub async fn postgres() -> Option<Self> {
        let Ok(url) = std::env::var("RAMPART_TEST_DATABASE_URL") else {
            skip_or_fail("RAMPART_TEST_DATABASE_URL is not set");
            return None;
        };
        let connect =
            tokio::time::timeout(Duration::from_secs(5), AsyncPgConnection::establish(&url)).await;
        let mut admin = match connect {
            Ok(Ok(conn)) => conn,
            Ok(Err(error)) => {
                skip_or_fail(&format!("PostgreSQL at {url} is unreachable: {error}"));
                return None;
            }
            Err(_) => {
                skip_or_fail(&format!("PostgreSQL at {url} did not answer in 5 s"));
                return None;
            }
        };
        let name = unique("rampart_test");
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap();
        let cleanup = Cleanup::Schema {
            url: url.clone(),
            name: name.clone(),
        };
        let options = DbOptions {
            schema: Some(name),
            pool_size: 4,
            ..DbOptions::default()
        };
        let db = Database::open_with(&url, options).await.unwrap();
        let test = Self { db, cleanup };
        test.db.migrate().await.unwrap();
        Some(test)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Schema { url, name } => {
                // Drop may run inside the test's runtime (or while it
                // unwinds): drop the schema from a thread with its own.
                let (url, schema) = (url.clone(), name.clone());
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    runtime.block_on(async {
                        let mut conn = AsyncPgConnection::establish(&url)
                            .await
                            .map_err(|e| e.to_string())?;
                        conn.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                            .await
                            .map_err(|e| e.to_string())
                    })
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("could not drop test schema {name}");
                }
            }
        }
    }
}

/// A hot store on a fresh key prefix, its keys deleted with the value.
pub struct TestRedis {
    pub hot: HotStore,
    url: String,
    prefix: String,
}

impl TestRedis {
    /// `RAMPART_TEST_REDIS_URL` with a new prefix, or `None` (skipped).
    pub async fn open() -> Option<Self> {
        Self::open_with(HotOptions::default()).await
    }

    /// As `open`, with options (the prefix is replaced).
    pub async fn open_with(options: HotOptions) -> Option<Self> {
        let Ok(url) = std::env::var("RAMPART_TEST_REDIS_URL") else {
            skip_or_fail("RAMPART_TEST_REDIS_URL is not set");
            return None;
        };
        let prefix = format!("{}:", unique("rampart_test"));
        let options = HotOptions {
            prefix: prefix.clone(),
            ..options
        };
        match HotStore::open(&url, options).await {
            Ok(hot) => Some(Self { hot, url, prefix }),
            Err(error) => {
                skip_or_fail(&format!("Redis at {url} is unreachable: {error}"));
                None
            }
        }
    }

    /// A plain connection for looking under the store's hood.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// The key the store uses for one part of a session.
    pub fn key(&self, session: u64, part: &str) -> String {
        format!("{}sess:{{{session}}}:{part}", self.prefix)
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let Ok(mut conn) = redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection())
        else {
            return;
        };
        let keys: Vec<String> = match conn.scan_match(format!("{}*", self.prefix)) {
            Ok(iter) => iter.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}
