//! A session: one game's state and its tick, with a small face for its
//! owner: build, submit commands, step, read events, snapshot, hash.

pub(crate) mod save;

use std::sync::Arc;

use rand_pcg::Pcg32;

use crate::command::{Command, CommandTicket, PlayerId, Rejection};
use crate::content::{Content, Scenario};
use crate::event::{Event, Outcome};
use crate::grid::{Cell, Tile};
use crate::path::{FlowField, STRAIGHT_COST};
use crate::rules::Rules;
use crate::snapshot::{EnemyView, PlayerView, ProjectileView, Snapshot, TowerView};
use crate::world::{
    Board, Clock, Enemies, Events, Game, Ids, Inbox, Match, Pending, PlayerState, Players,
    Projectiles, SessionRules, SimRng, Towers, Waves,
};

pub use save::RestoreError;

/// The most seats a session has.
pub const MAX_PLAYERS: u8 = 8;

/// The default tick rate.
pub const DEFAULT_TICK_HZ: u32 = 30;

/// What a session is built from (with the content): together with the
/// ordered command log, this determines everything that happens in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Map key.
    pub map: String,
    /// Scenario key; its map must be `map`.
    pub scenario: Option<String>,
    /// Seats, 1 to [`MAX_PLAYERS`].
    pub players: u8,
    /// Seed of the session's randomness.
    pub seed: u64,
    /// Ticks per second, 1 to 120.
    pub tick_hz: u32,
}

/// Why a session could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    /// The map key is not in the content.
    #[error("unknown map `{0}`")]
    UnknownMap(String),
    /// The scenario key is not in the content.
    #[error("unknown scenario `{0}`")]
    UnknownScenario(String),
    /// The scenario is for another map.
    #[error("scenario `{scenario}` is for map `{expected}`, not `{map}`")]
    ScenarioMap {
        /// Scenario key.
        scenario: String,
        /// Its map.
        expected: String,
        /// The map asked for.
        map: String,
    },
    /// Seats outside 1 to 8, or fewer than a scenario's towers need.
    #[error("a session has 1 to {MAX_PLAYERS} players (scenario needs {needed}), not {players}")]
    Players {
        /// Asked for.
        players: u8,
        /// The scenario's seat count, or 1.
        needed: u8,
    },
    /// Tick rate outside 1 to 120.
    #[error("tick rate must be 1 to 120 Hz, not {0}")]
    TickRate(u32),
    /// A scenario tower cannot stand where it was put.
    #[error(
        "scenario tower at ({x}, {y}) is on an unbuildable or taken cell, or blocks every path"
    )]
    ScenarioTower {
        /// Column.
        x: u16,
        /// Row.
        y: u16,
    },
}

/// A player's record at the end (or so far).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayerResult {
    /// Seat.
    pub player: PlayerId,
    /// Bounty earned plus 10 per kill: rewards killing over hoarding.
    pub score: u32,
    /// Enemies killed.
    pub kills: u32,
    /// Gold earned (bounties and early-wave bonuses).
    pub gold_earned: u32,
    /// Towers built.
    pub towers_built: u32,
}

/// The headline numbers of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Ticks stepped.
    pub tick: u64,
    /// Waves started.
    pub wave: u32,
    /// Lives left.
    pub lives: u32,
    /// Enemies killed.
    pub kills: u32,
    /// Enemies that reached a goal.
    pub leaks: u32,
    /// Decided outcome.
    pub outcome: Option<Outcome>,
    /// Enemies alive now.
    pub enemies: u32,
    /// Towers standing now.
    pub towers: u32,
}

/// One game: its state, and what it was built from.
pub struct Session {
    game: Game,
    /// What it was built from, kept for `save` and for owners that resume
    /// a restored session (seats, command log header).
    config: SessionConfig,
    /// Set by `inject_panic`: every later step panics.
    #[cfg(feature = "fault-injection")]
    injected_panic: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("summary", &self.summary())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Builds a session at tick 0, scenario towers in place.
    ///
    /// # Errors
    /// When the config names unknown content or is out of range.
    pub fn new(content: Arc<Content>, config: &SessionConfig) -> Result<Self, SessionError> {
        let (map_index, scenario) = check_config(&content, config)?;
        let rules = Rules::shared(&content, map_index, config.tick_hz);
        let map = rules.map();
        let start_gold = scenario
            .and_then(|s| s.start_gold)
            .unwrap_or(map.start_gold);
        let lives = scenario.and_then(|s| s.lives).unwrap_or(map.lives);
        let prep_ticks = u64::from(rules.prep_ticks);

        let players = Players(vec![
            PlayerState {
                gold: start_gold,
                ..Default::default()
            };
            usize::from(config.players)
        ]);
        let state = Match {
            lives,
            kills: 0,
            leaks: 0,
            alive: 0,
            outcome: None,
        };
        let waves = Waves {
            started: 0,
            next_start: Some(prep_ticks),
            hp_scale: 1.0,
            spawners: Vec::new(),
        };
        let mut game = new_game(rules, config, players, state, waves);

        if let Some(scenario) = scenario {
            for tower in &scenario.towers {
                let levels = &content.tower(tower.kind).levels;
                let invested = levels
                    .iter()
                    .take(usize::from(tower.level) + 1)
                    .map(|level| level.cost)
                    .sum();
                let placed = usize::from(tower.level) < levels.len()
                    && crate::commands::place_tower(
                        &mut game,
                        PlayerId(tower.player),
                        tower.kind,
                        tower.cell,
                        tower.level,
                        invested,
                    );
                if !placed {
                    return Err(SessionError::ScenarioTower {
                        x: tower.cell.x,
                        y: tower.cell.y,
                    });
                }
            }
        }
        if let Some(cell) = compute_field(&mut game.board) {
            return Err(SessionError::ScenarioTower {
                x: cell.x,
                y: cell.y,
            });
        }
        Ok(Self::assemble(game, config.clone()))
    }

    /// Wraps a fully populated game (field computed) into a session.
    fn assemble(game: Game, config: SessionConfig) -> Self {
        Self {
            game,
            config,
            #[cfg(feature = "fault-injection")]
            injected_panic: false,
        }
    }

    /// Queues a command for the next tick and returns the ticket its result
    /// event will carry.
    pub fn submit(&mut self, player: PlayerId, command: Command) -> CommandTicket {
        let inbox = &mut self.game.inbox;
        let ticket = CommandTicket(inbox.next_ticket);
        inbox.next_ticket += 1;
        inbox.pending.push(Pending {
            ticket,
            player,
            command,
        });
        ticket
    }

    /// Advances one tick: applies queued commands, then runs every step.
    /// Once the game is over, commands are rejected and time stands still.
    pub fn step(&mut self) {
        if self.game.state.outcome.is_some() {
            let Game { inbox, events, .. } = &mut self.game;
            events.0.clear();
            for pending in inbox.pending.drain(..) {
                events.0.push(Event::CommandResult {
                    ticket: pending.ticket,
                    player: pending.player,
                    result: Err(Rejection::GameOver),
                });
            }
            return;
        }
        #[cfg(feature = "fault-injection")]
        if self.injected_panic {
            panic!("injected fault: this session's tick panics on purpose");
        }
        crate::systems::run_tick(&mut self.game);
    }

    /// What happened during the last step, in order.
    pub fn events(&self) -> &[Event] {
        &self.game.events.0
    }

    /// Makes the next step (and every one after it) panic, to test crash
    /// isolation.
    #[cfg(feature = "fault-injection")]
    pub fn inject_panic(&mut self) {
        self.injected_panic = true;
    }

    /// Ticks stepped so far; commands submitted now apply at this tick.
    pub fn tick(&self) -> u64 {
        self.game.clock.tick
    }

    /// What this session was built from (also after a restore).
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The tick rate this session was built for.
    pub fn tick_hz(&self) -> u32 {
        self.game.rules.0.tick_hz
    }

    /// Set once the game is won or lost.
    pub fn outcome(&self) -> Option<Outcome> {
        self.game.state.outcome
    }

    /// The content this session plays.
    pub fn content(&self) -> &Arc<Content> {
        &self.game.rules.0.content
    }

    /// Number of seats.
    pub fn players(&self) -> u8 {
        self.game.players.0.len() as u8
    }

    /// Headline numbers.
    pub fn summary(&self) -> Summary {
        let game = &self.game;
        let state = &game.state;
        Summary {
            tick: self.tick(),
            wave: game.waves.started,
            lives: state.lives,
            kills: state.kills,
            leaks: state.leaks,
            outcome: state.outcome,
            enemies: state.alive,
            towers: game.towers.len() as u32,
        }
    }

    /// Every player's record so far.
    pub fn results(&self) -> Vec<PlayerResult> {
        self.game
            .players
            .0
            .iter()
            .enumerate()
            .map(|(seat, state)| PlayerResult {
                player: PlayerId(seat as u8),
                score: state.bounty_earned + 10 * state.kills,
                kills: state.kills,
                gold_earned: state.gold_earned,
                towers_built: state.towers_built,
            })
            .collect()
    }

    /// The map as it stands, for tools and scripted players.
    pub fn board(&self) -> BoardView<'_> {
        BoardView {
            board: &self.game.board,
        }
    }

    /// Fills `out` with the visible state, every list sorted by id. Reuses
    /// `out`'s buffers.
    pub fn snapshot(&self, out: &mut Snapshot) {
        let game = &self.game;
        let state = &game.state;
        out.tick = self.game.clock.tick;
        out.wave = game.waves.started;
        out.lives = state.lives;
        out.outcome = state.outcome;
        out.players.clear();
        out.players.extend(
            game.players
                .0
                .iter()
                .enumerate()
                .map(|(seat, player)| PlayerView {
                    id: PlayerId(seat as u8),
                    gold: player.gold,
                    ready: player.ready,
                    kills: player.kills,
                }),
        );
        let now = out.tick;
        out.enemies.clear();
        // Towers, enemies and shots are all kept in id order.
        out.enemies
            .extend(game.enemies.iter().map(|(enemy, afflictions)| EnemyView {
                id: enemy.id,
                kind: enemy.kind,
                position: enemy.position,
                hp: enemy.hp,
                max_hp: afflictions.max_hp,
                flying: enemy.flying,
                slowed: afflictions.slow_until > now,
                burning: afflictions.dot_until > now,
            }));
        out.towers.clear();
        out.towers.extend(game.towers.iter().map(|tower| TowerView {
            id: crate::command::TowerId(tower.id),
            owner: tower.owner,
            kind: tower.kind,
            level: tower.level,
            cell: tower.cell,
            targeting: tower.targeting,
        }));
        out.projectiles.clear();
        out.projectiles
            .extend(game.projectiles.0.iter().map(|projectile| ProjectileView {
                id: projectile.id,
                tower_kind: projectile.tower_kind,
                position: projectile.position,
                aim: projectile.aim,
            }));
    }
}

/// Arbitrary fixed PCG stream: sessions differ by seed only.
const RNG_STREAM: u64 = 0x7261_6d70_6172_7421;

/// Checks `config` against the content: the map's index and the scenario,
/// if any. Shared by building and restoring, so a save is held to the same
/// rules as a new session.
fn check_config<'c>(
    content: &'c Content,
    config: &SessionConfig,
) -> Result<(usize, Option<&'c Scenario>), SessionError> {
    let map_index = content
        .maps
        .iter()
        .position(|map| map.key == config.map)
        .ok_or_else(|| SessionError::UnknownMap(config.map.clone()))?;
    let scenario = match &config.scenario {
        None => None,
        Some(key) => {
            let scenario = content
                .scenario(key)
                .ok_or_else(|| SessionError::UnknownScenario(key.clone()))?;
            if scenario.map != config.map {
                return Err(SessionError::ScenarioMap {
                    scenario: key.clone(),
                    expected: scenario.map.clone(),
                    map: config.map.clone(),
                });
            }
            Some(scenario)
        }
    };
    let needed = scenario.map_or(1, |scenario| scenario.players);
    if config.players < needed.max(1) || config.players > MAX_PLAYERS {
        return Err(SessionError::Players {
            players: config.players,
            needed,
        });
    }
    if !(1..=120).contains(&config.tick_hz) {
        return Err(SessionError::TickRate(config.tick_hz));
    }
    Ok((map_index, scenario))
}

/// The game state with the map's empty board and everything else that
/// starts the same whether a session is new or restored (a restore then
/// overwrites the clock, ids and the rest).
fn new_game(
    rules: Arc<Rules>,
    config: &SessionConfig,
    players: Players,
    state: Match,
    waves: Waves,
) -> Game {
    let grid = &rules.map().grid;
    Game {
        board: new_board(grid),
        clock: Clock::default(),
        ids: Ids::default(),
        rng: SimRng(Pcg32::new(config.seed, RNG_STREAM)),
        inbox: Inbox::default(),
        events: Events::default(),
        towers: Towers::default(),
        enemies: Enemies::default(),
        projectiles: Projectiles::default(),
        players,
        state,
        waves,
        rules: SessionRules(rules),
    }
}

/// Computes the live flow field from the board's towers. Returns a spawn
/// that no longer reaches any goal, if one does not.
fn compute_field(board: &mut Board) -> Option<Cell> {
    board.field.compute(&board.walkable, &board.goals);
    board
        .spawns
        .iter()
        .find(|&&spawn| !board.field.reachable(spawn))
        .map(|&blocked| map_cell(board.width, blocked))
}

fn map_cell(width: u16, index: usize) -> Cell {
    let width = usize::from(width);
    Cell::new((index % width) as u16, (index / width) as u16)
}

fn new_board(grid: &crate::grid::Grid) -> Board {
    let goals: Vec<usize> = grid.goals().iter().map(|&cell| grid.index(cell)).collect();
    Board {
        width: grid.width(),
        height: grid.height(),
        buildable: grid
            .tiles()
            .iter()
            .map(|&tile| tile == Tile::Buildable)
            .collect(),
        walkable: grid.walkable_mask(),
        towers: vec![false; grid.len()],
        spawns: grid.spawns().iter().map(|&cell| grid.index(cell)).collect(),
        goal_points: goals
            .iter()
            .map(|&goal| {
                crate::world::cell_centre(
                    goal % usize::from(grid.width()),
                    goal / usize::from(grid.width()),
                )
            })
            .collect(),
        goals,
        field: FlowField::new(grid.width(), grid.height()),
        occupied: Vec::new(),
        field_version: 0,
    }
}

/// Read access to the map as it stands: terrain, towers, the flow field.
#[derive(Clone, Copy)]
pub struct BoardView<'a> {
    board: &'a Board,
}

impl BoardView<'_> {
    /// Cells per row.
    pub fn width(&self) -> u16 {
        self.board.width
    }

    /// Rows.
    pub fn height(&self) -> u16 {
        self.board.height
    }

    /// Whether a tower could stand on `cell`'s terrain (ignoring towers and enemies).
    pub fn buildable(&self, cell: Cell) -> bool {
        cell.x < self.board.width
            && cell.y < self.board.height
            && self.board.buildable[self.board.index(cell)]
    }

    /// Whether a tower stands on `cell`.
    pub fn has_tower(&self, cell: Cell) -> bool {
        cell.x < self.board.width
            && cell.y < self.board.height
            && self.board.towers[self.board.index(cell)]
    }

    /// Walking distance from `cell` to the nearest goal, in cells.
    pub fn distance_to_goal(&self, cell: Cell) -> Option<f32> {
        if cell.x >= self.board.width || cell.y >= self.board.height {
            return None;
        }
        self.board
            .field
            .distance(self.board.index(cell))
            .map(|cost| cost as f32 / STRAIGHT_COST as f32)
    }

    /// The cell a ground enemy on `cell` walks to next, if it can reach a
    /// goal and is not on one.
    pub fn next_step(&self, cell: Cell) -> Option<Cell> {
        if cell.x >= self.board.width || cell.y >= self.board.height {
            return None;
        }
        self.board
            .field
            .next(self.board.index(cell))
            .map(|index| map_cell(self.board.width, index))
    }

    /// Changes whenever towers reshape the field; cache route analysis by it.
    pub fn field_version(&self) -> u64 {
        self.board.field_version
    }

    /// Appends to `out` every cell a ground enemy walks from each spawn to a goal.
    pub fn routes(&self, out: &mut Vec<Cell>) {
        for &spawn in &self.board.spawns {
            let mut at = Some(spawn);
            while let Some(index) = at {
                out.push(map_cell(self.board.width, index));
                at = self.board.field.next(index);
            }
        }
    }
}
