//! Real PostgreSQL and Redis for end-to-end tests of server fleets: each
//! test gets its own PostgreSQL schema (dropped afterwards) so servers see
//! only that test's sessions. Outside CI a missing service skips the test
//! with the reason printed; with `CI=true` it fails.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use rampart_persistence::{Database, DbOptions, HotOptions, HotStore};

/// The stores one test's servers share.
pub struct TestStores {
    /// For `--database-url`: the test database, searching the test's schema.
    pub database_url: String,
    /// For `--redis-url`.
    pub redis_url: String,
    /// For `--redis-prefix`: this test's own keys in the shared Redis, so
    /// tests running at once, and earlier runs, do not meet.
    pub redis_prefix: String,
    admin_url: String,
    schema: String,
    runtime: tokio::runtime::Runtime,
}

fn skip_or_fail(reason: &str) -> Option<TestStores> {
    assert!(
        !std::env::var("CI").is_ok_and(|value| value == "true"),
        "CI=true and {reason}"
    );
    eprintln!("skipping: {reason}");
    None
}

impl TestStores {
    /// A fresh schema in `RAMPART_TEST_DATABASE_URL` and the Redis at
    /// `RAMPART_TEST_REDIS_URL`, or `None` when they are not there (skip).
    ///
    /// # Panics
    /// With `CI=true` and a service missing, or if the schema cannot be made.
    pub fn new(name: &str) -> Option<TestStores> {
        let (Ok(admin_url), Ok(redis_url)) = (
            std::env::var("RAMPART_TEST_DATABASE_URL"),
            std::env::var("RAMPART_TEST_REDIS_URL"),
        ) else {
            return skip_or_fail("RAMPART_TEST_DATABASE_URL or RAMPART_TEST_REDIS_URL is not set");
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for store calls");
        let schema = format!("rampart_e2e_{name}_{}", std::process::id());
        let created = runtime.block_on(async {
            let mut admin = tokio::time::timeout(
                Duration::from_secs(5),
                AsyncPgConnection::establish(&admin_url),
            )
            .await
            .map_err(|_| "PostgreSQL did not answer in 5 s".to_owned())?
            .map_err(|error| format!("PostgreSQL is unreachable: {error}"))?;
            admin
                .batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
                ))
                .await
                .map_err(|error| error.to_string())?;
            let redis = HotStore::open(&redis_url, HotOptions::default())
                .await
                .map_err(|error| format!("Redis at {redis_url} is unreachable: {error}"))?;
            redis.ping().await.map_err(|error| error.to_string())
        });
        if let Err(reason) = created {
            return skip_or_fail(&reason);
        }
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        // The schema is made afresh, Redis keys are not: the time keeps a
        // rerun (same name, a recycled process id) off an earlier run's keys.
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Some(TestStores {
            database_url: format!("{admin_url}{separator}options=-csearch_path%3D{schema}"),
            redis_url,
            redis_prefix: format!("{schema}_{started}:"),
            admin_url,
            schema,
            runtime,
        })
    }

    /// Runs a store call to completion.
    pub fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    /// The test's database, as the servers see it.
    ///
    /// # Panics
    /// If it cannot be opened.
    pub fn database(&self) -> Database {
        let options = DbOptions {
            schema: Some(self.schema.clone()),
            pool_size: 2,
            ..DbOptions::default()
        };
        self.block_on(Database::open_with(&self.admin_url, options))
            .expect("open the test database")
    }

    /// The Redis the servers use, under their prefix.
    ///
    /// # Panics
    /// If it cannot be reached.
    pub fn hot(&self) -> HotStore {
        let options = HotOptions {
            prefix: self.redis_prefix.clone(),
            ..HotOptions::default()
        };
        self.block_on(HotStore::open(&self.redis_url, options))
            .expect("open Redis")
    }
}

impl Drop for TestStores {
    fn drop(&mut self) {
        let (url, schema) = (self.admin_url.clone(), self.schema.clone());
        let dropped = self.runtime.block_on(async move {
            let mut conn = AsyncPgConnection::establish(&url)
                .await
                .map_err(|error| error.to_string())?;
            conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await
                .map_err(|error| error.to_string())
        });
        if let Err(error) = dropped {
            eprintln!("could not drop test schema {}: {error}", self.schema);
        }
    }
}

/// A TCP proxy in front of a service that a test can cut (every connection
/// dropped, new ones closed at once) and restore, to play an outage.
pub struct Proxy {
    /// Where clients connect.
    pub port: u16,
    up: Arc<AtomicBool>,
}

impl Proxy {
    /// Proxies `127.0.0.1:<port>` to `upstream` (`host:port`).
    ///
    /// # Panics
    /// If it cannot listen.
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let up = Arc::new(AtomicBool::new(true));
        let upstream = upstream.to_owned();
        let accepting = up.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if !accepting.load(Ordering::Relaxed) {
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let up = accepting.clone();
                    std::thread::spawn(move || pipe(from, to, &up));
                }
            }
        });
        Proxy { port, up }
    }

    /// Drops every connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::Relaxed);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` to `to` until either closes or the proxy is cut.
fn pipe(mut from: TcpStream, mut to: TcpStream, up: &AtomicBool) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buffer = [0u8; 16 * 1024];
    while up.load(Ordering::Relaxed) {
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}
