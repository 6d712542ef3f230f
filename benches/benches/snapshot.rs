//! Cost of sending the world to clients, per snapshot of the reference
//! session's steady state (see [`rampart_benches::STEADY_TICK`]): deriving
//! the wire world from the simulation's snapshot, its checksum, encoding a
//! delta against the previous world (with its checksum, as one world in
//! four goes, and without, as the rest do) and a full snapshot, and
//! applying a delta of each kind.
//!
//! The session is played and recorded untimed first, at the 20 Hz snapshot
//! rate over its 30 Hz tick, so every sample sees the same worlds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_benches::{STEADY_TICK, assets, reference_session};
use rampart_net::snapshot::{NetWorld, WorldTracker, apply, encode, encode_unchecked};
use rampart_sim::{DEFAULT_TICK_HZ, Snapshot};

/// Snapshots per second, against the simulation's 30 ticks per second.
const SNAPSHOT_HZ: u64 = 20;

/// Ticks tracked before the recording starts, so trajectories and learned
/// speeds are as a long-running session's.
const WARM_UP: u64 = 600;

/// Ticks recorded: a minute of steady state.
const RECORDED: u64 = 1_800;

/// A stretch of the steady state: the simulation's snapshots, the tracker as
/// it stood before the first of them, the wire worlds it derived and the
/// delta from each world to the next, with its checksum and without.
struct Recording {
    snapshots: Vec<Snapshot>,
    tracker: WorldTracker,
    worlds: Vec<NetWorld>,
    checked: Vec<Vec<u8>>,
    unchecked: Vec<Vec<u8>>,
}

/// How the server writes a delta: [`encode`] or [`encode_unchecked`].
type Encoder = fn(Option<&NetWorld>, &NetWorld, &mut Vec<u8>);

fn record() -> Recording {
    let content = assets();
    let mut session = reference_session(&content, 7);
    while session.tick() < STEADY_TICK - WARM_UP {
        session.step();
    }
    let rate = u64::from(DEFAULT_TICK_HZ);
    let mut tracker = WorldTracker::new();
    let mut start = None;
    let mut snapshots = Vec::new();
    let mut worlds = Vec::new();
    while session.tick() < STEADY_TICK + RECORDED {
        session.step();
        let tick = session.tick();
        if tick * SNAPSHOT_HZ / rate == (tick - 1) * SNAPSHOT_HZ / rate {
            continue;
        }
        let mut snapshot = Snapshot::default();
        session.snapshot(&mut snapshot);
        if tick >= STEADY_TICK {
            if start.is_none() {
                start = Some(tracker.clone());
            }
            worlds.push(NetWorld::clone(tracker.observe(&snapshot)));
            snapshots.push(snapshot);
        } else {
            tracker.observe(&snapshot);
        }
    }
    let deltas = |encoder: Encoder| {
        worlds
            .windows(2)
            .map(|pair| {
                let mut bytes = Vec::new();
                encoder(Some(&pair[0]), &pair[1], &mut bytes);
                bytes
            })
            .collect()
    };
    Recording {
        checked: deltas(encode),
        unchecked: deltas(encode_unchecked),
        snapshots,
        tracker: start.unwrap_or(tracker),
        worlds,
    }
}

fn snapshot_pipeline(c: &mut Criterion) {
    let recording = record();
    let pairs = recording.checked.len();
    let mut group = c.benchmark_group("snapshot");
    group.throughput(Throughput::Elements(1));

    group.bench_function("observe", |b| {
        let mut tracker = recording.tracker.clone();
        let mut next = 0;
        b.iter_custom(|iterations| {
            let mut timed = Duration::ZERO;
            for _ in 0..iterations {
                if next == recording.snapshots.len() {
                    // Back to the start of the recording, untimed.
                    tracker = recording.tracker.clone();
                    next = 0;
                }
                let started = Instant::now();
                black_box(tracker.observe(&recording.snapshots[next]));
                timed += started.elapsed();
                next += 1;
            }
            timed
        });
    });

    let mut next = 0;
    group.bench_function("checksum", |b| {
        b.iter(|| {
            next = (next + 1) % recording.worlds.len();
            black_box(recording.worlds[next].checksum())
        });
    });

    let mut bytes = Vec::with_capacity(1 << 16);
    for (name, encoder) in [
        ("encode_delta", encode as Encoder),
        ("encode_delta_unchecked", encode_unchecked),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                next = (next + 1) % pairs;
                bytes.clear();
                encoder(
                    Some(&recording.worlds[next]),
                    &recording.worlds[next + 1],
                    &mut bytes,
                );
                black_box(bytes.len())
            });
        });
    }

    group.bench_function("encode_full", |b| {
        b.iter(|| {
            next = (next + 1) % recording.worlds.len();
            bytes.clear();
            encode(None, &recording.worlds[next], &mut bytes);
            black_box(bytes.len())
        });
    });

    let mut out = NetWorld::default();
    for (name, deltas) in [
        ("apply", &recording.checked),
        ("apply_unchecked", &recording.unchecked),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                next = (next + 1) % pairs;
                let applied = apply(Some(&recording.worlds[next]), &deltas[next], &mut out);
                black_box(applied.is_ok())
            });
        });
    }
    group.finish();
}

criterion_group!(benches, snapshot_pipeline);
criterion_main!(benches);
