//! Saving a running session and restoring it elsewhere, for crash recovery
//! and server takeover: a restored session steps bit-identically to the one
//! that was saved, so players see nothing but a pause.
//!
//! Only state is saved. What is derived from content and the board (tick
//! rules, the flow field, the spatial index) is rebuilt on restore; the flow
//! field is a pure function of the towers' cells, so it comes out the same.
//!
//! Format, version 1: the magic `RMPS`, the version as a little-endian
//! `u16`, then the payload. Integers are LEB128 varints except the content
//! version, the seed and the generator state (little-endian `u64`s: they are
//! random-looking); floats are their 4-byte IEEE bits; strings are a varint
//! length and UTF-8; flags are one byte. In order:
//!
//! 1. content version; config: map, scenario (flag, key), players (byte),
//!    seed, tick rate;
//! 2. clock tick, generator state, next command ticket, next enemy, tower
//!    and projectile ids, field version;
//! 3. match: lives, kills, leaks, outcome (0 none, 1 victory, 2 defeat);
//! 4. per seat: gold, ready, kills, gold earned, bounty earned, towers built;
//! 5. waves: started, next start (0 none, else tick + 1), hit point scale,
//!    then the spawners (wave slot, group, remaining, next tick, scale);
//! 6. towers, enemies and projectiles: a count, then each in id order, its
//!    id as the gap to the previous id minus one, then its record. Each
//!    kind's record is laid out by its [`Persisted`] implementation, next to
//!    its data in `world/` (`tower.rs`, `enemy.rs`, `projectile.rs`).
//!
//! A reference session in its steady state (about 100 enemies, 50 towers)
//! saves to roughly 4 KiB.
//!
//! The state hash is here too: the save and the hash are two readings of
//! what a session's state is, and a restore is checked by comparing hashes.

mod bytes;

pub(crate) use self::bytes::{Reader, Writer};

use std::sync::Arc;

use rand_core::Rng;
use rand_pcg::Pcg32;

use super::{
    RNG_STREAM, Session, SessionConfig, SessionError, check_config, compute_field, new_game,
};
use crate::command::PlayerId;
use crate::content::Content;
use crate::event::Outcome;
use crate::hash::StableHasher;
use crate::rules::Rules;
use crate::world::{
    Afflictions, Clock, Enemy, Game, Ids, InFlight, Match, PlayerState, Players, Projectile,
    Projectiles, SimRng, Spawner, Tower, Waves,
};

/// First bytes of every save.
const MAGIC: [u8; 4] = *b"RMPS";

/// Bumped whenever the layout changes, a record's included; older saves are
/// refused, not misread.
const FORMAT_VERSION: u16 = 1;

/// Why bytes could not be restored into a session.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RestoreError {
    /// The bytes are not a session save.
    #[error("not a session save (bad magic bytes)")]
    BadMagic,
    /// A save format this build does not read.
    #[error("save format version {0} is not supported (this build reads {FORMAT_VERSION})")]
    UnsupportedVersion(u16),
    /// The save ends early.
    #[error("save is truncated")]
    Truncated,
    /// The save is inconsistent with itself or with the content.
    #[error("save is malformed: {0}")]
    Malformed(&'static str),
    /// The save was made with other content: its rules would not replay.
    #[error(
        "save was made with content version {saved:016x}, but the loaded content is {loaded:016x}"
    )]
    ContentMismatch {
        /// From the save.
        saved: u64,
        /// From the loaded content.
        loaded: u64,
    },
    /// The saved config no longer builds a session with this content.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// A kind of record the save and the state hash walk one by one, in id
/// order. Each kind implements it beside its component, so a field is
/// declared, saved, read back, checked and hashed in one file.
pub(crate) trait Persisted: Sized {
    /// What the record holds besides the item itself, gathered by the
    /// caller (an enemy's afflictions, a shot's position and target).
    type Extra: Copy;

    /// Fewest bytes a record takes, its id included: a list's length is
    /// checked against the bytes left before anything is allocated for it.
    const MIN_RECORD: usize;

    /// The stable id records are ordered and hashed by.
    fn id(&self) -> u32;

    /// Appends the record (its id is written before it).
    fn save(&self, extra: Self::Extra, w: &mut Writer<'_>);

    /// Reads back what [`Persisted::save`] wrote for the record `id`,
    /// checking it against the rules, so a bad save is an error and never
    /// a panic later.
    fn restore(
        id: u32,
        r: &mut Reader<'_>,
        cx: &mut RestoreCx<'_>,
    ) -> Result<(Self, Self::Extra), RestoreError>;

    /// Folds the record's game state into its digest. Bookkeeping that
    /// only exists inside a step stays out.
    fn hash(&self, extra: Self::Extra, h: &mut StableHasher);
}

/// What records are checked against while a save is read.
pub(crate) struct RestoreCx<'a> {
    pub rules: &'a Rules,
    /// Seats in the session: every owner and hitter is one of them.
    seats: usize,
    /// The cells of the towers read so far: no two towers share one.
    pub taken: Vec<bool>,
    /// Ids of the saved enemies, ascending, once they are read: a
    /// projectile can only follow one of them.
    pub enemies: Vec<u32>,
}

impl RestoreCx<'_> {
    /// A seat, saved as one byte.
    pub(crate) fn seat(&self, r: &mut Reader<'_>) -> Result<PlayerId, RestoreError> {
        let player = r.u8()?;
        if usize::from(player) < self.seats {
            Ok(PlayerId(player))
        } else {
            Err(RestoreError::Malformed("seat out of range"))
        }
    }
}

impl Session {
    /// Writes everything needed to resume this session exactly (appends to `out`).
    ///
    /// Commands submitted and not yet applied are not saved: they belong to
    /// the next step, and their owner keeps them (the host's command log
    /// records every command with the tick it applies at) and submits them
    /// again after a restore. Neither are the last step's events, which its
    /// owner has already read.
    pub fn save(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.0.extend_from_slice(&MAGIC);
        w.u16_fixed(FORMAT_VERSION);
        w.u64_fixed(self.content().version);
        let config = &self.config;
        w.str(&config.map);
        match &config.scenario {
            None => w.u8(0),
            Some(key) => {
                w.u8(1);
                w.str(key);
            }
        }
        w.u8(config.players);
        w.u64_fixed(config.seed);
        w.var(u64::from(config.tick_hz));

        let game = &self.game;
        w.var(game.clock.tick);
        w.u64_fixed(game.rng.0.state());
        w.var(game.inbox.next_ticket);
        let ids = &game.ids;
        for id in [ids.next_enemy, ids.next_tower, ids.next_projectile] {
            w.var(u64::from(id));
        }
        w.var(game.board.field_version);

        let state = &game.state;
        for value in [state.lives, state.kills, state.leaks] {
            w.var(u64::from(value));
        }
        w.u8(match state.outcome {
            None => 0,
            Some(Outcome::Victory) => 1,
            Some(Outcome::Defeat) => 2,
        });
        for player in &game.players.0 {
            w.var(u64::from(player.gold));
            w.u8(u8::from(player.ready));
            for value in [
                player.kills,
                player.gold_earned,
                player.bounty_earned,
                player.towers_built,
            ] {
                w.var(u64::from(value));
            }
        }
        let waves = &game.waves;
        w.var(u64::from(waves.started));
        w.var(waves.next_start.map_or(0, |tick| tick + 1));
        w.f32(waves.hp_scale);
        w.var_usize(waves.spawners.len());
        for spawner in &waves.spawners {
            w.var_usize(spawner.wave_slot);
            w.var_usize(spawner.group);
            w.var(u64::from(spawner.remaining));
            w.var(spawner.next_tick);
            w.f32(spawner.hp_scale);
        }

        write_records(&mut w, game.towers.iter().map(|tower| (tower, ())));
        // Between steps the dead and the leaked are gone: the count is the
        // enemies saved, so it is not saved itself.
        debug_assert_eq!(
            game.enemies.len(),
            state.alive as usize,
            "save between steps"
        );
        let enemies = game.enemies.iter();
        write_records(
            &mut w,
            enemies.map(|(enemy, afflictions)| (enemy, *afflictions)),
        );
        let projectiles = game.projectiles.0.iter();
        write_records(
            &mut w,
            projectiles.map(|projectile| (projectile, projectile.in_flight(&game.enemies))),
        );
    }

    /// Rebuilds a session from [`Session::save`]'s bytes, ready to step on
    /// exactly as the saved one would have.
    ///
    /// # Errors
    /// When the bytes are not a save of this format version, were saved
    /// with other content, or are cut short or inconsistent. Arbitrary bytes
    /// give an error, never a panic.
    pub fn restore(content: Arc<Content>, bytes: &[u8]) -> Result<Session, RestoreError> {
        let mut r = Reader::new(bytes);
        let magic = r.take(MAGIC.len()).map_err(|_| {
            if MAGIC.starts_with(bytes) {
                RestoreError::Truncated
            } else {
                RestoreError::BadMagic
            }
        })?;
        if magic != MAGIC {
            return Err(RestoreError::BadMagic);
        }
        let version = r.u16_fixed()?;
        if version != FORMAT_VERSION {
            return Err(RestoreError::UnsupportedVersion(version));
        }
        let saved = r.u64_fixed()?;
        if saved != content.version {
            return Err(RestoreError::ContentMismatch {
                saved,
                loaded: content.version,
            });
        }
        let map = r.str()?;
        let scenario = if r.bool()? { Some(r.str()?) } else { None };
        let config = SessionConfig {
            map,
            scenario,
            players: r.u8()?,
            seed: r.u64_fixed()?,
            tick_hz: r.var_u32()?,
        };
        let (map_index, _) = check_config(&content, &config)?;
        let rules = Rules::shared(&content, map_index, config.tick_hz);
        let state = State::read(&mut r, &rules, config.players)?;
        if !r.is_empty() {
            return Err(RestoreError::Malformed("bytes after the end of the save"));
        }
        let mut game = state.build(rules, &config);
        if compute_field(&mut game.board).is_some() {
            return Err(RestoreError::Malformed(
                "the towers cut a spawn off from every goal",
            ));
        }
        for enemy in game.enemies.walkers_mut() {
            enemy.refresh_heading(&game.board);
        }
        Ok(Session::assemble(game, config))
    }

    /// A hash of the whole game state (not of what is derived from it, such
    /// as the flow field): equal hashes mean equal games. The same content,
    /// seed and command log give the same hash on every run.
    pub fn state_hash(&self) -> u64 {
        let game = &self.game;
        let mut hash = StableHasher::new();
        hash.u64(game.clock.tick);
        let state = &game.state;
        hash.u32(state.lives);
        hash.u32(state.kills);
        hash.u32(state.leaks);
        hash.u32(state.outcome.map_or(0, |outcome| outcome as u32 + 1));
        let waves = &game.waves;
        hash.u32(waves.started);
        hash.u64(waves.next_start.unwrap_or(u64::MAX));
        hash.f32(waves.hp_scale);
        for spawner in &waves.spawners {
            hash.u64(spawner.wave_slot as u64);
            hash.u64(spawner.group as u64);
            hash.u32(spawner.remaining);
            hash.u64(spawner.next_tick);
            hash.f32(spawner.hp_scale);
        }
        let ids = &game.ids;
        hash.u32(ids.next_enemy);
        hash.u32(ids.next_tower);
        hash.u32(ids.next_projectile);
        for player in &game.players.0 {
            for value in [
                player.gold,
                u32::from(player.ready),
                player.kills,
                player.gold_earned,
                player.bounty_earned,
                player.towers_built,
            ] {
                hash.u32(value);
            }
        }
        // The generator's position, read from a copy so hashing changes nothing.
        hash.u64(game.rng.0.clone().next_u64());

        // Records kind by kind, each folded in id order.
        let enemies = game.enemies.iter();
        let enemies = enemies.map(|(enemy, afflictions)| (enemy, *afflictions));
        fold_records(&mut hash, enemies);
        let towers = game.towers.iter().map(|tower| (tower, ()));
        fold_records(&mut hash, towers);
        let projectiles = game.projectiles.0.iter();
        let projectiles =
            projectiles.map(|projectile| (projectile, projectile.in_flight(&game.enemies)));
        fold_records(&mut hash, projectiles);
        hash.finish()
    }
}

/// A save's state, read and checked against the rules before any of it
/// enters a game.
struct State {
    tick: u64,
    rng: u64,
    next_ticket: u64,
    ids: Ids,
    field_version: u64,
    state: Match,
    players: Vec<PlayerState>,
    waves: Waves,
    towers: Vec<(Tower, ())>,
    enemies: Vec<(Enemy, Afflictions)>,
    projectiles: Vec<(Projectile, InFlight)>,
}

/// Fewest bytes a spawner takes, to bound their count by the input.
const MIN_SPAWNER: usize = 8;

impl State {
    fn read(r: &mut Reader, rules: &Rules, players: u8) -> Result<Self, RestoreError> {
        let tick = r.var()?;
        let rng = r.u64_fixed()?;
        let next_ticket = r.var()?;
        let ids = Ids {
            next_enemy: r.var_u32()?,
            next_tower: r.var_u32()?,
            next_projectile: r.var_u32()?,
        };
        let field_version = r.var()?;
        let lives = r.var_u32()?;
        let kills = r.var_u32()?;
        let leaks = r.var_u32()?;
        let outcome = match r.u8()? {
            0 => None,
            1 => Some(Outcome::Victory),
            2 => Some(Outcome::Defeat),
            _ => return Err(RestoreError::Malformed("unknown outcome")),
        };
        let seats = usize::from(players);
        let mut player_states = Vec::with_capacity(seats);
        for _ in 0..seats {
            let gold = r.var_u32()?;
            let ready = r.bool()?;
            player_states.push(PlayerState {
                gold,
                ready,
                kills: r.var_u32()?,
                gold_earned: r.var_u32()?,
                bounty_earned: r.var_u32()?,
                towers_built: r.var_u32()?,
            });
        }
        let started = r.var_u32()?;
        let next_start = r.var()?.checked_sub(1);
        let hp_scale = r.f32()?;
        let count = r.count(MIN_SPAWNER)?;
        let mut spawners = Vec::with_capacity(count);
        for _ in 0..count {
            let wave_slot = r.index(rules.waves.len(), "unknown wave")?;
            let group = r.index(rules.waves[wave_slot].groups.len(), "unknown spawn group")?;
            spawners.push(Spawner {
                wave_slot,
                group,
                remaining: r.var_u32()?,
                next_tick: r.var()?,
                hp_scale: r.f32()?,
            });
        }

        let mut cx = RestoreCx {
            rules,
            seats,
            taken: vec![false; rules.map().grid.len()],
            enemies: Vec::new(),
        };
        let towers = read_records::<Tower>(r, &mut cx, ids.next_tower)?;
        let enemies = read_records::<Enemy>(r, &mut cx, ids.next_enemy)?;
        cx.enemies = enemies.iter().map(|(enemy, _)| enemy.id).collect();
        let projectiles = read_records::<Projectile>(r, &mut cx, ids.next_projectile)?;

        Ok(Self {
            tick,
            rng,
            next_ticket,
            ids,
            field_version,
            state: Match {
                lives,
                kills,
                leaks,
                alive: enemies.len() as u32,
                outcome,
            },
            players: player_states,
            waves: Waves {
                started,
                next_start,
                hp_scale,
                spawners,
            },
            towers,
            enemies,
            projectiles,
        })
    }

    /// Builds the game: a [`new_game`] with the saved state put in.
    fn build(self, rules: Arc<Rules>, config: &SessionConfig) -> Game {
        let mut game = new_game(rules, config, Players(self.players), self.state, self.waves);
        game.clock = Clock { tick: self.tick };
        game.rng = SimRng(Pcg32::from_state(self.rng, RNG_STREAM));
        game.inbox.next_ticket = self.next_ticket;
        game.ids = self.ids;

        let board = &mut game.board;
        board.field_version = self.field_version;
        // Records come in id order, the order every list keeps.
        for (tower, ()) in self.towers {
            let index = board.index(tower.cell);
            board.towers[index] = true;
            board.walkable[index] = false;
            game.towers.stand(tower);
        }
        for (enemy, afflictions) in self.enemies {
            game.enemies.spawn(enemy, afflictions);
        }
        let projectiles = self.projectiles.into_iter();
        game.projectiles = Projectiles(projectiles.map(|(projectile, _)| projectile).collect());
        game
    }
}

/// Folds one kind's records into `hash`: the count, then each record's id
/// and its own digest, in id order, the order every kind is kept in.
fn fold_records<'a, T: Persisted + 'a>(
    hash: &mut StableHasher,
    records: impl ExactSizeIterator<Item = (&'a T, T::Extra)>,
) {
    hash.u64(records.len() as u64);
    let mut previous = None;
    for (record, extra) in records {
        debug_assert!(previous < Some(record.id()), "records in id order");
        previous = Some(record.id());
        let mut digest = StableHasher::new();
        record.hash(extra, &mut digest);
        hash.u32(record.id());
        hash.u64(digest.finish());
    }
}

/// Writes one kind's records: their count, then each in id order (the
/// order every kind is kept in), its id as the gap to the previous one
/// minus one (most gaps fit a byte).
#[inline]
fn write_records<'a, T: Persisted + 'a>(
    w: &mut Writer<'_>,
    records: impl ExactSizeIterator<Item = (&'a T, T::Extra)>,
) {
    w.var_usize(records.len());
    let mut previous = 0;
    for (record, extra) in records {
        w.var(u64::from(record.id() - previous - 1));
        previous = record.id();
        record.save(extra, w);
    }
}

/// Reads back what [`write_records`] wrote; every id must be one already
/// handed out (`issued` is the kind's id counter).
fn read_records<T: Persisted>(
    r: &mut Reader<'_>,
    cx: &mut RestoreCx<'_>,
    issued: u32,
) -> Result<Vec<(T, T::Extra)>, RestoreError> {
    let count = r.count(T::MIN_RECORD)?;
    let mut records = Vec::with_capacity(count);
    let mut previous = 0;
    for _ in 0..count {
        let id = next_id(r, &mut previous, issued)?;
        records.push(T::restore(id, r, cx)?);
    }
    Ok(records)
}

/// Reads an id saved as the gap to the previous one, so ids strictly
/// increase, and checks it was handed out already.
fn next_id(r: &mut Reader, previous: &mut u32, issued: u32) -> Result<u32, RestoreError> {
    let id = previous
        .checked_add(r.var_u32()?)
        .and_then(|id| id.checked_add(1))
        .filter(|&id| id <= issued)
        .ok_or(RestoreError::Malformed("ids out of order or never issued"))?;
    *previous = id;
    Ok(id)
}
