//! `POST /v1/join` (matchmaking) and `POST /v1/sessions/{id}/join`: a
//! player gets a seat and everything needed to connect to it over UDP or
//! WebSocket, plus a reconnect token to reclaim the seat later.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use rampart_net::client::JoinResponse;
use rampart_net::server::NetHandle;
use rampart_net::tickets::SeatRef;
use rampart_sim::PlayerId;
use serde::Deserialize;

use super::{ApiError, AppState, bearer, session_id};
use rampart_persistence::Database;

use crate::auth::PlayerAuth;
use crate::host::{CreateSession, HostError, SessionId};

/// Seats in a session that matchmaking creates.
const MATCHMAKING_SEATS: u8 = 4;

/// What a join asks for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// Display name (the identity comes from the bearer token, or is
    /// anonymous).
    #[serde(default)]
    pub name: Option<String>,
    /// Map to play; matchmaking fills an open lobby on it or opens one.
    #[serde(default)]
    pub map: Option<String>,
    /// A session to join directly (an invite).
    #[serde(default)]
    pub session_id: Option<String>,
    /// Seats of the session matchmaking opens, 1 to 8 (default 4).
    #[serde(default)]
    pub max_players: Option<u8>,
    /// Reclaims the seat this token was issued for.
    #[serde(default)]
    pub reconnect_token: Option<String>,
}

/// What joining needs beyond the host: the network, player identity, and
/// where players are recorded.
pub struct JoinService {
    net: Arc<NetHandle>,
    auth: PlayerAuth,
    ws_base: String,
    default_map: String,
    players: Option<Database>,
}

impl JoinService {
    /// Joins through `net`, identifying players with `auth`; browsers are
    /// sent to `ws_base` (`ws://HOST:PORT`); matchmaking without a map
    /// opens `default_map`.
    pub fn new(
        net: Arc<NetHandle>,
        auth: PlayerAuth,
        ws_base: String,
        default_map: String,
    ) -> Self {
        Self {
            net,
            auth,
            ws_base,
            default_map,
            players: None,
        }
    }

    /// Records every seated player (id, name, last seen) in `database`,
    /// which results and leaderboards refer to.
    pub fn with_players(mut self, database: Database) -> Self {
        self.players = Some(database);
        self
    }

    /// Writes the player's record behind the join: a slow or absent
    /// database must not delay or refuse a seat.
    fn record_player(&self, who: &str, name: Option<&str>) {
        let Some(database) = self.players.clone() else {
            return;
        };
        let (who, name) = (who.to_owned(), name.unwrap_or(who).to_owned());
        tokio::spawn(async move {
            if let Err(error) = database.upsert_player(&who, &name).await {
                tracing::warn!(player = %who, %error, "could not record the player");
            }
        });
    }
}

fn parse_body(body: Result<Json<JoinRequest>, JsonRejection>) -> Result<JoinRequest, ApiError> {
    match body {
        Ok(Json(request)) => Ok(request),
        // An empty body is an anonymous "any game".
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(JoinRequest {
            name: None,
            map: None,
            session_id: None,
            max_players: None,
            reconnect_token: None,
        }),
        Err(rejection) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            rejection.body_text(),
        )),
    }
}

pub(super) async fn join(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<JoinRequest>, JsonRejection>,
) -> Result<Json<JoinResponse>, ApiError> {
    let request = parse_body(body)?;
    seat_player(&state, &headers, request, None).await.map(Json)
}

pub(super) async fn join_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<JoinRequest>, JsonRejection>,
) -> Result<Json<JoinResponse>, ApiError> {
    let id = session_id(id)?;
    let request = parse_body(body)?;
    seat_player(&state, &headers, request, Some(id))
        .await
        .map(Json)
}

async fn seat_player(
    state: &AppState,
    headers: &HeaderMap,
    request: JoinRequest,
    path_session: Option<SessionId>,
) -> Result<JoinResponse, ApiError> {
    let Some(service) = &state.join else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "game transports are not running on this server",
        ));
    };
    let token = bearer(headers).and_then(|token| std::str::from_utf8(token).ok());
    let (session, player, who) = if let Some(reconnect) = &request.reconnect_token {
        let claim = service
            .net
            .key()
            .verify_reconnect(reconnect)
            .map_err(|error| ApiError::new(StatusCode::UNAUTHORIZED, error.to_string()))?;
        if !service.auth.is_anonymous() {
            let who = service.auth.identify(token).map_err(unauthorized)?;
            if who != claim.player {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "that reconnect token belongs to another player",
                ));
            }
        }
        let id = SessionId(claim.seat.session);
        let player = PlayerId(claim.seat.player);
        state
            .host
            .rejoin(id, player, &claim.player)
            .await
            .map_err(seat_error)?;
        (id, player, claim.player)
    } else {
        let who = service.auth.identify(token).map_err(unauthorized)?;
        let direct = match (path_session, &request.session_id) {
            (Some(id), _) => Some(id),
            (None, Some(text)) => Some(text.parse().map_err(|_| ApiError::not_found())?),
            (None, None) => None,
        };
        let (id, player) = match direct {
            Some(id) => (id, state.host.join(id, &who).await?),
            None => matchmake(state, service, &request, &who).await?,
        };
        (id, player, who)
    };
    let seat = SeatRef {
        session: session.0,
        player: player.0,
    };
    let grant = service
        .net
        .grant(seat)
        .map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
    let reconnect_token = service
        .net
        .key()
        .reconnect_token(seat, &who)
        .map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
    tracing::info!(session = %session, player = player.0, name = request.name.as_deref().unwrap_or(""), "player seated");
    service.record_player(&who, request.name.as_deref());
    Ok(JoinResponse {
        session_id: session.to_string(),
        player_id: player.0,
        connect_token: grant.connect_token,
        udp_addresses: grant.udp_addresses,
        ws_url: format!("{}/ws?ticket={}", service.ws_base, grant.ws_ticket),
        reconnect_token,
    })
}

/// A seat in an open public lobby on the map, or in a new session.
async fn matchmake(
    state: &AppState,
    service: &JoinService,
    request: &JoinRequest,
    who: &str,
) -> Result<(SessionId, PlayerId), ApiError> {
    let map = request.map.as_deref().unwrap_or(&service.default_map);
    let seats = request.max_players.unwrap_or(MATCHMAKING_SEATS);
    // A lobby just opened is visible to every matchmaker at once, so
    // others may fill it before its opener sits down: then look again.
    for _ in 0..3 {
        match state.host.matchmake(map, seats, who).await {
            Err(HostError::NotFound) => {}
            seated => return seated.map_err(ApiError::from),
        }
        let created = state
            .host
            .create(CreateSession {
                map: map.to_owned(),
                max_players: seats,
                bots: 0,
                private: false,
                seed: None,
                scenario: None,
            })
            .await?;
        match state.host.join(created.id, who).await {
            Err(HostError::SessionFull) => {}
            seated => {
                return seated
                    .map(|player| (created.id, player))
                    .map_err(ApiError::from);
            }
        }
    }
    Err(HostError::SessionFull.into())
}

fn unauthorized(error: crate::auth::AuthError) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, error.to_string())
}

fn seat_error(error: HostError) -> ApiError {
    match error {
        HostError::SeatLost => ApiError::new(StatusCode::GONE, error.to_string()),
        other => other.into(),
    }
}
