//! The save format's primitives: LEB128 varints (`crate::leb128`), little-endian fixed words
//! and length-prefixed strings, written to a `Vec` and read back by a reader
//! that never reads past its input nor allocates more than it could hold, so
//! arbitrary bytes give an error, never a panic.

use super::RestoreError;
use crate::leb128::Leb128Error;

/// Appends values to a save.
pub(crate) struct Writer<'a>(pub &'a mut Vec<u8>);

impl Writer<'_> {
    pub(crate) fn u8(&mut self, value: u8) {
        self.0.push(value);
    }

    /// Counters, ticks and ids are small: most take one to three bytes.
    pub(crate) fn var(&mut self, value: u64) {
        crate::leb128::write(self.0, value);
    }

    pub(crate) fn var_usize(&mut self, value: usize) {
        self.var(value as u64);
    }

    /// Words that are random-looking (seeds, generator state) would only
    /// grow as varints.
    pub(crate) fn u64_fixed(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn u16_fixed(&mut self, value: u16) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    /// By bit pattern: the restored session must compute with the very same floats.
    pub(crate) fn f32(&mut self, value: f32) {
        self.0.extend_from_slice(&value.to_bits().to_le_bytes());
    }

    pub(crate) fn str(&mut self, value: &str) {
        self.var_usize(value.len());
        self.0.extend_from_slice(value.as_bytes());
    }
}

/// Reads values back, refusing anything that runs past the end.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], RestoreError> {
        if len > self.bytes.len() {
            return Err(RestoreError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RestoreError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, RestoreError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn var(&mut self) -> Result<u64, RestoreError> {
        let (value, rest) = crate::leb128::read(self.bytes).map_err(|error| match error {
            Leb128Error::Truncated => RestoreError::Truncated,
            Leb128Error::Overflow => RestoreError::Malformed("varint overflows 64 bits"),
            Leb128Error::TooLong => RestoreError::Malformed("varint longer than 10 bytes"),
        })?;
        self.bytes = rest;
        Ok(value)
    }

    pub(crate) fn var_u32(&mut self) -> Result<u32, RestoreError> {
        u32::try_from(self.var()?).map_err(|_| RestoreError::Malformed("value exceeds 32 bits"))
    }

    pub(crate) fn var_u16(&mut self) -> Result<u16, RestoreError> {
        u16::try_from(self.var()?).map_err(|_| RestoreError::Malformed("value exceeds 16 bits"))
    }

    /// An index or count below `limit`.
    pub(crate) fn index(
        &mut self,
        limit: usize,
        what: &'static str,
    ) -> Result<usize, RestoreError> {
        usize::try_from(self.var()?)
            .ok()
            .filter(|&index| index < limit)
            .ok_or(RestoreError::Malformed(what))
    }

    /// The length of a list whose records take at least `min_record` bytes
    /// each: longer than the input could hold means the save is cut short,
    /// so no allocation ever exceeds the input's size.
    pub(crate) fn count(&mut self, min_record: usize) -> Result<usize, RestoreError> {
        let count = self.var()?;
        match usize::try_from(count) {
            Ok(count) if count.saturating_mul(min_record) <= self.bytes.len() => Ok(count),
            _ => Err(RestoreError::Truncated),
        }
    }

    pub(crate) fn bool(&mut self) -> Result<bool, RestoreError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(RestoreError::Malformed("flag is neither 0 nor 1")),
        }
    }

    pub(crate) fn u64_fixed(&mut self) -> Result<u64, RestoreError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn u16_fixed(&mut self) -> Result<u16, RestoreError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn f32(&mut self) -> Result<f32, RestoreError> {
        Ok(f32::from_bits(u32::from_le_bytes(self.array()?)))
    }

    pub(crate) fn str(&mut self) -> Result<String, RestoreError> {
        let len = self.count(1)?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| RestoreError::Malformed("string is not UTF-8"))
    }
}
