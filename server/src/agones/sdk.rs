//! The Agones SDK sidecar's REST contract, and a client for it.
//!
//! The sidecar serves the SDK over plain HTTP on localhost
//! (`AGONES_SDK_HTTP_PORT`, default 9358): gRPC-gateway JSON, int64 values
//! as strings, errors as `{code, message}` with the gRPC status code. Using
//! REST keeps gRPC and protoc out of the build. Everything the server asks
//! of Agones is one [`Call`], so the rest of the integration, and its tests,
//! see a single small seam ([`Sidecar`]).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};

/// How long one call may take before it counts as failed: the sidecar is on
/// localhost, so anything slower is a sidecar in trouble.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// One request to the SDK sidecar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// The game server accepts players (`POST /ready`).
    Ready,
    /// A health ping (`POST /health`); Agones marks the server Unhealthy
    /// when they stop.
    Health,
    /// The server is done and may be deleted (`POST /shutdown`).
    Shutdown,
    /// The backing GameServer: state, address, ports (`GET /gameserver`).
    GameServer,
    /// A label `agones.dev/sdk-<key>` on the GameServer (`PUT /metadata/label`).
    SetLabel {
        /// Without the `agones.dev/sdk-` prefix.
        key: String,
        /// A valid Kubernetes label value.
        value: String,
    },
    /// Sets a counter's count or capacity (beta: [`beta::counter_path`]).
    SetCounter {
        /// The counter's name in the GameServer spec.
        name: &'static str,
        /// The new count, if it changes.
        count: Option<i64>,
        /// The new capacity, if it changes.
        capacity: Option<i64>,
    },
}

impl Call {
    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Ready => "Ready",
            Call::Health => "Health",
            Call::Shutdown => "Shutdown",
            Call::GameServer => "GetGameServer",
            Call::SetLabel { .. } => "SetLabel",
            Call::SetCounter { .. } => "UpdateCounter",
        }
    }

    /// The HTTP method, path and JSON body of the call.
    fn request(&self) -> (hyper::Method, String, Option<Value>) {
        use hyper::Method;
        match self {
            Call::Ready => (Method::POST, "/ready".into(), Some(json!({}))),
            Call::Health => (Method::POST, "/health".into(), Some(json!({}))),
            Call::Shutdown => (Method::POST, "/shutdown".into(), Some(json!({}))),
            Call::GameServer => (Method::GET, "/gameserver".into(), None),
            Call::SetLabel { key, value } => (
                Method::PUT,
                "/metadata/label".into(),
                Some(json!({"key": key, "value": value})),
            ),
            Call::SetCounter {
                name,
                count,
                capacity,
            } => {
                let (path, body) = beta::counter_update(name, *count, *capacity);
                (Method::PATCH, path, Some(body))
            }
        }
    }
}

/// Counters and Lists are beta in Agones 1.60 and 1.61 (the
/// `CountsAndLists` feature gate): their `/v1beta1` paths live here alone,
/// so their move to `/v1` is a change in one place.
pub mod beta {
    use serde_json::{Map, Value};

    /// `PATCH` path and body that set a counter's count and/or capacity;
    /// int64 values travel as JSON strings, as gRPC-gateway writes them.
    pub fn counter_update(
        name: &str,
        count: Option<i64>,
        capacity: Option<i64>,
    ) -> (String, Value) {
        let mut body = Map::new();
        if let Some(count) = count {
            body.insert("count".into(), Value::String(count.to_string()));
        }
        if let Some(capacity) = capacity {
            body.insert("capacity".into(), Value::String(capacity.to_string()));
        }
        (counter_path(name), Value::Object(body))
    }

    /// Where a counter is read and updated.
    pub fn counter_path(name: &str) -> String {
        format!("/v1beta1/counters/{name}")
    }
}

/// Why a call to the sidecar failed.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// No connection, or no answer in time: the sidecar may not have started
    /// yet (it can start after the game server), so callers retry.
    #[error("the Agones SDK sidecar at {address} did not answer {call}: {reason}")]
    Unreachable {
        /// The sidecar's address.
        address: SocketAddr,
        /// Which call.
        call: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The sidecar answered with an error.
    #[error("the Agones SDK sidecar refused {call}: HTTP {status}, gRPC code {code}: {message}")]
    Refused {
        /// Which call.
        call: &'static str,
        /// The HTTP status.
        status: u16,
        /// The gRPC status code from the error body (0 when absent).
        code: i64,
        /// The sidecar's message.
        message: String,
    },
}

impl SdkError {
    /// Whether the same call may succeed later: the sidecar is not up yet,
    /// or answered UNAVAILABLE (14) or a 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            SdkError::Unreachable { .. } => true,
            SdkError::Refused { status, code, .. } => *status >= 500 || *code == 14,
        }
    }
}

/// The seam to the SDK sidecar: one call in, its JSON answer out.
pub trait Sidecar: Send + Sync + 'static {
    /// Makes one call, without retrying.
    fn call(&self, call: &Call) -> impl Future<Output = Result<Value, SdkError>> + Send;
}

/// The sidecar over HTTP/1.1 on localhost, one connection per call (calls
/// are a few a second at most).
#[derive(Clone, Debug)]
pub struct HttpSidecar {
    address: SocketAddr,
}

impl HttpSidecar {
    /// The sidecar on `127.0.0.1:port`.
    pub fn on_port(port: u16) -> Self {
        Self {
            address: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    async fn exchange(&self, call: &Call) -> Result<(u16, Bytes), String> {
        let (method, path, body) = call.request();
        let stream = tokio::net::TcpStream::connect(self.address)
            .await
            .map_err(|error| error.to_string())?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|error| error.to_string())?;
        tokio::spawn(connection);
        let body = body.map(|body| body.to_string()).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.address.to_string())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| error.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| error.to_string())?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|error| error.to_string())?
            .to_bytes();
        Ok((status, bytes))
    }
}

impl Sidecar for HttpSidecar {
    async fn call(&self, call: &Call) -> Result<Value, SdkError> {
        let unreachable = |reason: String| SdkError::Unreachable {
            address: self.address,
            call: call.name(),
            reason,
        };
        let (status, bytes) = tokio::time::timeout(CALL_TIMEOUT, self.exchange(call))
            .await
            .map_err(|_| unreachable(format!("no answer within {CALL_TIMEOUT:?}")))?
            .map_err(unreachable)?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if (200..300).contains(&status) {
            return Ok(value);
        }
        Err(SdkError::Refused {
            call: call.name(),
            status,
            code: value.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: value
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| value.to_string(), str::to_owned),
        })
    }
}

/// Makes `call` until it succeeds or fails for good, waiting between tries
/// from 100 ms doubling to 2 s, for at most `patience`.
///
/// # Errors
/// A permanent refusal, or the last transient error once `patience` is spent.
pub async fn call_with_retry(
    sidecar: &impl Sidecar,
    call: &Call,
    patience: Duration,
) -> Result<Value, SdkError> {
    let started = tokio::time::Instant::now();
    let mut wait = Duration::from_millis(100);
    let mut tries = 0_u32;
    loop {
        tries += 1;
        match sidecar.call(call).await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_transient() && started.elapsed() + wait < patience => {
                // Said once early and then rarely, so a late sidecar is visible
                // without flooding the log.
                if tries == 3 || tries.is_multiple_of(20) {
                    tracing::info!(%error, tries, "waiting for the Agones SDK sidecar");
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(error) => return Err(error),
        }
    }
}
