//! Cost of persisting a session: saving a steady-state reference session
//! (the host saves every session every second) and restoring it (what a
//! takeover pays per session it resumes).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_benches::{STEADY_TICK, assets, reference_session};
use rampart_sim::Session;

fn save_and_restore(c: &mut Criterion) {
    let content = assets();
    let mut session = reference_session(&content, 7);
    while session.tick() < STEADY_TICK {
        session.step();
    }
    let mut bytes = Vec::new();
    session.save(&mut bytes);
    if let Err(error) = Session::restore(content.clone(), &bytes) {
        panic!("the steady reference session does not restore: {error}");
    }
    let mut group = c.benchmark_group("session_save");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    let mut out = Vec::with_capacity(bytes.len());
    group.bench_function("save", |b| {
        b.iter(|| {
            out.clear();
            session.save(&mut out);
            black_box(out.len())
        })
    });
    // Dropping the restored world is not part of restoring it.
    group.bench_function("restore", |b| {
        b.iter_with_large_drop(|| Session::restore(content.clone(), black_box(&bytes)))
    });
    group.finish();
}

criterion_group!(benches, save_and_restore);
criterion_main!(benches);
