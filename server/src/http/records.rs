//! The public records under `/v1`: map metadata (`/v1/maps`,
//! `/v1/maps/{key}`), a map's leaderboard and latest matches, and a
//! player's history, read from the database through Redis when Redis is
//! configured.
//!
//! Cache-aside: a read tries Redis first; on a miss it reads the database
//! and stores the JSON answer for [`CACHE_TTL`]. The persister deletes the
//! records a session's end changes once the end is written, so a finished
//! game shows at once; the TTL bounds what a lost deletion (or a fill racing
//! an end) can leave stale. The cache is an optimisation, never a
//! dependency: with its circuit open, or on a failed or slow call, the
//! database answers and `rampart_cache_requests_total{result="error"}`
//! counts it. Unknown maps are 404 and not cached, so requests for made-up
//! keys cannot fill Redis.

use std::future::Future;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_persistence::{
    CachedRecord, Database, DbError, HotError, HotStore, LeaderboardEntry, MapRecord, MatchSummary,
    PlayerGame,
};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::host::SessionId;

/// How long a cached answer lives. Ends invalidate what they change, so
/// this only bounds staleness when an invalidation is lost (Redis down at
/// the end, a fill racing it) or when new content changes map metadata at
/// a deploy; a minute is short enough for both and still takes a popular
/// leaderboard off the database almost entirely.
const CACHE_TTL: Duration = Duration::from_secs(60);

/// How long a read waits for Redis before asking the database instead: a
/// slow cache must not cost more than the query it saves (REST p99 goal:
/// 200 ms).
const CACHE_WAIT: Duration = Duration::from_millis(100);

/// Page size when the request names none.
const DEFAULT_LIMIT: u32 = 20;

/// The largest page: every page is one indexed query, but its size bounds
/// the work and the cached bytes a request can cause.
const MAX_LIMIT: u32 = 100;

/// The cache has one form of each map record: the whole answer.
const WHOLE: &str = "all";

/// Where the records are read from.
pub(super) struct Records {
    database: Database,
    hot: Option<HotStore>,
}

impl Records {
    pub(super) fn new(database: Database, hot: Option<HotStore>) -> Self {
        Self { database, hot }
    }
}

/// A map as `/v1/maps` shows it.
#[derive(Serialize)]
struct MapView<'a> {
    key: &'a str,
    name: &'a str,
    width: u32,
    height: u32,
    /// 16 hex digits, like every hash and id in the API.
    content_hash: String,
}

impl<'a> From<&'a MapRecord> for MapView<'a> {
    fn from(map: &'a MapRecord) -> Self {
        Self {
            key: &map.key,
            name: &map.name,
            width: map.width,
            height: map.height,
            content_hash: format!("{:016x}", map.content_hash),
        }
    }
}

/// One line of a leaderboard, best first.
#[derive(Serialize)]
struct LeaderboardLine<'a> {
    session_id: SessionId,
    seat: u8,
    player_id: &'a str,
    player_name: Option<&'a str>,
    score: u32,
    kills: u32,
    victory: bool,
}

impl<'a> From<&'a LeaderboardEntry> for LeaderboardLine<'a> {
    fn from(entry: &'a LeaderboardEntry) -> Self {
        Self {
            session_id: SessionId(entry.session_id),
            seat: entry.seat,
            player_id: &entry.player_id,
            player_name: entry.player_name.as_deref(),
            score: entry.score,
            kills: entry.kills,
            victory: entry.victory,
        }
    }
}

/// One game of a player's history, newest first.
#[derive(Serialize)]
struct PlayerGameView<'a> {
    session_id: SessionId,
    map: &'a str,
    seat: u8,
    outcome: &'a str,
    ticks: u64,
    score: u32,
    kills: u32,
    leaks: u32,
    gold_earned: u32,
    victory: bool,
    ended_unix_ms: i64,
}

impl<'a> From<&'a PlayerGame> for PlayerGameView<'a> {
    fn from(game: &'a PlayerGame) -> Self {
        Self {
            session_id: SessionId(game.session_id),
            map: &game.map,
            seat: game.seat,
            outcome: &game.outcome,
            ticks: game.ticks,
            score: game.score,
            kills: game.kills,
            leaks: game.leaks,
            gold_earned: game.gold_earned,
            victory: game.victory,
            ended_unix_ms: game.ended_at,
        }
    }
}

/// One ended session of a map, newest first.
#[derive(Serialize)]
struct MatchView<'a> {
    session_id: SessionId,
    outcome: &'a str,
    ticks: u64,
    players: u8,
    ended_unix_ms: i64,
}

impl<'a> From<&'a MatchSummary> for MatchView<'a> {
    fn from(summary: &'a MatchSummary) -> Self {
        Self {
            session_id: SessionId(summary.session_id),
            outcome: &summary.outcome,
            ticks: summary.ticks,
            players: summary.players,
            ended_unix_ms: summary.ended_at,
        }
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        tracing::warn!(%error, "reading records from the database failed");
        match error {
            DbError::Connect(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the records database is unavailable; try again later",
            ),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reading the records failed",
            ),
        }
    }
}

/// `GET /v1/maps`: every map's metadata, by key.
pub(super) async fn list_maps(State(state): State<AppState>) -> Result<Response, ApiError> {
    let records = records(&state)?;
    read_through(&state, records, CachedRecord::Maps, WHOLE, async {
        let maps = records.database.maps().await?;
        json(&maps.iter().map(MapView::from).collect::<Vec<_>>())
    })
    .await
}

/// `GET /v1/maps/{key}`.
pub(super) async fn get_map(
    State(state): State<AppState>,
    key: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let records = records(&state)?;
    let key = map_key(key)?;
    read_through(&state, records, CachedRecord::Map(&key), WHOLE, async {
        let map = known_map(&records.database, &key).await?;
        json(&MapView::from(&map))
    })
    .await
}

/// `GET /v1/maps/{key}/leaderboard?limit=N`: people's best single-game
/// scores on the map.
pub(super) async fn leaderboard(
    State(state): State<AppState>,
    key: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    map_page(
        &state,
        key,
        query.as_deref(),
        |key| CachedRecord::Leaderboard(key),
        async |database, key, limit| {
            let board = database.leaderboard(key, limit).await?;
            json(&board.iter().map(LeaderboardLine::from).collect::<Vec<_>>())
        },
    )
    .await
}

/// `GET /v1/maps/{key}/matches?limit=N`: the map's latest ended sessions.
pub(super) async fn recent_matches(
    State(state): State<AppState>,
    key: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    map_page(
        &state,
        key,
        query.as_deref(),
        |key| CachedRecord::RecentMatches(key),
        async |database, key, limit| {
            let matches = database.recent_matches(key, limit).await?;
            json(&matches.iter().map(MatchView::from).collect::<Vec<_>>())
        },
    )
    .await
}

/// A page of one map's records, cached per page size: 404 for a map the
/// database does not know, else what `page` reads for the map and the
/// `limit` the query asks.
async fn map_page(
    state: &AppState,
    key: Result<Path<String>, PathRejection>,
    query: Option<&str>,
    record: for<'k> fn(&'k str) -> CachedRecord<'k>,
    page: impl AsyncFnOnce(&Database, &str, u32) -> Result<Vec<u8>, ApiError>,
) -> Result<Response, ApiError> {
    let records = records(state)?;
    let key = map_key(key)?;
    let limit = limit(query)?;
    read_through(state, records, record(&key), &limit.to_string(), async {
        known_map(&records.database, &key).await?;
        page(&records.database, &key, limit).await
    })
    .await
}

/// `GET /v1/players/{id}/history?limit=N`: the player's games. A player
/// with no games and an id nobody has are both an empty list: players are
/// recorded behind their join, so absence from the players table proves
/// nothing.
pub(super) async fn player_history(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let records = records(&state)?;
    let Ok(Path(player)) = id else {
        return Err(no_such_player());
    };
    let limit = limit(query.as_deref())?;
    let form = limit.to_string();
    read_through(
        &state,
        records,
        CachedRecord::PlayerHistory(&player),
        &form,
        async {
            let games = records.database.player_history(&player, limit).await?;
            json(&games.iter().map(PlayerGameView::from).collect::<Vec<_>>())
        },
    )
    .await
}

fn records(state: &AppState) -> Result<&Records, ApiError> {
    state.records.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "records are not served by this server",
        )
    })
}

fn no_such_map() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such map")
}

fn no_such_player() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such player")
}

/// A path that does not decode names no map, so it is a 404 like an
/// unknown one.
fn map_key(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(key)| key).map_err(|_| no_such_map())
}

async fn known_map(database: &Database, key: &str) -> Result<MapRecord, ApiError> {
    database.map(key).await?.ok_or_else(no_such_map)
}

/// The `limit` query parameter: absent is [`DEFAULT_LIMIT`]; anything but a
/// whole number from 1 to [`MAX_LIMIT`] is a 400 that says so. Other
/// parameters are ignored.
fn limit(query: Option<&str>) -> Result<u32, ApiError> {
    let mut given = None;
    for pair in query.unwrap_or_default().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != "limit" {
            continue;
        }
        if given.is_some() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "limit is given more than once",
            ));
        }
        given = Some(value);
    }
    let Some(text) = given else {
        return Ok(DEFAULT_LIMIT);
    };
    text.parse::<u32>()
        .ok()
        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("limit must be a whole number from 1 to {MAX_LIMIT}, not {text:?}"),
            )
        })
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|error| {
        tracing::error!(%error, "encoding records as JSON failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding the records failed",
        )
    })
}

fn json_response(bytes: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// How a read used the cache, counted once per read that could use it.
#[derive(Clone, Copy)]
enum CacheResult {
    /// Answered from Redis.
    Hit,
    /// Answered from the database and stored.
    Miss,
    /// Redis failed, was slow, or its circuit was open: the database
    /// answered.
    Error,
}

impl CacheResult {
    fn count(self) {
        let result = match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Error => "error",
        };
        metrics::counter!("rampart_cache_requests_total", "result" => result).increment(1);
    }
}

/// Answers `record` in `form` from the cache, or from `load` (the JSON bytes
/// from the database), storing what `load` gives. A failed `load` (404,
/// database down) is answered as such and never stored.
async fn read_through(
    state: &AppState,
    records: &Records,
    record: CachedRecord<'_>,
    form: &str,
    load: impl Future<Output = Result<Vec<u8>, ApiError>>,
) -> Result<Response, ApiError> {
    let Some(hot) = &records.hot else {
        return load.await.map(json_response);
    };
    if !state.redis_up() {
        CacheResult::Error.count();
        return load.await.map(json_response);
    }
    match within_cache_wait(hot.cached_record(record, form)).await {
        Ok(Some(bytes)) => {
            CacheResult::Hit.count();
            return Ok(json_response(bytes));
        }
        Ok(None) => {}
        Err(error) => {
            tracing::debug!(?record, %error, "cache read failed; reading the database");
            CacheResult::Error.count();
            return load.await.map(json_response);
        }
    }
    let bytes = load.await?;
    match within_cache_wait(hot.cache_record(record, form, &bytes, CACHE_TTL)).await {
        Ok(()) => CacheResult::Miss.count(),
        Err(error) => {
            tracing::debug!(?record, %error, "cache fill failed");
            CacheResult::Error.count();
        }
    }
    Ok(json_response(bytes))
}

/// A cache call given at most [`CACHE_WAIT`]; a failure or the timeout as
/// text for the log.
async fn within_cache_wait<T>(
    call: impl Future<Output = Result<T, HotError>>,
) -> Result<T, String> {
    match tokio::time::timeout(CACHE_WAIT, call).await {
        Ok(result) => result.map_err(|error| error.to_string()),
        Err(_) => Err(format!("no answer in {CACHE_WAIT:?}")),
    }
}
