//! Steps 5 and 6: a spatial index of living enemies, and towers choosing
//! targets from it (never all towers against all enemies).

use bevy_ecs::prelude::*;
use glam::Vec2;

use crate::command::Targeting;
use crate::content::Flight;
use crate::world::{Game, Position, Projectile, Tower};

use super::Enemies;

/// Side of an index bucket, in cells: about a typical tower range, so a range
/// query touches a handful of buckets.
const BUCKET_CELLS: f32 = 4.0;

/// What targeting needs to know about one living enemy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Indexed {
    pub entity: Entity,
    pub id: u32,
    pub position: Vec2,
    pub hp: f32,
    pub remaining: f32,
    pub flying: bool,
}

/// Living enemies bucketed by area, rebuilt each tick into buffers that keep
/// their capacity: the enemies in query order, and their positions in
/// `entries` counting-sorted by bucket.
///
/// Sorting small indices rather than the entries themselves matters in a
/// host of hundreds of sessions, where each world is cold when its tick
/// starts: a staging copy of the entries would be as many cache lines again,
/// written and read once, where the indices take a few.
#[derive(Debug)]
pub(crate) struct EnemyIndex {
    columns: usize,
    rows: usize,
    /// Every living enemy, in query order.
    entries: Vec<Indexed>,
    /// The bucket of each entry.
    buckets: Vec<u32>,
    /// Positions in `entries`, bucket by bucket: `starts[b]..starts[b + 1]`
    /// is bucket `b`'s slice.
    sorted: Vec<u32>,
    starts: Vec<u32>,
}

impl EnemyIndex {
    pub(crate) fn new(width: u16, height: u16) -> Self {
        let columns = (f32::from(width) / BUCKET_CELLS).ceil() as usize;
        let rows = (f32::from(height) / BUCKET_CELLS).ceil() as usize;
        Self {
            columns,
            rows,
            entries: Vec::new(),
            buckets: Vec::new(),
            sorted: Vec::new(),
            starts: vec![0; columns * rows + 1],
        }
    }

    fn bucket_of(&self, position: Vec2) -> (usize, usize) {
        let column = ((position.x / BUCKET_CELLS).max(0.0) as usize).min(self.columns - 1);
        let row = ((position.y / BUCKET_CELLS).max(0.0) as usize).min(self.rows - 1);
        (column, row)
    }

    fn rebuild(&mut self, enemies: impl Iterator<Item = Indexed>) {
        self.entries.clear();
        self.buckets.clear();
        self.starts.fill(0);
        for enemy in enemies {
            let (column, row) = self.bucket_of(enemy.position);
            let bucket = row * self.columns + column;
            self.starts[bucket + 1] += 1;
            self.buckets.push(bucket as u32);
            self.entries.push(enemy);
        }
        for bucket in 1..self.starts.len() {
            self.starts[bucket] += self.starts[bucket - 1];
        }
        self.sorted.clear();
        self.sorted.resize(self.entries.len(), 0);
        // `starts` doubles as the fill cursor, then is shifted back.
        for (entry, &bucket) in self.buckets.iter().enumerate() {
            let slot = &mut self.starts[bucket as usize];
            self.sorted[*slot as usize] = entry as u32;
            *slot += 1;
        }
        for bucket in (1..self.starts.len()).rev() {
            self.starts[bucket] = self.starts[bucket - 1];
        }
        self.starts[0] = 0;
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

/// Step 5: index every living enemy.
pub(crate) fn index_enemies(game: &mut Game, enemies: &Enemies) {
    game.index.rebuild(
        enemies
            .iter()
            .filter(|(_, enemy, _)| enemy.hp > 0.0 && !enemy.gone)
            .map(|(entity, enemy, position)| Indexed {
                entity,
                id: enemy.id,
                position: position.0,
                hp: enemy.hp,
                remaining: enemy.remaining,
                flying: enemy.flying,
            }),
    );
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
/// target in range, in tower id order.
pub(crate) fn fire_towers(
    commands: &mut Commands,
    game: &mut Game,
    towers: &mut Query<&mut Tower>,
) {
    let Game {
        rules,
        board,
        order,
        index,
        ids,
        ..
    } = game;
    for &(_, entity) in &order.0 {
        let Ok(mut tower) = towers.get_mut(entity) else {
            continue;
        };
        if tower.cooldown > 0 {
            tower.cooldown -= 1;
            if tower.cooldown > 0 {
                continue;
            }
        }
        let kind = &rules.0.towers[usize::from(tower.kind.0)];
        let level = &kind.levels[usize::from(tower.level)];
        let origin = board.centre(board.index(tower.cell));
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
        ids.next_projectile += 1;
        commands.spawn((
            Projectile {
                id: ids.next_projectile,
                owner: tower.owner,
                tower_kind: tower.kind,
                level: tower.level,
                target: (kind.flight == Flight::Homing).then_some(target.entity),
                aim: target.position,
            },
            Position(origin),
        ));
    }
}
