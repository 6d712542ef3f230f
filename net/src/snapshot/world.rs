//! The world as the wire carries it: integers only, so the server and every
//! client (in any language) rebuild bit-identical copies, and movers as
//! trajectories, so clients advance them without being told each position.

use glam::Vec2;
use rampart_sim::{Outcome, Targeting};
use xxhash_rust::xxh32::Xxh32;

/// Position units per cell: positions travel in 1/256 cell.
pub const POSITION_SCALE: f32 = 256.0;
/// Velocity units per cell per tick: velocities travel in 1/4096 cell per
/// tick, fine enough that a straight walk keeps one trajectory for seconds.
pub const VELOCITY_SCALE: f32 = 4096.0;
/// Velocity units per position unit (`VELOCITY_SCALE / POSITION_SCALE`), the
/// divisor of [`Trajectory::at`].
const SUBSTEPS: i128 = 16;

/// [`NetEnemy::flags`] bit: the enemy flies.
pub const FLYING: u8 = 1;
/// [`NetEnemy::flags`] bit: the enemy is under a slow.
pub const SLOWED: u8 = 2;
/// [`NetEnemy::flags`] bit: the enemy is under damage over time.
pub const BURNING: u8 = 4;

/// [`NetWorld::outcome`] before the session is decided.
pub const UNDECIDED: u8 = 0;
/// [`NetWorld::outcome`] once the last wave is cleared.
pub const VICTORY: u8 = 1;
/// [`NetWorld::outcome`] once the lives ran out.
pub const DEFEAT: u8 = 2;

/// A straight, constant-speed motion that the client extrapolates on its
/// own; the server sends a new one only when the mover leaves it.
///
/// Positions in 1/256 cell; velocities in 1/4096 cell per tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trajectory {
    /// Column at `since`, in 1/256 cell.
    pub x: i32,
    /// Row at `since`, in 1/256 cell.
    pub y: i32,
    /// Columns per tick, in 1/4096 cell.
    pub vx: i32,
    /// Rows per tick, in 1/4096 cell.
    pub vy: i32,
    /// Tick at which the mover stood at `(x, y)`.
    pub since: u64,
}

impl Trajectory {
    /// Quantised position at `tick`: `x + floor(vx * (tick - since) / 16)`,
    /// the same for `y`, in exact integer arithmetic (signed, so a tick
    /// before `since` is defined too) and clamped to the `i32` range. The
    /// codec predicts with it, so every decoder must compute exactly this.
    pub fn at(&self, tick: u64) -> (i32, i32) {
        let elapsed = i128::from(tick) - i128::from(self.since);
        (
            advance(self.x, self.vx, elapsed),
            advance(self.y, self.vy, elapsed),
        )
    }

    /// The position in cells, for rendering: exactly [`Self::at`] on whole
    /// ticks and linear between them, so a client interpolating between ticks
    /// never disagrees with the authoritative quantised position. Ticks below
    /// zero count as zero.
    pub fn position(&self, tick: f32) -> Vec2 {
        let tick = tick.max(0.0);
        let whole = tick.floor();
        let fraction = tick - whole;
        // Saturating float-to-int conversion: absurd ticks clamp, never wrap.
        let whole = whole as u64;
        let (x0, y0) = self.at(whole);
        let (x1, y1) = self.at(whole.saturating_add(1));
        let from = Vec2::new(x0 as f32, y0 as f32);
        let to = Vec2::new(x1 as f32, y1 as f32);
        from.lerp(to, fraction) / POSITION_SCALE
    }
}

fn advance(start: i32, velocity: i32, elapsed: i128) -> i32 {
    let moved = (i128::from(velocity) * elapsed).div_euclid(SUBSTEPS);
    let position = i128::from(start) + moved;
    position.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
}

/// One seat, by index in [`NetWorld::players`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetPlayer {
    /// Gold in hand.
    pub gold: u32,
    /// Declared ready.
    pub ready: bool,
    /// Enemies this player killed.
    pub kills: u32,
}

/// One enemy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetEnemy {
    /// Session-unique id.
    pub id: u32,
    /// Enemy kind (index in the content's enemies).
    pub kind: u16,
    /// Hit points left, rounded up so a living enemy never shows 0.
    pub hp: u32,
    /// Hit points at spawn, rounded up.
    pub max_hp: u32,
    /// [`FLYING`], [`SLOWED`], [`BURNING`].
    pub flags: u8,
    /// Where it is heading, and how fast.
    pub path: Trajectory,
}

impl NetEnemy {
    /// Position in cells at `tick` (see [`Trajectory::position`]).
    pub fn position(&self, tick: f32) -> Vec2 {
        self.path.position(tick)
    }
}

/// One tower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetTower {
    /// Session-unique id.
    pub id: u32,
    /// Owning seat.
    pub owner: u8,
    /// Tower kind (index in the content's towers).
    pub kind: u16,
    /// Level, 0 as built.
    pub level: u8,
    /// Column of its cell.
    pub x: u16,
    /// Row of its cell.
    pub y: u16,
    /// Index in [`Targeting::ALL`].
    pub targeting: u8,
}

impl NetTower {
    /// The targeting mode, if the index names one.
    pub fn targeting_mode(&self) -> Option<Targeting> {
        Targeting::ALL.get(usize::from(self.targeting)).copied()
    }
}

/// One projectile in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetProjectile {
    /// Session-unique id.
    pub id: u32,
    /// Kind of the tower that fired it, which decides how it looks.
    pub tower_kind: u16,
    /// Where it is flying, and how fast.
    pub path: Trajectory,
}

impl NetProjectile {
    /// Position in cells at `tick` (see [`Trajectory::position`]).
    pub fn position(&self, tick: f32) -> Vec2 {
        self.path.position(tick)
    }
}

/// Everything a client sees at one snapshot tick. Every list is sorted by id
/// (players by seat).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetWorld {
    /// Ticks the session had stepped.
    pub tick: u64,
    /// Waves started so far.
    pub wave: u32,
    /// Shared lives left.
    pub lives: u32,
    /// [`UNDECIDED`], [`VICTORY`] or [`DEFEAT`].
    pub outcome: u8,
    /// Seats, by index.
    pub players: Vec<NetPlayer>,
    /// Enemies.
    pub enemies: Vec<NetEnemy>,
    /// Towers.
    pub towers: Vec<NetTower>,
    /// Projectiles.
    pub projectiles: Vec<NetProjectile>,
}

impl NetWorld {
    /// The outcome as the simulation names it; `None` while undecided (or
    /// for a code this build does not know).
    pub fn decided(&self) -> Option<Outcome> {
        match self.outcome {
            VICTORY => Some(Outcome::Victory),
            DEFEAT => Some(Outcome::Defeat),
            _ => None,
        }
    }

    /// The checksum every snapshot carries, so a client can prove its
    /// rebuilt world equals the server's: xxHash32 (seed 0) over every field
    /// in declaration order, little-endian, lists as a `u32` length followed
    /// by their entries, `bool` as one byte (the module documentation has
    /// the exact layout). xxHash32 because it takes four bytes a step in
    /// four independent lanes and is specified, with test vectors, for
    /// every language a client is written in: FNV-1a, a byte at a time,
    /// took about 6% of the server's time with clients and most of a
    /// browser's time applying a delta.
    pub fn checksum(&self) -> u32 {
        let mut sum = ChecksumWriter::new();
        sum.record::<21>(|record| {
            record
                .put(self.tick.to_le_bytes())
                .put(self.wave.to_le_bytes())
                .put(self.lives.to_le_bytes())
                .put([self.outcome])
                .put(len(self.players.len()));
        });
        for player in &self.players {
            sum.record::<9>(|record| {
                record
                    .put(player.gold.to_le_bytes())
                    .put([u8::from(player.ready)])
                    .put(player.kills.to_le_bytes());
            });
        }
        sum.put(len(self.enemies.len()));
        for enemy in &self.enemies {
            sum.record::<39>(|record| {
                record
                    .put(enemy.id.to_le_bytes())
                    .put(enemy.kind.to_le_bytes())
                    .put(enemy.hp.to_le_bytes())
                    .put(enemy.max_hp.to_le_bytes())
                    .put([enemy.flags])
                    .trajectory(&enemy.path);
            });
        }
        sum.put(len(self.towers.len()));
        for tower in &self.towers {
            sum.record::<13>(|record| {
                record
                    .put(tower.id.to_le_bytes())
                    .put([tower.owner])
                    .put(tower.kind.to_le_bytes())
                    .put([tower.level])
                    .put(tower.x.to_le_bytes())
                    .put(tower.y.to_le_bytes())
                    .put([tower.targeting]);
            });
        }
        sum.put(len(self.projectiles.len()));
        for projectile in &self.projectiles {
            sum.record::<30>(|record| {
                record
                    .put(projectile.id.to_le_bytes())
                    .put(projectile.tower_kind.to_le_bytes())
                    .trajectory(&projectile.path);
            });
        }
        sum.finish()
    }
}

/// The wire code of a simulation outcome.
pub fn outcome_code(outcome: Option<Outcome>) -> u8 {
    match outcome {
        None => UNDECIDED,
        Some(Outcome::Victory) => VICTORY,
        Some(Outcome::Defeat) => DEFEAT,
    }
}

/// Bytes the checksum writer gathers before handing them to the hasher.
const CHECKSUM_BLOCK: usize = 256;

/// Lays the checksum's fields out in a small buffer that xxHash32 takes a
/// block at a time: no allocation, and the hash never sees a field alone
/// (`Xxh32::update` per field measured twice as slow, no faster than the
/// byte-wise FNV-1a it replaced). Each entity enters whole, as a
/// [`Record`] of known size: one bounds check per entity instead of one
/// per field.
struct ChecksumWriter {
    hasher: Xxh32,
    buffer: [u8; CHECKSUM_BLOCK],
    filled: usize,
}

impl ChecksumWriter {
    fn new() -> Self {
        Self {
            hasher: Xxh32::new(0),
            buffer: [0; CHECKSUM_BLOCK],
            filled: 0,
        }
    }

    fn put<const N: usize>(&mut self, bytes: [u8; N]) {
        self.record::<N>(|record| {
            record.put(bytes);
        });
    }

    /// Lets `fill` write the next `N` bytes.
    #[inline(always)]
    fn record<const N: usize>(&mut self, fill: impl FnOnce(&mut Record<'_, N>)) {
        const { assert!(N <= CHECKSUM_BLOCK, "a checksum record exceeds the buffer") };
        if self.filled + N > CHECKSUM_BLOCK {
            self.hasher.update(&self.buffer[..self.filled]);
            self.filled = 0;
        }
        let start = self.filled;
        self.filled += N;
        let Some(room) = self.buffer[start..].first_chunk_mut::<N>() else {
            unreachable!("the buffer was flushed to make room");
        };
        let mut record = Record { room, filled: 0 };
        fill(&mut record);
        debug_assert_eq!(record.filled, N, "a checksum record's size is wrong");
    }

    fn finish(mut self) -> u32 {
        self.hasher.update(&self.buffer[..self.filled]);
        self.hasher.digest()
    }
}

/// One entity's fields in checksum order, written into `N` bytes of the
/// writer's buffer. Once inlined every offset is a constant, so the record
/// is a few plain stores.
struct Record<'a, const N: usize> {
    room: &'a mut [u8; N],
    filled: usize,
}

impl<const N: usize> Record<'_, N> {
    #[inline(always)]
    fn put<const M: usize>(&mut self, field: [u8; M]) -> &mut Self {
        self.room[self.filled..self.filled + M].copy_from_slice(&field);
        self.filled += M;
        self
    }

    #[inline(always)]
    fn trajectory(&mut self, path: &Trajectory) -> &mut Self {
        self.put(path.x.to_le_bytes())
            .put(path.y.to_le_bytes())
            .put(path.vx.to_le_bytes())
            .put(path.vy.to_le_bytes())
            .put(path.since.to_le_bytes())
    }
}

/// A list's length as the checksum lays it out: a `u32` (the codec caps
/// lists far below that; a longer list still sums deterministically,
/// truncated).
fn len(len: usize) -> [u8; 4] {
    (len as u32).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use xxhash_rust::xxh32::xxh32;

    use super::*;

    #[test]
    fn trajectory_floors_toward_negative_infinity() {
        let path = Trajectory {
            x: 100,
            y: -100,
            vx: 17,
            vy: -17,
            since: 10,
        };
        assert_eq!(path.at(10), (100, -100));
        assert_eq!(path.at(11), (101, -102));
        assert_eq!(path.at(26), (117, -117));
        // Before `since` the same formula runs backwards.
        assert_eq!(path.at(9), (98, -99));
    }

    #[test]
    fn trajectory_clamps_instead_of_overflowing() {
        let path = Trajectory {
            x: i32::MAX - 1,
            y: i32::MIN + 1,
            vx: i32::MAX,
            vy: i32::MIN,
            since: 0,
        };
        assert_eq!(path.at(u64::MAX), (i32::MAX, i32::MIN));
        let back = Trajectory {
            since: u64::MAX,
            ..path
        };
        assert_eq!(back.at(0), (i32::MIN, i32::MAX));
    }

    #[test]
    fn rendering_position_matches_ticks_and_interpolates() {
        let path = Trajectory {
            x: 256,
            y: 512,
            vx: 4096,
            vy: -2048,
            since: 4,
        };
        assert_eq!(path.position(4.0), Vec2::new(1.0, 2.0));
        assert_eq!(path.position(5.0), Vec2::new(2.0, 1.5));
        assert_eq!(path.position(4.5), Vec2::new(1.5, 1.75));
    }

    #[test]
    fn checksum_sees_every_field() {
        let world = NetWorld {
            tick: 3,
            players: vec![NetPlayer::default()],
            enemies: vec![NetEnemy {
                id: 1,
                kind: 0,
                hp: 5,
                max_hp: 5,
                flags: 0,
                path: Trajectory::default(),
            }],
            ..NetWorld::default()
        };
        let base = world.checksum();
        let mut ready = world.clone();
        ready.players[0].ready = true;
        assert_ne!(ready.checksum(), base);
        let mut moved = world.clone();
        moved.enemies[0].path.since = 1;
        assert_ne!(moved.checksum(), base);
        assert_eq!(world.clone().checksum(), base);
        // Pinned: a change to the checksum is a protocol change. The empty
        // world is 33 zero bytes.
        assert_eq!(NetWorld::default().checksum(), xxh32(&[0; 33], 0));
        assert_eq!(NetWorld::default().checksum(), 0x6d64_bd7f);
    }

    #[test]
    fn checksum_spans_many_blocks_like_one_pass() {
        // Over 256 bytes the writer hands the hasher several blocks; the
        // sum must equal xxHash32 of the whole layout at once.
        let enemy = |id| NetEnemy {
            id,
            kind: 3,
            hp: 70,
            max_hp: 90,
            flags: FLYING,
            path: Trajectory {
                x: -5,
                y: 7,
                vx: 300,
                vy: -40,
                since: 11,
            },
        };
        let world = NetWorld {
            tick: 9,
            enemies: (0..20).map(enemy).collect(),
            ..NetWorld::default()
        };
        let mut layout = Vec::new();
        layout.extend_from_slice(&9u64.to_le_bytes());
        layout.extend_from_slice(&[0; 13]);
        layout.extend_from_slice(&20u32.to_le_bytes());
        for id in 0..20u32 {
            layout.extend_from_slice(&id.to_le_bytes());
            layout.extend_from_slice(&3u16.to_le_bytes());
            layout.extend_from_slice(&70u32.to_le_bytes());
            layout.extend_from_slice(&90u32.to_le_bytes());
            layout.push(FLYING);
            for value in [-5i32, 7, 300, -40] {
                layout.extend_from_slice(&value.to_le_bytes());
            }
            layout.extend_from_slice(&11u64.to_le_bytes());
        }
        layout.extend_from_slice(&[0; 8]);
        assert!(layout.len() > 256);
        assert_eq!(world.checksum(), xxh32(&layout, 0));
    }
}
