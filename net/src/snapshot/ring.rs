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
    /// The worlds' ticks, slot for slot: a lookup searches these few
    /// adjacent words instead of following a pointer per probe into worlds
    /// written long ago (a server holds a ring per session, a load
    /// generator one per bot; every probe into `worlds` was a cache miss).
    ticks: VecDeque<u64>,
}

impl SnapshotRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self {
            worlds: VecDeque::with_capacity(RING_SIZE),
            ticks: VecDeque::with_capacity(RING_SIZE),
        }
    }

    /// Lets go of every world: a client whose world failed its checksum
    /// cannot trust those it applied since the last checked one either.
    pub fn clear(&mut self) {
        self.worlds.clear();
        self.ticks.clear();
    }

    /// Adds `world` as the newest and hands back the world it let go of:
    /// the oldest of a full ring, or, for a world not newer than those held
    /// (a restarted stream), one of the worlds at or after its tick, which
    /// go first so lookups stay by increasing tick. Whoever derives the
    /// next world writes it into the one handed back once nobody else holds
    /// it (the usual case), so a full ring allocates nothing and no world
    /// is copied into it.
    pub fn push(&mut self, world: Arc<NetWorld>) -> Option<Arc<NetWorld>> {
        let mut dropped = None;
        while self
            .ticks
            .back()
            .is_some_and(|&newest| newest >= world.tick)
        {
            self.ticks.pop_back();
            dropped = self.worlds.pop_back();
        }
        if self.worlds.len() == RING_SIZE {
            self.ticks.pop_front();
            dropped = self.worlds.pop_front();
        }
        self.ticks.push_back(world.tick);
        self.worlds.push_back(world);
        dropped
    }

    /// The world of `tick`, if still held.
    pub fn get(&self, tick: u64) -> Option<&Arc<NetWorld>> {
        let index = self.ticks.binary_search(&tick).ok()?;
        self.worlds.get(index)
    }

    /// The newest world.
    pub fn latest(&self) -> Option<&Arc<NetWorld>> {
        self.worlds.back()
    }

    /// The tick of the oldest world held: acknowledgements older than this
    /// get a full snapshot.
    pub fn oldest_tick(&self) -> Option<u64> {
        self.ticks.front().copied()
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

/// The world to write the next one into: `spare` (a world a ring handed
/// back) unless someone still holds it, else a new one. Unshared, so
/// `Arc::make_mut` on it never copies.
pub(crate) fn writable(spare: Option<Arc<NetWorld>>) -> Arc<NetWorld> {
    if let Some(mut world) = spare
        && Arc::get_mut(&mut world).is_some()
    {
        return world;
    }
    Arc::default()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ring.push(Arc::new(world(tick * 2)));
        }
        assert_eq!(ring.len(), RING_SIZE);
        assert_eq!(ring.oldest_tick(), Some(2 * (100 - RING_SIZE as u64)));
        assert_eq!(ring.latest().map(|world| world.tick), Some(198));
        assert_eq!(ring.get(150).map(|world| world.tick), Some(150));
        assert!(ring.get(151).is_none());
        assert!(ring.get(2).is_none());
    }

    #[test]
    fn a_full_ring_hands_back_the_world_it_drops() {
        let mut ring = SnapshotRing::new();
        for tick in 0..RING_SIZE as u64 {
            assert!(ring.push(Arc::new(world(tick))).is_none());
        }
        let oldest = ring.iter().next().cloned().expect("a full ring");
        let dropped = ring.push(Arc::new(world(100))).expect("the oldest");
        assert!(Arc::ptr_eq(&dropped, &oldest));
        assert_eq!(ring.oldest_tick(), Some(1));
    }

    #[test]
    fn an_older_world_replaces_the_newer_ones() {
        let mut ring = SnapshotRing::new();
        for tick in [1, 2, 3, 4] {
            ring.push(Arc::new(world(tick)));
        }
        let again = Arc::new(world(3));
        let dropped = ring.push(again.clone()).expect("a replaced world");
        assert_eq!(dropped.tick, 3);
        assert!(!Arc::ptr_eq(&dropped, &again));
        let ticks: Vec<u64> = ring.iter().map(|world| world.tick).collect();
        assert_eq!(ticks, [1, 2, 3]);
        // Lookups find the world that replaced them, and none past it.
        assert!(ring.get(3).is_some_and(|held| Arc::ptr_eq(held, &again)));
        assert!(ring.get(4).is_none());
        assert_eq!(ring.get(2).map(|held| held.tick), Some(2));
        ring.push(Arc::new(world(5)));
        assert_eq!(ring.get(5).map(|held| held.tick), Some(5));
        assert!(ring.get(4).is_none());
    }
}
