//! A hash that is the same on every platform, build and run: 64-bit FNV-1a
//! over little-endian words. `std`'s hashers make no such promise. The one
//! stable hash of the workspace: the simulation's `state_hash`, the content
//! version and the network world's checksum (`rampart-net`) all fold with it.

/// Folds values into a 64-bit FNV-1a hash (offset basis
/// `0xcbf29ce484222325`, prime `0x100000001b3`).
#[derive(Clone, Debug)]
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl StableHasher {
    /// An empty hash.
    pub fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    /// Folds bytes in order.
    pub fn bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// One byte.
    pub fn u8(&mut self, value: u8) {
        self.bytes(&[value]);
    }

    /// Little-endian.
    pub fn u16(&mut self, value: u16) {
        self.bytes(&value.to_le_bytes());
    }

    /// Little-endian.
    pub fn u32(&mut self, value: u32) {
        self.bytes(&value.to_le_bytes());
    }

    /// Little-endian.
    pub fn u64(&mut self, value: u64) {
        self.bytes(&value.to_le_bytes());
    }

    /// Floats by bit pattern: the state, not its value, must match.
    pub fn f32(&mut self, value: f32) {
        self.u32(value.to_bits());
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}
