//! Everything the server hands a client so it may connect: a netcode
//! connect token for UDP, a WebSocket ticket, and a reconnect token. All are
//! signed (or encrypted) with one 32-byte server key, so any instance that
//! shares the key can check them and nothing else can forge them.
//!
//! Each connection attempt gets a fresh client id: renet refuses an id that
//! is still connected until it times out, so a player who reconnects must
//! never reuse the old one. The seat (session and player), or the session a
//! spectator watches, travels inside the token, never as a client id.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use renet_netcode::{ConnectToken, NETCODE_KEY_BYTES, NETCODE_USER_DATA_BYTES};
use serde::{Deserialize, Serialize};

use crate::protocol::NETCODE_PROTOCOL_ID;

/// A connect token (or ticket) must be used within this long.
pub const CONNECT_WINDOW: Duration = Duration::from_secs(30);
/// netcode drops a UDP client silent for this long.
pub const UDP_TIMEOUT_SECONDS: i32 = 10;
/// A reconnect token outlives any game; the host decides whether the seat
/// may still be reclaimed (the grace period).
const RECONNECT_LIFETIME: Duration = Duration::from_secs(24 * 3600);

const WS_AUDIENCE: &str = "rampart-ws";
const RECONNECT_AUDIENCE: &str = "rampart-reconnect";
const INVITE_AUDIENCE: &str = "rampart-spectate";

/// The role byte of netcode user data (after the session and seat): what
/// the connection may do.
const ROLE_PLAYER: u8 = 0;
const ROLE_SPECTATOR: u8 = 1;

/// The seat a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeatRef {
    /// Session id.
    pub session: u64,
    /// Seat in the session.
    pub player: u8,
}

/// Who a connection is for: a player in a seat, or a spectator of a
/// session, who sees everything and may do nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Plays this seat.
    Seat(SeatRef),
    /// Watches this session without a seat.
    Spectator {
        /// Session id.
        session: u64,
    },
}

impl Access {
    /// The session the connection is for.
    pub fn session(self) -> u64 {
        match self {
            Access::Seat(seat) => seat.session,
            Access::Spectator { session } => session,
        }
    }
}

/// What a join hands the client.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Grant {
    /// The client id both tokens are for.
    pub client_id: u64,
    /// netcode connect token (standard base64).
    pub connect_token: String,
    /// UDP addresses the token lists, in the order to try them.
    pub udp_addresses: Vec<SocketAddr>,
    /// WebSocket ticket: `ws://HOST/ws?ticket=...`.
    pub ws_ticket: String,
}

/// A checked WebSocket ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsTicket {
    /// The fresh client id it was minted with (single use).
    pub client_id: u64,
    /// The seat, or the session watched.
    pub access: Access,
    /// Unix seconds after which it is refused.
    pub expires: u64,
}

/// A checked reconnect token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconnect {
    /// The seat to reclaim.
    pub seat: SeatRef,
    /// Who held it (the auth subject, or the anonymous player's name).
    pub player: String,
}

/// Why a token was refused or could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    /// Bad signature, expired, wrong audience, or not a token at all.
    #[error("invalid or expired ticket: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    /// netcode refused to build the token (too many addresses).
    #[error("cannot build a connect token: {0}")]
    Netcode(#[from] renet_netcode::TokenGenerationError),
    /// The key is not 32 bytes of base64.
    #[error("the net key must be 32 bytes, standard base64 (got {0})")]
    BadKey(String),
}

#[derive(Serialize, Deserialize)]
struct WsClaims {
    aud: String,
    exp: u64,
    cid: u64,
    sid: u64,
    seat: u8,
    /// A spectator's ticket (its `seat` means nothing).
    #[serde(default)]
    watch: bool,
}

#[derive(Serialize, Deserialize)]
struct ReconnectClaims {
    aud: String,
    exp: u64,
    sid: u64,
    seat: u8,
    sub: String,
}

#[derive(Serialize, Deserialize)]
struct InviteClaims {
    aud: String,
    exp: u64,
    sid: u64,
}

/// The server's key and the client id counter.
pub struct TicketKey {
    netcode: [u8; NETCODE_KEY_BYTES],
    encoding: EncodingKey,
    decoding: DecodingKey,
    next_client_id: AtomicU64,
}

impl TicketKey {
    /// A key from its 32 raw bytes.
    ///
    /// # Errors
    /// If the JWT library refuses the secret.
    pub fn new(key: [u8; NETCODE_KEY_BYTES]) -> Result<Self, TicketError> {
        let start = u64::from_le_bytes(renet_netcode::generate_random_bytes::<8>()) >> 1;
        Ok(Self {
            netcode: key,
            encoding: EncodingKey::from_secret(&key)?,
            decoding: DecodingKey::from_secret(&key)?,
            next_client_id: AtomicU64::new(start.max(1)),
        })
    }

    /// A key from standard base64 (the `net_key` setting).
    ///
    /// # Errors
    /// Not base64, or not 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, TicketError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|error| TicketError::BadKey(error.to_string()))?;
        let key: [u8; NETCODE_KEY_BYTES] = bytes
            .try_into()
            .map_err(|bytes: Vec<u8>| TicketError::BadKey(format!("{} bytes", bytes.len())))?;
        Self::new(key)
    }

    /// A random key, for development only: tokens die with the process and
    /// no other instance can accept them.
    ///
    /// # Errors
    /// If the JWT library refuses the secret.
    pub fn generate() -> Result<Self, TicketError> {
        Self::new(renet_netcode::generate_random_bytes())
    }

    /// The raw key, for the netcode servers.
    pub(crate) fn netcode_key(&self) -> [u8; NETCODE_KEY_BYTES] {
        self.netcode
    }

    /// Mints a fresh client id, a connect token and a WebSocket ticket for
    /// `access`.
    ///
    /// # Errors
    /// If netcode cannot build the token (more than 32 addresses).
    pub fn grant(
        &self,
        access: Access,
        udp_addresses: Vec<SocketAddr>,
    ) -> Result<Grant, TicketError> {
        let client_id = self.next_client_id.fetch_add(1, Ordering::Relaxed);
        let now = since_epoch();
        let token = ConnectToken::generate(
            now,
            NETCODE_PROTOCOL_ID,
            CONNECT_WINDOW.as_secs(),
            client_id,
            UDP_TIMEOUT_SECONDS,
            udp_addresses.clone(),
            Some(&user_data(access)),
            &self.netcode,
        )?;
        let mut bytes = Vec::with_capacity(2048);
        // Writing into a Vec cannot fail.
        let _ = token.write(&mut bytes);
        let claims = WsClaims {
            aud: WS_AUDIENCE.into(),
            exp: (now + CONNECT_WINDOW).as_secs(),
            cid: client_id,
            sid: access.session(),
            seat: match access {
                Access::Seat(seat) => seat.player,
                Access::Spectator { .. } => 0,
            },
            watch: matches!(access, Access::Spectator { .. }),
        };
        let ws_ticket =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(Grant {
            client_id,
            connect_token: STANDARD.encode(bytes),
            udp_addresses,
            ws_ticket,
        })
    }

    /// Checks a WebSocket ticket's signature, audience and expiry. Single
    /// use is the transport's job (it remembers client ids it has seen).
    ///
    /// # Errors
    /// Forged, expired or not a WebSocket ticket.
    pub fn verify_ws(&self, ticket: &str) -> Result<WsTicket, TicketError> {
        let claims: WsClaims = self.verify(ticket, WS_AUDIENCE)?;
        let access = if claims.watch {
            Access::Spectator {
                session: claims.sid,
            }
        } else {
            Access::Seat(SeatRef {
                session: claims.sid,
                player: claims.seat,
            })
        };
        Ok(WsTicket {
            client_id: claims.cid,
            access,
            expires: claims.exp,
        })
    }

    /// A token that lets `player` reclaim `seat` later.
    ///
    /// # Errors
    /// Never in practice (signing with HS256 does not fail).
    pub fn reconnect_token(&self, seat: SeatRef, player: &str) -> Result<String, TicketError> {
        let claims = ReconnectClaims {
            aud: RECONNECT_AUDIENCE.into(),
            exp: (since_epoch() + RECONNECT_LIFETIME).as_secs(),
            sid: seat.session,
            seat: seat.player,
            sub: player.into(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Checks a reconnect token.
    ///
    /// # Errors
    /// Forged, expired or not a reconnect token.
    pub fn verify_reconnect(&self, token: &str) -> Result<Reconnect, TicketError> {
        let claims: ReconnectClaims = self.verify(token, RECONNECT_AUDIENCE)?;
        Ok(Reconnect {
            seat: SeatRef {
                session: claims.sid,
                player: claims.seat,
            },
            player: claims.sub,
        })
    }

    /// An invitation to watch `session`, for sessions whose spectators must
    /// be invited (private ones): the session's players are handed one to
    /// pass on, and it is good for as long as a reconnect token.
    ///
    /// # Errors
    /// Never in practice (signing with HS256 does not fail).
    pub fn spectate_invite(&self, session: u64) -> Result<String, TicketError> {
        let claims = InviteClaims {
            aud: INVITE_AUDIENCE.into(),
            exp: (since_epoch() + RECONNECT_LIFETIME).as_secs(),
            sid: session,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Checks an invitation to watch; the session it is for.
    ///
    /// # Errors
    /// Forged, expired or not an invitation.
    pub fn verify_spectate_invite(&self, invite: &str) -> Result<u64, TicketError> {
        let claims: InviteClaims = self.verify(invite, INVITE_AUDIENCE)?;
        Ok(claims.sid)
    }

    fn verify<T: for<'de> Deserialize<'de>>(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<T, TicketError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        Ok(jsonwebtoken::decode::<T>(token, &self.decoding, &validation)?.claims)
    }
}

/// The access as netcode user data: session id (u64 LE), the seat byte,
/// then the role byte (0 player, 1 spectator).
pub(crate) fn user_data(access: Access) -> [u8; NETCODE_USER_DATA_BYTES] {
    let mut data = [0; NETCODE_USER_DATA_BYTES];
    data[..8].copy_from_slice(&access.session().to_le_bytes());
    match access {
        Access::Seat(seat) => {
            data[8] = seat.player;
            data[9] = ROLE_PLAYER;
        }
        Access::Spectator { .. } => data[9] = ROLE_SPECTATOR,
    }
    data
}

/// The access back from netcode user data. Only this server's key makes
/// tokens, so an unknown role byte cannot arrive; it would read as a
/// spectator, the role that may do nothing.
pub(crate) fn access_from_user_data(data: &[u8; NETCODE_USER_DATA_BYTES]) -> Access {
    let mut session = [0; 8];
    session.copy_from_slice(&data[..8]);
    let session = u64::from_le_bytes(session);
    if data[9] == ROLE_PLAYER {
        Access::Seat(SeatRef {
            session,
            player: data[8],
        })
    } else {
        Access::Spectator { session }
    }
}

/// Decodes a connect token from a grant.
///
/// # Errors
/// Not base64 or not a netcode token.
pub fn decode_connect_token(text: &str) -> Result<ConnectToken, String> {
    let bytes = STANDARD.decode(text).map_err(|error| error.to_string())?;
    ConnectToken::read(&mut bytes.as_slice()).map_err(|error| error.to_string())
}

/// Unix time now; a clock before 1970 reads as 0.
pub(crate) fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// URL-safe base64 of random bytes, for ids that travel in URLs.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(renet_netcode::generate_random_bytes::<16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TicketKey {
        TicketKey::new([7; 32]).expect("key")
    }

    #[test]
    fn tickets_round_trip_and_bind_their_seat() {
        let key = key();
        let seat = SeatRef {
            session: 0xdead_beef,
            player: 3,
        };
        let address: SocketAddr = "127.0.0.1:5000".parse().expect("address");
        let grant = key.grant(Access::Seat(seat), vec![address]).expect("grant");
        let ticket = key.verify_ws(&grant.ws_ticket).expect("valid ticket");
        assert_eq!(ticket.access, Access::Seat(seat));
        assert_eq!(ticket.client_id, grant.client_id);
        let token = decode_connect_token(&grant.connect_token).expect("token");
        assert_eq!(token.client_id, grant.client_id);
        let second = key.grant(Access::Seat(seat), vec![address]).expect("grant");
        assert_ne!(second.client_id, grant.client_id, "fresh id per attempt");
        assert_eq!(
            access_from_user_data(&user_data(Access::Seat(seat))),
            Access::Seat(seat)
        );
        let watcher = Access::Spectator {
            session: seat.session,
        };
        assert_eq!(access_from_user_data(&user_data(watcher)), watcher);
        let watching = key.grant(watcher, vec![address]).expect("grant");
        let ticket = key.verify_ws(&watching.ws_ticket).expect("valid ticket");
        assert_eq!(ticket.access, watcher, "a spectator's ticket stays one");

        let reconnect = key.reconnect_token(seat, "alice").expect("token");
        let back = key.verify_reconnect(&reconnect).expect("valid");
        assert_eq!(back.seat, seat);
        assert_eq!(back.player, "alice");
    }

    #[test]
    fn forged_or_mixed_up_tickets_are_refused() {
        let key = key();
        let other = TicketKey::new([8; 32]).expect("key");
        let seat = SeatRef {
            session: 1,
            player: 0,
        };
        let address: SocketAddr = "127.0.0.1:5000".parse().expect("address");
        let grant = other
            .grant(Access::Seat(seat), vec![address])
            .expect("grant");
        assert!(key.verify_ws(&grant.ws_ticket).is_err(), "other key");
        let reconnect = key.reconnect_token(seat, "bob").expect("token");
        assert!(key.verify_ws(&reconnect).is_err(), "wrong audience");
        let ws = key
            .grant(Access::Seat(seat), vec![address])
            .expect("grant")
            .ws_ticket;
        assert!(key.verify_reconnect(&ws).is_err(), "wrong audience");
        let invite = key.spectate_invite(seat.session).expect("invite");
        assert_eq!(key.verify_spectate_invite(&invite).ok(), Some(seat.session));
        assert!(
            key.verify_spectate_invite(&reconnect).is_err(),
            "wrong audience"
        );
        assert!(key.verify_ws(&invite).is_err(), "an invite is no ticket");
        let forged = other.spectate_invite(seat.session).expect("invite");
        assert!(key.verify_spectate_invite(&forged).is_err(), "other key");
        assert!(key.verify_ws("not.a.ticket").is_err());
        let mut tampered = ws.clone();
        tampered.pop();
        assert!(key.verify_ws(&tampered).is_err());
        assert!(TicketKey::from_base64("c2hvcnQ=").is_err());
        assert!(TicketKey::from_base64(&STANDARD.encode([1u8; 32])).is_ok());
    }
}
