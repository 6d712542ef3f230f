//! The delta codec: a [`NetWorld`] as bytes relative to a world the client
//! already holds, so a snapshot of a busy board fits one small datagram. The
//! byte layout is specified in the module documentation of
//! [`crate::snapshot`].

use rampart_sim::leb128::{self, Leb128Error};

use super::world::{NetEnemy, NetPlayer, NetProjectile, NetTower, NetWorld, Trajectory};

/// Most entries one list may hold on the wire: a decoder refuses more, so
/// hostile input cannot make it allocate without bound.
pub const MAX_ENTITIES: usize = 65_536;

/// Why a delta could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The bytes end inside a value.
    #[error("delta truncated")]
    Truncated,
    /// The bytes break the format.
    #[error("malformed delta: {0}")]
    Malformed(&'static str),
    /// The delta was encoded against another world than the one given.
    #[error("delta is against tick {expected}, base given is {got:?}")]
    BaseMismatch {
        /// The base tick the delta names.
        expected: u64,
        /// The tick of the base given, if any.
        got: Option<u64>,
    },
    /// The rebuilt world's hash differs from the encoder's.
    #[error("rebuilt world fails its checksum")]
    Checksum,
    /// A list holds more than [`MAX_ENTITIES`] entries.
    #[error("delta lists more than {MAX_ENTITIES} entries")]
    TooLarge,
}

/// What a delta says about itself, readable without a base: the client uses
/// it to find the base in its ring and the tick to acknowledge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltaHeader {
    /// Tick of the encoded world.
    pub tick: u64,
    /// Tick of the base it is relative to; `None` for a full snapshot.
    pub base_tick: Option<u64>,
    /// The encoded world's [`NetWorld::checksum`], when the encoder sent it
    /// ([`encode`] does, [`encode_unchecked`] does not).
    pub checksum: Option<u32>,
}

// Globals mask bits.
const WAVE: u8 = 1;
const LIVES: u8 = 2;
const OUTCOME: u8 = 4;
const PLAYERS: u8 = 8;
const ENEMIES: u8 = 16;
const TOWERS: u8 = 32;
const PROJECTILES: u8 = 64;

// Player mask bits.
const GOLD: u8 = 1;
const KILLS: u8 = 2;
const READY: u8 = 4;

// Enemy field bits.
const ENEMY_KIND: u8 = 1;
const ENEMY_HP: u8 = 2;
const ENEMY_MAX_HP: u8 = 4;
const ENEMY_FLAGS: u8 = 8;
const ENEMY_PATH: u8 = 16;

// Tower field bits.
const TOWER_OWNER: u8 = 1;
const TOWER_KIND: u8 = 2;
const TOWER_LEVEL: u8 = 4;
const TOWER_X: u8 = 8;
const TOWER_Y: u8 = 16;
const TOWER_TARGETING: u8 = 32;

// Projectile field bits.
const PROJECTILE_KIND: u8 = 1;
const PROJECTILE_PATH: u8 = 2;

/// Appends the encoding of `next` relative to `base` to `out`, with
/// `next`'s checksum; `None` (or a base that is not older than `next`, or
/// 2^63 ticks or more older, which a delta cannot name) gives a full
/// snapshot.
pub fn encode(base: Option<&NetWorld>, next: &NetWorld, out: &mut Vec<u8>) {
    encode_with(base, next, Some(next.checksum()), out);
}

/// [`encode`] without the checksum, for the worlds between checked ones:
/// hashing every world took about 3% of a server's core, and as much of a
/// client's time applying deltas.
pub fn encode_unchecked(base: Option<&NetWorld>, next: &NetWorld, out: &mut Vec<u8>) {
    encode_with(base, next, None, out);
}

fn encode_with(base: Option<&NetWorld>, next: &NetWorld, checksum: Option<u32>, out: &mut Vec<u8>) {
    let empty = NetWorld::default();
    let (base, gap) = match base {
        // The gap travels doubled: one 2^63 ticks or more goes full.
        Some(base) if base.tick < next.tick && next.tick - base.tick <= u64::MAX >> 1 => {
            (base, next.tick - base.tick)
        }
        _ => (&empty, 0),
    };
    leb128::write(out, next.tick);
    leb128::write(out, gap << 1 | u64::from(checksum.is_some()));
    if let Some(checksum) = checksum {
        out.extend_from_slice(&checksum.to_le_bytes());
    }

    // The mask goes before the sections but a list's bit is known only once
    // its walk found a difference: written now, set at the end.
    let mask_at = out.len();
    out.push(0);
    let mut mask = 0;
    mask |= flag(next.wave != base.wave, WAVE);
    mask |= flag(next.lives != base.lives, LIVES);
    mask |= flag(next.outcome != base.outcome, OUTCOME);
    mask |= flag(next.players != base.players, PLAYERS);
    if mask & WAVE != 0 {
        leb128::write(out, u64::from(next.wave));
    }
    if mask & LIVES != 0 {
        leb128::write(out, u64::from(next.lives));
    }
    if mask & OUTCOME != 0 {
        leb128::write(out, u64::from(next.outcome));
    }
    if mask & PLAYERS != 0 {
        write_players(&base.players, &next.players, out);
    }
    let tick = next.tick;
    mask |= flag(
        write_list::<NetEnemy>(&base.enemies, &next.enemies, tick, out),
        ENEMIES,
    );
    mask |= flag(
        write_list::<NetTower>(&base.towers, &next.towers, tick, out),
        TOWERS,
    );
    mask |= flag(
        write_list::<NetProjectile>(&base.projectiles, &next.projectiles, tick, out),
        PROJECTILES,
    );
    out[mask_at] = mask;
}

/// Reads the header of an encoded delta.
pub fn decode_header(bytes: &[u8]) -> Result<DeltaHeader, CodecError> {
    read_header(&mut Reader::new(bytes))
}

/// Rebuilds the world `bytes` encode into `out`, reusing its buffers. A
/// delta needs the `base` it names (a full snapshot ignores `base`); the
/// result must match the encoder's checksum when it sent one. On error
/// `out` holds an unspecified world and must not be used.
pub fn apply(base: Option<&NetWorld>, bytes: &[u8], out: &mut NetWorld) -> Result<(), CodecError> {
    let mut reader = Reader::new(bytes);
    let header = read_header(&mut reader)?;
    let empty = NetWorld::default();
    let base = match (header.base_tick, base) {
        (None, _) => &empty,
        (Some(expected), Some(base)) if base.tick == expected => base,
        (Some(expected), got) => {
            return Err(CodecError::BaseMismatch {
                expected,
                got: got.map(|base| base.tick),
            });
        }
    };
    out.tick = header.tick;
    let mask = reader.byte()?;
    if mask & 0x80 != 0 {
        return Err(CodecError::Malformed("unknown globals bit"));
    }
    out.wave = if mask & WAVE != 0 {
        reader.u32()?
    } else {
        base.wave
    };
    out.lives = if mask & LIVES != 0 {
        reader.u32()?
    } else {
        base.lives
    };
    out.outcome = if mask & OUTCOME != 0 {
        reader.u8()?
    } else {
        base.outcome
    };
    out.players.clear();
    if mask & PLAYERS != 0 {
        read_players(&mut reader, &base.players, &mut out.players)?;
    } else {
        out.players.extend_from_slice(&base.players);
    }
    let tick = header.tick;
    read_list(
        &mut reader,
        mask & ENEMIES != 0,
        &base.enemies,
        tick,
        &mut out.enemies,
    )?;
    read_list(
        &mut reader,
        mask & TOWERS != 0,
        &base.towers,
        tick,
        &mut out.towers,
    )?;
    read_list(
        &mut reader,
        mask & PROJECTILES != 0,
        &base.projectiles,
        tick,
        &mut out.projectiles,
    )?;
    if !reader.is_empty() {
        return Err(CodecError::Malformed("trailing bytes"));
    }
    if header
        .checksum
        .is_some_and(|checksum| checksum != out.checksum())
    {
        return Err(CodecError::Checksum);
    }
    Ok(())
}

fn flag(set: bool, bit: u8) -> u8 {
    if set { bit } else { 0 }
}

fn read_header(reader: &mut Reader<'_>) -> Result<DeltaHeader, CodecError> {
    let tick = reader.varint()?;
    let base = reader.varint()?;
    let checksum = match base & 1 {
        1 => Some(u32::from_le_bytes(reader.array()?)),
        _ => None,
    };
    let base_tick = match base >> 1 {
        0 => None,
        gap => Some(
            tick.checked_sub(gap)
                .ok_or(CodecError::Malformed("base before tick 0"))?,
        ),
    };
    Ok(DeltaHeader {
        tick,
        base_tick,
        checksum,
    })
}

fn write_players(base: &[NetPlayer], next: &[NetPlayer], out: &mut Vec<u8>) {
    let zero = NetPlayer::default();
    leb128::write(out, next.len() as u64);
    for (seat, player) in next.iter().enumerate() {
        let old = base.get(seat).unwrap_or(&zero);
        let mask = flag(player.gold != old.gold, GOLD)
            | flag(player.kills != old.kills, KILLS)
            | flag(player.ready, READY);
        out.push(mask);
        if mask & GOLD != 0 {
            write_change(out, old.gold, player.gold);
        }
        if mask & KILLS != 0 {
            write_change(out, old.kills, player.kills);
        }
    }
}

fn read_players(
    reader: &mut Reader<'_>,
    base: &[NetPlayer],
    out: &mut Vec<NetPlayer>,
) -> Result<(), CodecError> {
    let zero = NetPlayer::default();
    let count = reader.count()?;
    for seat in 0..count {
        let old = base.get(seat).unwrap_or(&zero);
        let mask = reader.byte()?;
        if mask & !(GOLD | KILLS | READY) != 0 {
            return Err(CodecError::Malformed("unknown player bit"));
        }
        let gold = if mask & GOLD != 0 {
            reader.change(old.gold)?
        } else {
            old.gold
        };
        let kills = if mask & KILLS != 0 {
            reader.change(old.kills)?
        } else {
            old.kills
        };
        out.push(NetPlayer {
            gold,
            ready: mask & READY != 0,
            kills,
        });
    }
    Ok(())
}

/// What the list codec needs of an entity type.
trait Entry: Clone + PartialEq {
    /// Bits a field mask of this type may use.
    const FIELDS: u8;
    fn id(&self) -> u32;
    /// Writes every field but the id, absolutely.
    fn write_spawn(&self, tick: u64, out: &mut Vec<u8>);
    fn read_spawn(id: u32, tick: u64, reader: &mut Reader<'_>) -> Result<Self, CodecError>;
    /// Writes the field mask and the fields that differ from `base`.
    fn write_change(&self, base: &Self, tick: u64, out: &mut Vec<u8>);
    fn read_change(&self, mask: u8, tick: u64, reader: &mut Reader<'_>)
    -> Result<Self, CodecError>;
}

/// Calls `visit` with each `next` entry (both lists sorted by id) that
/// differs from its `base` entry of the same id, and that entry if it has one.
fn changes<T: Entry>(base: &[T], next: &[T], mut visit: impl FnMut(&T, Option<&T>)) {
    let mut b = 0;
    for new in next {
        while base.get(b).is_some_and(|old| old.id() < new.id()) {
            b += 1;
        }
        match base.get(b) {
            Some(old) if old.id() == new.id() => {
                if old != new {
                    visit(new, Some(old));
                }
                b += 1;
            }
            _ => visit(new, None),
        }
    }
}

/// Writes how `next` differs from `base`, if it does, and tells whether it
/// did. Comparing entries is what costs (every entry of a busy board), so
/// they are compared in one walk that writes each difference straight to
/// `out`; the entry count, which the format puts first, is slid in front of
/// them afterwards. Removals, usually none, are found by id alone.
fn write_list<T: Entry>(base: &[T], next: &[T], tick: u64, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let mut removed = 0u64;
    removals(base, next, |_| removed += 1);
    leb128::write(out, removed);
    if removed > 0 {
        let mut after = 0;
        removals(base, next, |index| {
            leb128::write(out, (index - after) as u64);
            after = index + 1;
        });
    }
    let entries_at = out.len();
    let (mut entries, mut expected) = (0u64, 0u64);
    changes(base, next, |entry, old| {
        entries += 1;
        // Lists are sorted, so ids only grow; a caller's unsorted list gives
        // a delta that fails its checksum, never a panic.
        leb128::write(out, u64::from(entry.id()).wrapping_sub(expected));
        expected = u64::from(entry.id()) + 1;
        match old {
            Some(old) => entry.write_change(old, tick, out),
            None => entry.write_spawn(tick, out),
        }
    });
    if removed == 0 && entries == 0 {
        out.truncate(start);
        return false;
    }
    let count_at = out.len();
    leb128::write(out, entries);
    let count_len = out.len() - count_at;
    out[entries_at..].rotate_right(count_len);
    true
}

/// Calls `visit` with the index of each `base` entry whose id `next` (both
/// sorted by id) no longer holds.
fn removals<T: Entry>(base: &[T], next: &[T], mut visit: impl FnMut(usize)) {
    let mut n = 0;
    for (index, old) in base.iter().enumerate() {
        while next.get(n).is_some_and(|new| new.id() < old.id()) {
            n += 1;
        }
        if next.get(n).is_none_or(|new| new.id() != old.id()) {
            visit(index);
        }
    }
}

fn read_list<T: Entry>(
    reader: &mut Reader<'_>,
    present: bool,
    base: &[T],
    tick: u64,
    out: &mut Vec<T>,
) -> Result<(), CodecError> {
    out.clear();
    if !present {
        out.extend_from_slice(base);
        return Ok(());
    }
    // Removals are base indices; skim them once to find where the entries
    // start, then walk them again beside the base while merging.
    let removed = reader.count()?;
    if removed > base.len() {
        return Err(CodecError::Malformed("more removals than base entries"));
    }
    let mut removal_reader = reader.clone();
    let mut next_index = 0usize;
    for _ in 0..removed {
        next_index = next_index
            .checked_add(reader.index()?)
            .filter(|&index| index < base.len())
            .ok_or(CodecError::Malformed("removal past the base list"))?
            + 1;
    }
    let mut removals = Removals {
        reader: &mut removal_reader,
        left: removed,
        after: 0,
        next: None,
    };
    let entries = reader.count()?;
    let mut cursor = 0;
    let mut expected = 0u64;
    for _ in 0..entries {
        let id = expected
            .checked_add(reader.varint()?)
            .and_then(|id| u32::try_from(id).ok())
            .ok_or(CodecError::Malformed("id out of range"))?;
        expected = u64::from(id) + 1;
        while cursor < base.len() && base[cursor].id() < id {
            if !removals.take(cursor)? {
                out.push(base[cursor].clone());
            }
            cursor += 1;
        }
        let mut survivor = None;
        if cursor < base.len() && base[cursor].id() == id {
            if !removals.take(cursor)? {
                survivor = Some(&base[cursor]);
            }
            cursor += 1;
        }
        let entry = match survivor {
            Some(old) => {
                let mask = reader.byte()?;
                if mask & !T::FIELDS != 0 {
                    return Err(CodecError::Malformed("unknown field bit"));
                }
                old.read_change(mask, tick, reader)?
            }
            None => T::read_spawn(id, tick, reader)?,
        };
        out.push(entry);
    }
    while cursor < base.len() {
        if !removals.take(cursor)? {
            out.push(base[cursor].clone());
        }
        cursor += 1;
    }
    Ok(())
}

/// The removal indices of one list, consumed in step with the base.
struct Removals<'r, 'a> {
    reader: &'r mut Reader<'a>,
    left: usize,
    after: usize,
    next: Option<usize>,
}

impl Removals<'_, '_> {
    /// Whether base index `index` (asked in increasing order) is removed.
    fn take(&mut self, index: usize) -> Result<bool, CodecError> {
        if self.next.is_none() && self.left > 0 {
            self.left -= 1;
            // Already validated by the skim: in range and increasing.
            let at = self.after + self.reader.index()?;
            self.after = at + 1;
            self.next = Some(at);
        }
        if self.next == Some(index) {
            self.next = None;
            return Ok(true);
        }
        Ok(false)
    }
}

impl Entry for NetEnemy {
    const FIELDS: u8 = ENEMY_KIND | ENEMY_HP | ENEMY_MAX_HP | ENEMY_FLAGS | ENEMY_PATH;

    fn id(&self) -> u32 {
        self.id
    }

    fn write_spawn(&self, tick: u64, out: &mut Vec<u8>) {
        leb128::write(out, u64::from(self.kind));
        leb128::write(out, u64::from(self.max_hp));
        write_change(out, self.max_hp, self.hp);
        leb128::write(out, u64::from(self.flags));
        write_path(out, tick, &self.path);
    }

    fn read_spawn(id: u32, tick: u64, reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        let kind = reader.u16()?;
        let max_hp = reader.u32()?;
        let hp = reader.change(max_hp)?;
        let flags = reader.u8()?;
        let path = reader.path(tick)?;
        Ok(Self {
            id,
            kind,
            hp,
            max_hp,
            flags,
            path,
        })
    }

    fn write_change(&self, base: &Self, tick: u64, out: &mut Vec<u8>) {
        let mask = flag(self.kind != base.kind, ENEMY_KIND)
            | flag(self.hp != base.hp, ENEMY_HP)
            | flag(self.max_hp != base.max_hp, ENEMY_MAX_HP)
            | flag(self.flags != base.flags, ENEMY_FLAGS)
            | flag(self.path != base.path, ENEMY_PATH);
        out.push(mask);
        if mask & ENEMY_KIND != 0 {
            leb128::write(out, u64::from(self.kind));
        }
        if mask & ENEMY_HP != 0 {
            write_change(out, base.hp, self.hp);
        }
        if mask & ENEMY_MAX_HP != 0 {
            write_change(out, base.max_hp, self.max_hp);
        }
        if mask & ENEMY_FLAGS != 0 {
            leb128::write(out, u64::from(self.flags));
        }
        if mask & ENEMY_PATH != 0 {
            write_path_change(out, tick, &base.path, &self.path);
        }
    }

    fn read_change(
        &self,
        mask: u8,
        tick: u64,
        reader: &mut Reader<'_>,
    ) -> Result<Self, CodecError> {
        let mut next = self.clone();
        if mask & ENEMY_KIND != 0 {
            next.kind = reader.u16()?;
        }
        if mask & ENEMY_HP != 0 {
            next.hp = reader.change(self.hp)?;
        }
        if mask & ENEMY_MAX_HP != 0 {
            next.max_hp = reader.change(self.max_hp)?;
        }
        if mask & ENEMY_FLAGS != 0 {
            next.flags = reader.u8()?;
        }
        if mask & ENEMY_PATH != 0 {
            next.path = reader.path_change(tick, &self.path)?;
        }
        Ok(next)
    }
}

impl Entry for NetTower {
    const FIELDS: u8 = TOWER_OWNER | TOWER_KIND | TOWER_LEVEL | TOWER_X | TOWER_Y | TOWER_TARGETING;

    fn id(&self) -> u32 {
        self.id
    }

    fn write_spawn(&self, _tick: u64, out: &mut Vec<u8>) {
        for value in [
            u64::from(self.owner),
            u64::from(self.kind),
            u64::from(self.level),
            u64::from(self.x),
            u64::from(self.y),
            u64::from(self.targeting),
        ] {
            leb128::write(out, value);
        }
    }

    fn read_spawn(id: u32, _tick: u64, reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            id,
            owner: reader.u8()?,
            kind: reader.u16()?,
            level: reader.u8()?,
            x: reader.u16()?,
            y: reader.u16()?,
            targeting: reader.u8()?,
        })
    }

    fn write_change(&self, base: &Self, _tick: u64, out: &mut Vec<u8>) {
        let fields = [
            (TOWER_OWNER, u64::from(base.owner), u64::from(self.owner)),
            (TOWER_KIND, u64::from(base.kind), u64::from(self.kind)),
            (TOWER_LEVEL, u64::from(base.level), u64::from(self.level)),
            (TOWER_X, u64::from(base.x), u64::from(self.x)),
            (TOWER_Y, u64::from(base.y), u64::from(self.y)),
            (
                TOWER_TARGETING,
                u64::from(base.targeting),
                u64::from(self.targeting),
            ),
        ];
        let mask = fields
            .iter()
            .fold(0, |mask, &(bit, old, new)| mask | flag(old != new, bit));
        out.push(mask);
        for (_, old, new) in fields {
            if old != new {
                leb128::write(out, new);
            }
        }
    }

    fn read_change(
        &self,
        mask: u8,
        _tick: u64,
        reader: &mut Reader<'_>,
    ) -> Result<Self, CodecError> {
        let mut next = self.clone();
        if mask & TOWER_OWNER != 0 {
            next.owner = reader.u8()?;
        }
        if mask & TOWER_KIND != 0 {
            next.kind = reader.u16()?;
        }
        if mask & TOWER_LEVEL != 0 {
            next.level = reader.u8()?;
        }
        if mask & TOWER_X != 0 {
            next.x = reader.u16()?;
        }
        if mask & TOWER_Y != 0 {
            next.y = reader.u16()?;
        }
        if mask & TOWER_TARGETING != 0 {
            next.targeting = reader.u8()?;
        }
        Ok(next)
    }
}

impl Entry for NetProjectile {
    const FIELDS: u8 = PROJECTILE_KIND | PROJECTILE_PATH;

    fn id(&self) -> u32 {
        self.id
    }

    fn write_spawn(&self, tick: u64, out: &mut Vec<u8>) {
        leb128::write(out, u64::from(self.tower_kind));
        write_path(out, tick, &self.path);
    }

    fn read_spawn(id: u32, tick: u64, reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            id,
            tower_kind: reader.u16()?,
            path: reader.path(tick)?,
        })
    }

    fn write_change(&self, base: &Self, tick: u64, out: &mut Vec<u8>) {
        let mask = flag(self.tower_kind != base.tower_kind, PROJECTILE_KIND)
            | flag(self.path != base.path, PROJECTILE_PATH);
        out.push(mask);
        if mask & PROJECTILE_KIND != 0 {
            leb128::write(out, u64::from(self.tower_kind));
        }
        if mask & PROJECTILE_PATH != 0 {
            write_path_change(out, tick, &base.path, &self.path);
        }
    }

    fn read_change(
        &self,
        mask: u8,
        tick: u64,
        reader: &mut Reader<'_>,
    ) -> Result<Self, CodecError> {
        let mut next = self.clone();
        if mask & PROJECTILE_KIND != 0 {
            next.tower_kind = reader.u16()?;
        }
        if mask & PROJECTILE_PATH != 0 {
            next.path = reader.path_change(tick, &self.path)?;
        }
        Ok(next)
    }
}

/// A spawn's trajectory: `since` as its distance back from the tick, the
/// rest absolute.
fn write_path(out: &mut Vec<u8>, tick: u64, path: &Trajectory) {
    leb128::write(out, tick.wrapping_sub(path.since));
    for value in [path.x, path.y, path.vx, path.vy] {
        write_signed(out, i64::from(value));
    }
}

/// A new trajectory for a known mover: its start relative to where the old
/// one put the mover at the new `since`, its velocity relative to the old
/// one; both are small when the old trajectory was nearly right.
fn write_path_change(out: &mut Vec<u8>, tick: u64, base: &Trajectory, path: &Trajectory) {
    leb128::write(out, tick.wrapping_sub(path.since));
    let (x, y) = base.at(path.since);
    write_signed(out, i64::from(path.x) - i64::from(x));
    write_signed(out, i64::from(path.y) - i64::from(y));
    write_signed(out, i64::from(path.vx) - i64::from(base.vx));
    write_signed(out, i64::from(path.vy) - i64::from(base.vy));
}

/// An unsigned field as the signed difference from its old value.
fn write_change(out: &mut Vec<u8>, old: u32, new: u32) {
    write_signed(out, i64::from(new) - i64::from(old));
}

fn write_signed(out: &mut Vec<u8>, value: i64) {
    leb128::write(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// A cursor over untrusted bytes: every read checks what is left.
#[derive(Clone)]
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        let (&first, rest) = self.bytes.split_first().ok_or(CodecError::Truncated)?;
        self.bytes = rest;
        Ok(first)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or(CodecError::Truncated)?;
        self.bytes = rest;
        Ok(*head)
    }

    fn varint(&mut self) -> Result<u64, CodecError> {
        let (value, rest) = leb128::read(self.bytes).map_err(|error| match error {
            Leb128Error::Truncated => CodecError::Truncated,
            Leb128Error::Overflow => CodecError::Malformed("varint overflows 64 bits"),
            Leb128Error::TooLong => CodecError::Malformed("varint longer than 10 bytes"),
        })?;
        self.bytes = rest;
        Ok(value)
    }

    fn signed(&mut self) -> Result<i64, CodecError> {
        let raw = self.varint()?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        u8::try_from(self.varint()?).map_err(|_| CodecError::Malformed("value exceeds u8"))
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        u16::try_from(self.varint()?).map_err(|_| CodecError::Malformed("value exceeds u16"))
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        u32::try_from(self.varint()?).map_err(|_| CodecError::Malformed("value exceeds u32"))
    }

    /// A list length: every entry takes at least one byte, so a count beyond
    /// the bytes left is a lie told to make the decoder allocate.
    fn count(&mut self) -> Result<usize, CodecError> {
        let count = self.varint()?;
        if count > MAX_ENTITIES as u64 {
            return Err(CodecError::TooLarge);
        }
        if count > self.bytes.len() as u64 {
            return Err(CodecError::Truncated);
        }
        Ok(count as usize)
    }

    fn index(&mut self) -> Result<usize, CodecError> {
        usize::try_from(self.varint()?).map_err(|_| CodecError::Malformed("index out of range"))
    }

    /// An unsigned field sent as the signed difference from `old`.
    fn change(&mut self, old: u32) -> Result<u32, CodecError> {
        let delta = self.signed()?;
        i64::from(old)
            .checked_add(delta)
            .and_then(|value| u32::try_from(value).ok())
            .ok_or(CodecError::Malformed("value exceeds u32"))
    }

    fn i32_from(&mut self, origin: i32) -> Result<i32, CodecError> {
        let delta = self.signed()?;
        i64::from(origin)
            .checked_add(delta)
            .and_then(|value| i32::try_from(value).ok())
            .ok_or(CodecError::Malformed("value exceeds i32"))
    }

    fn path(&mut self, tick: u64) -> Result<Trajectory, CodecError> {
        Ok(Trajectory {
            since: tick.wrapping_sub(self.varint()?),
            x: self.i32_from(0)?,
            y: self.i32_from(0)?,
            vx: self.i32_from(0)?,
            vy: self.i32_from(0)?,
        })
    }

    fn path_change(&mut self, tick: u64, base: &Trajectory) -> Result<Trajectory, CodecError> {
        let since = tick.wrapping_sub(self.varint()?);
        let (x, y) = base.at(since);
        Ok(Trajectory {
            since,
            x: self.i32_from(x)?,
            y: self.i32_from(y)?,
            vx: self.i32_from(base.vx)?,
            vy: self.i32_from(base.vy)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(x: i32, vx: i32, since: u64) -> Trajectory {
        Trajectory {
            x,
            y: -x,
            vx,
            vy: -vx,
            since,
        }
    }

    fn enemy(id: u32, hp: u32, path: Trajectory) -> NetEnemy {
        NetEnemy {
            id,
            kind: 2,
            hp,
            max_hp: 100,
            flags: 0,
            path,
        }
    }

    fn sample(tick: u64) -> NetWorld {
        NetWorld {
            tick,
            wave: 3,
            lives: 20,
            outcome: 0,
            players: vec![
                NetPlayer {
                    gold: 150,
                    ready: true,
                    kills: 4,
                },
                NetPlayer::default(),
            ],
            enemies: vec![
                enemy(4, 100, path(512, 200, tick)),
                enemy(9, 60, path(900, -30, tick - 1)),
            ],
            towers: vec![NetTower {
                id: 1,
                owner: 1,
                kind: 0,
                level: 0,
                x: 4,
                y: 7,
                targeting: 0,
            }],
            projectiles: vec![NetProjectile {
                id: 70_000,
                tower_kind: 1,
                path: path(300, 1200, tick),
            }],
        }
    }

    fn round_trip(base: Option<&NetWorld>, next: &NetWorld) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode(base, next, &mut bytes);
        let mut out = NetWorld::default();
        apply(base, &bytes, &mut out).expect("a fresh delta applies");
        assert_eq!(&out, next);
        bytes
    }

    #[test]
    fn signed_varints_zigzag_and_round_trip() {
        // Unsigned LEB128 itself is tested in `rampart_sim::leb128`.
        for value in [0, 1, -1, 63, -64, 64, i64::MAX, i64::MIN] {
            let mut bytes = Vec::new();
            write_signed(&mut bytes, value);
            assert_eq!(Reader::new(&bytes).signed(), Ok(value));
        }
        let mut one = Vec::new();
        write_signed(&mut one, -1);
        assert_eq!(one, [1]);
    }

    #[test]
    fn overlong_varints_are_malformed() {
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert!(matches!(
            Reader::new(&too_big).varint(),
            Err(CodecError::Malformed(_))
        ));
        let too_long = [0x80; 11];
        assert!(matches!(
            Reader::new(&too_long).varint(),
            Err(CodecError::Malformed(_))
        ));
        assert_eq!(Reader::new(&[0x80]).varint(), Err(CodecError::Truncated));
    }

    #[test]
    fn full_and_delta_round_trip() {
        let base = sample(100);
        let mut next = sample(102);
        next.enemies[0] = base.enemies[0].clone();
        next.enemies[1].hp = 41;
        next.enemies[1].flags = 6;
        next.enemies.push(enemy(12, 100, path(10, 0, 102)));
        next.enemies.remove(0);
        next.towers[0].level = 2;
        next.towers.insert(
            0,
            NetTower {
                id: 0,
                owner: 0,
                kind: 3,
                level: 0,
                x: 1,
                y: 1,
                targeting: 3,
            },
        );
        next.projectiles.clear();
        next.players[1].gold = 5;
        next.players.push(NetPlayer {
            gold: 0,
            ready: true,
            kills: 0,
        });
        next.lives = 19;
        next.outcome = 2;
        round_trip(None, &base);
        round_trip(None, &next);
        round_trip(Some(&base), &next);
        round_trip(Some(&next), &sample(103));
    }

    #[test]
    fn a_busy_board_round_trips_with_counts_longer_than_a_byte() {
        let mut base = sample(100);
        base.enemies = (0..400)
            .map(|id| enemy(id, 100, path(id as i32, 9, 90)))
            .collect();
        let mut next = base.clone();
        next.tick = 102;
        // 200 removals, 101 changes and 100 arrivals: every count and
        // removal list takes two-byte varints.
        next.enemies.retain(|enemy| enemy.id % 2 == 0);
        for enemy in next.enemies.iter_mut().filter(|enemy| enemy.id % 4 == 0) {
            enemy.hp = 7;
        }
        next.enemies[199].hp = 8;
        next.enemies
            .extend((400..500).map(|id| enemy(id, 50, path(0, 0, 102))));
        round_trip(Some(&base), &next);
        round_trip(None, &next);
    }

    #[test]
    fn an_unchanged_world_costs_only_the_header() {
        let base = sample(100);
        let mut next = base.clone();
        next.tick = 101;
        let bytes = round_trip(Some(&base), &next);
        // tick (1 byte), base (gap and checksum bit), checksum, globals mask.
        assert_eq!(bytes.len(), 1 + 1 + 4 + 1);
        assert_eq!(
            decode_header(&bytes),
            Ok(DeltaHeader {
                tick: 101,
                base_tick: Some(100),
                checksum: Some(next.checksum()),
            })
        );
    }

    #[test]
    fn an_unchecked_delta_is_the_checked_one_without_its_checksum() {
        let base = sample(100);
        let next = sample(102);
        let mut checked = Vec::new();
        encode(Some(&base), &next, &mut checked);
        let mut unchecked = Vec::new();
        encode_unchecked(Some(&base), &next, &mut unchecked);
        assert_eq!(checked[0], 102);
        assert_eq!((checked[1], unchecked[1]), (2 << 1 | 1, 2 << 1));
        assert_eq!(checked[6..], unchecked[2..], "the same sections");
        assert_eq!(
            decode_header(&unchecked),
            Ok(DeltaHeader {
                tick: 102,
                base_tick: Some(100),
                checksum: None,
            })
        );
        let mut out = NetWorld::default();
        assert_eq!(apply(Some(&base), &unchecked, &mut out), Ok(()));
        assert_eq!(out, next);
        // A full snapshot may go unchecked too.
        unchecked.clear();
        encode_unchecked(None, &next, &mut unchecked);
        assert_eq!(decode_header(&unchecked).map(|h| h.checksum), Ok(None));
        assert_eq!(apply(None, &unchecked, &mut out), Ok(()));
        assert_eq!(out, next);
    }

    #[test]
    fn a_base_not_older_than_next_gives_a_full_snapshot() {
        let world = sample(50);
        let mut bytes = Vec::new();
        encode(Some(&world), &world, &mut bytes);
        assert_eq!(decode_header(&bytes).map(|h| h.base_tick), Ok(None));
        let mut out = NetWorld::default();
        assert_eq!(apply(None, &bytes, &mut out), Ok(()));
        assert_eq!(out, world);
    }

    #[test]
    fn extreme_values_round_trip() {
        let mut world = sample(u64::MAX);
        world.wave = u32::MAX;
        world.lives = u32::MAX;
        world.outcome = u8::MAX;
        world.players[0].gold = u32::MAX;
        world.enemies[0].hp = u32::MAX;
        world.enemies[0].max_hp = 0;
        world.enemies[0].path = Trajectory {
            x: i32::MIN,
            y: i32::MAX,
            vx: i32::MAX,
            vy: i32::MIN,
            since: 0,
        };
        world.enemies[1].id = u32::MAX;
        world.enemies[1].path.since = u64::MAX - 5;
        let base = sample(3);
        round_trip(None, &world);
        round_trip(Some(&base), &world);
        round_trip(Some(&world), &{
            let mut w = base.clone();
            w.tick = u64::MAX;
            w
        });
    }

    #[test]
    fn a_wrong_base_is_refused() {
        let base = sample(100);
        let next = sample(104);
        let mut bytes = Vec::new();
        encode(Some(&base), &next, &mut bytes);
        let mut out = NetWorld::default();
        assert_eq!(
            apply(Some(&sample(101)), &bytes, &mut out),
            Err(CodecError::BaseMismatch {
                expected: 100,
                got: Some(101),
            })
        );
        assert_eq!(
            apply(None, &bytes, &mut out),
            Err(CodecError::BaseMismatch {
                expected: 100,
                got: None,
            })
        );
        // Same tick, other content: only the checksum can tell.
        let mut impostor = base.clone();
        impostor.enemies[1].hp = 1;
        assert_eq!(
            apply(Some(&impostor), &bytes, &mut out),
            Err(CodecError::Checksum)
        );
    }

    #[test]
    fn every_truncation_and_extension_is_an_error() {
        let base = sample(100);
        let mut next = sample(102);
        next.enemies[1].hp = 7;
        next.enemies.push(enemy(30, 100, path(1, 2, 102)));
        let mut bytes = Vec::new();
        encode(Some(&base), &next, &mut bytes);
        let mut out = NetWorld::default();
        for len in 0..bytes.len() {
            assert!(apply(Some(&base), &bytes[..len], &mut out).is_err());
        }
        bytes.push(0);
        assert_eq!(
            apply(Some(&base), &bytes, &mut out),
            Err(CodecError::Malformed("trailing bytes"))
        );
        assert_eq!(decode_header(&[]), Err(CodecError::Truncated));
        assert_eq!(decode_header(&[5, 1, 1, 2, 3]), Err(CodecError::Truncated));
        assert!(matches!(
            decode_header(&[1, 2 << 1 | 1, 0, 0, 0, 0]),
            Err(CodecError::Malformed(_))
        ));
    }

    /// A hand-written header: `tick`, a base `gap` ticks back (0: a full
    /// snapshot) with the checksum bit set, and a zero checksum, which the
    /// errors these tests provoke come before.
    fn checked_header(tick: u64, gap: u64) -> Vec<u8> {
        let mut bytes = Vec::new();
        leb128::write(&mut bytes, tick);
        leb128::write(&mut bytes, gap << 1 | 1);
        bytes.extend_from_slice(&[0; 4]);
        bytes
    }

    #[test]
    fn lying_counts_are_refused_before_allocating() {
        let mut bytes = checked_header(9, 0);
        bytes.push(ENEMIES);
        let header = bytes.len();
        leb128::write(&mut bytes, 0);
        leb128::write(&mut bytes, 1 << 40);
        let mut out = NetWorld::default();
        assert_eq!(apply(None, &bytes, &mut out), Err(CodecError::TooLarge));
        bytes.truncate(header);
        leb128::write(&mut bytes, 0);
        leb128::write(&mut bytes, 1_000);
        assert_eq!(apply(None, &bytes, &mut out), Err(CodecError::Truncated));
        bytes.truncate(header);
        leb128::write(&mut bytes, 1);
        leb128::write(&mut bytes, 0);
        leb128::write(&mut bytes, 0);
        assert_eq!(
            apply(None, &bytes, &mut out),
            Err(CodecError::Malformed("more removals than base entries"))
        );
    }

    #[test]
    fn values_beyond_their_fields_are_malformed() {
        // A spawn whose kind exceeds u16.
        let mut bytes = checked_header(9, 0);
        bytes.push(TOWERS);
        leb128::write(&mut bytes, 0);
        leb128::write(&mut bytes, 1);
        leb128::write(&mut bytes, 5);
        leb128::write(&mut bytes, 0);
        leb128::write(&mut bytes, 70_000);
        bytes.extend_from_slice(&[0; 4]);
        let mut out = NetWorld::default();
        assert_eq!(
            apply(None, &bytes, &mut out),
            Err(CodecError::Malformed("value exceeds u16"))
        );
        // A change that drives hit points below zero.
        let base = sample(10);
        let mut bytes = checked_header(11, 1);
        bytes.push(ENEMIES);
        leb128::write(&mut bytes, 0);
        leb128::write(&mut bytes, 1);
        leb128::write(&mut bytes, 4);
        bytes.push(ENEMY_HP);
        write_signed(&mut bytes, -101);
        assert_eq!(
            apply(Some(&base), &bytes, &mut out),
            Err(CodecError::Malformed("value exceeds u32"))
        );
    }

    /// xorshift64*: a fixed stream of test bytes, no dependency needed.
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let base = sample(100);
        let mut valid = Vec::new();
        encode(Some(&base), &sample(102), &mut valid);
        let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
        let mut out = NetWorld::default();
        let mut bytes = Vec::new();
        for round in 0..5_000 {
            bytes.clear();
            if round % 2 == 0 {
                // Pure noise, headed by the base's gap half the time.
                let len = (noise.next() % 64) as usize;
                bytes.extend((0..len).map(|_| noise.next() as u8));
                if round % 4 == 0 && bytes.len() > 2 {
                    bytes[0] = 102;
                    bytes[1] = 2 << 1 | 1;
                }
            } else {
                // A valid delta with a few bytes flipped: deeper paths.
                bytes.extend_from_slice(&valid);
                for _ in 0..1 + noise.next() % 3 {
                    let at = (noise.next() % bytes.len() as u64) as usize;
                    bytes[at] ^= noise.next() as u8 | 1;
                }
            }
            let _ = decode_header(&bytes);
            if apply(Some(&base), &bytes, &mut out).is_ok()
                && let Ok(DeltaHeader {
                    checksum: Some(checksum),
                    ..
                }) = decode_header(&bytes)
            {
                assert_eq!(out.checksum(), checksum);
            }
            let _ = apply(None, &bytes, &mut out);
        }
    }
}
