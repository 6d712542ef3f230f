//! `POST /v1/sessions/{id}/spectate`: a read-only connection to a session,
//! for operators, designers, tournaments and streamers. A spectator gets
//! the same snapshots and events as the players and takes no seat: it is
//! not a player, does not fill a lobby, and does not keep a session from
//! idling out. Public sessions may be watched by anyone; private ones need
//! the admin token or an invite (`spectate_invite` from a player's join).
//! Each session has at most `max_spectators` (the net loop holds the limit
//! too, for tokens granted together).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use rampart_net::client::SpectateResponse;
use rampart_net::tickets::Access;
use serde::Deserialize;

use super::join::internal;
use super::{ApiError, AppState, is_admin, session_id};
use crate::host::SessionState;
use crate::telemetry::SPECTATORS_REFUSED;

/// What a spectate request may carry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpectateRequest {
    /// An invitation to the session (`spectate_invite` of a player's join):
    /// needed for a private session unless the admin token is given.
    #[serde(default)]
    pub invite: Option<String>,
}

pub(super) async fn spectate(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<SpectateRequest>, JsonRejection>,
) -> Result<Json<SpectateResponse>, ApiError> {
    let id = session_id(id)?;
    let request = match body {
        Ok(Json(request)) => request,
        // No body: watching a public session needs nothing more.
        Err(JsonRejection::MissingJsonContentType(_)) => SpectateRequest::default(),
        Err(rejection) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                rejection.body_text(),
            ));
        }
    };
    let Some(service) = &state.join else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "game transports are not running on this server",
        ));
    };
    let Some(session) = state.host.describe(id).await? else {
        let path = format!("/v1/sessions/{id}/spectate");
        return Err(service.not_here(id, &path, state.redis_up()).await);
    };
    if session.state == SessionState::Ended {
        return Err(ApiError::new(StatusCode::GONE, "the session has ended"));
    }
    let key = service.net.key();
    let invited = || {
        request
            .invite
            .as_deref()
            .and_then(|invite| key.verify_spectate_invite(invite).ok())
            == Some(id.0)
    };
    if session.private && !is_admin(&state, &headers) && !invited() {
        metrics::counter!(SPECTATORS_REFUSED, "reason" => "forbidden").increment(1);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the session is private: watching it needs the admin token or an invite from one of its players",
        ));
    }
    let max = service.net.max_spectators();
    if session.spectators >= max {
        metrics::counter!(SPECTATORS_REFUSED, "reason" => "full").increment(1);
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("the session has as many spectators as it may ({max})"),
        ));
    }
    let grant = service
        .net
        .grant(Access::Spectator { session: id.0 })
        .map_err(internal)?;
    tracing::info!(session = %id, "spectator admitted");
    Ok(Json(SpectateResponse {
        session_id: id.to_string(),
        connect_token: grant.connect_token,
        udp_addresses: grant.udp_addresses,
        ws_url: format!("{}/ws?ticket={}", service.ws_base, grant.ws_ticket),
    }))
}
