//! Steps 5 and 6: a spatial index of living enemies, and towers choosing
//! targets from it (never all towers against all enemies).

use bevy_ecs::prelude::*;
use glam::Vec2;

use crate::command::Targeting;
use crate::content::Flight;
use crate::world::{Board, Enemy, Ids, Position, Projectile, SessionRules, Tower, TowerOrder};

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

/// Living enemies bucketed by area: a counting sort into one flat array,
/// rebuilt each tick into buffers that keep their capacity.
#[derive(Resource, Debug)]
pub(crate) struct EnemyIndex {
    columns: usize,
    rows: usize,
    /// `starts[b]..starts[b + 1]` is bucket `b`'s slice of `entries`.
    starts: Vec<u32>,
    entries: Vec<Indexed>,
    staging: Vec<(u32, Indexed)>,
}

impl EnemyIndex {
    pub(crate) fn new(width: u16, height: u16) -> Self {
        let columns = (f32::from(width) / BUCKET_CELLS).ceil() as usize;
        let rows = (f32::from(height) / BUCKET_CELLS).ceil() as usize;
        Self {
            columns,
            rows,
            starts: vec![0; columns * rows + 1],
            entries: Vec::new(),
            staging: Vec::new(),
        }
    }

    fn bucket_of(&self, position: Vec2) -> (usize, usize) {
        let column = ((position.x / BUCKET_CELLS).max(0.0) as usize).min(self.columns - 1);
        let row = ((position.y / BUCKET_CELLS).max(0.0) as usize).min(self.rows - 1);
        (column, row)
    }

    fn rebuild(&mut self) {
        self.starts.fill(0);
        for (bucket, _) in &self.staging {
            self.starts[*bucket as usize + 1] += 1;
        }
        for bucket in 1..self.starts.len() {
            self.starts[bucket] += self.starts[bucket - 1];
        }
        self.entries.clear();
        self.entries.resize(
            self.staging.len(),
            self.staging.first().map_or(PLACEHOLDER, |(_, e)| *e),
        );
        // `starts` doubles as the fill cursor, then is shifted back.
        for (bucket, entry) in &self.staging {
            let slot = &mut self.starts[*bucket as usize];
            self.entries[*slot as usize] = *entry;
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
            for entry in &self.entries[first..last] {
                if entry.position.distance_squared(centre) <= radius_squared {
                    visit(entry);
                }
            }
        }
    }
}

const PLACEHOLDER: Indexed = Indexed {
    entity: Entity::PLACEHOLDER,
    id: 0,
    position: Vec2::ZERO,
    hp: 0.0,
    remaining: 0.0,
    flying: false,
};

/// Step 5: index every living enemy.
pub(crate) fn index_enemies(
    mut index: ResMut<EnemyIndex>,
    enemies: Query<(Entity, &Enemy, &Position)>,
) {
    let index = &mut *index;
    index.staging.clear();
    for (entity, enemy, position) in &enemies {
        if enemy.hp > 0.0 && !enemy.gone {
            let (column, row) = index.bucket_of(position.0);
            let entry = Indexed {
                entity,
                id: enemy.id,
                position: position.0,
                hp: enemy.hp,
                remaining: enemy.remaining,
                flying: enemy.flying,
            };
            index
                .staging
                .push(((row * index.columns + column) as u32, entry));
        }
    }
    index.rebuild();
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
#[allow(clippy::too_many_arguments)]
pub(crate) fn fire_towers(
    mut commands: Commands,
    rules: Res<SessionRules>,
    board: Res<Board>,
    order: Res<TowerOrder>,
    index: Res<EnemyIndex>,
    mut ids: ResMut<Ids>,
    mut towers: Query<&mut Tower>,
) {
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
