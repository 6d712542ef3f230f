//! Cost of persisting a session: saving a steady-state reference session
//! (the host saves every session every second) and restoring it (what a
//! takeover pays per session it resumes); and the host's whole save (the
//! checkpoint with its seats and commands) early and late in a long game.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rampart_benches::{assets, reference_config, steady_reference_session};
use rampart_server::host::{CommandTail, SavedSeat, encode_checkpoint};
use rampart_sim::log::{CommandLog, LogEntry};
use rampart_sim::{Command, Content, DEFAULT_TICK_HZ, PlayerId, Session};

fn save_and_restore(c: &mut Criterion) {
    let content = assets();
    let session = steady_reference_session(&content, 7);
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

/// The host's save of the same steady world after `ticks` of play by eight
/// seats, each sending a command every two seconds (a busy game: the load
/// generator's bots send fewer). `kept` is the host's command tail as its
/// cadence leaves it (a save every second, a durable one every ten);
/// `whole` holds every command from the start, which is what each save
/// rendered before the database kept the log.
fn game_log(content: &Content, ticks: u64) -> (CommandTail, CommandTail) {
    let config = reference_config(7);
    let hz = u64::from(DEFAULT_TICK_HZ);
    let mut kept = CommandTail::new(CommandLog::new(content, config.clone()));
    let mut whole = CommandLog::new(content, config);
    for tick in 0..ticks {
        for seat in 0..8u8 {
            if (tick + u64::from(seat) * 7) % (2 * hz) == 0 {
                let entry = LogEntry {
                    tick,
                    player: PlayerId(seat),
                    command: Command::Ready,
                };
                kept.push(entry.clone());
                whole.entries.push(entry);
            }
        }
        if tick % hz == 0 {
            kept.handed_over((tick % (10 * hz) == 0).then_some(tick));
        }
    }
    (kept, CommandTail::new(whole))
}

fn host_save_by_game_length(c: &mut Criterion) {
    let content: Arc<Content> = assets();
    let session = steady_reference_session(&content, 7);
    let seats = vec![SavedSeat::Person("player".into()); 8];
    let mut group = c.benchmark_group("host_save");
    for ticks in [1_000u64, 100_000] {
        let (kept, whole) = game_log(&content, ticks);
        for (name, log) in [("tail", &kept), ("whole_log", &whole)] {
            group.bench_with_input(BenchmarkId::new(name, ticks), log, |b, log| {
                b.iter(|| {
                    black_box(encode_checkpoint(&session, seats.clone(), false, 0, log)).len()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, save_and_restore, host_save_by_game_length);
criterion_main!(benches);
