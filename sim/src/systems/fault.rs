//! A tick that panics on demand (feature `fault-injection`): the honest way
//! to test that a host survives a session whose tick panics.

use bevy_ecs::prelude::*;

/// Present when the next tick must panic.
#[derive(Resource, Debug)]
pub(crate) struct InjectedPanic;

/// Panics inside the tick if a fault was injected.
pub(crate) fn panic_if_injected(world: &World) {
    if world.contains_resource::<InjectedPanic>() {
        panic!("injected fault: this session's tick panics on purpose");
    }
}
