//! Bit commands on strings (Redis's `bitops.c`): SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
//! BITFIELD and BITFIELD_RO.
//!
//! Bit 0 is the most significant bit of the first byte. A missing key reads as an endless
//! run of zero bits; writes grow the string with zero bytes only as far as the highest bit
//! they touch. Offsets are limited by `proto-max-bulk-len` (512 MiB, so 2^32 bits, by
//! default), as in Redis.

use bytes::Bytes;
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::error;
use crate::notify::{NEW, STRING};
use crate::num;
use crate::shard::Ctx;
use crate::t_string::{clamp_range, modify_string, read_string, write_string};
use crate::value::{Str, Value};

pub static COMMANDS: &[Registration] = &[
    Registration::shard("setbit", setbit),
    Registration::shard("getbit", getbit),
    Registration::shard("bitcount", bitcount),
    Registration::shard("bitpos", bitpos),
    Registration::shard("bitop", bitop),
    Registration::shard("bitfield", bitfield).with_key_flags(bitfield_key_flags),
    Registration::shard("bitfield_ro", bitfield_ro),
];

/// BITFIELD's key: read-only when it only has GETs (and OVERFLOW), as Redis's
/// `bitfieldGetKeys` judges it (anything it cannot read counts as a write).
fn bitfield_key_flags(args: &[Bytes]) -> &'static [&'static str] {
    let mut i = 2;
    while i < args.len() {
        let rest = args.len() - i - 1;
        let a = &args[i];
        if a.eq_ignore_ascii_case(b"get") && rest >= 2 {
            i += 3;
        } else if a.eq_ignore_ascii_case(b"overflow") && rest >= 1 {
            i += 2;
        } else {
            return &["rw", "access", "update"];
        }
    }
    &["ro", "access"]
}

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";
const BAD_BIT: &str = "ERR bit is not an integer or out of range";
const BAD_BITPOS_BIT: &str = "ERR The bit argument must be 1 or 0.";
const BITOP_NOT_ONE_KEY: &str = "ERR BITOP NOT must be called with a single source key.";
const BAD_FIELD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
const BAD_OVERFLOW: &str = "ERR Invalid OVERFLOW type specified";
const RO_ONLY_GET: &str = "ERR BITFIELD_RO only supports the GET subcommand";

/// Parses a bit offset. With `field_bits` (BITFIELD), `#N` means N fields of that width.
fn parse_bit_offset(ctx: &Ctx<'_>, arg: &[u8], field_bits: Option<u32>) -> Result<u64, Reply> {
    let bad = || Reply::err(BAD_OFFSET);
    let (scale, digits) = match (arg.first(), field_bits) {
        (Some(b'#'), Some(bits)) => (bits as i64, &arg[1..]),
        _ => (1, arg),
    };
    let offset = num::parse_i64(digits)
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(bad)?;
    if offset < 0 || (offset as u64 >> 3) >= ctx.shard.config.proto_max_bulk_len as u64 {
        return Err(bad());
    }
    Ok(offset as u64)
}

/// Runs `f` over the string at `key` grown (with zero bytes) to hold bit `max_bit`, creating
/// it if missing. `f` gets whether the string was created or grown and returns its result
/// and how many changes it made, which is what counts as writes (as in Redis, where an
/// unchanged SETBIT is not a write) and what makes it report `setbit`.
fn with_bit_string<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    max_bit: u64,
    f: impl FnOnce(&mut Vec<u8>, bool) -> (R, u64),
) -> Result<R, Reply> {
    let need = (max_bit >> 3) as usize + 1;
    let (result, changes) = match write_string(ctx, key)? {
        Some(s) => modify_string(s, |buf| {
            let grown = buf.len() < need;
            if grown {
                buf.resize(need, 0);
            }
            f(buf, grown)
        }),
        None => {
            let mut buf = vec![0; need];
            let out = f(&mut buf, true);
            let lru = ctx.new_lru();
            ctx.db()
                .set(key, Value::Str(Str::from_vec(buf)), lru, false);
            ctx.signal_ready(key);
            ctx.notify(NEW, "new", key);
            out
        }
    };
    ctx.dirty(changes);
    if changes > 0 {
        ctx.notify(STRING, "setbit", key);
    }
    Ok(result)
}

/// SETBIT key offset value: the bit's previous value.
pub fn setbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let offset = match parse_bit_offset(ctx, &args[2], None) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let on = match num::parse_i64(&args[3]) {
        Some(0) => false,
        Some(1) => true,
        _ => return Reply::err(BAD_BIT),
    };
    let byte = (offset >> 3) as usize;
    let mask = 0x80u8 >> (offset & 7);
    let old = with_bit_string(ctx, &args[1], offset, |buf, grown| {
        let old = buf[byte] & mask != 0;
        if !grown && old == on {
            return (old, 0);
        }
        if on {
            buf[byte] |= mask;
        } else {
            buf[byte] &= !mask;
        }
        (old, 1)
    });
    match old {
        Ok(old) => Reply::Int(old as i64),
        Err(e) => e,
    }
}

/// GETBIT key offset
pub fn getbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let offset = match parse_bit_offset(ctx, &args[2], None) {
        Ok(o) => o,
        Err(e) => return e,
    };
    match read_string(ctx, &args[1]) {
        Ok(s) => {
            let byte = s.and_then(|s| s.get((offset >> 3) as usize)).copied();
            Reply::Int(byte.is_some_and(|b| b & (0x80 >> (offset & 7)) != 0) as i64)
        }
        Err(e) => e,
    }
}

/// Parses the BYTE | BIT unit of BITCOUNT / BITPOS: true for BIT.
fn parse_unit(arg: &[u8]) -> Result<bool, Reply> {
    if arg.eq_ignore_ascii_case(b"bit") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"byte") {
        Ok(false)
    } else {
        Err(error::syntax())
    }
}

/// Turns a clamped range in bytes or bits into inclusive bit positions.
fn bit_span((start, end): (u64, u64), in_bits: bool) -> (u64, u64) {
    if in_bits {
        (start, end)
    } else {
        (start * 8, end * 8 + 7)
    }
}

/// BITCOUNT key [start end [BYTE|BIT]]
pub fn bitcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let s = match read_string(ctx, &args[1]) {
        Ok(Some(s)) => s.clone(),
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    let span = match args.len() {
        2 => clamp_range(0, -1, s.len() as i64).map(|r| bit_span(r, false)),
        4 | 5 => {
            let (Some(start), Some(end)) = (num::parse_i64(&args[2]), num::parse_i64(&args[3]))
            else {
                return error::not_integer();
            };
            if start < 0 && end < 0 && start > end {
                return Reply::Int(0);
            }
            let in_bits = match args.get(4).map(|a| parse_unit(a)) {
                Some(Err(e)) => return e,
                Some(Ok(b)) => b,
                None => false,
            };
            let total = s.len() as i64 * if in_bits { 8 } else { 1 };
            clamp_range(start, end, total).map(|r| bit_span(r, in_bits))
        }
        _ => return error::syntax(),
    };
    Reply::Int(span.map_or(0, |(first, last)| count_bits(&s, first, last)) as i64)
}

/// Set bits of `data` between bit positions `first` and `last` inclusive (both in range).
fn count_bits(data: &[u8], first: u64, last: u64) -> u64 {
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    let head = 0xFFu8 >> (first & 7);
    let tail = 0xFFu8 << (7 - (last & 7));
    if fb == lb {
        return (data[fb] & head & tail).count_ones() as u64;
    }
    let middle = &data[fb + 1..lb];
    let mut chunks = middle.chunks_exact(8);
    let mut n: u64 = (&mut chunks)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()).count_ones() as u64)
        .sum();
    n += chunks
        .remainder()
        .iter()
        .map(|b| b.count_ones() as u64)
        .sum::<u64>();
    n + (data[fb] & head).count_ones() as u64 + (data[lb] & tail).count_ones() as u64
}

/// BITPOS key bit [start [end [BYTE|BIT]]]
pub fn bitpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let bit = match num::parse_i64(&args[2]) {
        Some(0) => false,
        Some(1) => true,
        Some(_) => return Reply::err(BAD_BITPOS_BIT),
        None => return error::not_integer(),
    };
    let s = match read_string(ctx, &args[1]) {
        Ok(Some(s)) => s.clone(),
        // A missing key is all zeros.
        Ok(None) => return Reply::Int(if bit { -1 } else { 0 }),
        Err(e) => return e,
    };
    let len = s.len() as i64;
    let (span, end_given) = match args.len() {
        3 => (clamp_range(0, -1, len).map(|r| bit_span(r, false)), false),
        4..=6 => {
            let Some(start) = num::parse_i64(&args[3]) else {
                return error::not_integer();
            };
            let in_bits = match args.get(5).map(|a| parse_unit(a)) {
                Some(Err(e)) => return e,
                Some(Ok(b)) => b,
                None => false,
            };
            let end = match args.get(4).map(|a| num::parse_i64(a)) {
                Some(None) => return error::not_integer(),
                Some(Some(end)) => Some(end),
                None => None,
            };
            let total = len * if in_bits { 8 } else { 1 };
            let range = clamp_range(start, end.unwrap_or(total - 1), total);
            (range.map(|r| bit_span(r, in_bits)), end.is_some())
        }
        _ => return error::syntax(),
    };
    // An empty range holds neither a 0 nor a 1.
    let Some((first, last)) = span else {
        return Reply::Int(-1);
    };
    match first_bit(&s, first, last, bit) {
        Some(pos) => Reply::Int(pos as i64),
        // Looking for a 0 with no explicit end: the string continues with zeros.
        None if !bit && !end_given => Reply::Int(last as i64 + 1),
        None => Reply::Int(-1),
    }
}

/// The first bit equal to `bit` between positions `first` and `last` inclusive (in range).
fn first_bit(data: &[u8], first: u64, last: u64, bit: bool) -> Option<u64> {
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    let head = 0xFFu8 >> (first & 7);
    let tail = 0xFFu8 << (7 - (last & 7));
    // Set bits of `hits` are the bits equal to `bit`.
    let hits = |idx: usize| if bit { data[idx] } else { !data[idx] };
    let found = |idx: usize, m: u8| (m != 0).then(|| idx as u64 * 8 + m.leading_zeros() as u64);
    if fb == lb {
        return found(fb, hits(fb) & head & tail);
    }
    if let Some(pos) = found(fb, hits(fb) & head) {
        return Some(pos);
    }
    let skip = if bit { 0x00 } else { 0xFF };
    if let Some(i) = data[fb + 1..lb].iter().position(|&b| b != skip) {
        return found(fb + 1 + i, hits(fb + 1 + i));
    }
    found(lb, hits(lb) & tail)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// BITOP AND|OR|XOR|NOT destkey key [key ...]: the length of the stored result.
pub fn bitop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let name = &args[1][..];
    let op = if name.eq_ignore_ascii_case(b"and") {
        BitOp::And
    } else if name.eq_ignore_ascii_case(b"or") {
        BitOp::Or
    } else if name.eq_ignore_ascii_case(b"xor") {
        BitOp::Xor
    } else if name.eq_ignore_ascii_case(b"not") {
        BitOp::Not
    } else {
        return error::syntax();
    };
    if op == BitOp::Not && args.len() != 4 {
        return Reply::err(BITOP_NOT_ONE_KEY);
    }
    let mut sources = Vec::with_capacity(args.len() - 3);
    for key in &args[3..] {
        match read_string(ctx, key) {
            Ok(s) => sources.push(s.map(Str::to_bytes).unwrap_or_default()),
            Err(e) => return e,
        }
    }
    let max_len = sources.iter().map(Bytes::len).max().unwrap_or(0);
    let dest = &args[2];
    if max_len == 0 {
        ctx.delete_destination(dest);
        return Reply::Int(0);
    }
    // Shorter inputs read as zero-padded.
    let mut out = vec![0u8; max_len];
    out[..sources[0].len()].copy_from_slice(&sources[0]);
    for src in &sources[1..] {
        match op {
            BitOp::And => {
                out.iter_mut().zip(src.iter()).for_each(|(o, s)| *o &= s);
                out[src.len()..].fill(0);
            }
            BitOp::Or => out.iter_mut().zip(src.iter()).for_each(|(o, s)| *o |= s),
            BitOp::Xor => out.iter_mut().zip(src.iter()).for_each(|(o, s)| *o ^= s),
            BitOp::Not => {}
        }
    }
    if op == BitOp::Not {
        out.iter_mut().for_each(|o| *o = !*o);
    }
    ctx.set(dest, Value::Str(Str::from_vec(out)));
    ctx.notify(STRING, "set", dest);
    Reply::Int(max_len as i64)
}

/// What BITFIELD does when a SET or INCRBY does not fit the field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy)]
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// One BITFIELD operation on a field of `bits` bits at bit `offset`.
struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

/// BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
/// [OVERFLOW WRAP|SAT|FAIL] ...
pub fn bitfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    bitfield_generic(ctx, args, false)
}

/// BITFIELD_RO key [GET type offset] ...
pub fn bitfield_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    bitfield_generic(ctx, args, true)
}

fn bitfield_generic(ctx: &mut Ctx<'_>, args: &[Bytes], read_only: bool) -> Reply {
    let (fields, highest_write) = match parse_fields(ctx, args) {
        Ok(parsed) => parsed,
        Err(e) => return e,
    };
    let Some(highest_write) = highest_write else {
        let data = match read_string(ctx, &args[1]) {
            Ok(s) => s.map(Str::to_bytes).unwrap_or_default(),
            Err(e) => return e,
        };
        return Reply::Array(fields.iter().map(|f| get_field(&data, f)).collect());
    };
    if read_only {
        return Reply::err(RO_ONLY_GET);
    }
    let replies = with_bit_string(ctx, &args[1], highest_write, |buf, grown| {
        let mut changes = 0;
        let replies = fields
            .iter()
            .map(|f| match f.op {
                FieldOp::Get => get_field(buf, f),
                FieldOp::Set(v) => write_field(buf, f, v, true, grown, &mut changes),
                FieldOp::IncrBy(d) => write_field(buf, f, d, false, grown, &mut changes),
            })
            .collect();
        (replies, changes)
    });
    match replies {
        Ok(r) => Reply::Array(r),
        Err(e) => e,
    }
}

/// Parses every BITFIELD operation, in order, failing at the first bad one. Also returns the
/// highest bit a SET or INCRBY touches (None when all are GETs).
fn parse_fields(ctx: &Ctx<'_>, args: &[Bytes]) -> Result<(Vec<Field>, Option<u64>), Reply> {
    let mut fields = Vec::new();
    let mut highest_write: Option<u64> = None;
    let mut overflow = Overflow::Wrap;
    let mut i = 2;
    while i < args.len() {
        let remaining = args.len() - i - 1;
        let name = &args[i][..];
        let takes_value = if name.eq_ignore_ascii_case(b"get") && remaining >= 2 {
            false
        } else if (name.eq_ignore_ascii_case(b"set") || name.eq_ignore_ascii_case(b"incrby"))
            && remaining >= 3
        {
            true
        } else if name.eq_ignore_ascii_case(b"overflow") && remaining >= 1 {
            let kind = &args[i + 1][..];
            overflow = if kind.eq_ignore_ascii_case(b"wrap") {
                Overflow::Wrap
            } else if kind.eq_ignore_ascii_case(b"sat") {
                Overflow::Sat
            } else if kind.eq_ignore_ascii_case(b"fail") {
                Overflow::Fail
            } else {
                return Err(Reply::err(BAD_OVERFLOW));
            };
            i += 2;
            continue;
        } else {
            return Err(error::syntax());
        };
        let (signed, bits) = parse_field_type(&args[i + 1])?;
        let offset = parse_bit_offset(ctx, &args[i + 2], Some(bits))?;
        let op = if takes_value {
            let value = num::parse_i64(&args[i + 3]).ok_or_else(error::not_integer)?;
            let last_bit = offset + bits as u64 - 1;
            highest_write = Some(highest_write.map_or(last_bit, |h| h.max(last_bit)));
            if name.eq_ignore_ascii_case(b"set") {
                FieldOp::Set(value)
            } else {
                FieldOp::IncrBy(value)
            }
        } else {
            FieldOp::Get
        };
        fields.push(Field {
            op,
            signed,
            bits,
            offset,
            overflow,
        });
        i += if takes_value { 4 } else { 3 };
    }
    Ok((fields, highest_write))
}

/// Parses `i<bits>` (1..=64) or `u<bits>` (1..=63): (signed, bits).
fn parse_field_type(arg: &[u8]) -> Result<(bool, u32), Reply> {
    let bad = || Reply::err(BAD_FIELD_TYPE);
    let (signed, max) = match arg.first() {
        Some(b'i') => (true, 64),
        Some(b'u') => (false, 63),
        _ => return Err(bad()),
    };
    match num::parse_i64(&arg[1..]) {
        Some(bits) if (1..=max).contains(&bits) => Ok((signed, bits as u32)),
        _ => Err(bad()),
    }
}

/// The `bits`-bit unsigned number at bit `offset`; bits past the end read as zero.
fn read_bits(data: &[u8], offset: u64, bits: u32) -> u64 {
    (offset..offset + bits as u64).fold(0u64, |v, pos| {
        let byte = data.get((pos >> 3) as usize).copied().unwrap_or(0);
        (v << 1) | ((byte >> (7 - (pos & 7))) & 1) as u64
    })
}

/// Stores the low `bits` bits of `value` at bit `offset` (the buffer holds them).
fn write_bits(data: &mut [u8], offset: u64, bits: u32, value: u64) {
    for i in 0..bits as u64 {
        let pos = offset + i;
        let mask = 0x80u8 >> (pos & 7);
        let byte = &mut data[(pos >> 3) as usize];
        if (value >> (bits as u64 - 1 - i)) & 1 == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// Sign-extends a `bits`-bit two's complement number.
fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

fn get_field(data: &[u8], f: &Field) -> Reply {
    let raw = read_bits(data, f.offset, f.bits);
    Reply::Int(if f.signed {
        sign_extend(raw, f.bits)
    } else {
        raw as i64
    })
}

/// Applies a SET (`is_set`, `arg` the value) or an INCRBY (`arg` the increment). Answers
/// the old value for SET, the new one for INCRBY, nil when FAIL refused it; counts a change
/// when the stored bits changed or the string was just created or grown.
fn write_field(
    buf: &mut [u8],
    f: &Field,
    arg: i64,
    is_set: bool,
    grown: bool,
    changes: &mut u64,
) -> Reply {
    let shown = |raw: u64| {
        if f.signed {
            sign_extend(raw, f.bits)
        } else {
            raw as i64
        }
    };
    let raw_old = read_bits(buf, f.offset, f.bits);
    // The value checked against the field's range, and what is added to it.
    let (base, incr) = if is_set {
        (arg, 0)
    } else {
        (shown(raw_old), arg)
    };
    let fitted = if f.signed {
        fit_signed(base, incr, f.bits, f.overflow).map(|v| v as u64)
    } else {
        fit_unsigned(base as u64, incr, f.bits, f.overflow)
    };
    let new = match fitted {
        Fit::Ok => (base as u64).wrapping_add(incr as u64),
        Fit::Limited(v) => v,
        Fit::Refused => return Reply::Nil,
    };
    write_bits(buf, f.offset, f.bits, new);
    let raw_new = read_bits(buf, f.offset, f.bits);
    if grown || raw_old != raw_new {
        *changes += 1;
    }
    Reply::Int(shown(if is_set { raw_old } else { raw_new }))
}

/// Whether `value + incr` fits a field, and what to store when it does not.
enum Fit<T> {
    Ok,
    Limited(T),
    Refused,
}

impl<T> Fit<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Fit<U> {
        match self {
            Fit::Ok => Fit::Ok,
            Fit::Limited(v) => Fit::Limited(f(v)),
            Fit::Refused => Fit::Refused,
        }
    }
}

/// Redis's overflow rules for unsigned fields. A SET value is checked as the unsigned
/// reinterpretation of the given integer (so a negative SET "overflows" upward, and SAT
/// stores the maximum), exactly as Redis does.
fn fit_unsigned(value: u64, incr: i64, bits: u32, overflow: Overflow) -> Fit<u64> {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = (value as i64).wrapping_neg();
    let limit = if value > max || (incr > 0 && incr > max_incr) {
        max
    } else if incr < 0 && incr < min_incr {
        0
    } else {
        return Fit::Ok;
    };
    match overflow {
        Overflow::Wrap => Fit::Limited(value.wrapping_add(incr as u64) & max),
        Overflow::Sat => Fit::Limited(limit),
        Overflow::Fail => Fit::Refused,
    }
}

/// Redis's overflow rules for signed fields; wrapping keeps the low bits, sign-extended.
fn fit_signed(value: i64, incr: i64, bits: u32, overflow: Overflow) -> Fit<i64> {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let narrow = bits != 64;
    let limit = if value > max
        || (narrow && incr > max_incr)
        || (value >= 0 && incr > 0 && incr > max_incr)
    {
        max
    } else if value < min
        || (narrow && incr < min_incr)
        || (value < 0 && incr < 0 && incr < min_incr)
    {
        min
    } else {
        return Fit::Ok;
    };
    match overflow {
        Overflow::Wrap => {
            let sum = (value as u64).wrapping_add(incr as u64);
            Fit::Limited(sign_extend(sum & low_mask(bits), bits))
        }
        Overflow::Sat => Fit::Limited(limit),
        Overflow::Fail => Fit::Refused,
    }
}

fn low_mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn set_bin(t: &mut TestShard, key: &str, value: &[u8]) {
        let args = [
            Bytes::from_static(b"SET"),
            Bytes::copy_from_slice(key.as_bytes()),
            Bytes::copy_from_slice(value),
        ];
        assert_eq!(t.run_bytes(&args), ok());
    }

    fn get_bin(t: &mut TestShard, key: &str) -> Reply {
        t.run(&["GET", key])
    }

    fn bin(v: &[u8]) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(v))
    }

    fn list_key(t: &mut TestShard, key: &str) {
        let mut ctx = Ctx::new(&mut t.shard, 0, 0, false);
        ctx.set(
            key.as_bytes(),
            Value::List(crate::t_list::ListValue::default()),
        );
    }

    /// A naive bit-by-bit model of the string, for comparisons.
    fn bits_of(data: &[u8]) -> Vec<bool> {
        data.iter()
            .flat_map(|b| (0..8).map(move |i| b & (0x80 >> i) != 0))
            .collect()
    }

    #[test]
    fn setbit_and_getbit() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["SETBIT", "k", "1", "1"]), int(0));
        assert_eq!(get_bin(&mut t, "k"), bin(&[0b0100_0000]));
        t.run(&["SET", "k", "@"]);
        assert_eq!(t.run(&["SETBIT", "k", "2", "1"]), int(0));
        assert_eq!(get_bin(&mut t, "k"), bin(&[0b0110_0000]));
        assert_eq!(t.run(&["SETBIT", "k", "1", "0"]), int(1));
        assert_eq!(get_bin(&mut t, "k"), bin(&[0b0010_0000]));
        t.run(&["SET", "k", "1"]);
        assert_eq!(t.run(&["SETBIT", "k", "6", "1"]), int(0));
        assert_eq!(get_bin(&mut t, "k"), bin(&[0b0011_0011]));
        // Growth only as far as the offset needs.
        assert_eq!(t.run(&["SETBIT", "g", "23", "0"]), int(0));
        assert_eq!(get_bin(&mut t, "g"), bin(&[0, 0, 0]));
        t.run(&["SET", "m", "`"]);
        for (i, want) in [(0, 0), (1, 1), (2, 1), (3, 0), (8, 0), (100, 0), (10000, 0)] {
            assert_eq!(t.run(&["GETBIT", "m", &i.to_string()]), int(want));
        }
        t.run(&["SET", "n", "1"]);
        for (i, want) in [(0, 0), (1, 0), (2, 1), (3, 1), (8, 0)] {
            assert_eq!(t.run(&["GETBIT", "n", &i.to_string()]), int(want));
        }
        assert_eq!(t.run(&["GETBIT", "none", "0"]), int(0));
    }

    #[test]
    fn setbit_getbit_errors() {
        let mut t = TestShard::new();
        list_key(&mut t, "l");
        assert_eq!(t.run(&["SETBIT", "l", "0", "1"]), err(error::WRONGTYPE));
        assert_eq!(t.run(&["GETBIT", "l", "0"]), err(error::WRONGTYPE));
        for off in ["4294967296", "-1", "x", "#1"] {
            assert_eq!(t.run(&["SETBIT", "k", off, "1"]), err(BAD_OFFSET));
            assert_eq!(t.run(&["GETBIT", "k", off]), err(BAD_OFFSET));
        }
        for v in ["-1", "2", "10", "20", "x"] {
            assert_eq!(t.run(&["SETBIT", "k", "0", v]), err(BAD_BIT));
        }
        // The offset limit follows proto-max-bulk-len.
        t.shard.config.proto_max_bulk_len = 2;
        assert_eq!(t.run(&["SETBIT", "k", "16", "1"]), err(BAD_OFFSET));
        assert_eq!(t.run(&["SETBIT", "k", "15", "1"]), int(0));
        assert!(t.shard.dbs[0].peek(b"k").is_some());
    }

    #[test]
    fn setbit_counts_only_real_changes() {
        let mut t = TestShard::new();
        let d0 = t.shard.dirty;
        t.run(&["SETBIT", "k", "0", "0"]);
        assert_eq!(t.shard.dirty, d0 + 1);
        t.run(&["SETBIT", "k", "0", "0"]);
        assert_eq!(t.shard.dirty, d0 + 1);
        t.run(&["SETBIT", "k", "0", "1"]);
        t.run(&["SETBIT", "k", "0", "1"]);
        assert_eq!(t.shard.dirty, d0 + 2);
        t.run(&["SETBIT", "k", "90", "0"]);
        assert_eq!(t.shard.dirty, d0 + 3);
        t.run(&["BITFIELD", "f", "SET", "i5", "0", "0"]);
        assert_eq!(t.shard.dirty, d0 + 4);
        t.run(&["BITFIELD", "f", "SET", "i5", "0", "0"]);
        assert_eq!(t.shard.dirty, d0 + 4);
        t.run(&["BITFIELD", "f", "INCRBY", "i5", "0", "1"]);
        assert_eq!(t.shard.dirty, d0 + 5);
        t.run(&["BITFIELD", "f", "SET", "i5", "90", "0"]);
        assert_eq!(t.shard.dirty, d0 + 6);
    }

    #[test]
    fn bitcount_cases() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["BITCOUNT", "none"]), int(0));
        assert_eq!(t.run(&["BITCOUNT", "none", "0", "1000", "bit"]), int(0));
        t.run(&["SET", "s", "xxxx"]);
        assert_eq!(t.run(&["BITCOUNT", "s", "4", "10"]), int(0));
        assert_eq!(t.run(&["BITCOUNT", "s", "32", "87", "bit"]), int(0));
        assert_eq!(t.run(&["BITCOUNT", "s", "-6", "-7"]), int(0));
        assert_eq!(t.run(&["BITCOUNT", "s", "-6", "-15", "bit"]), int(0));
        for v in [&b""[..], b"\xaa", b"\x00\x00\xff", b"foobar", b"123"] {
            set_bin(&mut t, "v", v);
            let n: u32 = v.iter().map(|b| b.count_ones()).sum();
            assert_eq!(t.run(&["BITCOUNT", "v"]), int(n as i64));
            assert_eq!(t.run(&["BITCOUNT", "v", "0", "-1", "BIT"]), int(n as i64));
        }
        t.run(&["SET", "s", "foobar"]);
        let bits = bits_of(b"foobar");
        let count = |a: usize, b: usize| bits[a..=b].iter().filter(|x| **x).count() as i64;
        assert_eq!(t.run(&["BITCOUNT", "s", "1", "-2"]), int(count(8, 39)));
        assert_eq!(t.run(&["BITCOUNT", "s", "-2", "1"]), int(0));
        assert_eq!(t.run(&["BITCOUNT", "s", "0", "1000"]), int(count(0, 47)));
        for (a, b) in [(10, 14), (3, 14), (3, 29), (0, 47), (9, 9), (8, 15)] {
            let args = ["BITCOUNT", "s", &a.to_string(), &b.to_string(), "bit"];
            assert_eq!(t.run(&args), int(count(a, b)), "{a} {b}");
        }
        assert_eq!(
            t.run(&["BITCOUNT", "s", "10", "-34", "bit"]),
            int(count(10, 14))
        );
        assert_eq!(
            t.run(&["BITCOUNT", "s", "3", "-19", "bit"]),
            int(count(3, 29))
        );
        assert_eq!(t.run(&["BITCOUNT", "s", "-2", "1", "bit"]), int(0));
        t.run(&["SET", "s", "ab"]);
        assert_eq!(t.run(&["BITCOUNT", "s", "1", "-1"]), int(3));
        t.run(&["SET", "s", "__PPxxxxxxxxxxxxxxxxRR__"]);
        assert_eq!(t.run(&["BITCOUNT", "s", "2", "-3"]), int(74));
    }

    #[test]
    fn bitcount_errors() {
        let mut t = TestShard::new();
        t.run(&["SET", "s", "foobar"]);
        assert_eq!(t.run(&["BITCOUNT", "s", "0"]), err(error::SYNTAX));
        assert_eq!(
            t.run(&["BITCOUNT", "s", "0", "1", "hello"]),
            err(error::SYNTAX)
        );
        assert_eq!(
            t.run(&["BITCOUNT", "s", "0", "1", "bit", "x"]),
            err(error::SYNTAX)
        );
        assert_eq!(t.run(&["BITCOUNT", "s", "a", "1"]), err(error::NOT_INTEGER));
        assert_eq!(t.run(&["BITCOUNT", "s", "0", "4294967296"]), int(26));
        // A missing key answers 0 before any argument is looked at.
        assert_eq!(t.run(&["BITCOUNT", "none", "0"]), int(0));
        list_key(&mut t, "l");
        assert_eq!(t.run(&["BITCOUNT", "l"]), err(error::WRONGTYPE));
    }

    #[test]
    fn bitpos_cases() {
        let mut t = TestShard::new();
        assert_eq!(t.run(&["BITPOS", "none", "0"]), int(0));
        assert_eq!(t.run(&["BITPOS", "none", "0", "0", "-1", "bit"]), int(0));
        assert_eq!(t.run(&["BITPOS", "none", "1"]), int(-1));
        set_bin(&mut t, "s", b"\xff\xf0\x00");
        assert_eq!(t.run(&["BITPOS", "s", "0"]), int(12));
        assert_eq!(t.run(&["BITPOS", "s", "0", "0", "-1", "bit"]), int(12));
        assert_eq!(t.run(&["BITPOS", "s", "0", "1"]), int(12));
        set_bin(&mut t, "s", b"\x00\x0f\xff");
        assert_eq!(t.run(&["BITPOS", "s", "1", "1"]), int(12));
        assert_eq!(t.run(&["BITPOS", "s", "1", "1", "-1", "bit"]), int(12));
        set_bin(&mut t, "s", b"\x00\xff\x00");
        for (args, want) in [
            (&["0", "0", "-1"][..], 0),
            (&["0", "1", "-1"], 16),
            (&["0", "2", "200"], 16),
            (&["0", "1", "1"], -1),
            (&["0", "8", "-1", "bit"], 16),
            (&["0", "8", "8", "bit"], -1),
            (&["1", "0", "-1"], 8),
            (&["1", "2", "-1"], -1),
            (&["1", "2", "200"], -1),
            (&["1", "1", "1"], 8),
            (&["1", "16", "200", "bit"], -1),
            (&["1", "8", "8", "bit"], 8),
        ] {
            let mut full = vec!["BITPOS", "s"];
            full.extend_from_slice(args);
            assert_eq!(t.run(&full), int(want), "{args:?}");
        }
        set_bin(&mut t, "s", b"\xff\xff\xff");
        assert_eq!(t.run(&["BITPOS", "s", "0"]), int(24));
        assert_eq!(t.run(&["BITPOS", "s", "0", "0"]), int(24));
        assert_eq!(t.run(&["BITPOS", "s", "0", "0", "-1"]), int(-1));
        assert_eq!(t.run(&["BITPOS", "s", "0", "0", "-1", "bit"]), int(-1));
        set_bin(&mut t, "s", b"");
        assert_eq!(t.run(&["BITPOS", "s", "1"]), int(-1));
        assert_eq!(t.run(&["BITPOS", "s", "0"]), int(-1));
        // Unaligned prefix, full words and a remainder.
        let mut long = vec![0xffu8; 27];
        long.push(0x0f);
        set_bin(&mut t, "s", &long);
        for start in 0..9 {
            assert_eq!(t.run(&["BITPOS", "s", "0", &start.to_string()]), int(216));
            let bit_start = (start * 8 + 1).to_string();
            assert_eq!(
                t.run(&["BITPOS", "s", "0", &bit_start, "-1", "bit"]),
                int(216)
            );
        }
    }

    #[test]
    fn bitpos_matches_a_naive_model() {
        let mut t = TestShard::new();
        let data = b"\x00\x10\xff\xfe\x00\x00\x80\x7f\xff\x01";
        set_bin(&mut t, "s", data);
        let bits = bits_of(data);
        let n = bits.len() as i64;
        for bit in [false, true] {
            for start in 0..n {
                for end in start..n {
                    let want = (start..=end)
                        .find(|&i| bits[i as usize] == bit)
                        .unwrap_or(-1);
                    let args = [
                        "BITPOS",
                        "s",
                        if bit { "1" } else { "0" },
                        &start.to_string(),
                        &end.to_string(),
                        "BIT",
                    ];
                    assert_eq!(t.run(&args), int(want), "{bit} {start} {end}");
                    let count = bits[start as usize..=end as usize]
                        .iter()
                        .filter(|x| **x)
                        .count();
                    let args = ["BITCOUNT", "s", &start.to_string(), &end.to_string(), "BIT"];
                    assert_eq!(t.run(&args), int(count as i64));
                }
            }
        }
    }

    #[test]
    fn bitpos_errors() {
        let mut t = TestShard::new();
        t.run(&["SET", "s", "x"]);
        assert_eq!(t.run(&["BITPOS", "s", "2"]), err(BAD_BITPOS_BIT));
        assert_eq!(t.run(&["BITPOS", "s", "x"]), err(error::NOT_INTEGER));
        assert_eq!(t.run(&["BITPOS", "s", "1", "x"]), err(error::NOT_INTEGER));
        assert_eq!(
            t.run(&["BITPOS", "s", "1", "0", "x"]),
            err(error::NOT_INTEGER)
        );
        assert_eq!(
            t.run(&["BITPOS", "s", "1", "0", "1", "foo"]),
            err(error::SYNTAX)
        );
        assert_eq!(
            t.run(&["BITPOS", "s", "1", "0", "1", "bit", "x"]),
            err(error::SYNTAX)
        );
        list_key(&mut t, "l");
        assert_eq!(t.run(&["BITPOS", "l", "1"]), err(error::WRONGTYPE));
    }

    #[test]
    fn bitop_cases() {
        let mut t = TestShard::new();
        set_bin(&mut t, "s", b"");
        assert_eq!(t.run(&["BITOP", "NOT", "dest", "s"]), int(0));
        assert_eq!(get_bin(&mut t, "dest"), Reply::Nil);
        set_bin(&mut t, "s", b"\xaa\x00\xff\x55");
        assert_eq!(t.run(&["BITOP", "not", "dest", "s"]), int(4));
        assert_eq!(get_bin(&mut t, "dest"), bin(b"\x55\xff\x00\xaa"));
        assert_eq!(t.run(&["BITOP", "NOT", "s", "s"]), int(4));
        assert_eq!(get_bin(&mut t, "s"), bin(b"\x55\xff\x00\xaa"));
        set_bin(&mut t, "a", b"\x01\x02\xff");
        for op in ["AND", "OR", "XOR"] {
            t.run(&["BITOP", op, "r", "a"]);
            assert_eq!(get_bin(&mut t, "r"), bin(b"\x01\x02\xff"), "{op}");
        }
        t.run(&["BITOP", "AND", "r1", "nokey", "a"]);
        t.run(&["BITOP", "OR", "r2", "nokey", "a", "nokey2"]);
        t.run(&["BITOP", "XOR", "r3", "nokey", "a"]);
        assert_eq!(get_bin(&mut t, "r1"), bin(b"\x00\x00\x00"));
        assert_eq!(get_bin(&mut t, "r2"), bin(b"\x01\x02\xff"));
        assert_eq!(get_bin(&mut t, "r3"), bin(b"\x01\x02\xff"));
        set_bin(&mut t, "a", b"\x01\x02\xff\xff");
        set_bin(&mut t, "b", b"\x01\x02\xff");
        t.run(&["BITOP", "AND", "r1", "a", "b"]);
        t.run(&["BITOP", "OR", "r2", "a", "b"]);
        t.run(&["BITOP", "XOR", "r3", "a", "b"]);
        assert_eq!(get_bin(&mut t, "r1"), bin(b"\x01\x02\xff\x00"));
        assert_eq!(get_bin(&mut t, "r2"), bin(b"\x01\x02\xff\xff"));
        assert_eq!(get_bin(&mut t, "r3"), bin(b"\x00\x00\x00\xff"));
        t.run(&["SET", "i1", "1"]);
        t.run(&["SET", "i2", "2"]);
        assert_eq!(t.run(&["BITOP", "XOR", "d", "i1", "i2", "i1"]), int(1));
        assert_eq!(get_bin(&mut t, "d"), bulk("2"));
        set_bin(&mut t, "z", &[0u8; 32]);
        assert_eq!(t.run(&["BITOP", "OR", "x", "z", "nokey"]), int(32));
        // An empty result deletes the destination.
        t.run(&["SET", "d", "x", "EX", "100"]);
        assert_eq!(t.run(&["BITOP", "AND", "d", "nokey", "nokey2"]), int(0));
        assert_eq!(get_bin(&mut t, "d"), Reply::Nil);
    }

    #[test]
    fn bitop_errors() {
        let mut t = TestShard::new();
        t.run(&["SET", "a", "1"]);
        list_key(&mut t, "c");
        assert_eq!(
            t.run(&["BITOP", "XOR", "d", "a", "c", "x"]),
            err(error::WRONGTYPE)
        );
        assert_eq!(t.run(&["BITOP", "NAND", "d", "a"]), err(error::SYNTAX));
        assert_eq!(
            t.run(&["BITOP", "NOT", "d", "a", "a"]),
            err(BITOP_NOT_ONE_KEY)
        );
        assert_eq!(get_bin(&mut t, "d"), Reply::Nil);
    }

    #[test]
    fn bitfield_basics() {
        let mut t = TestShard::new();
        assert_eq!(
            t.run(&["BITFIELD", "b", "set", "i8", "0", "-100"]),
            arr(vec![int(0)])
        );
        assert_eq!(
            t.run(&["BITFIELD", "b", "set", "i8", "0", "101"]),
            arr(vec![int(-100)])
        );
        assert_eq!(
            t.run(&["BITFIELD", "b", "get", "i8", "0"]),
            arr(vec![int(101)])
        );
        let mut t = TestShard::new();
        assert_eq!(
            t.run(&[
                "BITFIELD", "b", "set", "u8", "0", "255", "set", "u8", "0", "100", "get", "u8", "0"
            ]),
            arr(vec![int(0), int(255), int(100)])
        );
        let mut t = TestShard::new();
        assert_eq!(
            t.run(&[
                "BITFIELD", "b", "set", "i8", "0", "255", "set", "i8", "0", "100", "get", "i8", "0"
            ]),
            arr(vec![int(0), int(-1), int(100)])
        );
        let mut t = TestShard::new();
        assert_eq!(
            t.run(&[
                "BITFIELD", "b", "set", "u8", "0", "255", "incrby", "u8", "0", "100", "get", "u8",
                "0"
            ]),
            arr(vec![int(0), int(99), int(99)])
        );
        assert_eq!(t.run(&["BITFIELD", "none"]), arr(vec![]));
        assert!(t.shard.dbs[0].peek(b"none").is_none());
        let mut t = TestShard::new();
        t.run(&["BITFIELD", "b", "set", "u8", "#0", "65"]);
        t.run(&["BITFIELD", "b", "set", "u8", "#1", "66"]);
        t.run(&["BITFIELD", "b", "set", "u8", "#2", "67"]);
        assert_eq!(get_bin(&mut t, "b"), bulk("ABC"));
        let mut t = TestShard::new();
        t.run(&["BITFIELD", "b", "set", "u8", "#0", "10"]);
        assert_eq!(
            t.run(&["BITFIELD", "b", "incrby", "u8", "#0", "100", "incrby", "u8", "#0", "100"]),
            arr(vec![int(110), int(210)])
        );
        t.run(&["SET", "n", "1"]);
        assert_eq!(
            t.run(&["BITFIELD", "n", "get", "u1", "0"]),
            arr(vec![int(0)])
        );
        let mut t = TestShard::new();
        assert_eq!(
            t.run(&[
                "BITFIELD", "m", "SET", "i8", "0", "10", "SET", "i8", "64", "10", "INCRBY", "i8",
                "10", "99900"
            ]),
            arr(vec![int(0), int(0), int(60)])
        );
        // Reads past the end are zeros; writes grow only as needed.
        assert_eq!(
            t.run(&["BITFIELD", "m", "GET", "u8", "1000"]),
            arr(vec![int(0)])
        );
        assert_eq!(t.run(&["STRLEN", "m"]), int(9));
    }

    #[test]
    fn bitfield_overflow_modes() {
        let mut t = TestShard::new();
        let run = |t: &mut TestShard, args: &[&str]| -> Reply {
            let mut full = vec!["BITFIELD", "b"];
            full.extend_from_slice(args);
            t.run(&full)
        };
        run(&mut t, &["set", "u8", "#0", "100"]);
        assert_eq!(
            run(&mut t, &["overflow", "wrap", "incrby", "u8", "#0", "257"]),
            arr(vec![int(101)])
        );
        assert_eq!(
            run(&mut t, &["overflow", "wrap", "incrby", "u8", "#0", "255"]),
            arr(vec![int(100)])
        );
        assert_eq!(
            run(&mut t, &["overflow", "sat", "incrby", "u8", "#0", "257"]),
            arr(vec![int(255)])
        );
        assert_eq!(
            run(&mut t, &["overflow", "sat", "incrby", "u8", "#0", "-256"]),
            arr(vec![int(0)])
        );
        run(&mut t, &["set", "i8", "#0", "100"]);
        assert_eq!(
            run(&mut t, &["overflow", "wrap", "incrby", "i8", "#0", "257"]),
            arr(vec![int(101)])
        );
        assert_eq!(
            run(&mut t, &["overflow", "wrap", "incrby", "i8", "#0", "255"]),
            arr(vec![int(100)])
        );
        assert_eq!(
            run(&mut t, &["overflow", "sat", "incrby", "i8", "#0", "257"]),
            arr(vec![int(127)])
        );
        assert_eq!(
            run(&mut t, &["overflow", "sat", "incrby", "i8", "#0", "-255"]),
            arr(vec![int(-128)])
        );
        assert_eq!(
            run(
                &mut t,
                &["overflow", "fail", "incrby", "i8", "#0", "-1", "get", "i8", "#0"]
            ),
            arr(vec![Reply::Nil, int(-128)])
        );
        // A negative SET on an unsigned field counts as an upward overflow, as in Redis.
        assert_eq!(
            run(
                &mut t,
                &["overflow", "sat", "set", "u8", "#0", "-1", "get", "u8", "#0"]
            ),
            arr(vec![int(128), int(255)])
        );
        assert_eq!(
            run(&mut t, &["overflow", "fail", "set", "u8", "#0", "256"]),
            arr(vec![Reply::Nil])
        );
        assert_eq!(
            run(&mut t, &["set", "u8", "#0", "256", "get", "u8", "#0"]),
            arr(vec![int(255), int(0)])
        );
        // The mode applies to the operations after it only.
        assert_eq!(
            run(
                &mut t,
                &["incrby", "u8", "#0", "-1", "overflow", "fail", "incrby", "u8", "#0", "1"]
            ),
            arr(vec![int(255), Reply::Nil])
        );
        // 64-bit signed fields.
        assert_eq!(
            run(&mut t, &["set", "i64", "0", "9223372036854775807"]),
            arr(vec![int(-72057594037927936)])
        );
        assert_eq!(
            run(&mut t, &["incrby", "i64", "0", "1"]),
            arr(vec![int(i64::MIN)])
        );
        assert_eq!(
            run(&mut t, &["overflow", "sat", "incrby", "i64", "0", "-1"]),
            arr(vec![int(i64::MIN)])
        );
        assert_eq!(
            run(&mut t, &["overflow", "fail", "incrby", "i64", "0", "-1"]),
            arr(vec![Reply::Nil])
        );
        assert_eq!(
            run(&mut t, &["set", "u63", "0", "-1", "get", "u63", "0"]),
            arr(vec![int(1 << 62), int(i64::MAX)])
        );
    }

    /// The Redis suite's overflow fuzzing, as a deterministic sweep: FAIL detects exactly the
    /// mathematical overflows, WRAP gives the value modulo the field range.
    #[test]
    fn bitfield_overflow_matches_math() {
        let mut next = crate::testing::xorshift(0x1234_5678_9abc_def0);
        let mut rand = move || next(u64::MAX);
        for _ in 0..3000 {
            let bits = (rand() % 64 + 1) as u32;
            let signed = bits == 64 || rand() % 2 == 1;
            let range = 1i128 << bits;
            let (min, ty) = if signed {
                (-(range / 2), format!("i{bits}"))
            } else {
                (0, format!("u{bits}"))
            };
            let max = min + range - 1;
            let pick = |r: u64| {
                (min * 2 + (r as i128).rem_euclid(range * 2))
                    .clamp(i64::MIN as i128, i64::MAX as i128)
            };
            let (value, incr) = (pick(rand()), pick(rand()));
            let overflow = value > max || value < min || value + incr > max || value + incr < min;
            let mut t = TestShard::new();
            let v = value.to_string();
            let d = incr.to_string();
            let r1 = t.run(&["BITFIELD", "b", "OVERFLOW", "FAIL", "SET", &ty, "0", &v]);
            let r2 = t.run(&["BITFIELD", "b", "OVERFLOW", "FAIL", "INCRBY", &ty, "0", &d]);
            let failed = r1 == arr(vec![Reply::Nil]) || r2 == arr(vec![Reply::Nil]);
            assert_eq!(failed, overflow, "{ty} {value}+{incr}");

            let mut t = TestShard::new();
            t.run(&["BITFIELD", "b", "OVERFLOW", "WRAP", "SET", &ty, "0", &v]);
            t.run(&["BITFIELD", "b", "OVERFLOW", "WRAP", "INCRBY", &ty, "0", &d]);
            let mut want = (value + incr + if signed { max + 1 } else { 0 }).rem_euclid(range);
            if signed {
                want += min;
            }
            assert_eq!(
                t.run(&["BITFIELD", "b", "GET", &ty, "0"]),
                arr(vec![int(want as i64)]),
                "{ty} {value}+{incr}"
            );
        }
    }

    #[test]
    fn bitfield_errors() {
        let mut t = TestShard::new();
        for ty in ["u64", "i65", "x8", "u0", "i", "I8", "u-1"] {
            assert_eq!(
                t.run(&["BITFIELD", "b", "GET", ty, "0"]),
                err(BAD_FIELD_TYPE),
                "{ty}"
            );
        }
        assert_eq!(
            t.run(&["BITFIELD", "b", "GET", "u8", "-1"]),
            err(BAD_OFFSET)
        );
        assert_eq!(
            t.run(&["BITFIELD", "b", "GET", "u8", "#-1"]),
            err(BAD_OFFSET)
        );
        assert_eq!(
            t.run(&["BITFIELD", "b", "GET", "u8", "4294967296"]),
            err(BAD_OFFSET)
        );
        assert_eq!(
            t.run(&["BITFIELD", "b", "GET", "u8", "#536870912"]),
            err(BAD_OFFSET)
        );
        assert_eq!(
            t.run(&["BITFIELD", "b", "SET", "u8", "0", "x"]),
            err(error::NOT_INTEGER)
        );
        assert_eq!(t.run(&["BITFIELD", "b", "GET", "u8"]), err(error::SYNTAX));
        assert_eq!(
            t.run(&["BITFIELD", "b", "SET", "u8", "0"]),
            err(error::SYNTAX)
        );
        assert_eq!(t.run(&["BITFIELD", "b", "FOO"]), err(error::SYNTAX));
        assert_eq!(t.run(&["BITFIELD", "b", "OVERFLOW"]), err(error::SYNTAX));
        assert_eq!(
            t.run(&["BITFIELD", "b", "OVERFLOW", "up"]),
            err(BAD_OVERFLOW)
        );
        // Nothing is done when a later operation is bad.
        assert_eq!(
            t.run(&["BITFIELD", "b", "SET", "u8", "0", "1", "GET", "x", "0"]),
            err(BAD_FIELD_TYPE)
        );
        assert!(t.shard.dbs[0].peek(b"b").is_none());
        list_key(&mut t, "l");
        assert_eq!(
            t.run(&["BITFIELD", "l", "GET", "u8", "0"]),
            err(error::WRONGTYPE)
        );
        assert_eq!(
            t.run(&["BITFIELD", "l", "SET", "u8", "0", "1"]),
            err(error::WRONGTYPE)
        );
        assert_eq!(t.run(&["BITFIELD", "l"]), err(error::WRONGTYPE));
    }

    #[test]
    fn bitfield_ro() {
        let mut t = TestShard::new();
        t.run(&["BITFIELD", "b", "SET", "u8", "0", "100"]);
        assert_eq!(
            t.run(&["BITFIELD_RO", "b", "GET", "u8", "0"]),
            arr(vec![int(100)])
        );
        assert_eq!(t.run(&["BITFIELD_RO", "b"]), arr(vec![]));
        assert_eq!(
            t.run(&[
                "BITFIELD_RO",
                "b",
                "SET",
                "u8",
                "0",
                "100",
                "GET",
                "u8",
                "0"
            ]),
            err(RO_ONLY_GET)
        );
        assert_eq!(
            t.run(&["BITFIELD_RO", "b", "INCRBY", "u8", "0", "1"]),
            err(RO_ONLY_GET)
        );
        assert_eq!(
            t.run(&["BITFIELD_RO", "b", "GET", "u8", "0"]),
            arr(vec![int(100)])
        );
    }

    #[test]
    fn large_offsets_follow_the_limit() {
        let mut t = TestShard::new();
        // The highest allowed bit of a 512 MiB string, without allocating it: a smaller
        // limit exercises the same boundary.
        t.shard.config.proto_max_bulk_len = 1 << 10;
        let last = ((1u64 << 13) - 1).to_string();
        assert_eq!(t.run(&["SETBIT", "k", &last, "1"]), int(0));
        assert_eq!(t.run(&["STRLEN", "k"]), int(1 << 10));
        assert_eq!(t.run(&["GETBIT", "k", &last]), int(1));
        assert_eq!(t.run(&["BITPOS", "k", "1"]), int((1 << 13) - 1));
        assert_eq!(t.run(&["BITCOUNT", "k"]), int(1));
        let over = (1u64 << 13).to_string();
        assert_eq!(t.run(&["SETBIT", "k", &over, "1"]), err(BAD_OFFSET));
        assert_eq!(
            t.run(&[
                "BITFIELD",
                "k",
                "GET",
                "u8",
                &((1u64 << 13) - 8).to_string()
            ]),
            arr(vec![int(1)])
        );
    }

    /// Redis's events for the bit commands (bitops.c): setbit for a SETBIT or BITFIELD that
    /// created, grew or changed the string (a created string is new even when every BITFIELD
    /// write failed), BITOP's set or del.
    #[test]
    fn keyspace_events() {
        let mut t = TestShard::new();
        t.notify_all();
        let none = Vec::<String>::new();
        assert_eq!(
            t.events_of(&["setbit", "b", "7", "1"]),
            ["n new 0:b", "$ setbit 0:b"]
        );
        assert_eq!(t.events_of(&["setbit", "b", "7", "1"]), none);
        assert_eq!(t.events_of(&["setbit", "b", "6", "0"]), none);
        assert_eq!(t.events_of(&["setbit", "b", "6", "1"]), ["$ setbit 0:b"]);
        assert_eq!(t.events_of(&["setbit", "b", "100", "0"]), ["$ setbit 0:b"]);
        assert_eq!(
            t.events_of(&["bitfield", "f", "set", "u8", "0", "1"]),
            ["n new 0:f", "$ setbit 0:f"]
        );
        assert_eq!(t.events_of(&["bitfield", "f", "set", "u8", "0", "1"]), none);
        assert_eq!(
            t.events_of(&["bitfield", "f", "incrby", "u8", "0", "1", "get", "u8", "0"]),
            ["$ setbit 0:f"]
        );
        assert_eq!(
            t.events_of(&["bitfield", "g", "overflow", "fail", "set", "u2", "0", "7"]),
            ["n new 0:g"]
        );
        assert_eq!(
            t.events_of(&["bitfield", "nokey", "get", "u8", "0"]),
            ["m keymiss 0:nokey"]
        );
        assert_eq!(
            t.events_of(&["bitfield_ro", "nokey", "get", "u8", "0"]),
            ["m keymiss 0:nokey"]
        );
        assert_eq!(
            t.events_of(&["bitop", "or", "d", "b", "f"]),
            ["n new 0:d", "$ set 0:d"]
        );
        assert_eq!(t.events_of(&["bitop", "not", "d", "b"]), ["$ set 0:d"]);
        assert_eq!(
            t.events_of(&["bitop", "and", "d", "nokey"]),
            ["m keymiss 0:nokey", "g del 0:d"]
        );
        assert_eq!(
            t.events_of(&["bitop", "and", "d", "nokey"]),
            ["m keymiss 0:nokey"]
        );
        for cmd in [
            &["getbit", "nokey", "0"][..],
            &["bitcount", "nokey"],
            &["bitpos", "nokey", "1"],
        ] {
            assert_eq!(t.events_of(cmd), ["m keymiss 0:nokey"], "{cmd:?}");
        }
    }
}
