//! `FlowField::compute` must not allocate after its first call: the
//! simulation recomputes fields inside the tick loop, where allocation costs
//! latency and fragments memory over a long session.
//!
//! This is its own test binary because it installs a counting global
//! allocator, and holds a single test so no other test allocates while it
//! measures. The counter is process-wide, though, and the test harness's
//! own thread occasionally allocates during the first window; so each
//! check is repeated on a fresh field and passes if any attempt sees no
//! allocation. A real allocation in `compute` is deterministic and shows
//! up in every attempt.
#![allow(clippy::unwrap_used)]

use std::alloc::System;

use rampart_sim::path::FlowField;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// xorshift64*: a few deterministic bits without another dependency.
fn rng(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[test]
fn compute_does_not_allocate_after_first_call() {
    for (width, height) in [(50u16, 50u16), (256, 256)] {
        let len = usize::from(width) * usize::from(height);
        let goal = len / 2 + usize::from(width) / 2;
        let open = vec![true; len];
        let mut seed = 0x00C0_FFEE_u64 + u64::from(width);
        // Tower layouts the game could produce: ever more cells blocked,
        // the goal always left open.
        let layouts: Vec<Vec<bool>> = (1..=8)
            .map(|density| {
                let mut map = open.clone();
                for cell in map.iter_mut() {
                    *cell = rng(&mut seed) % 20 >= density;
                }
                map[goal] = true;
                map
            })
            .collect();
        let corners = [0, usize::from(width) - 1, len - usize::from(width), len - 1];

        let mut attempts = Vec::new();
        for _ in 0..5 {
            let mut field = FlowField::new(width, height);
            field.compute(&open, &[goal]);

            let region = Region::new(GLOBAL);
            for _ in 0..3 {
                field.compute(&open, &[goal]);
                for map in &layouts {
                    field.compute(map, &[goal]);
                    field.compute(map, &corners);
                }
                field.compute(&open, &corners);
            }
            let change = region.change();
            assert!(field.reachable(0));
            if change.allocations == 0 && change.reallocations == 0 {
                break;
            }
            attempts.push(change);
        }
        assert!(
            attempts.len() < 5,
            "{width}x{height}: compute allocated in every attempt: {attempts:?}"
        );
    }
}
