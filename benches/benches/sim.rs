//! Speed of the simulation: one reference-session tick on one core, and many
//! reference sessions stepped in parallel.
//!
//! Both measure the steady state (see [`rampart_benches::STEADY_TICK`]): the
//! sessions are stepped there untimed first.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_benches::{STEADY_TICK, assets, reference_session, steady_reference_session};
use rampart_sim::{Session, step_all};

/// Ticks timed on one session before a fresh steady-state session replaces
/// it, so every sample sees the same load.
const WINDOW: u64 = 3_600;

fn reference_tick(c: &mut Criterion) {
    let content = assets();
    let mut session = steady_reference_session(&content, 7);
    let mut group = c.benchmark_group("reference_session");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tick", |b| {
        b.iter_custom(|iterations| {
            let mut timed = Duration::ZERO;
            for _ in 0..iterations {
                if session.tick() >= STEADY_TICK + WINDOW {
                    session = steady_reference_session(&content, 7);
                }
                let started = Instant::now();
                session.step();
                timed += started.elapsed();
            }
            black_box(session.tick());
            timed
        });
    });
    group.finish();
}

fn parallel_sessions(c: &mut Criterion) {
    const SESSIONS: usize = 1_000;
    let content = assets();
    let mut sessions: Vec<Session> = (0..SESSIONS as u64)
        .map(|seed| reference_session(&content, seed))
        .collect();
    // Reaching the steady state takes about 7 million session-ticks: spent
    // here once, in parallel, and not timed.
    for _ in 0..STEADY_TICK {
        step_all(&mut sessions);
    }
    let mut group = c.benchmark_group("parallel_sessions");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SESSIONS as u64));
    group.bench_function("reference_x1000", |b| {
        b.iter(|| step_all(black_box(&mut sessions)))
    });
    group.finish();
}

criterion_group!(benches, reference_tick, parallel_sessions);
criterion_main!(benches);
