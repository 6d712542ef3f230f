//! Unsigned LEB128 varints (7 bits a byte, least significant first, the top
//! bit set on every byte but the last): the one varint codec of the
//! workspace, used by the save format here and by `rampart-net`'s snapshot
//! codec and packet bundles. Reading never trusts its input: a value that
//! runs past the end, overflows 64 bits or takes more than ten bytes is an
//! error, never a panic.

/// Why bytes do not hold a varint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Leb128Error {
    /// The input ends inside the varint.
    #[error("varint cut short")]
    Truncated,
    /// The tenth byte carries more than the 64th bit.
    #[error("varint overflows 64 bits")]
    Overflow,
    /// More than ten bytes.
    #[error("varint longer than 10 bytes")]
    TooLong,
}

/// Appends `value`.
pub fn write(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// How many bytes [`write`] takes for `value`.
pub fn len(mut value: u64) -> usize {
    let mut bytes = 1;
    while value >= 0x80 {
        value >>= 7;
        bytes += 1;
    }
    bytes
}

/// Reads one varint from the front of `bytes`: the value and the rest.
///
/// # Errors
/// The input ends first, or the varint overflows 64 bits or is too long.
pub fn read(mut bytes: &[u8]) -> Result<(u64, &[u8]), Leb128Error> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or(Leb128Error::Truncated)?;
        bytes = rest;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return Err(Leb128Error::Overflow);
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Ok((value, bytes));
        }
    }
    Err(Leb128Error::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_at_their_edges() {
        for value in [
            0,
            1,
            0x7f,
            0x80,
            0x3fff,
            0x4000,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            write(&mut out, value);
            assert_eq!(out.len(), len(value), "{value}");
            assert_eq!(read(&out), Ok((value, &[][..])), "{value}");
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(read(&[]), Err(Leb128Error::Truncated));
        assert_eq!(read(&[0x80, 0x80]), Err(Leb128Error::Truncated));
        let mut overflow = vec![0xff; 9];
        overflow.push(0x02);
        assert_eq!(read(&overflow), Err(Leb128Error::Overflow));
        assert_eq!(read(&[0x80; 11]), Err(Leb128Error::TooLong));
    }
}
