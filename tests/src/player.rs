//! A player (or a spectator) over the real network: joins through the HTTP
//! API, connects with the client library, and records what it saw (world
//! checksums by tick, command results, events, the goodbye) for tests to
//! compare.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rampart_net::client::{Client, ClientError, Endpoint, JoinResponse, SpectateResponse};
use rampart_net::protocol::{ByeReason, ServerMessage, WireEvent, WireRejection};
use rampart_sim::Command;

use crate::server::Server;

/// One connected player or spectator and its record.
pub struct Player {
    /// The connection.
    pub client: Client,
    /// What the join answered; `None` for a spectator.
    seat: Option<JoinResponse>,
    /// Checksum of the reconstructed world at every tick it was seen.
    pub checksums: BTreeMap<u64, u32>,
    /// Results by command `seq`.
    pub results: HashMap<u32, Result<(), WireRejection>>,
    /// When each command was sent, for round trips.
    pub sent: HashMap<u32, Instant>,
    /// Round trips of answered commands.
    pub round_trips: Vec<Duration>,
    /// Session events in order.
    pub events: Vec<WireEvent>,
    /// The goodbye, once said.
    pub bye: Option<ByeReason>,
    /// The error that ended the connection, if it ended without a goodbye.
    pub error: Option<String>,
    /// When the first snapshot arrived on this connection.
    pub first_snapshot_at: Option<Instant>,
    /// When the latest snapshot arrived.
    pub last_snapshot_at: Option<Instant>,
    last_update: Instant,
}

impl Player {
    /// `POST path` (`/v1/join` or `/v1/sessions/{id}/join`) with `body`.
    ///
    /// # Panics
    /// If the server refuses.
    pub fn join(server: &Server, path: &str, body: &serde_json::Value) -> JoinResponse {
        let reply = server.post(path, body, None);
        assert_eq!(reply.status, 200, "join refused: {}", reply.body);
        serde_json::from_str(&reply.body).expect("join answer")
    }

    /// `POST /v1/sessions/{session}/spectate` with `body`, as the admin
    /// when `admin_token` is given.
    ///
    /// # Panics
    /// If the server refuses.
    pub fn spectate(
        server: &Server,
        session: &str,
        body: &serde_json::Value,
        admin_token: Option<&str>,
    ) -> SpectateResponse {
        let path = format!("/v1/sessions/{session}/spectate");
        let reply = server.post(&path, body, admin_token);
        assert_eq!(reply.status, 200, "spectating refused: {}", reply.body);
        serde_json::from_str(&reply.body).expect("spectate answer")
    }

    /// Connects over WebSocket or UDP with what a join answered.
    ///
    /// # Panics
    /// If the connection cannot be made.
    pub fn connect(join: JoinResponse, websocket: bool) -> Player {
        let endpoint = join.endpoint(websocket);
        Self::open(&endpoint, Some(join))
    }

    /// Connects a spectator over WebSocket or UDP.
    ///
    /// # Panics
    /// If the connection cannot be made.
    pub fn watch(place: &SpectateResponse, websocket: bool) -> Player {
        Self::open(&place.endpoint(websocket), None)
    }

    /// What the join answered.
    ///
    /// # Panics
    /// For a spectator, which has no seat.
    pub fn seat(&self) -> &JoinResponse {
        self.seat.as_ref().expect("a spectator has no seat")
    }

    fn open(endpoint: &Endpoint, seat: Option<JoinResponse>) -> Player {
        let client = Client::connect(endpoint).expect("connect");
        Player {
            client,
            seat,
            checksums: BTreeMap::new(),
            results: HashMap::new(),
            sent: HashMap::new(),
            round_trips: Vec::new(),
            events: Vec::new(),
            bye: None,
            error: None,
            first_snapshot_at: None,
            last_snapshot_at: None,
            last_update: Instant::now(),
        }
    }

    /// True once the connection has ended (goodbye or error).
    pub fn done(&self) -> bool {
        self.bye.is_some() || self.error.is_some()
    }

    /// Runs the client once and records what arrived.
    pub fn pump(&mut self) {
        if self.done() {
            return;
        }
        let elapsed = self.last_update.elapsed();
        self.last_update = Instant::now();
        let snapshots = self.client.stats().snapshots;
        let outcome = self.client.update(elapsed);
        if self.client.stats().snapshots > snapshots {
            self.first_snapshot_at.get_or_insert(self.last_update);
            self.last_snapshot_at = Some(self.last_update);
        }
        while let Some(message) = self.client.poll() {
            match message {
                ServerMessage::CommandResult { seq, result } => {
                    if let Some(sent) = self.sent.remove(&seq) {
                        self.round_trips.push(sent.elapsed());
                    }
                    self.results.insert(seq, result);
                }
                ServerMessage::Event { event, .. } => self.events.push(event),
                ServerMessage::Bye { reason } => self.bye = Some(reason),
                ServerMessage::Welcome(_) | ServerMessage::Chat { .. } => {}
            }
        }
        let world = self.client.world();
        if self.client.stats().snapshots > 0 {
            self.checksums
                .entry(world.tick)
                .or_insert_with(|| world.checksum());
        }
        match outcome {
            Ok(()) => {}
            Err(ClientError::Bye(reason)) => self.bye = Some(reason),
            Err(error) => self.error = Some(error.to_string()),
        }
    }

    /// Sends a command and remembers when.
    ///
    /// # Panics
    /// If the connection cannot send.
    pub fn command(&mut self, command: Command) -> u32 {
        self.try_command(command).expect("send a command")
    }

    /// Sends a command and remembers when, for a test in which the server
    /// may close the connection meanwhile.
    ///
    /// # Errors
    /// If the connection cannot send.
    pub fn try_command(&mut self, command: Command) -> Result<u32, ClientError> {
        let seq = self.client.send_command(command)?;
        self.sent.insert(seq, Instant::now());
        Ok(seq)
    }

    /// Whether the game-over event arrived, and whether it was a victory.
    pub fn outcome(&self) -> Option<bool> {
        self.events.iter().find_map(|event| match event {
            WireEvent::GameOver { victory } => Some(*victory),
            _ => None,
        })
    }
}

/// Pumps every player every couple of milliseconds until `done` holds for
/// all of them or `limit` passes; `act` runs after each pump.
pub fn run_until(
    players: &mut [Player],
    limit: Duration,
    mut act: impl FnMut(usize, &mut Player),
    done: impl Fn(&Player) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        for (index, player) in players.iter_mut().enumerate() {
            player.pump();
            act(index, player);
        }
        if players.iter().all(&done) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}
