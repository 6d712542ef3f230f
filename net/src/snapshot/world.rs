//! The world as the wire carries it: integers only, so the server and every
//! client (in any language) rebuild bit-identical copies, and movers as
//! trajectories, so clients advance them without being told each position.

use glam::Vec2;
use rampart_sim::hash::StableHasher;
use rampart_sim::{Outcome, Targeting};

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

    /// A hash both ends compute the same way on every platform, so a client
    /// can prove its rebuilt world equals the server's: 64-bit FNV-1a over
    /// every field in declaration order, little-endian, lists as a `u32`
    /// length followed by their entries, `bool` as one byte (see the module
    /// documentation for the exact layout).
    pub fn state_hash(&self) -> u64 {
        let mut hash = StableHasher::new();
        hash.u64(self.tick);
        hash.u32(self.wave);
        hash.u32(self.lives);
        hash.u8(self.outcome);
        hash.len(self.players.len());
        for player in &self.players {
            hash.u32(player.gold);
            hash.u8(u8::from(player.ready));
            hash.u32(player.kills);
        }
        hash.len(self.enemies.len());
        for enemy in &self.enemies {
            hash.u32(enemy.id);
            hash.u16(enemy.kind);
            hash.u32(enemy.hp);
            hash.u32(enemy.max_hp);
            hash.u8(enemy.flags);
            hash.trajectory(&enemy.path);
        }
        hash.len(self.towers.len());
        for tower in &self.towers {
            hash.u32(tower.id);
            hash.u8(tower.owner);
            hash.u16(tower.kind);
            hash.u8(tower.level);
            hash.u16(tower.x);
            hash.u16(tower.y);
            hash.u8(tower.targeting);
        }
        hash.len(self.projectiles.len());
        for projectile in &self.projectiles {
            hash.u32(projectile.id);
            hash.u16(projectile.tower_kind);
            hash.trajectory(&projectile.path);
        }
        hash.finish()
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

/// The world hash's own field shapes, over the workspace's one stable hash.
trait WorldHash {
    /// List lengths as `u32`: the codec caps lists far below that, and a
    /// longer list still hashes deterministically (truncated length).
    fn len(&mut self, len: usize);
    fn trajectory(&mut self, path: &Trajectory);
}

impl WorldHash for StableHasher {
    fn len(&mut self, len: usize) {
        self.u32(len as u32);
    }

    fn trajectory(&mut self, path: &Trajectory) {
        self.bytes(&path.x.to_le_bytes());
        self.bytes(&path.y.to_le_bytes());
        self.bytes(&path.vx.to_le_bytes());
        self.bytes(&path.vy.to_le_bytes());
        self.u64(path.since);
    }
}

#[cfg(test)]
mod tests {
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
    fn state_hash_sees_every_field() {
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
        let base = world.state_hash();
        let mut ready = world.clone();
        ready.players[0].ready = true;
        assert_ne!(ready.state_hash(), base);
        let mut moved = world.clone();
        moved.enemies[0].path.since = 1;
        assert_ne!(moved.state_hash(), base);
        assert_eq!(world.clone().state_hash(), base);
        // Pinned: a change to the hash is a protocol change.
        assert_eq!(NetWorld::default().state_hash(), 0xcbf7_a16b_c31f_675f_u64);
    }
}
