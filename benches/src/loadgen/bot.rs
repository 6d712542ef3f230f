//! One load-test bot: a real client on the client library that plays like
//! a simple player (builds beside the road, upgrades, calls waves early)
//! and records what a load test reports: connect time, command round
//! trips, snapshot arrival, bytes, desyncs and how its connection ended.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rampart_net::client::{Client, ClientError, JoinResponse, Snapshots};
use rampart_net::protocol::{ByeReason, EndReason, ServerMessage, WireEvent};
use rampart_sim::content::TowerKindId;
use rampart_sim::grid::{Cell, Tile};
use rampart_sim::{Command, Content, TowerId};

/// How a bot's game went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Still playing.
    Playing,
    /// Saw the game over and the session's end.
    Completed,
    /// The connection ended any other way (error, goodbye for another
    /// reason, or no welcome in time).
    Failed,
    /// Its lobby never filled before the run ended (bots stop joining at
    /// the end, so the last lobbies may wait for players who never come):
    /// neither a success nor a failure.
    Unstarted,
}

/// Where a bot builds, worked out once per map: buildable cells touching
/// the road, nearest the spawn first, and the cheapest tower.
pub struct MapPlan {
    cells: Vec<Cell>,
    tower: TowerKindId,
    tower_cost: u32,
    upgrade_cost: u32,
}

impl MapPlan {
    /// The plan for `map`, or `None` if the content has no such map or
    /// no towers.
    pub fn new(content: &Content, map: &str) -> Option<Self> {
        let grid = &content.map(map)?.grid;
        let (tower, kind) = content
            .towers
            .iter()
            .enumerate()
            .min_by_key(|(_, kind)| kind.levels.first().map_or(u32::MAX, |level| level.cost))?;
        let mut cells = Vec::new();
        for y in 0..grid.height() {
            for x in 0..grid.width() {
                let cell = Cell::new(x, y);
                if grid.tile(cell) != Tile::Buildable {
                    continue;
                }
                let touches_road = (-1i32..=1).any(|dy| {
                    (-1i32..=1).any(|dx| {
                        let (nx, ny) = (i32::from(x) + dx, i32::from(y) + dy);
                        grid.contains(nx, ny)
                            && grid.tile(Cell::new(nx as u16, ny as u16)) == Tile::Path
                    })
                });
                if touches_road {
                    cells.push(cell);
                }
            }
        }
        let spawn = grid.spawns().first().copied().unwrap_or(Cell::new(0, 0));
        cells.sort_by_key(|cell| {
            (i32::from(cell.x) - i32::from(spawn.x)).abs()
                + (i32::from(cell.y) - i32::from(spawn.y)).abs()
        });
        Some(Self {
            cells,
            tower: TowerKindId(tower as u16),
            tower_cost: kind.levels.first().map_or(0, |level| level.cost),
            upgrade_cost: kind.levels.get(1).map_or(u32::MAX, |level| level.cost),
        })
    }
}

/// What a bot measured.
#[derive(Clone, Debug, Default)]
pub struct BotRecord {
    /// Command round trips (send to result), in milliseconds.
    pub round_trips_ms: Vec<f32>,
    /// Gaps between consecutive snapshots, in milliseconds.
    pub snapshot_gaps_ms: Vec<f32>,
    /// How far each gap strayed from the simulated time between the two
    /// snapshots (their tick difference), in milliseconds: network and
    /// scheduling jitter, without the tick rate's own rhythm.
    pub snapshot_jitter_ms: Vec<f32>,
    /// Wire bytes down and up while connected.
    pub bytes: (u64, u64),
    /// Seconds connected.
    pub connected_seconds: f64,
    /// Snapshots whose checksum failed.
    pub desyncs: u64,
    /// Whether the welcome arrived.
    pub welcomed: bool,
    /// The session it played in.
    pub session: String,
    /// Why a failed bot failed.
    pub failure: Option<String>,
    /// Its lobby never started.
    pub unstarted: bool,
}

/// A bot in play.
pub struct Bot {
    client: Client,
    websocket: bool,
    seat: usize,
    next_cell: usize,
    started: Instant,
    last_update: Instant,
    next_move: Instant,
    last_call: Instant,
    sent: HashMap<u32, Instant>,
    /// Count and tick of the last snapshot seen, and when it arrived.
    last_snapshot: Option<(u64, u64, Instant)>,
    game_over: bool,
    ended: Ending,
    ready_sent: bool,
    towers_built: usize,
    record: BotRecord,
    noise: u64,
}

/// A bot that saw no welcome this long after connecting has failed.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// Between a bot's decisions.
const THINK: Duration = Duration::from_millis(1500);
/// Between its early wave calls.
const CALL_EVERY: Duration = Duration::from_secs(6);

impl Bot {
    /// Connects with what a join answered.
    ///
    /// # Errors
    /// If the connection cannot be opened.
    pub fn connect(
        join: &JoinResponse,
        websocket: bool,
        snapshots: Snapshots,
    ) -> Result<Self, ClientError> {
        let client = Client::connect_with(&join.endpoint(websocket), snapshots)?;
        let now = Instant::now();
        let noise = u64::from(join.player_id).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ join
                .session_id
                .bytes()
                .fold(0u64, |hash, byte| hash.wrapping_mul(31) ^ u64::from(byte));
        Ok(Self {
            client,
            websocket,
            seat: usize::from(join.player_id),
            next_cell: usize::from(join.player_id),
            started: now,
            last_update: now,
            next_move: now,
            last_call: now,
            sent: HashMap::new(),
            last_snapshot: None,
            game_over: false,
            ended: Ending::Playing,
            ready_sent: false,
            towers_built: 0,
            record: BotRecord {
                session: join.session_id.clone(),
                ..BotRecord::default()
            },
            noise: noise | 1,
        })
    }

    /// Whether it connected over WebSocket.
    pub fn websocket(&self) -> bool {
        self.websocket
    }

    /// Its client's socket, to wait on (see `Client::socket_fd`).
    pub fn socket_fd(&self) -> Option<std::os::fd::RawFd> {
        self.client.socket_fd()
    }

    /// How its game is going.
    pub fn ending(&self) -> Ending {
        self.ended
    }

    /// Runs the client, reads what arrived, and plays a move when due.
    pub fn step(&mut self, plan: Option<&MapPlan>) {
        if self.ended != Ending::Playing {
            return;
        }
        let now = Instant::now();
        let outcome = self.client.update(now - self.last_update);
        self.last_update = now;
        while let Some(message) = self.client.poll() {
            match message {
                ServerMessage::Welcome(_) => self.record.welcomed = true,
                ServerMessage::CommandResult { seq, .. } => {
                    if let Some(sent) = self.sent.remove(&seq) {
                        self.record
                            .round_trips_ms
                            .push(sent.elapsed().as_secs_f32() * 1e3);
                    }
                }
                ServerMessage::Event {
                    event: WireEvent::GameOver { .. },
                    ..
                } => self.game_over = true,
                ServerMessage::Bye { reason } => self.finish(Some(reason), None),
                ServerMessage::Event { .. } | ServerMessage::Chat { .. } => {}
            }
        }
        let stats = self.client.stats();
        let tick = self.client.world().tick;
        if stats.snapshots > 0 {
            match self.last_snapshot {
                Some((count, last_tick, at)) if count != stats.snapshots => {
                    let gap = (now - at).as_secs_f32() * 1e3;
                    let tick_hz = self
                        .client
                        .welcome()
                        .map_or(30.0, |welcome| f32::from(welcome.tick_hz.max(1)));
                    let simulated = tick.saturating_sub(last_tick) as f32 * 1e3 / tick_hz;
                    self.record.snapshot_gaps_ms.push(gap);
                    self.record.snapshot_jitter_ms.push((gap - simulated).abs());
                    self.last_snapshot = Some((stats.snapshots, tick, now));
                }
                None => self.last_snapshot = Some((stats.snapshots, tick, now)),
                Some(_) => {}
            }
        }
        match outcome {
            Ok(()) => {}
            Err(ClientError::Bye(reason)) => self.finish(Some(reason), None),
            Err(error) => self.finish(None, Some(error.to_string())),
        }
        if self.ended != Ending::Playing {
            return;
        }
        if !self.record.welcomed {
            if self.started.elapsed() > WELCOME_TIMEOUT {
                self.finish(None, Some("no welcome".into()));
            }
            return;
        }
        // A lobby does not tick: commands sent there would wait for the
        // game to start, and their round trips would measure the lobby.
        if let Some(plan) = plan
            && now >= self.next_move
            && self.client.world().tick > 0
        {
            self.think(plan, now);
        }
    }

    fn send(&mut self, command: Command) {
        match self.client.send_command(command) {
            Ok(seq) => {
                self.sent.insert(seq, Instant::now());
            }
            Err(error) => self.finish(None, Some(error.to_string())),
        }
    }

    fn noise(&mut self) -> u64 {
        self.noise ^= self.noise << 13;
        self.noise ^= self.noise >> 7;
        self.noise ^= self.noise << 17;
        self.noise
    }

    /// One decision: build while gold allows, upgrade, ready up, call the
    /// next wave now and then.
    fn think(&mut self, plan: &MapPlan, now: Instant) {
        self.next_move = now + THINK + Duration::from_millis(self.noise() % 500);
        let world = self.client.world();
        let gold = world.players.get(self.seat).map_or(0, |player| player.gold);
        let own: Vec<u32> = world
            .towers
            .iter()
            .filter(|tower| usize::from(tower.owner) == self.seat && tower.level == 0)
            .map(|tower| tower.id)
            .collect();
        if gold >= plan.tower_cost && self.next_cell < plan.cells.len() {
            let cell = plan.cells[self.next_cell];
            // Seats take turns along the road so they rarely collide.
            self.next_cell += self
                .client
                .welcome()
                .map_or(1, |welcome| usize::from(welcome.players.max(1)));
            self.towers_built += 1;
            self.send(Command::PlaceTower {
                kind: plan.tower,
                cell,
            });
        } else if gold >= plan.upgrade_cost && !own.is_empty() {
            let pick = own[(self.noise() % own.len() as u64) as usize];
            self.send(Command::UpgradeTower {
                tower: TowerId(pick),
            });
        }
        if !self.ready_sent && self.towers_built >= 2 {
            self.ready_sent = true;
            self.send(Command::Ready);
        } else if self.ready_sent && now - self.last_call >= CALL_EVERY {
            self.last_call = now;
            self.send(Command::CallNextWave);
        }
    }

    fn finish(&mut self, bye: Option<ByeReason>, error: Option<String>) {
        if self.ended != Ending::Playing {
            return;
        }
        self.take_stats();
        let completed = self.game_over
            && matches!(
                bye,
                Some(ByeReason::SessionEnded(
                    EndReason::Victory | EndReason::Defeat
                ))
            );
        self.ended = if completed {
            Ending::Completed
        } else {
            Ending::Failed
        };
        if !completed {
            self.record.failure = Some(match (bye, error) {
                (Some(reason), _) => reason.to_string(),
                (None, Some(error)) => error,
                (None, None) => "ended without a game over".into(),
            });
        }
    }

    /// Ends a bot that only watched a game meant to outlast the run: a
    /// success if it was welcomed and nothing went wrong.
    pub fn stop_watching(&mut self) {
        if self.ended != Ending::Playing {
            return;
        }
        if !self.record.welcomed {
            self.abandon();
            return;
        }
        self.take_stats();
        self.ended = Ending::Completed;
    }

    /// Copies the client's totals into the record.
    fn take_stats(&mut self) {
        let stats = self.client.stats();
        self.record.bytes = (stats.bytes_in, stats.bytes_out);
        self.record.desyncs = stats.desyncs;
        self.record.connected_seconds = self.started.elapsed().as_secs_f64();
    }

    /// Gives up on a bot still playing when the run must end.
    pub fn abandon(&mut self) {
        if self.ended == Ending::Playing && self.client.world().tick == 0 {
            self.ended = Ending::Unstarted;
            self.record.unstarted = true;
            return;
        }
        self.finish(None, Some("still playing when the run ended".into()));
    }

    /// What it measured (final once it has ended).
    pub fn into_record(self) -> BotRecord {
        self.record
    }
}
