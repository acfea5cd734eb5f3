//! HyperLogLog commands (Redis's `hyperloglog.c`): PFADD, PFCOUNT, PFMERGE, PFDEBUG and
//! PFSELFTEST.
//!
//! A HyperLogLog is an ordinary string value laid out byte for byte as Redis lays it out, so
//! a string taken from Redis (GET, then SET here) counts the same in Shardis and back:
//!
//! - a 16-byte header: the magic `HYLL`, one encoding byte (0 dense, 1 sparse), three unused
//!   bytes, and the last computed cardinality as a little-endian u64 whose top bit, when set,
//!   says the cached value is stale;
//! - dense: 16384 six-bit registers packed least significant bit first (12288 bytes);
//! - sparse: a run-length list of opcodes covering the 16384 registers in order: `00xxxxxx`
//!   (ZERO, 1–64 zero registers), `01xxxxxx yyyyyyyy` (XZERO, 1–16384 zero registers) and
//!   `1vvvvvxx` (VAL, 1–4 registers of value 1–32).
//!
//! A new HyperLogLog is sparse; it turns dense when a register needs a value above 32 or when
//! the string would grow past `hll-sparse-max-bytes`. Every edit follows Redis's algorithm
//! step by step (the same opcode splits and merges), because the bytes themselves are
//! visible to clients. Strings are read defensively: a corrupt one gets Redis's
//! `INVALIDOBJ` or `WRONGTYPE` error (with the stricter run checks of Redis's fix for
//! CVE-2025-32023, which the reference 7.0.15 build carries), and a read past the end sees a
//! zero byte, as Redis sees the terminator its strings carry. One corner differs: when a
//! client cuts a sparse string inside a two-byte opcode and PFADD then splits that opcode,
//! Redis leaves a byte of the new opcodes just past the end of its buffer and later reads it
//! as the cut opcode's second byte; here that byte always reads as zero.

use bytes::Bytes;
use shardis_resp::Reply;

use crate::command::table::Registration;
use crate::error;
use crate::shard::Ctx;
use crate::t_string::modify_string;
use crate::value::{Str, Value};

pub static COMMANDS: &[Registration] = &[
    Registration::shard("pfadd", pfadd),
    Registration::shard("pfcount", pfcount),
    Registration::shard("pfmerge", pfmerge),
    Registration::shard("pfdebug", pfdebug),
    Registration::local("pfselftest", pfselftest),
];

const CORRUPTED: &str = "INVALIDOBJ Corrupted HLL object detected";
const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";

const MAGIC: &[u8; 4] = b"HYLL";
const HEADER_LEN: usize = 16;
/// Offset of the encoding byte in the header.
const ENCODING_AT: usize = 4;
/// Offset of the cached cardinality in the header.
const CARD_AT: usize = 8;
/// The byte holding the cache's "stale" bit (the top bit of the cached u64).
const CARD_STALE_BYTE: usize = 15;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;

/// Bits of the hash that pick the register.
const INDEX_BITS: u32 = 14;
const REGISTERS: usize = 1 << INDEX_BITS;
/// Bits of the hash left to count zeros in; a run is at most `RUN_BITS + 1` long.
const RUN_BITS: usize = 64 - INDEX_BITS as usize;
const REGISTER_MAX: u8 = 63;
const DENSE_LEN: usize = HEADER_LEN + REGISTERS * 6 / 8;

const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: u32 = 4;
const ZERO_MAX_LEN: u32 = 64;
const XZERO_MAX_LEN: u32 = 16384;

/// MurmurHash64A seed Redis hashes elements with.
const HASH_SEED: u64 = 0xadc8_3b19;
/// 0.5 / ln 2: the estimator's constant for an infinite number of registers.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// A sparse string whose opcodes do not cover exactly the 16384 registers.
#[derive(Debug, PartialEq, Eq)]
struct Corrupt;

fn corrupted() -> Reply {
    Reply::err(CORRUPTED)
}

// ---------------------------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------------------------

/// MurmurHash2, 64-bit version A, reading the input as little-endian words whatever the
/// machine, as Redis's copy does.
fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut words = data.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let mut k = u64::from_le_bytes(bytes).wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element falls in, and the position of the first 1 bit in the rest of
/// its hash (1 for `…1`, 2 for `…10`…), at most `RUN_BITS + 1`.
fn register_and_run(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, HASH_SEED);
    let index = (hash as usize) & (REGISTERS - 1);
    let rest = (hash >> INDEX_BITS) | (1u64 << RUN_BITS);
    (index, rest.trailing_zeros() as u8 + 1)
}

// ---------------------------------------------------------------------------------------------
// Dense registers
// ---------------------------------------------------------------------------------------------

/// Register `i` of a dense register area. The last register's neighbour byte lies past the
/// area and reads as zero.
fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * 6 / 8;
    let shift = (i * 6) & 7;
    let b0 = regs.get(byte).copied().unwrap_or(0) as u32;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u32;
    (((b0 >> shift) | (b1 << (8 - shift))) & REGISTER_MAX as u32) as u8
}

/// Stores `value` (at most 63) in register `i` of a dense register area.
fn dense_put(regs: &mut [u8], i: usize, value: u8) {
    let byte = i * 6 / 8;
    let shift = (i * 6) & 7;
    let value = value as u32;
    let mask = REGISTER_MAX as u32;
    if let Some(b) = regs.get_mut(byte) {
        *b = ((*b as u32 & !(mask << shift)) | (value << shift)) as u8;
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        *b = ((*b as u32 & !(mask >> (8 - shift))) | (value >> (8 - shift))) as u8;
    }
}

/// Raises register `i` to `value` if that is higher; true if it changed.
fn dense_raise(regs: &mut [u8], i: usize, value: u8) -> bool {
    if value > dense_get(regs, i) {
        dense_put(regs, i, value);
        true
    } else {
        false
    }
}

// ---------------------------------------------------------------------------------------------
// Sparse opcodes
// ---------------------------------------------------------------------------------------------

/// One sparse opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `len` registers at zero (ZERO or XZERO).
    Zeros { len: u32, long: bool },
    /// `len` registers at `value`.
    Val { value: u8, len: u32 },
}

impl Op {
    /// The opcode starting at `pos` (which must be inside `buf`).
    fn at(buf: &[u8], pos: usize) -> Op {
        let b = buf[pos];
        match b & 0xc0 {
            0x00 => Op::Zeros {
                len: (b & 0x3f) as u32 + 1,
                long: false,
            },
            0x40 => {
                let low = buf.get(pos + 1).copied().unwrap_or(0) as u32;
                Op::Zeros {
                    len: ((((b & 0x3f) as u32) << 8) | low) + 1,
                    long: true,
                }
            }
            _ => Op::Val {
                value: ((b >> 2) & 0x1f) + 1,
                len: (b & 0x3) as u32 + 1,
            },
        }
    }

    /// Bytes the opcode takes.
    fn size(self) -> usize {
        match self {
            Op::Zeros { long: true, .. } => 2,
            _ => 1,
        }
    }

    /// Registers the opcode covers.
    fn span(self) -> u32 {
        match self {
            Op::Zeros { len, .. } | Op::Val { len, .. } => len,
        }
    }
}

/// The VAL opcode byte for `len` (1–4) registers at `value` (1–32).
fn val_byte(value: u8, len: u32) -> u8 {
    0x80 | ((value - 1) << 2) | (len - 1) as u8
}

/// Appends the shortest opcode for `len` (1–16384) zero registers.
fn push_zeros(seq: &mut Vec<u8>, len: u32) {
    if len > ZERO_MAX_LEN {
        let l = len - 1;
        seq.push(0x40 | (l >> 8) as u8);
        seq.push((l & 0xff) as u8);
    } else {
        seq.push((len - 1) as u8);
    }
}

/// The opcodes of a sparse string's body, in order, with their positions.
fn ops(buf: &[u8]) -> impl Iterator<Item = (usize, Op)> + '_ {
    let mut pos = HEADER_LEN;
    std::iter::from_fn(move || {
        if pos >= buf.len() {
            return None;
        }
        let op = Op::at(buf, pos);
        let at = pos;
        pos += op.size();
        Some((at, op))
    })
}

/// Calls `f(register, value)` for every non-zero register of a sparse string; errs unless
/// its runs cover exactly the 16384 registers. A run past the last register makes the whole
/// string corrupt (Redis 7.0.15 as patched for CVE-2025-32023, where 7.0.15 itself
/// accepted junk after a full cover in some paths).
fn for_each_sparse(buf: &[u8], mut f: impl FnMut(usize, u8)) -> Result<(), Corrupt> {
    let mut idx = 0usize;
    for (_, op) in ops(buf) {
        let len = op.span() as usize;
        if idx + len > REGISTERS {
            return Err(Corrupt);
        }
        if let Op::Val { value, .. } = op {
            for i in idx..idx + len {
                f(i, value);
            }
        }
        idx += len;
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// An empty HyperLogLog: sparse, one XZERO over all registers, cached cardinality 0.
fn new_hll() -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER_LEN + 2);
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&[SPARSE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut seq = Vec::with_capacity(2);
    push_zeros(&mut seq, XZERO_MAX_LEN);
    buf.extend_from_slice(&seq);
    buf
}

/// Rewrites a sparse string as dense, keeping its header (cached cardinality included).
fn to_dense(buf: &mut Vec<u8>) -> Result<(), Corrupt> {
    if buf.get(ENCODING_AT) == Some(&DENSE) {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_LEN];
    dense[..HEADER_LEN].copy_from_slice(&buf[..HEADER_LEN]);
    dense[ENCODING_AT] = DENSE;
    let regs = &mut dense[HEADER_LEN..];
    for_each_sparse(buf, |i, v| dense_put(regs, i, v))?;
    *buf = dense;
    Ok(())
}

/// Raises register `index` of a sparse string to `count`, editing the opcodes in place as
/// Redis does; true if the register changed. Turns the string dense when `count` does not
/// fit a VAL opcode or the edit would make the string longer than `max_bytes`.
fn sparse_raise(
    buf: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: usize,
) -> Result<bool, Corrupt> {
    if count > VAL_MAX_VALUE {
        return promote_and_raise(buf, index, count);
    }
    // Find the opcode covering the register, and the one before it.
    let mut first = 0usize;
    let mut prev = None;
    let mut found = None;
    for (pos, op) in ops(buf) {
        if index < first + op.span() as usize {
            found = Some((pos, op));
            break;
        }
        prev = Some(pos);
        first += op.span() as usize;
    }
    let Some((pos, op)) = found else {
        return Err(Corrupt);
    };
    let merge_from = prev.unwrap_or(HEADER_LEN);
    match op {
        Op::Val { value, .. } if value >= count => return Ok(false),
        // A run of one register: overwrite the opcode.
        Op::Val { len: 1, .. }
        | Op::Zeros {
            len: 1,
            long: false,
        } => {
            buf[pos] = val_byte(count, 1);
            merge_vals(buf, merge_from);
            invalidate_cache(buf);
            return Ok(true);
        }
        _ => {}
    }
    // Split the run into (before, the register, after).
    let last = first + op.span() as usize - 1;
    let mut seq = Vec::with_capacity(5);
    match op {
        Op::Zeros { .. } => {
            if index != first {
                push_zeros(&mut seq, (index - first) as u32);
            }
            seq.push(val_byte(count, 1));
            if index != last {
                push_zeros(&mut seq, (last - index) as u32);
            }
        }
        Op::Val { value, .. } => {
            if index != first {
                seq.push(val_byte(value, (index - first) as u32));
            }
            seq.push(val_byte(count, 1));
            if index != last {
                seq.push(val_byte(value, (last - index) as u32));
            }
        }
    }
    if seq.len() > op.size() && buf.len() + seq.len() - op.size() > max_bytes {
        return promote_and_raise(buf, index, count);
    }
    replace_op(buf, pos, op.size(), &seq);
    merge_vals(buf, merge_from);
    invalidate_cache(buf);
    Ok(true)
}

/// Replaces the `old_size` bytes of the opcode at `pos` with `seq`. The string's length
/// changes by exactly `seq.len() - old_size`, even for a two-byte opcode cut short by the
/// end of the string (its missing byte counted as present, as Redis counts it).
fn replace_op(buf: &mut Vec<u8>, pos: usize, old_size: usize, seq: &[u8]) {
    let old_len = buf.len();
    let new_len = old_len + seq.len() - old_size;
    let tail_start = (pos + old_size).min(old_len);
    let tail_len = old_len - tail_start;
    let full = pos + seq.len() + tail_len;
    if full > old_len {
        buf.resize(full, 0);
    }
    buf.copy_within(tail_start..tail_start + tail_len, pos + seq.len());
    buf[pos..pos + seq.len()].copy_from_slice(seq);
    buf.truncate(new_len);
}

/// After an edit, joins adjacent VAL opcodes of equal value whose runs fit one opcode,
/// looking at up to five opcodes from `from`.
fn merge_vals(buf: &mut Vec<u8>, from: usize) {
    let mut p = from;
    let mut budget = 5;
    while p < buf.len() && budget > 0 {
        budget -= 1;
        match Op::at(buf, p) {
            Op::Zeros { long, .. } => {
                p += if long { 2 } else { 1 };
                continue;
            }
            Op::Val { value, len } => {
                if p + 1 < buf.len() {
                    if let Op::Val {
                        value: next_value,
                        len: next_len,
                    } = Op::at(buf, p + 1)
                    {
                        if next_value == value && len + next_len <= VAL_MAX_LEN {
                            buf[p + 1] = val_byte(value, len + next_len);
                            buf.copy_within(p + 1.., p);
                            buf.truncate(buf.len() - 1);
                            continue;
                        }
                    }
                }
            }
        }
        p += 1;
    }
}

fn promote_and_raise(buf: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(buf)?;
    dense_raise(&mut buf[HEADER_LEN..], index, count);
    Ok(true)
}

/// Raises register `index` to `count` in whichever encoding the string has.
fn raise(buf: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, Corrupt> {
    match buf[ENCODING_AT] {
        DENSE => Ok(dense_raise(&mut buf[HEADER_LEN..], index, count)),
        _ => sparse_raise(buf, index, count, max_bytes),
    }
}

/// Adds one element; true if a register changed.
fn add(buf: &mut Vec<u8>, element: &[u8], max_bytes: usize) -> Result<bool, Corrupt> {
    let (index, count) = register_and_run(element);
    raise(buf, index, count, max_bytes)
}

// ---------------------------------------------------------------------------------------------
// Counting
// ---------------------------------------------------------------------------------------------

/// How many registers hold each value. Values reach 63 at most.
type Histogram = [u64; 64];

fn histogram_of_registers(regs: impl Iterator<Item = u8>) -> Histogram {
    let mut h = [0u64; 64];
    for r in regs {
        h[(r & REGISTER_MAX) as usize] += 1;
    }
    h
}

/// The register histogram of a checked HyperLogLog string.
fn histogram(buf: &[u8]) -> Result<Histogram, Corrupt> {
    if buf[ENCODING_AT] == DENSE {
        let regs = &buf[HEADER_LEN..];
        return Ok(histogram_of_registers(
            (0..REGISTERS).map(|i| dense_get(regs, i)),
        ));
    }
    let mut h = [0u64; 64];
    for_each_sparse(buf, |_, v| h[v as usize] += 1)?;
    h[0] = REGISTERS as u64 - h.iter().sum::<u64>();
    Ok(h)
}

/// Ertl's σ function ("New cardinality estimation algorithms for HyperLogLog sketches").
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            return z;
        }
    }
}

/// Ertl's τ function. `x` is in [0, 1], where the series converges.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if before == z {
            return z / 3.0;
        }
    }
}

/// The cardinality estimate of a register histogram (Ertl's improved estimator, as Redis
/// 7.0 computes it, down to the conversions of its C code: an infinite estimate, from
/// registers all beyond the counted range, comes out as 2^63).
fn estimate(h: &Histogram) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - h[RUN_BITS + 1] as f64) / m);
    for j in (1..=RUN_BITS).rev() {
        z += h[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(h[0] as f64 / m);
    let e = (ALPHA_INF * m * m / z).round();
    const TWO_POW_63: f64 = (1u64 << 63) as f64;
    if e.is_finite() && e.abs() < TWO_POW_63 {
        e as i64 as u64
    } else {
        1 << 63
    }
}

fn cache_valid(buf: &[u8]) -> bool {
    buf[CARD_STALE_BYTE] & 0x80 == 0
}

fn invalidate_cache(buf: &mut [u8]) {
    buf[CARD_STALE_BYTE] |= 0x80;
}

fn cached_card(buf: &[u8]) -> u64 {
    let mut card = [0u8; 8];
    card.copy_from_slice(&buf[CARD_AT..CARD_AT + 8]);
    u64::from_le_bytes(card)
}

// ---------------------------------------------------------------------------------------------
// Access
// ---------------------------------------------------------------------------------------------

/// Checks that a value is a HyperLogLog string: `WRONGTYPE` for other types, and Redis's
/// "not a valid HyperLogLog" `WRONGTYPE` for a string with a bad header or dense length.
fn check(value: &Value) -> Result<&Str, Reply> {
    let Value::Str(s) = value else {
        return Err(error::wrongtype());
    };
    let valid = s.len() >= HEADER_LEN
        && s[..4] == MAGIC[..]
        && s[ENCODING_AT] <= SPARSE
        && (s[ENCODING_AT] != DENSE || s.len() == DENSE_LEN);
    if valid {
        Ok(s)
    } else {
        Err(Reply::err(NOT_HLL))
    }
}

/// Merges a checked HyperLogLog into `max` (register by register maximum); returns whether
/// it was dense.
fn merge_into(max: &mut [u8; REGISTERS], value: &Value) -> Result<bool, Reply> {
    let s = check(value)?;
    if s[ENCODING_AT] == DENSE {
        let regs = &s[HEADER_LEN..];
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(regs, i));
        }
        return Ok(true);
    }
    for_each_sparse(s, |i, v| max[i] = max[i].max(v)).map_err(|_| corrupted())?;
    Ok(false)
}

/// The union of the HyperLogLogs at `keys` (missing keys are empty).
fn union(ctx: &mut Ctx<'_>, keys: &[Bytes]) -> Result<([u8; REGISTERS], bool), Reply> {
    let mut max = [0u8; REGISTERS];
    let mut any_dense = false;
    for key in keys {
        if let Some(v) = ctx.lookup_read(key) {
            any_dense |= merge_into(&mut max, v)?;
        }
    }
    Ok((max, any_dense))
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/// PFADD key [element ...]: 1 if the HyperLogLog was created or a register changed.
pub fn pfadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let max_bytes = ctx.shard.config.hll_sparse_max_bytes;
    let key = &args[1];
    let elements = &args[2..];
    let add_all = |buf: &mut Vec<u8>| -> Result<u64, Corrupt> {
        let mut updated = 0;
        for e in elements {
            if add(buf, e, max_bytes)? {
                updated += 1;
            }
        }
        if updated > 0 {
            invalidate_cache(buf);
        }
        Ok(updated)
    };
    let updated = match ctx.lookup_write(key) {
        Some(v) => {
            if let Err(e) = check(v) {
                return e;
            }
            let Value::Str(s) = v else {
                return error::wrongtype();
            };
            modify_string(s, add_all)
        }
        None => {
            let mut buf = new_hll();
            let updated = add_all(&mut buf).map(|n| n + 1);
            invalidate_cache(&mut buf);
            let lru = ctx.new_lru();
            ctx.db()
                .set(key, Value::Str(Str::from_vec(buf)), lru, false);
            ctx.signal_ready(key);
            updated
        }
    };
    match updated {
        Ok(n) => {
            ctx.dirty(n);
            Reply::Int((n > 0) as i64)
        }
        Err(Corrupt) => corrupted(),
    }
}

/// PFCOUNT key [key ...]: the estimated cardinality of one HyperLogLog (caching it in the
/// value, as Redis does), or of the union of several (which modifies nothing).
pub fn pfcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    if args.len() > 2 {
        return match union(ctx, &args[1..]) {
            Ok((max, _)) => Reply::Int(estimate(&histogram_of_registers(max.into_iter())) as i64),
            Err(e) => e,
        };
    }
    let key = &args[1];
    let card = match ctx.lookup_read(key) {
        None => return Reply::Int(0),
        Some(v) => match check(v) {
            Err(e) => return e,
            Ok(s) if cache_valid(s) => return Reply::Int(cached_card(s) as i64),
            Ok(s) => match histogram(s) {
                Ok(h) => estimate(&h),
                Err(Corrupt) => return corrupted(),
            },
        },
    };
    if let Some(Value::Str(s)) = ctx.lookup_write(key) {
        modify_string(s, |buf| {
            buf[CARD_AT..CARD_AT + 8].copy_from_slice(&card.to_le_bytes())
        });
    }
    ctx.dirty(1);
    Reply::Int(card as i64)
}

/// PFMERGE destkey [sourcekey ...]: stores the union of every key given, the destination
/// included. The result is dense if any input was.
pub fn pfmerge(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let (max, any_dense) = match union(ctx, &args[1..]) {
        Ok(u) => u,
        Err(e) => return e,
    };
    let max_bytes = ctx.shard.config.hll_sparse_max_bytes;
    let write = |buf: &mut Vec<u8>| -> Result<(), Corrupt> {
        if any_dense {
            to_dense(buf)?;
        }
        for (i, &v) in max.iter().enumerate() {
            if v != 0 {
                // The destination was checked with the sources, so this cannot fail.
                let _ = raise(buf, i, v, max_bytes);
            }
        }
        invalidate_cache(buf);
        Ok(())
    };
    let dest = &args[1];
    let written = match ctx.lookup_write(dest) {
        Some(Value::Str(s)) => modify_string(s, write),
        Some(_) => return error::wrongtype(),
        None => {
            let mut buf = new_hll();
            let written = write(&mut buf);
            let lru = ctx.new_lru();
            ctx.db()
                .set(dest, Value::Str(Str::from_vec(buf)), lru, false);
            ctx.signal_ready(dest);
            written
        }
    };
    match written {
        Ok(()) => {
            ctx.dirty(1);
            Reply::Ok
        }
        Err(Corrupt) => corrupted(),
    }
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key: Redis's debugging view of a HyperLogLog.
/// GETREG and TODENSE leave the value dense.
pub fn pfdebug(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let sub = args[1].to_ascii_lowercase();
    let key = &args[2];
    let Some(v) = ctx.lookup_write(key) else {
        return Reply::err("ERR The specified key does not exist");
    };
    if let Err(e) = check(v) {
        return e;
    }
    let Value::Str(s) = v else {
        return error::wrongtype();
    };
    let sparse = s[ENCODING_AT] == SPARSE;
    match &sub[..] {
        b"getreg" | b"todense" => {
            if sparse && modify_string(s, to_dense).is_err() {
                return corrupted();
            }
            let regs: Vec<Reply> = if sub == b"getreg" {
                (0..REGISTERS)
                    .map(|i| Reply::Int(dense_get(&s[HEADER_LEN..], i) as i64))
                    .collect()
            } else {
                Vec::new()
            };
            if sparse {
                ctx.dirty(1);
            }
            if sub == b"getreg" {
                Reply::Array(regs)
            } else {
                Reply::Int(sparse as i64)
            }
        }
        b"decode" => {
            if !sparse {
                return Reply::err("ERR HLL encoding is not sparse");
            }
            let words: Vec<String> = ops(s)
                .map(|(_, op)| match op {
                    Op::Zeros { len, long: false } => format!("z:{len}"),
                    Op::Zeros { len, long: true } => format!("Z:{len}"),
                    Op::Val { value, len } => format!("v:{value},{len}"),
                })
                .collect();
            Reply::Bulk(Bytes::from(words.join(" ")))
        }
        b"encoding" => Reply::simple(if sparse { "sparse" } else { "dense" }),
        _ => Reply::error(error::sanitize(format!(
            "ERR Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(&args[1])
        ))),
    }
}

/// PFSELFTEST: checks the register packing and the estimator's error, as Redis's self test.
pub fn pfselftest(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Reply {
    let max_bytes = ctx.shard.config.hll_sparse_max_bytes;
    let seed = ctx.rand();
    match self_test(seed, 1000, 10_000_000, max_bytes) {
        Ok(()) => Reply::Ok,
        Err(msg) => Reply::error(format!("ERR TESTFAILED {msg}")),
    }
}

/// The self test: `cycles` rounds of random register writes read back, then `elements`
/// distinct elements added to a dense and a sparse HyperLogLog side by side, checking at
/// every power of ten that the sparse one stays sparse while small, that both agree and
/// that the error is within six standard errors.
fn self_test(seed: u64, cycles: usize, elements: u64, max_bytes: usize) -> Result<(), String> {
    let mut rand = crate::shard::rand_stream(seed);
    let mut dense = vec![0u8; DENSE_LEN];
    let mut expected = [0u8; REGISTERS];
    for _ in 0..cycles {
        for (i, e) in expected.iter_mut().enumerate() {
            *e = (rand() as u8) & REGISTER_MAX;
            dense_put(&mut dense[HEADER_LEN..], i, *e);
        }
        for (i, &e) in expected.iter().enumerate() {
            let got = dense_get(&dense[HEADER_LEN..], i);
            if got != e {
                return Err(format!("Register {i} should be {e} but is {got}"));
            }
        }
    }
    dense[HEADER_LEN..].fill(0);
    let mut sparse = new_hll();
    let rel_err = 1.04 / (REGISTERS as f64).sqrt();
    let base = rand();
    let mut checkpoint = 1u64;
    for j in 1..=elements {
        let element = (j ^ base).to_le_bytes();
        let (index, count) = register_and_run(&element);
        dense_raise(&mut dense[HEADER_LEN..], index, count);
        if add(&mut sparse, &element, max_bytes).is_err() {
            return Err("sparse encoding corrupted".into());
        }
        if j != checkpoint {
            continue;
        }
        if j < (max_bytes / 2) as u64 && sparse[ENCODING_AT] != SPARSE {
            return Err("sparse encoding not used".into());
        }
        let dense_card = histogram(&dense).map(|h| estimate(&h));
        if dense_card != histogram(&sparse).map(|h| estimate(&h)) {
            return Err("dense/sparse disagree".into());
        }
        let card = dense_card.unwrap_or(0);
        let abs_err = checkpoint.abs_diff(card);
        let max_err = if j == 10 {
            1
        } else {
            (rel_err * 6.0 * checkpoint as f64).ceil() as u64
        };
        if abs_err > max_err {
            return Err(format!("Too big error. card:{checkpoint} abserr:{abs_err}"));
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
