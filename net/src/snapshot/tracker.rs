//! The server's side of the trajectory trick: it turns the simulation's float
//! snapshots into the wire world, keeping each mover's trajectory for as
//! long as it predicts the mover well enough, so deltas stay tiny.

use std::sync::Arc;

use glam::Vec2;
use rampart_sim::{EnemyView, Snapshot, Targeting};

use super::ring::writable;
use super::world::{
    BURNING, FLYING, NetEnemy, NetPlayer, NetProjectile, NetTower, NetWorld, POSITION_SCALE,
    SLOWED, Trajectory, VELOCITY_SCALE, outcome_code,
};

/// How far (in 1/256 cell, on each axis) a trajectory's prediction may stray
/// from the observed quantised position before the mover gets a new one:
/// 1/32 cell, invisible on screen.
pub const TOLERANCE: i32 = 8;

/// [`TOLERANCE`] for projectiles: they cross half a cell per tick, so a
/// quarter of their tick's travel (1/8 cell) is as invisible as 1/32 cell on
/// a walker, and their homing curves would otherwise cost a correction
/// every few snapshots.
pub const PROJECTILE_TOLERANCE: i32 = 32;

/// How far (in 1/256 cell, on each axis) the previous observation may lie
/// off the line from a run's first observation to the current one while the
/// run still counts as straight: quantisation alone explains 1.
const STRAIGHT_SLACK: i64 = 2;

/// Velocity units per position unit.
const SUBSTEPS: i64 = (VELOCITY_SCALE / POSITION_SCALE) as i64;

/// A quantised position seen at a snapshot tick.
#[derive(Clone, Copy, Debug)]
struct Observation {
    tick: u64,
    x: i32,
    y: i32,
}

/// What the tracker remembers of one mover beyond its wire form.
#[derive(Clone, Copy, Debug)]
struct Motion {
    /// The latest observation.
    last: Observation,
    /// The first observation of the current straight, steady run: velocity
    /// measured from here is far more precise than from `last`, so a long
    /// straight walk needs fewer and fewer corrections.
    anchor: Observation,
}

/// Derives the wire world from the simulation's snapshots, one per session.
///
/// Keeps the last [`NetWorld`] it derived and, beside each mover (in lists
/// aligned with the world's), the observations its velocity estimates come
/// from. Each new world is a merge-join of the last one and the snapshot,
/// written into a world nobody holds any more: the last but one when the
/// caller kept none, or the one its ring handed back ([`Self::recycle`]).
/// The server's ring holds the very worlds the tracker derives, so a world
/// is written once and never copied, the steady state allocates nothing,
/// and the next delta's baseline is the world the tracker just read.
#[derive(Clone, Debug, Default)]
pub struct WorldTracker {
    world: Arc<NetWorld>,
    /// A world to write the next one into.
    spare: Option<Arc<NetWorld>>,
    enemy_motion: Vec<Motion>,
    projectile_motion: Vec<Motion>,
    spare_enemy_motion: Vec<Motion>,
    spare_projectile_motion: Vec<Motion>,
    /// Enemy speeds by kind, unslowed and slowed (`2 * kind + slowed`).
    enemy_speeds: Speeds,
    /// Projectile speeds by tower kind.
    projectile_speeds: Speeds,
}

impl WorldTracker {
    /// A tracker that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The wire world as of the last [`Self::observe`].
    pub fn world(&self) -> &Arc<NetWorld> {
        &self.world
    }

    /// Takes back a world the caller let go of (the oldest its ring
    /// dropped), to write a later one into once nobody else holds it.
    pub fn recycle(&mut self, world: Arc<NetWorld>) {
        if self.spare.is_none() {
            self.spare = Some(world);
        }
    }

    /// Advances the wire world to `snapshot`. Movers keep their trajectory
    /// while its prediction at `snapshot.tick` stays within [`TOLERANCE`]
    /// ([`PROJECTILE_TOLERANCE`] for projectiles) of the observed quantised
    /// position; otherwise they get a new one that starts there, now, with
    /// the velocity measured over their latest straight run. Everything else
    /// is copied (quantised where it is a float: hit points rounded up).
    pub fn observe(&mut self, snapshot: &Snapshot) -> &Arc<NetWorld> {
        let mut next = writable(self.spare.take());
        // Taken apart, so a field added to the world cannot keep the value
        // an earlier world left in the one written over.
        let NetWorld {
            tick,
            wave,
            lives,
            outcome,
            players,
            enemies,
            towers,
            projectiles,
        } = Arc::make_mut(&mut next);
        *tick = snapshot.tick;
        *wave = snapshot.wave;
        *lives = snapshot.lives;
        *outcome = outcome_code(snapshot.outcome);
        players.clear();
        players.extend(snapshot.players.iter().map(|player| NetPlayer {
            gold: player.gold,
            ready: player.ready,
            kills: player.kills,
        }));
        towers.clear();
        towers.extend(snapshot.towers.iter().map(|tower| NetTower {
            id: tower.id.0,
            owner: tower.owner.0,
            kind: tower.kind.0,
            level: tower.level,
            x: tower.cell.x,
            y: tower.cell.y,
            targeting: targeting_code(tower.targeting),
        }));
        self.track_enemies(snapshot, enemies);
        self.track_projectiles(snapshot, projectiles);
        let last = std::mem::replace(&mut self.world, next);
        // Kept by nobody else (no ring): the next world goes into it.
        if Arc::strong_count(&last) == 1 {
            self.recycle(last);
        }
        &self.world
    }

    fn track_enemies(&mut self, snapshot: &Snapshot, next: &mut Vec<NetEnemy>) {
        let now = snapshot.tick;
        let previous = &self.world.enemies;
        let motions = &self.enemy_motion;
        let next_motion = &mut self.spare_enemy_motion;
        next.clear();
        next_motion.clear();
        let mut cursor = 0;
        for view in &snapshot.enemies {
            while cursor < previous.len() && previous[cursor].id < view.id {
                cursor += 1;
            }
            let seen = observe(now, view.position);
            let (path, motion) = match previous.get(cursor) {
                Some(old) if old.id == view.id => {
                    let prior = Prior {
                        speeds: &mut self.enemy_speeds,
                        key: 2 * usize::from(view.kind.0) + usize::from(view.slowed),
                        // Walkers go centre to centre: along an axis or a
                        // diagonal.
                        eight_way: !view.flying,
                        precise_ticks: ENEMY_PRECISE_TICKS,
                    };
                    follow(old.path, motions[cursor], seen, TOLERANCE, prior)
                }
                _ => start(seen, 0, 0),
            };
            next.push(enemy(view, path));
            next_motion.push(motion);
        }
        std::mem::swap(&mut self.enemy_motion, next_motion);
    }

    fn track_projectiles(&mut self, snapshot: &Snapshot, next: &mut Vec<NetProjectile>) {
        let now = snapshot.tick;
        let previous = &self.world.projectiles;
        let motions = &self.projectile_motion;
        let next_motion = &mut self.spare_projectile_motion;
        next.clear();
        next_motion.clear();
        let mut cursor = 0;
        for view in &snapshot.projectiles {
            while cursor < previous.len() && previous[cursor].id < view.id {
                cursor += 1;
            }
            let seen = observe(now, view.position);
            let key = usize::from(view.tower_kind.0);
            let (path, motion) = match previous.get(cursor) {
                Some(old) if old.id == view.id => {
                    let prior = Prior {
                        speeds: &mut self.projectile_speeds,
                        key,
                        eight_way: false,
                        precise_ticks: PROJECTILE_PRECISE_TICKS,
                    };
                    follow(old.path, motions[cursor], seen, PROJECTILE_TOLERANCE, prior)
                }
                _ => {
                    // Projectiles fly at their kind's speed toward their aim.
                    let speed = self.projectile_speeds.get(key).unwrap_or(0.0);
                    let heading = (view.aim - view.position).normalize_or_zero() * speed;
                    let (vx, vy) = rounded(heading);
                    start(seen, vx, vy)
                }
            };
            next.push(NetProjectile {
                id: view.id,
                tower_kind: view.tower_kind.0,
                path,
            });
            next_motion.push(motion);
        }
        std::mem::swap(&mut self.projectile_motion, next_motion);
    }
}

fn enemy(view: &EnemyView, path: Trajectory) -> NetEnemy {
    let mut flags = 0;
    if view.flying {
        flags |= FLYING;
    }
    if view.slowed {
        flags |= SLOWED;
    }
    if view.burning {
        flags |= BURNING;
    }
    NetEnemy {
        id: view.id,
        kind: view.kind.0,
        // Float-to-int casts saturate (NaN to 0): never a panic.
        hp: ceil_u32(view.hp),
        max_hp: ceil_u32(view.max_hp),
        flags,
        path,
    }
}

fn targeting_code(targeting: Targeting) -> u8 {
    Targeting::ALL
        .iter()
        .position(|&mode| mode == targeting)
        .map_or(0, |index| index as u8)
}

fn observe(tick: u64, position: Vec2) -> Observation {
    Observation {
        tick,
        x: round_i32(position.x * POSITION_SCALE),
        y: round_i32(position.y * POSITION_SCALE),
    }
}

/// Speeds (velocity units per tick) measured precisely, by a key naming a
/// kind of mover: every mover of a kind moves at the same speed, so a rough
/// estimate for one mover can borrow a precise one from another and its
/// trajectory lasts far longer.
#[derive(Clone, Debug, Default)]
struct Speeds(Vec<f32>);

impl Speeds {
    fn get(&self, key: usize) -> Option<f32> {
        self.0.get(key).copied().filter(|&speed| speed > 0.0)
    }

    /// Grows only when a new kind shows up: not in the steady state.
    fn learn(&mut self, key: usize, speed: f32) {
        if self.0.len() <= key {
            self.0.resize(key + 1, 0.0);
        }
        self.0[key] = speed;
    }
}

/// What a mover's kind says about its velocity.
struct Prior<'a> {
    speeds: &'a mut Speeds,
    key: usize,
    eight_way: bool,
    /// Ticks of measurement that make an estimate precise.
    precise_ticks: u64,
}

/// Ticks over which an enemy's velocity measurement counts as precise (and
/// teaches its kind's speed): quantisation then errs by at most half a
/// velocity unit (16 units over the ticks measured), so the trajectory stays
/// within tolerance for 256 ticks.
const ENEMY_PRECISE_TICKS: u64 = 32;

/// The same for projectiles: at about 2,000 units per tick, one tick already
/// measures them within 1%, and they rarely fly straight for longer.
const PROJECTILE_PRECISE_TICKS: u64 = 1;

/// A rough estimate within this fraction of its kind's speed takes that speed.
const SPEED_MATCH: f32 = 0.04;

/// A rough heading within this cosine (about 10 degrees) of an axis or a
/// diagonal takes it, for movers that only move that way.
const HEADING_MATCH: f32 = 0.985;

/// A first sighting: a trajectory from here with the velocity given.
fn start(seen: Observation, vx: i32, vy: i32) -> (Trajectory, Motion) {
    let path = Trajectory {
        x: seen.x,
        y: seen.y,
        vx,
        vy,
        since: seen.tick,
    };
    let motion = Motion {
        last: seen,
        anchor: seen,
    };
    (path, motion)
}

/// Keeps `path` if it still predicts `seen` within `tolerance`, else starts a
/// new one at `seen`.
#[inline(always)]
fn follow(
    path: Trajectory,
    mut motion: Motion,
    seen: Observation,
    tolerance: i32,
    prior: Prior<'_>,
) -> (Trajectory, Motion) {
    let (x, y) = path.at(seen.tick);
    let kept = (x - seen.x).abs() <= tolerance && (y - seen.y).abs() <= tolerance;
    let path = if kept {
        path
    } else {
        if !straight(motion.anchor, motion.last, seen) {
            motion.anchor = motion.last;
        }
        let (vx, vy) = rounded(estimate(motion.anchor, seen, prior));
        Trajectory {
            x: seen.x,
            y: seen.y,
            vx,
            vy,
            since: seen.tick,
        }
    };
    motion.last = seen;
    (path, motion)
}

/// The velocity from `from` to `to` in velocity units: as measured when the
/// measurement is precise (and then remembered for the kind), else nudged
/// onto the kind's known speed and heading when it is close to them.
fn estimate(from: Observation, to: Observation, prior: Prior<'_>) -> Vec2 {
    if to.tick <= from.tick {
        return Vec2::ZERO;
    }
    let ticks = (to.tick - from.tick) as f32;
    let moved = Vec2::new((to.x - from.x) as f32, (to.y - from.y) as f32);
    let mut velocity = moved * (SUBSTEPS as f32 / ticks);
    let speed = velocity.length();
    if to.tick - from.tick >= prior.precise_ticks {
        prior.speeds.learn(prior.key, speed);
        return velocity;
    }
    if let Some(known) = prior.speeds.get(prior.key)
        && (speed - known).abs() <= SPEED_MATCH * known
    {
        velocity *= known / speed;
    }
    if prior.eight_way {
        velocity = snap_heading(velocity);
    }
    velocity
}

/// `velocity` turned onto the nearest axis or diagonal if it is close to one.
fn snap_heading(velocity: Vec2) -> Vec2 {
    let speed = velocity.length();
    if speed == 0.0 {
        return velocity;
    }
    let diagonal = std::f32::consts::FRAC_1_SQRT_2;
    let headings = [
        Vec2::X,
        Vec2::NEG_X,
        Vec2::Y,
        Vec2::NEG_Y,
        Vec2::new(diagonal, diagonal),
        Vec2::new(diagonal, -diagonal),
        Vec2::new(-diagonal, diagonal),
        Vec2::new(-diagonal, -diagonal),
    ];
    headings
        .into_iter()
        .find(|heading| heading.dot(velocity) >= HEADING_MATCH * speed)
        .map_or(velocity, |heading| heading * speed)
}

/// Whether `middle` lies (in time and space) on the steady line from `first`
/// to `last`: the mover neither turned nor changed speed in between.
fn straight(first: Observation, middle: Observation, last: Observation) -> bool {
    if !(first.tick < middle.tick && middle.tick < last.tick) {
        return false;
    }
    let span = tick_gap(first.tick, last.tick);
    let part = tick_gap(first.tick, middle.tick);
    let on_line = |from: i32, to: i32, at: i32| {
        let expected = i64::from(from) + div_round((i64::from(to) - i64::from(from)) * part, span);
        (expected - i64::from(at)).abs() <= STRAIGHT_SLACK
    };
    on_line(first.x, last.x, middle.x) && on_line(first.y, last.y, middle.y)
}

/// Ticks from `from` to `to` (`to > from`), capped so products with positions
/// stay far inside `i64`.
fn tick_gap(from: u64, to: u64) -> i64 {
    (to - from).min(1 << 24) as i64
}

/// `n / d` rounded half away from zero, for `d > 0`.
fn div_round(n: i64, d: i64) -> i64 {
    if n >= 0 {
        (2 * n + d) / (2 * d)
    } else {
        -((-2 * n + d) / (2 * d))
    }
}

/// A velocity in whole units (float-to-int casts saturate, NaN gives 0).
fn rounded(velocity: Vec2) -> (i32, i32) {
    (round_i32(velocity.x), round_i32(velocity.y))
}

/// Exactly `value.round() as i32` (half away from zero, saturating, NaN to
/// 0), without the call into libm that `round` is on baseline x86-64 (no
/// SSE4.1): the tracker rounds every mover's position, and the calls were
/// a sixth of its time. In `f64` the sum is exact for every `f32` down to
/// 2^-30 (a smaller one rounds onto the half, which truncates to 0
/// all the same), so truncating it rounds half away from zero; no branch,
/// so no mispredictions on the sign.
fn round_i32(value: f32) -> i32 {
    let wide = f64::from(value);
    (wide + 0.5_f64.copysign(wide)) as i32
}

/// Exactly `value.ceil() as u32` (saturating, negatives and NaN to 0),
/// without libm's `ceilf` (see [`round_i32`]): truncated, plus one when a
/// fraction was cut off.
fn ceil_u32(value: f32) -> u32 {
    let truncated = value as u32;
    truncated.saturating_add(u32::from(value > truncated as f32))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rampart_sim::ProjectileView;
    use rampart_sim::content::{EnemyKindId, TowerKindId};

    use super::*;

    fn walker(id: u32, position: Vec2) -> EnemyView {
        EnemyView {
            id,
            kind: EnemyKindId(1),
            position,
            hp: 9.5,
            max_hp: 10.0,
            flying: false,
            slowed: true,
            burning: false,
        }
    }

    fn snapshot(tick: u64, enemies: Vec<EnemyView>) -> Snapshot {
        Snapshot {
            tick,
            enemies,
            ..Snapshot::default()
        }
    }

    #[test]
    fn straight_walk_settles_on_one_trajectory() {
        let mut tracker = WorldTracker::new();
        let speed = 0.0437;
        let mut starts = Vec::new();
        let mut tick = 0;
        while tick < 3_000 {
            let at = Vec2::new(2.0 + speed * tick as f32, 5.0);
            let world = tracker.observe(&snapshot(tick, vec![walker(7, at)]));
            let enemy = &world.enemies[0];
            let (x, y) = enemy.path.at(tick);
            assert!((x - (at.x * 256.0).round() as i32).abs() <= TOLERANCE);
            assert!((y - 1280).abs() <= TOLERANCE);
            assert_eq!((enemy.hp, enemy.max_hp, enemy.flags), (10, 10, SLOWED));
            if starts.last() != Some(&enemy.path.since) {
                starts.push(enemy.path.since);
            }
            tick += if tick % 3 == 0 { 1 } else { 2 };
        }
        // Spawn, first velocity, then corrections ever further apart.
        assert!(starts.len() <= 5, "{starts:?}");
    }

    #[test]
    fn turning_walker_is_corrected_within_tolerance() {
        let mut tracker = WorldTracker::new();
        for tick in (0..400).step_by(2) {
            // East for 100 ticks, then south.
            let t = tick as f32;
            let at = if tick < 100 {
                Vec2::new(t * 0.05, 0.0)
            } else {
                Vec2::new(5.0, (t - 100.0) * 0.05)
            };
            let world = tracker.observe(&snapshot(tick, vec![walker(1, at)]));
            let (x, y) = world.enemies[0].path.at(tick);
            assert!((x - (at.x * 256.0).round() as i32).abs() <= TOLERANCE);
            assert!((y - (at.y * 256.0).round() as i32).abs() <= TOLERANCE);
        }
        let path = tracker.world().enemies[0].path;
        assert_eq!((path.vx, path.vy), (0, 205));
    }

    #[test]
    fn lists_follow_spawns_and_despawns() {
        let mut tracker = WorldTracker::new();
        tracker.observe(&snapshot(
            1,
            vec![walker(1, Vec2::ZERO), walker(2, Vec2::ONE)],
        ));
        let world = tracker.observe(&snapshot(
            2,
            vec![walker(2, Vec2::ONE), walker(5, Vec2::ZERO)],
        ));
        let ids: Vec<u32> = world.enemies.iter().map(|enemy| enemy.id).collect();
        assert_eq!(ids, [2, 5]);
        assert_eq!(world.enemies[0].path.since, 1);
        assert_eq!(world.enemies[1].path.since, 2);
    }

    /// As the server runs it: the ring holds the tracker's worlds, and the
    /// tracker writes each new one into the world the ring dropped, whole.
    #[test]
    fn worlds_are_written_into_what_the_ring_hands_back_unless_held() {
        use crate::snapshot::{RING_SIZE, SnapshotRing};

        fn derive(
            tracker: &mut WorldTracker,
            ring: &mut SnapshotRing,
            tick: u64,
            walkers: u32,
        ) -> Arc<NetWorld> {
            let enemies = (0..walkers)
                .map(|id| walker(id, Vec2::new(0.05 * tick as f32, id as f32)))
                .collect();
            let world = tracker.observe(&snapshot(tick, enemies)).clone();
            if let Some(dropped) = ring.push(world.clone()) {
                tracker.recycle(dropped);
            }
            world
        }
        let mut tracker = WorldTracker::new();
        let mut ring = SnapshotRing::new();
        let mut derive =
            |ring: &mut SnapshotRing, tick, walkers| derive(&mut tracker, ring, tick, walkers);
        // Busy worlds first, so a world written over would show leftovers,
        // and keeps room a new one would not have.
        for tick in 0..RING_SIZE as u64 {
            derive(&mut ring, tick, 20);
        }
        derive(&mut ring, 100, 1);
        let oldest = Arc::as_ptr(ring.iter().next().expect("a full ring"));
        derive(&mut ring, 101, 1);
        let world = derive(&mut ring, 102, 1);
        assert_eq!(Arc::as_ptr(&world), oldest, "the dropped world, reused");
        assert!(world.enemies.capacity() >= 20, "its lists, reused");
        assert_eq!((world.tick, world.enemies.len()), (102, 1));

        // A world someone holds is never written over.
        let held = ring.iter().next().cloned().expect("a full ring");
        let before = NetWorld::clone(&held);
        derive(&mut ring, 103, 1);
        let world = derive(&mut ring, 104, 1);
        assert!(!Arc::ptr_eq(&world, &held));
        assert_eq!(*held, before);
    }

    #[test]
    fn projectiles_start_at_the_learned_speed() {
        let mut tracker = WorldTracker::new();
        let shot = |id, tick: u64, from: f32| ProjectileView {
            id,
            tower_kind: TowerKindId(3),
            position: Vec2::new(from + 0.3 * tick as f32, 1.0),
            aim: Vec2::new(40.0, 1.0),
        };
        let mut world = Snapshot::default();
        for tick in 0..4 {
            world.tick = tick;
            world.projectiles = vec![shot(1, tick, 0.0)];
            tracker.observe(&world);
        }
        world.tick = 4;
        world.projectiles = vec![shot(1, 4, 0.0), shot(2, 0, 0.0)];
        let path = tracker.observe(&world).projectiles[1].path;
        // Measured over the first tick: 77 position units (0.3 cells, 76.8,
        // quantised), 1232 velocity units; it stayed within tolerance since.
        assert_eq!((path.vx, path.vy), (1232, 0));
    }

    /// Values where rounding and ceiling turn: halves, the last float
    /// below a half, where floats stop having fractions, and the edges of
    /// the integer types.
    const EDGES: [f32; 22] = [
        0.0,
        -0.0,
        0.5,
        -0.5,
        0.499_999_97,
        -0.499_999_97,
        1.5,
        -2.5,
        8_388_607.5,
        -8_388_607.5,
        8_388_609.0,
        16_777_216.0,
        2_147_483_520.0,
        2_147_483_648.0,
        -2_147_483_648.0,
        -2_147_483_904.0,
        4_294_967_040.0,
        4_294_967_296.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MIN_POSITIVE,
    ];

    #[test]
    fn quantising_matches_the_standard_library_at_the_edges() {
        for value in EDGES.into_iter().chain(EDGES.map(|edge| -edge)) {
            assert_eq!(round_i32(value), value.round() as i32, "round {value}");
            assert_eq!(ceil_u32(value), value.ceil() as u32, "ceil {value}");
        }
    }

    #[test]
    fn quantising_matches_the_standard_library_across_all_floats() {
        // Every 641st bit pattern: a few million floats of every exponent.
        for bits in (0..=u32::MAX).step_by(641) {
            let value = f32::from_bits(bits);
            assert_eq!(round_i32(value), value.round() as i32, "round {value}");
            assert_eq!(ceil_u32(value), value.ceil() as u32, "ceil {value}");
        }
    }

    proptest! {
        #[test]
        fn quantising_matches_the_standard_library(bits in any::<u32>()) {
            let value = f32::from_bits(bits);
            prop_assert_eq!(round_i32(value), value.round() as i32);
            prop_assert_eq!(ceil_u32(value), value.ceil() as u32);
        }
    }
}
