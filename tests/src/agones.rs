//! A fake Agones SDK sidecar: the REST contract of the real one (Agones
//! 1.60), in process, recording every call.
//!
//! The real SDK server cannot run on these machines (it needs a Kubernetes
//! API server), so the tests check the game server against this fake, which
//! keeps to the documented contract: the lifecycle paths (`POST /ready`,
//! `/health`, `/shutdown`, `/allocate` with body `{}`), `GET /gameserver`
//! (gRPC-gateway JSON with `object_meta` and `status.address`,
//! `status.ports` by name), `PUT /metadata/label`, and the beta counters
//! (`GET`/`PATCH /v1beta1/counters/{name}`, int64 values as JSON strings,
//! counts kept within `[0, capacity]`); errors are `{code, message}` with
//! the gRPC status code and its HTTP mapping. It can start late, as the
//! real sidecar may start after the game server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use serde_json::{Value, json};

/// One call the sidecar received.
#[derive(Clone, Debug)]
pub struct Call {
    /// When it arrived.
    pub at: Instant,
    /// `POST`, `GET`, ...
    pub method: String,
    /// The path, e.g. `/v1beta1/counters/sessions`.
    pub path: String,
    /// The JSON body (`Null` when none).
    pub body: Value,
    /// For `/ready`: whether each watched address accepted a TCP connection
    /// at that moment.
    pub listening: Vec<bool>,
}

/// A counter of the GameServer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    /// Its count.
    pub count: i64,
    /// Its capacity.
    pub capacity: i64,
}

#[derive(Default)]
struct Shared {
    calls: Vec<Call>,
    state: String,
    labels: BTreeMap<String, String>,
    counters: BTreeMap<String, Counter>,
}

/// What the fake GameServer is made of.
#[derive(Clone, Debug)]
pub struct GameServerSpec {
    /// `status.address`.
    pub address: String,
    /// `status.ports`: name and port.
    pub ports: Vec<(String, u16)>,
    /// Counters declared in the Fleet (name, capacity), count 0.
    pub counters: Vec<(String, i64)>,
    /// Addresses `/ready` checks are accepting TCP connections.
    pub watch_on_ready: Vec<SocketAddr>,
}

/// A port on 127.0.0.1 held for a sidecar that starts later: bound but
/// not listening, so a connection to it is refused, as to a sidecar that
/// has not started, and nothing else can take the port meanwhile (a port
/// merely noted as free may become another socket's ephemeral port).
pub struct SidecarPort {
    socket: tokio::net::TcpSocket,
    number: u16,
}

impl SidecarPort {
    /// Any free port.
    ///
    /// # Panics
    /// If no port can be had.
    pub fn any() -> SidecarPort {
        SidecarPort::at(0).expect("a free port for the fake sidecar")
    }

    /// The given port, if nothing holds it.
    ///
    /// # Errors
    /// If the port cannot be bound.
    pub fn at(port: u16) -> std::io::Result<SidecarPort> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
        let number = socket.local_addr()?.port();
        Ok(SidecarPort { socket, number })
    }

    /// The port's number (`AGONES_SDK_HTTP_PORT`).
    pub fn number(&self) -> u16 {
        self.number
    }
}

/// A running fake sidecar.
pub struct FakeSidecar {
    shared: Arc<Mutex<Shared>>,
    /// The port it serves on (`AGONES_SDK_HTTP_PORT`).
    pub port: u16,
    /// Serves the fake; dropping it stops the fake.
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct App {
    shared: Arc<Mutex<Shared>>,
    spec: Arc<GameServerSpec>,
}

/// A gRPC-gateway error: the HTTP status mapped from the gRPC code, and
/// `{code, message}`.
fn grpc_error(code: i64, message: impl Into<String>) -> Response {
    let status = match code {
        3 | 11 => StatusCode::BAD_REQUEST,
        5 => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (
        status,
        Json(json!({"code": code, "message": message.into(), "details": []})),
    )
        .into_response()
}

/// An int64 field as gRPC-gateway reads it: a JSON string (as it writes
/// them) or a number.
fn int64(body: &Value, field: &str) -> Result<Option<i64>, String> {
    let invalid =
        |value: &dyn std::fmt::Display| format!("invalid value for int64 field {field}: {value}");
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => text.parse().map(Some).map_err(|_| invalid(text)),
        Some(Value::Number(number)) => number.as_i64().map(Some).ok_or_else(|| invalid(number)),
        Some(other) => Err(invalid(other)),
    }
}

/// A Kubernetes label value: at most 63 characters, alphanumerics with
/// `-`, `_`, `.` inside.
fn is_label_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && value
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .last()
            .is_none_or(|c| c.is_ascii_alphanumeric())
}

impl App {
    fn record(&self, method: &Method, uri: &Uri, body: Value) {
        let listening = if uri.path() == "/ready" {
            self.spec
                .watch_on_ready
                .iter()
                .map(|address| {
                    std::net::TcpStream::connect_timeout(address, Duration::from_millis(200))
                        .is_ok()
                })
                .collect()
        } else {
            Vec::new()
        };
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .calls
            .push(Call {
                at: Instant::now(),
                method: method.to_string(),
                path: uri.path().to_owned(),
                body,
                listening,
            });
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn game_server(&self) -> Value {
        let shared = self.shared();
        let counters: serde_json::Map<String, Value> = shared
            .counters
            .iter()
            .map(|(name, counter)| {
                (
                    name.clone(),
                    json!({"count": counter.count.to_string(), "capacity": counter.capacity.to_string()}),
                )
            })
            .collect();
        let labels: serde_json::Map<String, Value> = shared
            .labels
            .iter()
            .map(|(key, value)| {
                (
                    format!("agones.dev/sdk-{key}"),
                    Value::String(value.clone()),
                )
            })
            .collect();
        json!({
            "object_meta": {
                "name": "rampart-fake-7x2k9",
                "namespace": "default",
                "uid": "6f9b1c2e-0000-4000-8000-000000000001",
                "resource_version": "1",
                "generation": "1",
                "creation_timestamp": "1764633600",
                "labels": labels,
                "annotations": {}
            },
            "status": {
                "state": shared.state,
                "address": self.spec.address,
                "ports": self.spec.ports.iter().map(|(name, port)| json!({"name": name, "port": port})).collect::<Vec<_>>(),
                "counters": counters
            }
        })
    }
}

async fn lifecycle(State(app): State<App>, method: Method, uri: Uri, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    app.record(&method, &uri, body.clone());
    if !body.is_object() {
        return grpc_error(3, "body must be a JSON object ({})");
    }
    let state = match uri.path() {
        "/ready" => Some("Ready"),
        "/allocate" => Some("Allocated"),
        "/shutdown" => Some("Shutdown"),
        _ => None,
    };
    if let Some(state) = state {
        app.shared().state = state.to_owned();
    }
    Json(json!({})).into_response()
}

async fn game_server(State(app): State<App>, method: Method, uri: Uri) -> Response {
    app.record(&method, &uri, Value::Null);
    Json(app.game_server()).into_response()
}

async fn label(State(app): State<App>, method: Method, uri: Uri, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    app.record(&method, &uri, body.clone());
    let (Some(key), Some(value)) = (
        body.get("key").and_then(Value::as_str),
        body.get("value").and_then(Value::as_str),
    ) else {
        return grpc_error(3, "key and value are required");
    };
    if !is_label_value(value) || !is_label_value(key) || key.is_empty() {
        return grpc_error(3, format!("invalid label {key}={value}"));
    }
    app.shared().labels.insert(key.to_owned(), value.to_owned());
    Json(json!({})).into_response()
}

async fn get_counter(
    State(app): State<App>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
) -> Response {
    app.record(&method, &uri, Value::Null);
    match app.shared().counters.get(&name) {
        Some(counter) => Json(json!({
            "name": name,
            "count": counter.count.to_string(),
            "capacity": counter.capacity.to_string()
        }))
        .into_response(),
        None => grpc_error(5, format!("counter not found: {name}")),
    }
}

async fn update_counter(
    State(app): State<App>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    app.record(&method, &uri, body.clone());
    let fields = (
        int64(&body, "count"),
        int64(&body, "capacity"),
        int64(&body, "countDiff"),
    );
    let (count, capacity, diff) = match fields {
        (Ok(count), Ok(capacity), Ok(diff)) => (count, capacity, diff),
        (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
            return grpc_error(3, error);
        }
    };
    let mut shared = app.shared();
    let Some(counter) = shared.counters.get_mut(&name) else {
        return grpc_error(5, format!("counter not found: {name}"));
    };
    let mut next = *counter;
    if let Some(capacity) = capacity {
        if capacity < 0 {
            return grpc_error(11, format!("capacity must be at least 0, not {capacity}"));
        }
        next.capacity = capacity;
        next.count = next.count.min(capacity);
    }
    if let Some(count) = count {
        next.count = count;
    }
    if let Some(diff) = diff {
        next.count += diff;
    }
    if next.count < 0 || next.count > next.capacity {
        return grpc_error(
            11,
            format!(
                "count {} is out of range [0, {}] for counter {name}",
                next.count, next.capacity
            ),
        );
    }
    *counter = next;
    Json(json!({
        "name": name,
        "count": next.count.to_string(),
        "capacity": next.capacity.to_string()
    }))
    .into_response()
}

async fn unknown(State(app): State<App>, method: Method, uri: Uri) -> Response {
    app.record(&method, &uri, Value::Null);
    grpc_error(5, "Not Found")
}

impl FakeSidecar {
    /// Starts serving on the held port.
    ///
    /// # Panics
    /// If the held socket cannot listen.
    pub fn start(port: SidecarPort, spec: GameServerSpec) -> FakeSidecar {
        let shared = Arc::new(Mutex::new(Shared {
            state: "Scheduled".to_owned(),
            counters: spec
                .counters
                .iter()
                .map(|(name, capacity)| {
                    (
                        name.clone(),
                        Counter {
                            count: 0,
                            capacity: *capacity,
                        },
                    )
                })
                .collect(),
            ..Shared::default()
        }));
        let app = App {
            shared: shared.clone(),
            spec: Arc::new(spec),
        };
        let router = axum::Router::new()
            .route("/ready", post(lifecycle))
            .route("/health", post(lifecycle))
            .route("/shutdown", post(lifecycle))
            .route("/allocate", post(lifecycle))
            .route("/gameserver", get(game_server))
            .route("/metadata/label", put(label))
            .route("/v1beta1/counters/{name}", get(get_counter))
            .route("/v1beta1/counters/{name}", patch(update_counter))
            .fallback(unknown)
            .with_state(app);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the fake sidecar");
        let number = port.number;
        let listener = runtime
            .block_on(async { port.socket.listen(1024) })
            .expect("listen on the fake sidecar's port");
        runtime.spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeSidecar {
            shared,
            port: number,
            _runtime: runtime,
        }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared().calls.clone()
    }

    /// The calls to `path` so far.
    pub fn calls_to(&self, path: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|call| call.path == path)
            .collect()
    }

    /// The GameServer's state (`Scheduled`, `Ready`, `Shutdown`, ...).
    pub fn state(&self) -> String {
        self.shared().state.clone()
    }

    /// Sets the GameServer's state as the Agones controller would (an
    /// allocation makes it `Allocated`).
    pub fn set_state(&self, state: &str) {
        self.shared().state = state.to_owned();
    }

    /// A counter's value.
    pub fn counter(&self, name: &str) -> Option<Counter> {
        self.shared().counters.get(name).copied()
    }

    /// The labels set through the SDK, without their `agones.dev/sdk-` prefix.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.shared().labels.clone()
    }
}
