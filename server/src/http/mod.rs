//! The HTTP admin API: probes (`/health`, `/ready`), Prometheus `/metrics`,
//! session management, spectating, the content and status a page draws
//! with and the public records (maps, leaderboards, histories) under `/v1`,
//! and the web page itself (`/`, `/watch/{id}`, `/play`, `/assets/`).
//!
//! Every answer, errors included, is JSON (except `/metrics`), so clients and
//! load balancers never have to parse an HTML or empty error page. Probes and
//! metrics are neither rate limited nor authenticated: the orchestrator must
//! always be able to reach them.

mod content;
mod join;
mod limit;
mod records;
mod spectate;
mod status;
#[cfg(test)]
mod tests;
mod web;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use rampart_persistence::{Database, HotStore, PersistHandle, Store};
use serde_json::json;

use crate::config::Config;
use crate::host::{CreateSession, HostError, HostHandle, SessionId, SessionInfo};
use crate::reload::{ReloadOutcome, Reloader, Trigger};
use crate::telemetry::{HTTP_DURATION, HTTP_REQUESTS};

pub use join::JoinService;
use limit::RateLimiter;

/// Request bodies are small JSON objects; anything bigger is a mistake or an
/// attack, refused before it is buffered.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The Prometheus text exposition format version we render.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    host: HostHandle,
    metrics: PrometheusHandle,
    admin_token: Option<Arc<str>>,
    limiter: Arc<RateLimiter>,
    join: Option<Arc<JoinService>>,
    persistence: Option<PersistenceView>,
    records: Option<Arc<records::Records>>,
    reloader: Option<Arc<Reloader>>,
}

/// What `/ready` shows of the stores.
#[derive(Clone)]
struct PersistenceView {
    handle: PersistHandle,
    redis: bool,
}

impl AppState {
    /// State for a server configured by `config`, managing `host` and
    /// rendering `metrics`.
    pub fn new(host: HostHandle, metrics: PrometheusHandle, config: &Config) -> Self {
        Self {
            host,
            metrics,
            admin_token: config.admin_token.as_deref().map(Arc::from),
            limiter: Arc::new(RateLimiter::new(
                config.rate_limit_per_second,
                config.rate_limit_burst,
            )),
            join: None,
            persistence: None,
            records: None,
            reloader: None,
        }
    }

    /// Enables `POST /v1/admin/reload`: the content directory is read
    /// again by `reloader`.
    pub fn with_reload(mut self, reloader: Arc<Reloader>) -> Self {
        self.reloader = Some(reloader);
        self
    }

    /// Shows the stores' state in `/ready`; `redis` says whether Redis is
    /// configured at all.
    pub fn with_persistence(mut self, handle: PersistHandle, redis: bool) -> Self {
        self.persistence = Some(PersistenceView { handle, redis });
        self
    }

    /// Serves the public records (`/v1/maps`, leaderboards, histories) from
    /// `database`, through `hot` as a cache when Redis is configured.
    pub fn with_records(mut self, database: Database, hot: Option<HotStore>) -> Self {
        self.records = Some(Arc::new(records::Records::new(database, hot)));
        self
    }

    /// False while the persister's breaker holds Redis's circuit open:
    /// reads that would only wait for a failing call skip Redis then.
    fn redis_up(&self) -> bool {
        self.persistence
            .as_ref()
            .is_none_or(|view| view.handle.store_up(Store::Redis))
    }

    /// Enables `/v1/join`: players get seats and tokens for the game
    /// transports.
    pub fn with_join(mut self, join: JoinService) -> Self {
        self.join = Some(Arc::new(join));
        self
    }
}

/// The whole API. Serve it with [`serve`] so handlers see the client address
/// (the rate limit keys on it).
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/v1/sessions", get(list_sessions).post(create_session))
        .route("/v1/sessions/{id}", get(get_session).delete(end_session))
        .route("/v1/sessions/{id}/join", post(join::join_session))
        .route("/v1/sessions/{id}/spectate", post(spectate::spectate))
        .route("/v1/join", post(join::join))
        .route("/v1/maps", get(records::list_maps))
        .route("/v1/maps/{key}", get(records::get_map))
        .route("/v1/maps/{key}/leaderboard", get(records::leaderboard))
        .route("/v1/maps/{key}/matches", get(records::recent_matches))
        .route("/v1/maps/{key}/grid", get(content::grid))
        .route("/v1/content", get(content::content))
        .route("/v1/status", get(status::status))
        .route("/v1/players/{id}/history", get(records::player_history))
        .route("/v1/admin/reload", post(reload_content))
        .route_layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .route("/", get(web::shell))
        .route("/watch/{id}", get(web::shell))
        .route("/play", get(web::shell))
        .route("/assets/{file}", get(web::asset))
        .merge(v1)
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(record_metrics))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes the
/// requests in flight. Clients are identified by the connection's peer
/// address; `X-Forwarded-For` is not trusted, so behind a proxy the rate
/// limit applies to the proxy as a whole.
///
/// # Errors
///
/// The listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// An error answer: a status and `{"error": message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    /// `Location` of a redirect, or `Retry-After` of a 503.
    header: Option<(HeaderName, HeaderValue)>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            header: None,
        }
    }

    fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.header = Some((name, value));
        self
    }

    fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, HostError::NotFound.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if let Some((name, value)) = self.header {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<HostError> for ApiError {
    fn from(error: HostError) -> Self {
        let status = match error {
            HostError::Full { .. }
            | HostError::Overloaded(_)
            | HostError::Draining
            | HostError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            HostError::NotFound => StatusCode::NOT_FOUND,
            HostError::SessionFull => StatusCode::CONFLICT,
            HostError::SeatLost => StatusCode::GONE,
            HostError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        let answer = Self::new(status, error.to_string());
        match error {
            // Late ticks and snapshots pass within moments (a burst of
            // creations, a stall): tell clients to come back rather than
            // give up.
            HostError::Overloaded(_) => {
                answer.with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
            }
            _ => answer,
        }
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready for new sessions: content loaded (it is, before the server starts),
/// not draining, below capacity, and ticks and snapshots keeping time. The
/// stores are reported but do not decide: games go on while a store is down
/// (their state waits in the writer's queue), and every instance shares the
/// same stores, so failing readiness would only stop new games fleet-wide.
async fn ready(State(state): State<AppState>) -> Response {
    let status = state.host.status();
    let content = true;
    let capacity = status.lobby + status.running < status.max_sessions;
    let ready =
        content && !status.draining && capacity && status.ticks_on_time && status.snapshots_on_time;
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "ready": ready,
        "checks": {
            "content": content,
            "draining": status.draining,
            "capacity": capacity,
            "ticks_on_time": status.ticks_on_time,
            "snapshots_on_time": status.snapshots_on_time,
        },
    });
    if let Some(view) = &state.persistence {
        body["stores"] = json!({
            "database": view.handle.store_up(Store::Database),
            "redis": view.redis.then(|| view.handle.store_up(Store::Redis)),
            "persist_queue": view.handle.queue_depth(),
        });
    }
    (code, Json(body)).into_response()
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    crate::telemetry::record_process_cpu();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(METRICS_CONTENT_TYPE),
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Public sessions; private ones too for the admin.
async fn list_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    let admin = match bearer(&headers) {
        None => false,
        Some(_) => {
            authorize(&state, &headers)?;
            true
        }
    };
    let mut sessions = state.host.list();
    sessions.retain(|session| admin || !session.private);
    Ok(Json(sessions))
}

/// Any session by id, private ones included: knowing the id is the invite.
async fn get_session(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<SessionInfo>, ApiError> {
    let id = session_id(id)?;
    state.host.get(id).map(Json).ok_or_else(ApiError::not_found)
}

async fn create_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<CreateSession>, JsonRejection>,
) -> Result<(StatusCode, Json<SessionInfo>), ApiError> {
    authorize(&state, &headers)?;
    let Json(request) = body.map_err(|rejection| {
        // A body that parses but does not fit the request is as much the
        // client's mistake as one that does not parse: both are 400.
        let status = match rejection.status() {
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
            status => status,
        };
        ApiError::new(status, rejection.body_text())
    })?;
    let info = state.host.create(request).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

async fn end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<SessionInfo>, ApiError> {
    authorize(&state, &headers)?;
    let id = session_id(id)?;
    Ok(Json(state.host.end(id).await?))
}

/// Reads the content directory again: 200 when new sessions now use it (or
/// nothing changed), 422 with every problem when it is invalid, 500 when it
/// could not be read or stored; the body is the outcome either way.
async fn reload_content(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let Some(reloader) = &state.reloader else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "this server does not reload content",
        ));
    };
    let outcome = reloader.reload(Trigger::Admin).await;
    let status = match outcome {
        ReloadOutcome::Reloaded { .. } | ReloadOutcome::Unchanged { .. } => StatusCode::OK,
        ReloadOutcome::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        ReloadOutcome::Failed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Ok((status, Json(outcome)).into_response())
}

async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// A malformed id names no session, so it is a 404 like an unknown one.
fn session_id(path: Result<Path<String>, PathRejection>) -> Result<SessionId, ApiError> {
    let Ok(Path(text)) = path else {
        return Err(ApiError::not_found());
    };
    text.parse().map_err(|_| ApiError::not_found())
}

/// The token of an `Authorization: Bearer` header, if there is one.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| value.get(7..).unwrap_or_default().trim_ascii())
}

/// Admits the admin: 403 when no token is configured (the endpoints are off,
/// no token can help), 401 for a missing or wrong one.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &state.admin_token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "mutating endpoints are disabled: no admin token configured",
        ));
    };
    match bearer(headers) {
        Some(given) if constant_time_eq(given, expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong admin token")),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing `Authorization: Bearer <admin token>` header",
        )),
    }
}

/// Whether the request carries the admin token (where refusing is not the
/// point: a private session's spectator may come with an invite instead).
fn is_admin(state: &AppState, headers: &HeaderMap) -> bool {
    match (&state.admin_token, bearer(headers)) {
        (Some(expected), Some(given)) => constant_time_eq(given, expected.as_bytes()),
        _ => false,
    }
}

/// Compares without an early exit, so the time taken does not reveal how
/// much of a guessed token was right. (The length can leak; it is not secret
/// enough to matter.)
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        difference |= x ^ y;
    }
    difference == 0
}

/// The per-IP token bucket in front of `/v1`.
async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Without connection info (in-process tests) every request shares one
    // bucket, which is the safe direction to fail in.
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    match state.limiter.check(ip, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response =
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many requests").into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            response
        }
    }
}

/// Counts requests and times them by route template, so ids in paths do not
/// explode the label set.
async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().clone();
    let start = Instant::now();
    let response = next.run(request).await;
    let seconds = start.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    tracing::debug!(%method, route, status, ms = seconds * 1e3, "http request");
    metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route).record(seconds);
    response
}
