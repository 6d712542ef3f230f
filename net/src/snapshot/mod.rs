//! Snapshots on the wire: the world as clients see it, the server-side
//! tracker that derives it from the simulation, the delta codec that sends
//! it in a few bytes, and the ring of recent worlds deltas are taken from.
//!
//! # How it stays small
//!
//! Enemies walk straight lines between cell centres at a constant speed, and
//! projectiles fly straight, so the wire world ([`NetWorld`]) stores each
//! mover as a [`Trajectory`] (a start point, a velocity and the tick it
//! starts) rather than a position; clients extrapolate it. [`WorldTracker`]
//! keeps a mover's trajectory while its prediction stays within
//! [`TOLERANCE`] (1/32 cell on each axis; [`PROJECTILE_TOLERANCE`], 1/8
//! cell, for the much faster projectiles) of the observed position and
//! starts a new one at the observed position otherwise, so a delta carries
//! only what a client cannot predict: spawns, corrections (mostly at turns,
//! slows and homing curves), hit points, effects, despawns. On the
//! reference session's steady state (about 100 enemies, 50 towers, 15
//! projectiles) a delta averages about 98 bytes at 20 Hz, under one byte
//! per enemy per snapshot with projectiles included. The server deltas against the newest
//! world the client acknowledged that is still in its [`SnapshotRing`]
//! (Quake 3's scheme), and sends a full snapshot when there is none.
//!
//! Everything on the wire is an integer and the decoder is exact, so a
//! client rebuilds the server's [`NetWorld`] bit for bit and proves it with
//! the checksum a delta carries (the server sends one with a world in four
//! and with every full snapshot).
//!
//! # Wire format
//!
//! Notation: **varint** is unsigned LEB128 (7 bits per byte, least
//! significant group first, high bit set on every byte but the last; at
//! most 10 bytes for 64 bits; the shortest form is written but not
//! required). **signed** is a zigzag varint: `n` is sent as
//! `(n << 1) ^ (n >> 63)` of its 64-bit value. A **change** of an unsigned
//! field is the signed difference `new - old`, computed exactly. A decoded
//! value that does not fit its field's type is an error.
//!
//! A delta is, in order:
//!
//! 1. **Header.** `tick` varint; `base` varint: the `base gap` times two,
//!    plus one when a checksum follows. The base gap is 0 for a full
//!    snapshot, else the base world's tick is `tick - base gap`. Then, when
//!    `base` is odd, `checksum`, 4 bytes little-endian: the encoded world's
//!    [`NetWorld::checksum`] ([`encode`] writes it, [`encode_unchecked`]
//!    does not). A full snapshot is encoded exactly like a delta against
//!    the **empty world** (every number 0, every list empty).
//! 2. **Globals mask**, one byte. Bit 0 wave, 1 lives, 2 outcome, 3 players,
//!    4 enemies, 5 towers, 6 projectiles; bit 7 must be clear. A clear bit
//!    means "as in the base". Then, for each set bit in bit order: wave
//!    varint, lives varint, outcome varint (absolute values), the players
//!    section, the enemies, towers and projectiles list sections.
//! 3. **Players section.** Seat count varint, then for each seat `i` in
//!    order a mask byte (bit 0 gold changed, bit 1 kills changed, bit 2 the
//!    new `ready` value itself, other bits clear), then the gold change if
//!    bit 0, the kills change if bit 1, each relative to the base's seat
//!    `i` (to zero if the base has no seat `i`).
//! 4. **List section** (one per entity list):
//!    - removed count varint (at most the base list's length), then one
//!      varint per removed entry: its index in the base list minus one past
//!      the previous removed index (the first: its index); indices strictly
//!      increase and stay below the base list's length;
//!    - entry count varint, then entries in strictly increasing id order,
//!      each starting with a varint id gap: the id minus one past the
//!      previous entry's id (the first: the id itself). An entry whose id
//!      names a base entry that was not removed is a **change**: a field
//!      mask byte, then each field whose bit is set, in bit order (unknown
//!      bits are an error). Any other entry is a **spawn**: every field, no
//!      mask.
//!    - The new list is the surviving base entries and the entries merged
//!      by id, a change replacing its base entry.
//!    - Entry counts are capped at [`MAX_ENTITIES`] and by the bytes left.
//! 5. Nothing after the last section.
//!
//! Fields per list (all varints unless said otherwise):
//!
//! | list | spawn | change mask bits |
//! | --- | --- | --- |
//! | enemies | kind, max_hp, hp as a change from max_hp, flags, trajectory spawn | 0 kind, 1 hp (change), 2 max_hp (change), 3 flags, 4 trajectory change |
//! | towers | owner, kind, level, x, y, targeting | 0 owner, 1 kind, 2 level, 3 x, 4 y, 5 targeting (all absolute) |
//! | projectiles | tower_kind, trajectory spawn | 0 tower_kind, 1 trajectory change |
//!
//! A **trajectory spawn** is `since gap` varint (`tick - since`, modulo
//! 2^64), then `x`, `y`, `vx`, `vy` signed. A **trajectory change** is
//! `since gap` varint, then `x`, `y` signed relative to the base
//! trajectory's prediction [`Trajectory::at`]`(since)`, then `vx`, `vy`
//! signed relative to the base trajectory's velocity.
//!
//! [`Trajectory::at`]`(tick)` is `x + floor(vx * (tick - since) / 16)` (the
//! same for `y`) in exact integer arithmetic with a signed tick difference,
//! clamped to the `i32` range. Positions are in 1/256 cell, velocities in
//! 1/4096 cell per tick.
//!
//! [`NetWorld::checksum`] is xxHash32 (seed 0) over these little-endian
//! values: tick u64, wave u32, lives u32, outcome u8; the seat count u32
//! and per seat gold u32, ready u8 (0 or 1), kills u32; the enemy count u32
//! and per enemy id u32, kind u16, hp u32, max_hp u32, flags u8, then its
//! trajectory as x i32, y i32, vx i32, vy i32, since u64; the tower count
//! u32 and per tower id u32, owner u8, kind u16, level u8, x u16, y u16,
//! targeting u8; the projectile count u32 and per projectile id u32,
//! tower_kind u16 and its trajectory.

mod codec;
mod ring;
mod tracker;
mod world;

pub use codec::{
    CodecError, DeltaHeader, MAX_ENTITIES, apply, decode_header, encode, encode_unchecked,
};
pub(crate) use ring::writable;
pub use ring::{RING_SIZE, SnapshotRing};
pub use tracker::{PROJECTILE_TOLERANCE, TOLERANCE, WorldTracker};
pub use world::{
    BURNING, DEFEAT, FLYING, NetEnemy, NetPlayer, NetProjectile, NetTower, NetWorld,
    POSITION_SCALE, SLOWED, Trajectory, UNDECIDED, VELOCITY_SCALE, VICTORY, outcome_code,
};
