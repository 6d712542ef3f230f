//! In-process tests of the HTTP API: requests go through the router with
//! `oneshot`, no socket involved.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::config::Config;
use crate::host::{HostConfig, Overload};

const TOKEN: &str = "test-token";

/// Waits (up to 5 s) for the host's published view to satisfy `done`: it is
/// published after the tick that applied a request (these hosts tick on the
/// wall clock, as the API sees them serving).
async fn wait_for(mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 5 s");
}

/// A real host over the repository's content; the content is loaded once.
fn test_host(max_sessions: usize) -> HostHandle {
    static CONTENT: OnceLock<Arc<rampart_sim::Content>> = OnceLock::new();
    let content = CONTENT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets");
        Arc::new(rampart_sim::content::load_dir(&dir).unwrap())
    });
    let config = HostConfig {
        max_sessions,
        ..Config::default().host_config()
    };
    let host = HostHandle::spawn(content.clone(), config, None, None).unwrap();
    // Until its first tick publishes, the host reports no capacity and is
    // rightly not ready; tests start from a ticking host.
    for _ in 0..500 {
        if host.status().ticks_on_time {
            return host;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("host did not publish in 5 s");
}

fn app_with(host: HostHandle, config: Config) -> Router {
    router(AppState::new(
        host,
        crate::telemetry::test_metrics(),
        &config,
    ))
}

fn app(host: HostHandle) -> Router {
    let config = Config {
        admin_token: Some(TOKEN.to_owned()),
        ..Config::default()
    };
    app_with(host, config)
}

fn request(method: Method, uri: &str, token: Option<&str>, body: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    match body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, body)
}

async fn create(app: &Router, body: &str) -> (StatusCode, Value) {
    let (status, _, body) = call(
        app,
        request(Method::POST, "/v1/sessions", Some(TOKEN), Some(body)),
    )
    .await;
    (status, body)
}

#[tokio::test]
async fn health_is_ok() {
    let app = app(test_host(10));
    let (status, _, body) = call(&app, request(Method::GET, "/health", None, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "status": "ok" }));
}

#[tokio::test]
async fn ready_names_the_failing_check() {
    let host = test_host(1);
    let app = app(host.clone());
    let (status, _, body) = call(&app, request(Method::GET, "/ready", None, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "ready": true, "checks": {
            "content": true, "draining": false, "capacity": true, "ticks_on_time": true,
            "snapshots_on_time": true } })
    );

    let (status, _) = create(&app, r#"{"map":"small"}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    wait_for(|| host.status().lobby + host.status().running == 1).await;
    let (status, _, body) = call(&app, request(Method::GET, "/ready", None, None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["ready"], false);
    assert_eq!(body["checks"]["capacity"], false);
    assert_eq!(body["checks"]["draining"], false);
}

#[tokio::test]
async fn ready_is_false_while_draining() {
    let host = test_host(10);
    host.begin_drain();
    let app = app(host);
    let (status, _, body) = call(&app, request(Method::GET, "/ready", None, None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["checks"]["draining"], true);
    let (status, body) = create(&app, r#"{"map":"small"}"#).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "server is draining");
}

#[tokio::test]
async fn mutating_needs_the_token() {
    let app = app(test_host(10));
    let body = Some(r#"{"map":"small"}"#);
    let (status, _, error) = call(&app, request(Method::POST, "/v1/sessions", None, body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(error["error"].is_string());
    let (status, _, _) = call(
        &app,
        request(Method::POST, "/v1/sessions", Some("test-tokeX"), body),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(
        &app,
        request(
            Method::DELETE,
            "/v1/sessions/0000000000000001",
            Some("nope"),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn mutating_is_off_without_a_configured_token() {
    let app = app_with(test_host(10), Config::default());
    let (status, _, body) = call(
        &app,
        request(
            Method::POST,
            "/v1/sessions",
            Some(TOKEN),
            Some(r#"{"map":"small"}"#),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({ "error": "mutating endpoints are disabled: no admin token configured" })
    );
}

#[tokio::test]
async fn create_list_get_delete() {
    let host = test_host(10);
    let app = app(host.clone());
    let (status, public) = create(&app, r#"{"map":"small","bots":1}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = public["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 16);
    assert_eq!(public["state"], "lobby");
    assert_eq!(public["max_players"], 4);
    let (status, private) = create(&app, r#"{"map":"small","private":true}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    let private_id = private["id"].as_str().unwrap().to_owned();
    wait_for(|| host.list().len() == 2).await;

    let (status, _, list) = call(&app, request(Method::GET, "/v1/sessions", None, None)).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()], "private sessions are hidden");

    let (_, _, list) = call(
        &app,
        request(Method::GET, "/v1/sessions", Some(TOKEN), None),
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 2, "the admin sees all");
    let (status, _, _) = call(
        &app,
        request(Method::GET, "/v1/sessions", Some("bad"), None),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let uri = format!("/v1/sessions/{private_id}");
    let (status, _, got) = call(&app, request(Method::GET, &uri, None, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["id"], private_id.as_str());

    let uri = format!("/v1/sessions/{id}");
    let (status, _, ended) = call(&app, request(Method::DELETE, &uri, Some(TOKEN), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ended["state"], "ended");
    assert_eq!(ended["id"], id.as_str());
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404() {
    let app = app(test_host(10));
    for uri in [
        "/v1/sessions/00000000000000ff",
        "/v1/sessions/xyz",
        "/v1/sessions/%ff%fe",
    ] {
        let (status, _, body) = call(&app, request(Method::GET, uri, None, None)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(body, json!({ "error": "no such session" }), "{uri}");
    }
    let (status, _, body) = call(
        &app,
        request(
            Method::DELETE,
            "/v1/sessions/00000000000000ff",
            Some(TOKEN),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no such session");
    let (status, _, body) = call(&app, request(Method::GET, "/nowhere", None, None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
    let (status, _, body) = call(&app, request(Method::PUT, "/v1/sessions", None, None)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn bad_bodies_are_400_with_a_message() {
    let app = app(test_host(10));
    for body in [
        "{not json",
        r#"{"max_players":2}"#,
        r#"{"map":"small","bots":-1}"#,
        r#"{"map":"nowhere"}"#,
    ] {
        let (status, answer) = create(&app, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}: {answer}"
        );
    }
}

#[tokio::test]
async fn full_is_503() {
    let app = app(test_host(1));
    assert_eq!(
        create(&app, r#"{"map":"small"}"#).await.0,
        StatusCode::CREATED
    );
    let (status, body) = create(&app, r#"{"map":"small"}"#).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"], "instance is full (1 sessions)");
}

/// Late ticks are a moment's trouble: the 503 says when to come back. A
/// full instance stays full: its 503 does not invite a retry here.
#[test]
fn overloaded_answers_503_with_retry_after() {
    let overloaded = ApiError::from(HostError::Overloaded(Overload::TicksLate)).into_response();
    assert_eq!(overloaded.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(overloaded.headers()[header::RETRY_AFTER], "1");
    let full = ApiError::from(HostError::Full { max: 1 }).into_response();
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(full.headers().get(header::RETRY_AFTER).is_none());
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let config = Config {
        rate_limit_per_second: 1,
        rate_limit_burst: 3,
        ..Config::default()
    };
    let app = app_with(test_host(10), config);
    for _ in 0..3 {
        let (status, _, _) = call(&app, request(Method::GET, "/v1/sessions", None, None)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, body) =
        call(&app, request(Method::GET, "/v1/sessions", None, None)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert!(body["error"].is_string());
    for uri in ["/health", "/ready", "/metrics"] {
        let (status, _, _) = call(&app, request(Method::GET, uri, None, None)).await;
        assert_eq!(status, StatusCode::OK, "{uri} is not rate limited");
    }
}

#[tokio::test]
async fn rate_limit_is_per_client_address() {
    let config = Config {
        rate_limit_per_second: 1,
        rate_limit_burst: 1,
        ..Config::default()
    };
    let app = app_with(test_host(10), config);
    let from = |ip: [u8; 4]| {
        let mut request = request(Method::GET, "/v1/sessions", None, None);
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 4000))));
        request
    };
    assert_eq!(call(&app, from([10, 0, 0, 1])).await.0, StatusCode::OK);
    assert_eq!(
        call(&app, from([10, 0, 0, 1])).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(call(&app, from([10, 0, 0, 2])).await.0, StatusCode::OK);
}

#[tokio::test]
async fn metrics_render_http_counters_by_route_template() {
    let app = app(test_host(10));
    let (status, _, _) = call(
        &app,
        request(Method::GET, "/v1/sessions/00000000000000aa", None, None),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let response = app
        .clone()
        .oneshot(request(Method::GET, "/metrics", None, None))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        text.contains(r#"rampart_http_requests_total{route="/v1/sessions/{id}",status="404"}"#),
        "{text}"
    );
    assert!(
        text.contains("rampart_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        !text.contains("00000000000000aa"),
        "raw paths stay out of labels"
    );
}

#[test]
fn constant_time_eq_compares_whole_tokens() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"abcd"));
    assert!(!constant_time_eq(b"", b"a"));
    assert!(constant_time_eq(b"", b""));
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_json() {
    let app = app(test_host(10));
    let body = format!(r#"{{"map":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
    let (status, answer) = create(&app, &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer["error"].is_string(), "{answer}");
}

/// `serve` over a real socket: the client address reaches the limiter and
/// the shutdown future stops the server.
#[tokio::test]
async fn serves_on_a_socket_until_shutdown() {
    use std::io::{Read, Write};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app(test_host(10)), async {
        let _ = stopped.await;
    }));
    // A blocking client on the blocking pool keeps the runtime free to serve.
    let get = |path: &'static str| {
        tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
        })
    };
    let answer = get("/health").await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"status":"ok"}"#), "{answer}");
    let answer = get("/v1/sessions").await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn content_and_grids_name_what_the_wire_indexes() {
    let host = test_host(10);
    let app = app(host.clone());
    let (status, _, content) = call(&app, request(Method::GET, "/v1/content", None, None)).await;
    assert_eq!(status, StatusCode::OK);
    let towers: Vec<&str> = content["towers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tower| tower["key"].as_str().unwrap())
        .collect();
    // docs/PROTOCOL.md section 10: tower kind indices are the sorted keys.
    assert_eq!(
        towers,
        ["arrow", "ballista", "cannon", "flame", "frost", "tesla"]
    );
    assert!(content["towers"][0]["levels"][0]["range"].as_f64().unwrap() > 0.0);
    assert_eq!(
        content["version"],
        format!("{:016x}", host.content().version)
    );
    let small = content["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|map| map["key"] == "small")
        .unwrap();
    assert_eq!(small["width"], 20);

    let (status, _, grid) = call(
        &app,
        request(Method::GET, "/v1/maps/small/grid", None, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rows: Vec<&str> = grid["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_str().unwrap())
        .collect();
    assert_eq!(rows.len(), 16);
    assert_eq!(rows[0], "####################");
    assert_eq!(
        rows[2], "S=================.#",
        "spawns and paths as in the file"
    );
    assert_eq!(grid["spawns"], json!([[0, 2]]));
    let (status, _, _) = call(
        &app,
        request(Method::GET, "/v1/maps/nowhere/grid", None, None),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _, figures) = call(&app, request(Method::GET, "/v1/status", None, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(figures["tick_hz"], 30);
    assert_eq!(figures["ticks_on_time"], true);
    assert_eq!(
        figures["snapshots_on_time"], true,
        "no network, nothing waits"
    );
    assert!(figures["tick_p99_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(figures["spectators"], 0, "no transports in this host");
}

#[tokio::test]
async fn the_web_page_is_embedded_compressed_and_cached_by_name() {
    let app = app(test_host(10));
    let page = |uri: &str, encoding: &str| {
        Request::builder()
            .uri(uri)
            .header("accept-encoding", encoding)
            .body(Body::empty())
            .unwrap()
    };
    let (status, headers, shell) = call(&app, page("/watch/00000000000000ff", "identity")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(headers.get("content-encoding").is_none());
    let shell = shell.as_str().unwrap().to_owned();
    let script = shell
        .split('"')
        .find(|part| part.starts_with("/assets/app-") && part.ends_with(".js"))
        .expect("the shell names its hashed script")
        .to_owned();
    for (encoding, expected) in [("gzip, deflate, br", "br"), ("gzip", "gzip")] {
        let (status, headers, _) = call(&app, page(&script, encoding)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-encoding"], expected);
        assert_eq!(
            headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(headers["vary"], "accept-encoding");
    }
    let (status, _, _) = call(&app, page("/assets/app-0000.js", "gzip")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
