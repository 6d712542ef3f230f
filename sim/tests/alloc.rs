//! The tick does not allocate per entity: at the reference session's steady
//! state (about 100 enemies, 50 towers, projectiles in flight), stepping
//! reuses its buffers. Counted with an instrumented global allocator, so this
//! test is its own binary.
#![allow(clippy::unwrap_used)]

mod common;

use std::alloc::System;

use rampart_sim::{Session, SessionConfig};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn steady_ticks_do_not_allocate_per_entity() {
    let content = common::assets();
    let config = SessionConfig {
        map: "reference".into(),
        scenario: Some("reference".into()),
        players: 8,
        seed: 7,
        tick_hz: 30,
    };
    let mut session = Session::new(content, &config).unwrap();
    while session.tick() < 12_000 {
        session.step();
    }
    let enemies = session.summary().enemies;
    assert!(
        enemies >= 50,
        "the steady state should be busy, found {enemies} enemies"
    );
    const TICKS: u64 = 300;
    let region = Region::new(GLOBAL);
    for _ in 0..TICKS {
        session.step();
    }
    let stats = region.change();
    let allocations = (stats.allocations + stats.reallocations) as u64;
    println!("{allocations} allocations in {TICKS} ticks with {enemies} enemies");
    assert!(
        allocations < TICKS,
        "{allocations} allocations in {TICKS} ticks: something allocates every tick"
    );
}
