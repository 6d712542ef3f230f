//! Cost of sealing one datagram the way netcode does (renetcode's
//! `encrypt_in_place`: ChaCha20-Poly1305 under the connection's key, the
//! packet's sequence as the nonce, netcode's header as associated data), at
//! the sizes the server sends: an acknowledgement, a snapshot delta of the
//! reference session's steady state, a full snapshot.
//!
//! Every datagram has a Poly1305 key of its own (ChaCha20's first block
//! under its nonce), so the key's setup is paid per datagram. Which Poly1305
//! backend the build uses is the workspace's choice (`.cargo/config.toml`);
//! to time the other one, run it with `RUSTFLAGS=` set empty (which
//! overrides the config) and `CARGO_TARGET_DIR` elsewhere (the change of
//! flags rebuilds everything).

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Datagram payloads, in bytes: an acknowledgement, a steady-state delta,
/// a full snapshot near netcode's limit.
const SIZES: [usize; 3] = [40, 120, 1_100];

/// netcode's associated data: version string, protocol id, prefix byte.
const AAD_BYTES: usize = 13 + 8 + 1;

fn seal(c: &mut Criterion) {
    let key = [7u8; 32];
    let aad = [1u8; AAD_BYTES];
    let mut group = c.benchmark_group("seal");
    for size in SIZES {
        let mut payload = vec![3u8; size];
        let mut sequence = 0u64;
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| {
                sequence += 1;
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&sequence.to_le_bytes());
                let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
                cipher.encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut payload)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, seal);
criterion_main!(benches);
