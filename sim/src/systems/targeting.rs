//! Steps 5 and 6: a spatial index of living enemies (filled by the walk
//! over the enemies in `movement.rs`), and towers choosing targets from it
//! (never all towers against all enemies).

use glam::Vec2;

use crate::command::Targeting;
use crate::content::Flight;
use crate::world::{Game, Projectile, cell_centre};

/// Side of an index bucket, in cells: about a typical tower range, so a range
/// query touches a handful of buckets.
const BUCKET_CELLS: u16 = 4;

/// Buckets per cell, the other way round.
const BUCKETS_PER_CELL: f32 = 1.0 / BUCKET_CELLS as f32;

/// What targeting needs to know about one living enemy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Indexed {
    /// Its place in the session's enemy list.
    pub slot: u32,
    pub id: u32,
    pub position: Vec2,
    pub hp: f32,
    pub remaining: f32,
    pub flying: bool,
}

/// Living enemies bucketed by area, refilled each tick into buffers that
/// keep their capacity: the enemies in id order, and their positions in
/// `entries` counting-sorted by bucket.
///
/// It holds nothing from one tick to the next, so it is not part of a
/// session: one index serves every session stepped on a thread (in the
/// tick's scratch), and stays in that core's caches where one per session
/// was cold at every tick, its lines written afresh (a quarter of a cold
/// session-tick went to filling it).
///
/// Sorting small indices rather than the entries themselves matters in a
/// host of hundreds of sessions, where each world is cold when its tick
/// starts: a staging copy of the entries would be as many cache lines again,
/// written and read once, where the indices take a few.
#[derive(Debug, Default)]
pub(crate) struct EnemyIndex {
    columns: usize,
    rows: usize,
    /// Every living enemy, in id order (the walk's).
    entries: Vec<Indexed>,
    /// The bucket of each entry.
    buckets: Vec<u32>,
    /// Positions in `entries`, bucket by bucket: `starts[b]..starts[b + 1]`
    /// is bucket `b`'s slice.
    sorted: Vec<u32>,
    starts: Vec<u32>,
}

impl EnemyIndex {
    /// Through `i32`: a float converts to it in one instruction and a
    /// fix-up, to `usize` in a dozen, and this runs for every enemy and
    /// twice for every tower each tick. The clamp covers negative, huge and
    /// NaN coordinates alike (NaN converts to 0).
    fn bucket_of(&self, position: Vec2) -> (usize, usize) {
        let bucket = |coordinate: f32, count: usize| {
            ((coordinate * BUCKETS_PER_CELL) as i32)
                .max(0)
                .min(count as i32 - 1) as usize
        };
        (
            bucket(position.x, self.columns),
            bucket(position.y, self.rows),
        )
    }

    /// Empties the index for this tick's living enemies on a map `width`
    /// by `height` cells, which the returned [`Refill`] takes one at a time
    /// and sorts into buckets when dropped.
    pub(crate) fn refill(&mut self, width: u16, height: u16) -> Refill<'_> {
        self.columns = usize::from(width.div_ceil(BUCKET_CELLS));
        self.rows = usize::from(height.div_ceil(BUCKET_CELLS));
        self.entries.clear();
        self.buckets.clear();
        self.starts.clear();
        self.starts.resize(self.columns * self.rows + 1, 0);
        Refill { index: self }
    }

    /// Counting sort of the entries by bucket; `starts` holds each bucket's
    /// count on entry.
    ///
    /// After the running sum each bucket's start is its end, and filling
    /// from the last entry back moves it down to its start: one pass over
    /// the buckets fewer than filling forwards and shifting back (the
    /// reference map has 169 buckets for its hundred enemies), with each
    /// bucket's entries still in id order.
    fn sort_into_buckets(&mut self) {
        let mut total = 0;
        for start in &mut self.starts {
            total += *start;
            *start = total;
        }
        self.sorted.clear();
        self.sorted.resize(self.entries.len(), 0);
        for (entry, &bucket) in self.buckets.iter().enumerate().rev() {
            let slot = &mut self.starts[bucket as usize];
            *slot -= 1;
            self.sorted[*slot as usize] = entry as u32;
        }
    }

    /// The enemy `id`, if it was indexed this tick (alive, and not
    /// leaked): homing shots find their target in the entries just written
    /// rather than in the session's enemies.
    pub(crate) fn find(&self, id: u32) -> Option<&Indexed> {
        let entry = self.entries.binary_search_by_key(&id, |entry| entry.id);
        entry.ok().map(|entry| &self.entries[entry])
    }

    /// Calls `visit` for every indexed enemy within `radius` of `centre`.
    pub(crate) fn for_each_within(
        &self,
        centre: Vec2,
        radius: f32,
        mut visit: impl FnMut(&Indexed),
    ) {
        let (low_column, low_row) = self.bucket_of(centre - Vec2::splat(radius));
        let (high_column, high_row) = self.bucket_of(centre + Vec2::splat(radius));
        let radius_squared = radius * radius;
        for row in low_row..=high_row {
            let first = self.starts[row * self.columns + low_column] as usize;
            let last = self.starts[row * self.columns + high_column + 1] as usize;
            for &entry in &self.sorted[first..last] {
                let entry = &self.entries[entry as usize];
                if entry.position.distance_squared(centre) <= radius_squared {
                    visit(entry);
                }
            }
        }
    }
}

/// This tick's filling of an [`EnemyIndex`]: takes the living enemies in
/// id order, and leaves the index sorted by bucket when dropped.
pub(crate) struct Refill<'a> {
    index: &'a mut EnemyIndex,
}

impl Refill<'_> {
    /// Inlined into the walk over the enemies: as a call, with the entry
    /// passed through memory, it took a third more instructions.
    #[inline]
    pub(crate) fn add(&mut self, enemy: Indexed) {
        let index = &mut *self.index;
        let (column, row) = index.bucket_of(enemy.position);
        let bucket = row * index.columns + column;
        index.starts[bucket] += 1;
        index.buckets.push(bucket as u32);
        index.entries.push(enemy);
    }
}

impl Drop for Refill<'_> {
    fn drop(&mut self) {
        self.index.sort_into_buckets();
    }
}

/// Whether `candidate` beats `best` under `mode`. Ties go to the lower id, so
/// the choice never depends on storage order.
fn better(mode: Targeting, tower: Vec2, candidate: &Indexed, best: &Indexed) -> bool {
    let (a, b) = match mode {
        Targeting::First => (candidate.remaining, best.remaining),
        Targeting::Last => (-candidate.remaining, -best.remaining),
        Targeting::Strongest => (-candidate.hp, -best.hp),
        Targeting::Closest => (
            candidate.position.distance_squared(tower),
            best.position.distance_squared(tower),
        ),
    };
    a < b || (a == b && candidate.id < best.id)
}

/// Step 6: towers count down their reload, and those ready fire at the best
/// target in range. Towers are walked in id order, so their shots (id 0
/// until [`launch`]) are in the order they are numbered in.
pub(crate) fn fire_towers(game: &mut Game, index: &EnemyIndex, shots: &mut Vec<Projectile>) {
    let Game { rules, towers, .. } = game;
    for tower in towers.standing_mut() {
        if tower.cooldown > 0 {
            tower.cooldown -= 1;
            if tower.cooldown > 0 {
                continue;
            }
        }
        let kind = &rules.0.towers[usize::from(tower.kind.0)];
        let level = &kind.levels[usize::from(tower.level)];
        let origin = cell_centre(usize::from(tower.cell.x), usize::from(tower.cell.y));
        let mut best: Option<Indexed> = None;
        index.for_each_within(origin, level.range, |candidate| {
            let shootable = if candidate.flying {
                kind.targets.air
            } else {
                kind.targets.ground
            };
            if shootable
                && best
                    .as_ref()
                    .is_none_or(|best| better(tower.targeting, origin, candidate, best))
            {
                best = Some(*candidate);
            }
        });
        let Some(target) = best else { continue };
        tower.cooldown = level.reload_ticks;
        shots.push(Projectile {
            id: 0,
            owner: tower.owner,
            tower_kind: tower.kind,
            level: tower.level,
            target: (kind.flight == Flight::Homing).then_some(target.id),
            aim: target.position,
            position: origin,
        });
    }
}

/// The end of step 7: this tick's shots join those in flight, numbered in
/// the order of the towers that fired them, after every shot in flight
/// has moved (so they start moving next tick).
pub(crate) fn launch(game: &mut Game, shots: &mut Vec<Projectile>) {
    let Game {
        ids, projectiles, ..
    } = game;
    projectiles.0.extend(shots.drain(..).map(|shot| {
        ids.next_projectile += 1;
        Projectile {
            id: ids.next_projectile,
            ..shot
        }
    }));
}
