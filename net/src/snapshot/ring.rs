//! The last few worlds, kept so a delta can be built from (on the server) or
//! applied to (on the client) whichever one the other side holds.

use std::collections::VecDeque;
use std::sync::Arc;

use super::world::NetWorld;

/// Worlds a ring keeps: Quake 3's figure, over a second and a half of
/// snapshots at 20 Hz, enough to ride out a burst of lost acknowledgements.
pub const RING_SIZE: usize = 32;

/// The last [`RING_SIZE`] worlds, oldest first, by tick. The server deltas
/// from the client's last acknowledged world while it is still here (a full
/// snapshot otherwise); the client looks up the base a delta names.
#[derive(Clone, Debug, Default)]
pub struct SnapshotRing {
    worlds: VecDeque<Arc<NetWorld>>,
}

impl SnapshotRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self {
            worlds: VecDeque::with_capacity(RING_SIZE),
        }
    }

    /// Adds a copy of `world` as the newest, dropping the oldest when full,
    /// and returns it. The copy goes into the dropped world's lists when
    /// nothing else holds that world (the usual case), so a full ring
    /// allocates nothing. Ticks must grow: a world not newer than those held
    /// (a restarted stream) first drops every world at or after its tick, so
    /// lookups stay by increasing tick.
    pub fn push(&mut self, world: &NetWorld) -> &Arc<NetWorld> {
        while self
            .worlds
            .back()
            .is_some_and(|newest| newest.tick >= world.tick)
        {
            self.worlds.pop_back();
        }
        let oldest = if self.worlds.len() == RING_SIZE {
            self.worlds.pop_front()
        } else {
            None
        };
        let newest = match oldest {
            Some(mut recycled) => {
                if let Some(unshared) = Arc::get_mut(&mut recycled) {
                    unshared.clone_from(world);
                    recycled
                } else {
                    Arc::new(world.clone())
                }
            }
            None => Arc::new(world.clone()),
        };
        self.worlds.push_back(newest);
        &self.worlds[self.worlds.len() - 1]
    }

    /// The world of `tick`, if still held.
    pub fn get(&self, tick: u64) -> Option<&Arc<NetWorld>> {
        let index = self
            .worlds
            .binary_search_by_key(&tick, |world| world.tick)
            .ok()?;
        self.worlds.get(index)
    }

    /// The newest world.
    pub fn latest(&self) -> Option<&Arc<NetWorld>> {
        self.worlds.back()
    }

    /// The tick of the oldest world held: acknowledgements older than this
    /// get a full snapshot.
    pub fn oldest_tick(&self) -> Option<u64> {
        self.worlds.front().map(|world| world.tick)
    }

    /// Worlds held, oldest first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Arc<NetWorld>> {
        self.worlds.iter()
    }

    /// How many worlds are held.
    pub fn len(&self) -> usize {
        self.worlds.len()
    }

    /// Whether no world is held yet.
    pub fn is_empty(&self) -> bool {
        self.worlds.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::NetPlayer;

    fn world(tick: u64) -> NetWorld {
        NetWorld {
            tick,
            ..NetWorld::default()
        }
    }

    #[test]
    fn keeps_the_newest_ring_size_worlds() {
        let mut ring = SnapshotRing::new();
        assert!(ring.latest().is_none());
        for tick in 0..100 {
            ring.push(&world(tick * 2));
        }
        assert_eq!(ring.len(), RING_SIZE);
        assert_eq!(ring.oldest_tick(), Some(2 * (100 - RING_SIZE as u64)));
        assert_eq!(ring.latest().map(|world| world.tick), Some(198));
        assert_eq!(ring.get(150).map(|world| world.tick), Some(150));
        assert!(ring.get(151).is_none());
        assert!(ring.get(2).is_none());
    }

    #[test]
    fn a_full_ring_reuses_the_dropped_world_unless_it_is_held() {
        let busy = |tick| NetWorld {
            tick,
            players: vec![NetPlayer::default(); 8],
            ..NetWorld::default()
        };
        let mut ring = SnapshotRing::new();
        for tick in 0..RING_SIZE as u64 {
            ring.push(&busy(tick));
        }
        let oldest_players = ring.iter().next().map(|world| world.players.as_ptr());
        let newest = ring.push(&busy(100));
        assert_eq!(Some(newest.players.as_ptr()), oldest_players);
        assert_eq!(**newest, busy(100));

        // A world someone still holds is never written over.
        let held = ring.iter().next().cloned().expect("a full ring");
        let newest = ring.push(&busy(101));
        assert_ne!(newest.players.as_ptr(), held.players.as_ptr());
        assert_eq!(*held, busy(1));
        assert_eq!(**newest, busy(101));
    }

    #[test]
    fn an_older_world_replaces_the_newer_ones() {
        let mut ring = SnapshotRing::new();
        for tick in [1, 2, 3, 4] {
            ring.push(&world(tick));
        }
        ring.push(&world(3));
        let ticks: Vec<u64> = ring.iter().map(|world| world.tick).collect();
        assert_eq!(ticks, [1, 2, 3]);
    }
}
