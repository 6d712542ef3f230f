//! `POST /v1/join` (matchmaking) and `POST /v1/sessions/{id}/join`: a
//! player gets a seat and everything needed to connect to it over UDP or
//! WebSocket, plus a reconnect token to reclaim the seat later.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use rampart_net::client::JoinResponse;
use rampart_net::gateway::NetHandle;
use rampart_net::tickets::{Access, SeatRef};
use rampart_sim::PlayerId;
use serde::Deserialize;

use super::{ApiError, AppState, bearer, session_id};
use rampart_persistence::{Database, HotStore, RowState};

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
    pub(super) net: Arc<NetHandle>,
    auth: PlayerAuth,
    pub(super) ws_base: String,
    players: Option<Database>,
    fleet: Option<Fleet>,
}

/// The other instances sharing this one's stores, for a player who asks
/// here for a session another instance runs.
struct Fleet {
    hot: HotStore,
    instance: String,
}

impl JoinService {
    /// Joins through `net`, identifying players with `auth`; browsers are
    /// sent to `ws_base` (`ws://HOST:PORT`); matchmaking without a map
    /// opens the current content's first map.
    pub fn new(net: Arc<NetHandle>, auth: PlayerAuth, ws_base: String) -> Self {
        Self {
            net,
            auth,
            ws_base,
            players: None,
            fleet: None,
        }
    }

    /// Sends players who ask here for a session another instance runs on to
    /// it: `hot` holds the sessions' leases and the instances' advertised
    /// addresses; this instance owns sessions as `instance`.
    pub fn with_fleet(mut self, hot: HotStore, instance: String) -> Self {
        self.fleet = Some(Fleet { hot, instance });
        self
    }

    /// Records every seated player (id, name, last seen) in `database`,
    /// which results and leaderboards refer to.
    pub fn with_players(mut self, database: Database) -> Self {
        self.players = Some(database);
        self
    }

    /// The answer for a join (or spectate) of a session not hosted here,
    /// asked for at `path`. With a fleet: a redirect (307, so the client
    /// repeats the same request there) to the instance holding its lease,
    /// or 503 with `Retry-After` while nobody holds it (its owner died and
    /// another is about to adopt it) or it is being adopted here. 410 once
    /// it has ended; else 404. A store that fails to answer leaves the 404
    /// (logged): the client may retry. While Redis's circuit is open
    /// (`redis_up` false) only the database is asked.
    pub(super) async fn not_here(
        &self,
        session: SessionId,
        path: &str,
        redis_up: bool,
    ) -> ApiError {
        if let Some(fleet) = self.fleet.as_ref().filter(|_| redis_up) {
            match fleet.hot.lease_holder(session.0).await {
                Ok(Some(holder)) if holder == fleet.instance => return moving(session),
                Ok(Some(holder)) => match fleet.hot.advertised(&holder).await {
                    Ok(Some(base)) => {
                        if let Ok(location) = HeaderValue::try_from(format!("{base}{path}")) {
                            return ApiError::new(
                                StatusCode::TEMPORARY_REDIRECT,
                                format!("session {session} runs on instance {holder}"),
                            )
                            .with_header(header::LOCATION, location);
                        }
                        tracing::warn!(instance = %holder, address = %base, "an instance advertises an address that is no header value");
                    }
                    // Its owner stopped advertising: it is dying, and its
                    // lease lapses soon.
                    Ok(None) => return moving(session),
                    Err(error) => tracing::warn!(%error, "cannot read where instances are"),
                },
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "cannot read session leases"),
            }
        }
        if let Some(database) = &self.players {
            match database.session(session.0).await {
                Ok(Some(record)) if record.row.state == RowState::Ended => {
                    return ApiError::new(StatusCode::GONE, "the session has ended");
                }
                // Running, with no owner: another instance adopts it within
                // a lease (without a fleet nobody would).
                Ok(Some(record))
                    if record.row.state == RowState::Running && self.fleet.is_some() =>
                {
                    return moving(session);
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot read the session's record"),
            }
        }
        HostError::NotFound.into()
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
    let path = match path_session {
        Some(id) => format!("/v1/sessions/{id}/join"),
        None => "/v1/join".to_owned(),
    };
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
        match state.host.rejoin(id, player, &claim.player).await {
            Ok(()) => {}
            Err(HostError::NotFound) => {
                return Err(service.not_here(id, &path, state.redis_up()).await);
            }
            Err(error) => return Err(seat_error(error)),
        }
        (id, player, claim.player)
    } else {
        let who = service.auth.identify(token).map_err(unauthorized)?;
        let direct = match (path_session, &request.session_id) {
            (Some(id), _) => Some(id),
            (None, Some(text)) => Some(text.parse().map_err(|_| ApiError::not_found())?),
            (None, None) => None,
        };
        let (id, player) = match direct {
            Some(id) => match state.host.join(id, &who).await {
                Ok(player) => (id, player),
                Err(HostError::NotFound) => {
                    return Err(service.not_here(id, &path, state.redis_up()).await);
                }
                Err(error) => return Err(error.into()),
            },
            None => matchmake(state, &request, &who).await?,
        };
        (id, player, who)
    };
    let seat = SeatRef {
        session: session.0,
        player: player.0,
    };
    let grant = service.net.grant(Access::Seat(seat)).map_err(internal)?;
    let key = service.net.key();
    let reconnect_token = key.reconnect_token(seat, &who).map_err(internal)?;
    let spectate_invite = key.spectate_invite(session.0).map_err(internal)?;
    tracing::info!(session = %session, player = player.0, name = request.name.as_deref().unwrap_or(""), "player seated");
    service.record_player(&who, request.name.as_deref());
    Ok(JoinResponse {
        session_id: session.to_string(),
        player_id: player.0,
        connect_token: grant.connect_token,
        udp_addresses: grant.udp_addresses,
        ws_url: format!("{}/ws?ticket={}", service.ws_base, grant.ws_ticket),
        reconnect_token,
        spectate_invite,
    })
}

/// A seat in an open public lobby on the map, or in a new session.
async fn matchmake(
    state: &AppState,
    request: &JoinRequest,
    who: &str,
) -> Result<(SessionId, PlayerId), ApiError> {
    // Content reloads may add and remove maps: the default is the first of
    // the content new sessions are built from now.
    let first_map;
    let map = match request.map.as_deref() {
        Some(map) => map,
        None => {
            first_map = state.host.content().maps.first().map(|map| map.key.clone());
            first_map.as_deref().unwrap_or_default()
        }
    };
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

/// 503: the session is between owners. Retry after a second: instances
/// look for orphans every third of a lease (2 s by default), so a client
/// retrying each second is seated about a second after the adoption.
fn moving(session: SessionId) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("session {session} is moving to another server; retry in a moment"),
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
}

/// A token that could not be made: the key is broken, not the request.
pub(super) fn internal(error: rampart_net::tickets::TicketError) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
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
