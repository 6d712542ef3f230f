//! The HTTP half of joining: ask a rampart server for a seat
//! (`POST /v1/join` or `/v1/sessions/{id}/join`), follow a `307` to the
//! instance that runs the session, wait out a `503` for as long as its
//! `Retry-After` asks, then open the connection the answer names. It all
//! blocks, so the client plugin runs it on a thread of its own and a frame
//! never waits for it.

use std::time::{Duration, Instant};

use rampart_net::client::{Client, JoinResponse};
use serde_json::json;

/// Redirects followed for one join before giving up: a fleet sends a player
/// on once (to the session's owner), a second hop means it moved meanwhile.
const MAX_REDIRECTS: usize = 5;
/// The pause after a `503` that names none.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Longest a single HTTP exchange may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Which game to join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinTarget {
    /// Matchmaking: an open lobby on `map`, or a new one with `max_players`
    /// seats (the server's default map and seat count when `None`).
    Match {
        /// Map key (`small`, ...).
        map: Option<String>,
        /// Seats of a lobby opened for this join, 1 to 8.
        max_players: Option<u8>,
    },
    /// One session by id (16 hex digits): an invite.
    Session(String),
    /// Reclaims the seat a reconnect token was issued for.
    Reconnect(String),
}

impl JoinTarget {
    /// Matchmaking on `map`.
    pub fn map(map: impl Into<String>) -> Self {
        JoinTarget::Match {
            map: Some(map.into()),
            max_players: None,
        }
    }
}

/// How the client reaches the game once seated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP with a netcode connect token: the native choice.
    #[default]
    Udp,
    /// WebSocket: where UDP is blocked.
    WebSocket,
}

/// Where and as whom to join.
#[derive(Clone, Debug)]
pub struct JoinSettings {
    /// The server's HTTP API, like `http://127.0.0.1:8080` (no trailing
    /// path).
    pub server: String,
    /// UDP or WebSocket.
    pub transport: Transport,
    /// Display name shown to other players.
    pub name: Option<String>,
    /// The player's JWT, for servers that do not accept anonymous players.
    pub player_token: Option<String>,
    /// How long a join keeps retrying a server that answers `503` (full,
    /// overloaded, the session between owners) before it fails.
    pub patience: Duration,
}

impl JoinSettings {
    /// Anonymous, over UDP, patient for 30 s.
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            server: server.into().trim_end_matches('/').to_owned(),
            transport: Transport::Udp,
            name: None,
            player_token: None,
            patience: Duration::from_secs(30),
        }
    }
}

/// Why a join failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum JoinError {
    /// The server could not be reached or the exchange broke off.
    #[error("cannot reach {url}: {message}")]
    Unreachable {
        /// What was asked.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server kept answering 503 past the join's patience.
    #[error("the server stayed unavailable for {waited:?}: {message}")]
    Unavailable {
        /// How long the join kept trying.
        waited: Duration,
        /// The last refusal's message.
        message: String,
    },
    /// The seat or session is gone for good (410): the game ended, or the
    /// seat was given up after the reconnect grace.
    #[error("the seat is gone: {0}")]
    Gone(String),
    /// Any other refusal (bad request, unknown map or session, a missing or
    /// rejected player token, a full session).
    #[error("join refused ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's explanation.
        message: String,
    },
    /// Redirected more than five times.
    #[error("redirected more than {MAX_REDIRECTS} times (last to {0})")]
    TooManyRedirects(String),
    /// An answer that is not what the API documents.
    #[error("unexpected answer from {url}: {message}")]
    BadAnswer {
        /// What was asked.
        url: String,
        /// What was wrong with it.
        message: String,
    },
    /// Seated, but the UDP or WebSocket connection could not be opened.
    #[error("cannot connect to the game: {0}")]
    Connect(String),
}

impl JoinError {
    /// True when trying again later may succeed (the network or the server
    /// was down for a while), false when the answer is final.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            JoinError::Unreachable { .. }
                | JoinError::Unavailable { .. }
                | JoinError::Connect(_)
                | JoinError::TooManyRedirects(_)
        ) || matches!(self, JoinError::Refused { status, .. } if *status >= 500)
    }
}

/// Joins as `settings` say and opens the connection: blocks for as long as
/// the exchanges and the server's `Retry-After`s take.
///
/// # Errors
/// See [`JoinError`].
pub fn join_and_connect(
    settings: &JoinSettings,
    target: &JoinTarget,
) -> Result<(JoinResponse, Client), JoinError> {
    let answer = join(settings, target)?;
    let endpoint = answer.endpoint(settings.transport == Transport::WebSocket);
    let client =
        Client::connect(&endpoint).map_err(|error| JoinError::Connect(error.to_string()))?;
    Ok((answer, client))
}

/// `POST`s the join and reads its answer, following redirects and retrying
/// `503`s within the settings' patience.
///
/// # Errors
/// See [`JoinError`].
pub fn join(settings: &JoinSettings, target: &JoinTarget) -> Result<JoinResponse, JoinError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into();
    let (path, body) = request(settings, target);
    let started = Instant::now();
    let mut url = format!("{}{path}", settings.server);
    let mut redirects = 0;
    loop {
        let mut request = agent.post(&url).content_type("application/json");
        if let Some(token) = &settings.player_token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let unreachable = |error: ureq::Error| JoinError::Unreachable {
            url: url.clone(),
            message: error.to_string(),
        };
        let mut response = request.send(body.as_str()).map_err(unreachable)?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let location = header("location");
        let retry_after = header("retry-after");
        let text =
            response
                .body_mut()
                .read_to_string()
                .map_err(|error| JoinError::Unreachable {
                    url: url.clone(),
                    message: error.to_string(),
                })?;
        match status {
            200 => {
                return serde_json::from_str(&text).map_err(|error| JoinError::BadAnswer {
                    url,
                    message: format!("{error}: {text}"),
                });
            }
            307 | 308 => {
                let Some(location) = location else {
                    return Err(JoinError::BadAnswer {
                        url,
                        message: format!("{status} without a Location"),
                    });
                };
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(JoinError::TooManyRedirects(location));
                }
                url = resolve(&url, &location);
            }
            503 => {
                let pause = retry_after
                    .and_then(|seconds| seconds.trim().parse().ok())
                    .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs);
                if started.elapsed() + pause > settings.patience {
                    return Err(JoinError::Unavailable {
                        waited: started.elapsed(),
                        message: message(&text),
                    });
                }
                std::thread::sleep(pause);
                // A retry asks where it was first sent: the session may
                // have moved on while this one waited.
                url = format!("{}{path}", settings.server);
            }
            410 => return Err(JoinError::Gone(message(&text))),
            _ => {
                return Err(JoinError::Refused {
                    status,
                    message: message(&text),
                });
            }
        }
    }
}

/// The path and JSON body of a join for `target`.
fn request(settings: &JoinSettings, target: &JoinTarget) -> (String, String) {
    let mut body = serde_json::Map::new();
    if let Some(name) = &settings.name {
        body.insert("name".into(), json!(name));
    }
    let path = match target {
        JoinTarget::Match { map, max_players } => {
            if let Some(map) = map {
                body.insert("map".into(), json!(map));
            }
            if let Some(seats) = max_players {
                body.insert("max_players".into(), json!(seats));
            }
            "/v1/join".to_owned()
        }
        JoinTarget::Session(id) => format!("/v1/sessions/{id}/join"),
        JoinTarget::Reconnect(token) => {
            body.insert("reconnect_token".into(), json!(token));
            "/v1/join".to_owned()
        }
    };
    (path, serde_json::Value::Object(body).to_string())
}

/// The `error` field of an API error body, or the body itself.
fn message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.get("error")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| body.to_owned())
}

/// A `Location` against the URL that sent it: absolute as is, an absolute
/// path on the same origin.
fn resolve(current: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let origin_end = current
        .find("://")
        .and_then(|scheme| {
            current[scheme + 3..]
                .find('/')
                .map(|slash| scheme + 3 + slash)
        })
        .unwrap_or(current.len());
    format!("{}{location}", &current[..origin_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_origin() {
        assert_eq!(
            resolve("http://a:1/v1/join", "http://b:2/v1/join"),
            "http://b:2/v1/join"
        );
        assert_eq!(
            resolve("http://a:1/v1/join", "/v1/sessions/00ff/join"),
            "http://a:1/v1/sessions/00ff/join"
        );
    }

    #[test]
    fn bodies_name_what_is_asked() {
        let mut settings = JoinSettings::new("http://h:1/");
        settings.name = Some("ada".into());
        assert_eq!(settings.server, "http://h:1");
        let (path, body) = request(&settings, &JoinTarget::map("small"));
        assert_eq!(path, "/v1/join");
        assert_eq!(body, r#"{"map":"small","name":"ada"}"#);
        let (path, body) = request(&settings, &JoinTarget::Session("00ff".into()));
        assert_eq!(path, "/v1/sessions/00ff/join");
        assert_eq!(body, r#"{"name":"ada"}"#);
        let (_, body) = request(&settings, &JoinTarget::Reconnect("t".into()));
        assert_eq!(body, r#"{"name":"ada","reconnect_token":"t"}"#);
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(message(r#"{"error":"no such map"}"#), "no such map");
        assert_eq!(message("plain"), "plain");
    }
}
