//! Built-in scripted players: they ready up, build towers where the route
//! passes most, upgrade, and call waves early when the board is clear.
//!
//! They are deterministic (their own seeded generator, decisions from the
//! snapshot only), so a simulated game with bots replays from its command
//! log like any other. `rampart simulate`, load tests and server-side bot
//! seats all use them; [`BotGame`] is the headless game loop of the tools
//! (`simulate`, `balance`, `render`'s tests) where bots hold every seat.

use rand_core::Rng;
use rand_pcg::Pcg32;

use crate::command::{Command, PlayerId};
use crate::content::TowerKindId;
use crate::grid::Cell;
use crate::log::LogEntry;
use crate::session::Session;
use crate::snapshot::Snapshot;

/// How a scripted player behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BotStyle {
    /// Builds, upgrades and calls waves.
    Builder,
    /// Only declares ready: for scripted scenarios whose towers are given.
    Passive,
}

impl BotStyle {
    /// What a seat does when nobody says: a scenario's towers are given, so
    /// its bots only ready up; on a bare map they build.
    pub fn default_for(scenario: bool) -> Self {
        if scenario {
            BotStyle::Passive
        } else {
            BotStyle::Builder
        }
    }
}

/// Ticks between two decisions of one bot.
const THINK_EVERY: u64 = 10;

/// How far from a route cell a tower site still counts as covering it.
const COVER_RADIUS: i32 = 3;

/// Tower sites considered, best first.
const SITES: usize = 48;

/// One scripted seat.
#[derive(Clone, Debug)]
pub struct ScriptedPlayer {
    player: PlayerId,
    style: BotStyle,
    rng: Pcg32,
    field_version: Option<u64>,
    sites: Vec<Cell>,
    next_site: usize,
    route: Vec<Cell>,
    /// Which tick of every [`THINK_EVERY`] this bot thinks on: the same for
    /// every seat of a session (one snapshot serves them all) and spread
    /// across sessions by seed (so a host's ticks stay even).
    phase: u64,
    /// A passive bot has nothing left to do once it has declared ready.
    done: bool,
}

impl ScriptedPlayer {
    /// A bot for seat `player`, seeded from the session seed so each seat
    /// plays differently but reproducibly.
    pub fn new(player: PlayerId, style: BotStyle, seed: u64) -> Self {
        Self {
            player,
            style,
            rng: Pcg32::new(seed ^ 0x5eed_b075, u64::from(player.0)),
            field_version: None,
            sites: Vec::new(),
            next_site: 0,
            route: Vec::new(),
            phase: seed % THINK_EVERY,
            done: false,
        }
    }

    /// The seat it plays.
    pub fn player(&self) -> PlayerId {
        self.player
    }

    /// Whether [`Self::think`] would consider acting at `tick`: callers take
    /// a snapshot only for ticks where some bot does.
    pub fn wants_to_think(&self, tick: u64) -> bool {
        !self.done && (tick + self.phase).is_multiple_of(THINK_EVERY)
    }

    /// The first tick from `tick` on at which [`Self::wants_to_think`],
    /// or `None` once it never will: lets an owner of many bots skip them
    /// until then without looking at each.
    pub fn next_thought(&self, tick: u64) -> Option<u64> {
        if self.done {
            return None;
        }
        let wait = (THINK_EVERY - (tick + self.phase) % THINK_EVERY) % THINK_EVERY;
        Some(tick + wait)
    }

    /// Decides what to do this tick, if anything. `snapshot` must be the
    /// session's current one.
    pub fn think(&mut self, session: &Session, snapshot: &Snapshot) -> Option<Command> {
        if snapshot.outcome.is_some() || !self.wants_to_think(snapshot.tick) {
            return None;
        }
        let me = snapshot.players.get(usize::from(self.player.0))?;
        if !me.ready {
            return Some(Command::Ready);
        }
        if self.style == BotStyle::Passive {
            self.done = true;
            return None;
        }
        self.refresh_sites(session);
        let content = session.content();
        let gold = me.gold;
        let build = self.rng.next_u32() % 10 < 6;
        let upgrade = snapshot
            .towers
            .iter()
            .filter(|tower| tower.owner == self.player)
            .filter_map(|tower| {
                let levels = &content.tower(tower.kind).levels;
                levels
                    .get(usize::from(tower.level) + 1)
                    .map(|next| (tower.level, next.cost, tower.id))
            })
            .filter(|&(_, cost, _)| cost <= gold)
            .min();
        if !build && let Some((_, _, tower)) = upgrade {
            return Some(Command::UpgradeTower { tower });
        }
        let affordable: Vec<TowerKindId> = (0..content.towers.len())
            .map(|kind| TowerKindId(kind as u16))
            .filter(|&kind| {
                let tower = content.tower(kind);
                tower.targets.ground && tower.levels[0].cost <= gold
            })
            .collect();
        if !affordable.is_empty() && self.next_site < self.sites.len() {
            let kind = affordable[self.rng.next_u32() as usize % affordable.len()];
            let board = session.board();
            while let Some(&cell) = self.sites.get(self.next_site) {
                self.next_site += 1;
                if !board.has_tower(cell) {
                    return Some(Command::PlaceTower { kind, cell });
                }
            }
        }
        if let Some((_, _, tower)) = upgrade {
            return Some(Command::UpgradeTower { tower });
        }
        let calm = snapshot.enemies.is_empty() && snapshot.wave > 0;
        (self.player.0 == 0 && calm && self.rng.next_u32().is_multiple_of(4))
            .then_some(Command::CallNextWave)
    }

    /// Ranks buildable cells by how many route cells they overlook, whenever
    /// the route has changed.
    fn refresh_sites(&mut self, session: &Session) {
        let board = session.board();
        if self.field_version == Some(board.field_version()) {
            return;
        }
        self.field_version = Some(board.field_version());
        self.route.clear();
        board.routes(&mut self.route);
        let mut ranked: Vec<(u32, u32, Cell)> = Vec::new();
        for y in 0..board.height() {
            for x in 0..board.width() {
                let cell = Cell::new(x, y);
                if !board.buildable(cell) || board.has_tower(cell) {
                    continue;
                }
                let covered = self
                    .route
                    .iter()
                    .filter(|step| {
                        let dx = i32::from(step.x) - i32::from(x);
                        let dy = i32::from(step.y) - i32::from(y);
                        dx * dx + dy * dy <= COVER_RADIUS * COVER_RADIUS
                    })
                    .count() as u32;
                if covered > 0 {
                    // Random tie-break so seats spread out instead of queueing
                    // for the same cell.
                    ranked.push((u32::MAX - covered, self.rng.next_u32(), cell));
                }
            }
        }
        ranked.sort_unstable();
        self.sites.clear();
        self.sites
            .extend(ranked.iter().take(SITES).map(|&(_, _, cell)| cell));
        self.next_site = 0;
    }
}

/// A session with a scripted player in every seat: one game loop for the
/// tools that play whole games headless. Each tick is [`Self::think`] (the
/// bots decide and their commands are submitted) then [`Self::step`].
#[derive(Debug)]
pub struct BotGame {
    session: Session,
    bots: Vec<ScriptedPlayer>,
    snapshot: Snapshot,
}

impl BotGame {
    /// Seats a bot of `style` in each of `session`'s seats, seeded from the
    /// session's seed.
    pub fn new(session: Session, style: BotStyle) -> Self {
        let seed = session.config().seed;
        let bots = (0..session.players())
            .map(|seat| ScriptedPlayer::new(PlayerId(seat), style, seed))
            .collect();
        Self {
            session,
            bots,
            snapshot: Snapshot::default(),
        }
    }

    /// Lets the bots decide for this tick and submits what they do; `record`
    /// sees each command with the tick it applies at (for a command log).
    /// The snapshot is taken only on ticks where some bot thinks.
    pub fn think(&mut self, mut record: impl FnMut(LogEntry)) {
        let tick = self.session.tick();
        if !self.bots.iter().any(|bot| bot.wants_to_think(tick)) {
            return;
        }
        self.session.snapshot(&mut self.snapshot);
        for bot in &mut self.bots {
            if let Some(command) = bot.think(&self.session, &self.snapshot) {
                record(LogEntry {
                    tick,
                    player: bot.player(),
                    command,
                });
                self.session.submit(bot.player(), command);
            }
        }
    }

    /// Steps the session once.
    pub fn step(&mut self) {
        self.session.step();
    }

    /// Whether the game is decided or has run `ticks` ticks.
    pub fn finished(&self, ticks: u64) -> bool {
        self.session.outcome().is_some() || self.session.tick() >= ticks
    }

    /// The session being played.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session being played, for snapshots.
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_thought_is_the_first_tick_it_wants_to_think() {
        for seed in 0..THINK_EVERY * 2 {
            let bot = ScriptedPlayer::new(PlayerId(1), BotStyle::Builder, seed);
            for tick in 0..THINK_EVERY * 3 {
                let next = bot.next_thought(tick);
                let first = (tick..).find(|&at| bot.wants_to_think(at));
                assert_eq!(next, first, "seed {seed}, tick {tick}");
            }
        }
        let mut done = ScriptedPlayer::new(PlayerId(1), BotStyle::Passive, 3);
        done.done = true;
        assert_eq!(done.next_thought(5), None);
    }
}
