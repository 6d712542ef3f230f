//! Real stores for the store tests: a fresh PostgreSQL schema, a fresh
//! SQLite file or a fresh Redis key prefix per test, each removed when the
//! test ends (even by a panic), so tests run in parallel and leave nothing
//! behind. Outside CI a missing or unreachable service skips the test with
//! the reason printed; with `CI=true` it fails. A `Proxy` in front of a
//! service lets a test cut it off and restore it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use rampart_persistence::{
    CommandEntry, Database, DbOptions, FlushedSnapshot, HotError, HotOptions, HotStore, RowState,
    SessionFlush, SessionRow,
};
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

/// A running session's row, as the host hands it over in a start.
pub fn running_row(id: u64) -> SessionRow {
    SessionRow {
        id,
        map: "meadow".into(),
        scenario: None,
        seed: 1,
        players: 1,
        tick_hz: 30,
        content_version: 1,
        state: RowState::Running,
    }
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

    /// A connection of its own into this PostgreSQL schema, to play
    /// another instance mid-transaction; `None` on SQLite.
    pub async fn other_postgres_connection(&self) -> Option<AsyncPgConnection> {
        let Cleanup::Schema { url, name } = &self.cleanup else {
            return None;
        };
        let mut conn = AsyncPgConnection::establish(url).await.unwrap();
        conn.batch_execute(&format!("SET search_path TO {name}"))
            .await
            .unwrap();
        Some(conn)
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

    /// The key of a cached record, named as after the store's prefix
    /// (`cache:leaderboard:meadow`).
    pub fn cache_key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
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

impl TestRedis {
    /// The Redis server's `host:port`, for a proxy in front of it.
    pub fn address(&self) -> String {
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, r)| r);
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        rest.split('/').next().unwrap().to_owned()
    }

    /// Another store on the same key prefix through `url` (a proxy), so the
    /// test can read through `self.hot` what was written through it.
    pub async fn store_via(&self, url: &str, options: HotOptions) -> HotStore {
        let options = HotOptions {
            prefix: self.prefix.clone(),
            ..options
        };
        HotStore::open(url, options).await.unwrap()
    }
}

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Forwards both ways.
    Up,
    /// Forwards requests, swallows replies: the server acts, the client
    /// never hears (a write whose outcome is unknown).
    Mute,
    /// Closes every connection and refuses new ones: a dead store.
    Cut,
}

/// A TCP forwarder from an ephemeral local port to a real service, which
/// the test mutes, cuts and restores: the shared servers cannot be stopped,
/// but a client behind this sees the same thing as when they die.
pub struct Proxy {
    pub port: u16,
    link: tokio::sync::watch::Sender<Link>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (link, watch) = tokio::sync::watch::channel(Link::Up);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if *watch.borrow() == Link::Cut {
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut = watch.clone();
                let replies = watch.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let requests = async {
                        let mut buffer = vec![0u8; 64 * 1024];
                        loop {
                            let n = client_read.read(&mut buffer).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            server_write.write_all(&buffer[..n]).await?;
                        }
                    };
                    let answers = async {
                        let mut buffer = vec![0u8; 64 * 1024];
                        loop {
                            let n = server_read.read(&mut buffer).await?;
                            if n == 0 {
                                return Ok::<_, std::io::Error>(());
                            }
                            if *replies.borrow() == Link::Up {
                                client_write.write_all(&buffer[..n]).await?;
                            }
                        }
                    };
                    // Dropping the halves closes both connections.
                    tokio::select! {
                        _ = requests => {}
                        _ = answers => {}
                        _ = cut.wait_for(|link| *link == Link::Cut) => {}
                    }
                });
            }
        });
        Self { port, link, accept }
    }

    /// `scheme://127.0.0.1:<port>`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, link: Link) {
        self.link.send_replace(link);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.link.send_replace(Link::Cut);
        self.accept.abort();
    }
}

impl TestDb {
    /// The PostgreSQL server's `host:port` (`None` on SQLite), for a proxy.
    pub fn postgres_address(&self) -> Option<String> {
        let Cleanup::Schema { url, .. } = &self.cleanup else {
            return None;
        };
        let (_, rest) = url.split_once("://")?;
        let authority = rest.split('/').next()?;
        Some(
            authority
                .rsplit_once('@')
                .map_or(authority, |(_, a)| a)
                .to_owned(),
        )
    }

    /// This test's schema through a proxy on `port`: a second pool that sees
    /// the same rows, and fails when the proxy is cut.
    pub async fn postgres_via(&self, port: u16) -> Database {
        let Cleanup::Schema { url, name } = &self.cleanup else {
            panic!("not a PostgreSQL test database");
        };
        let (scheme, rest) = url.split_once("://").unwrap();
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let user = authority
            .rsplit_once('@')
            .map_or(String::new(), |(user, _)| format!("{user}@"));
        let proxied = format!("{scheme}://{user}127.0.0.1:{port}{path}");
        let options = DbOptions {
            schema: Some(name.clone()),
            pool_size: 2,
            connect_timeout: Duration::from_secs(1),
        };
        Database::open_with(&proxied, options).await.unwrap()
    }
}

/// Single-session writes for the hot-store tests, over the one write path
/// the product uses ([`HotStore::flush`]).
pub trait HotWrites {
    /// Replaces the session's snapshot (fenced) and drops the commands it
    /// already contains.
    async fn put_snapshot(
        &self,
        session: u64,
        epoch: u64,
        tick: u64,
        state_hash: u64,
        bytes: &[u8],
    ) -> Result<(), HotError>;

    /// Appends accepted commands to the session's stream (fenced).
    async fn append_commands(
        &self,
        session: u64,
        epoch: u64,
        commands: &[CommandEntry],
    ) -> Result<(), HotError>;
}

impl HotWrites for HotStore {
    async fn put_snapshot(
        &self,
        session: u64,
        epoch: u64,
        tick: u64,
        state_hash: u64,
        bytes: &[u8],
    ) -> Result<(), HotError> {
        flush_one(
            self,
            SessionFlush {
                session,
                epoch,
                commands: &[],
                first_command: None,
                snapshot: Some(FlushedSnapshot {
                    tick,
                    state_hash,
                    bytes,
                }),
            },
        )
        .await
    }

    async fn append_commands(
        &self,
        session: u64,
        epoch: u64,
        commands: &[CommandEntry],
    ) -> Result<(), HotError> {
        flush_one(
            self,
            SessionFlush {
                session,
                epoch,
                commands,
                first_command: None,
                snapshot: None,
            },
        )
        .await
    }
}

async fn flush_one(hot: &HotStore, flush: SessionFlush<'_>) -> Result<(), HotError> {
    let mut outcomes = hot.flush(&[flush]).await?;
    outcomes.pop().unwrap_or(Ok(()))
}
