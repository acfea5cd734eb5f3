//! The values a key can hold, the string form they share, and the type names and encodings
//! Redis reports for them.
//!
//! A `Value` is 32 bytes: every form sits in 24 (collections box their large forms), so that a
//! keyspace entry (value, access field and snapshot epoch, expiry slot) is 40 (see `db.rs`).

use bytes::Bytes;

use crate::t_hash::HashValue;
use crate::t_list::ListValue;
use crate::t_set::SetValue;
use crate::t_stream::StreamValue;
use crate::t_zset::ZSetValue;

/// One key's value. Strings keep their bytes; collections their own compact or general form.
#[derive(Debug, Clone)]
pub enum Value {
    Str(Str),
    List(ListValue),
    Hash(HashValue),
    Set(SetValue),
    ZSet(ZSetValue),
    /// Boxed: a stream's header is much larger than the other values.
    Stream(Box<StreamValue>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// A deep copy sharing no allocation with `self` (a clone shares string bytes and sorted
    /// set members): what a shard stores when a value comes from another core, so that its
    /// memory is allocated, and counted, on the shard's own core.
    pub fn reallocated(&self) -> Value {
        match self {
            Value::Str(s) => Value::Str(Str::new(s)),
            Value::List(l) => Value::List(l.clone()),
            Value::Hash(h) => Value::Hash(h.reallocated()),
            Value::Set(s) => Value::Set(s.reallocated()),
            Value::ZSet(z) => Value::ZSet(z.reallocated()),
            // Nodes and pending entries are copied; only group and consumer names (a few bytes
            // each) stay shared with the sending core.
            Value::Stream(s) => Value::Stream(s.clone()),
        }
    }

    /// The work of freeing the value, as Redis's `lazyfreeGetFreeEffort`: one for a string
    /// or a compact encoding, one per element of a table, one per node of a list.
    pub fn free_effort(&self) -> usize {
        match self {
            Value::Str(_) => 1,
            Value::List(l) => l.free_effort(),
            Value::Hash(h) => h.free_effort(),
            Value::Set(s) => s.free_effort(),
            Value::ZSet(z) => z.free_effort(),
            Value::Stream(s) => s.free_effort(),
        }
    }

    /// Frees up to `max` units of the value's work (see [`Value::free_effort`]), leaving the
    /// rest valid; returns the work done. A value reduced to nothing has `free_effort` 0 or 1.
    pub fn shed(&mut self, max: usize) -> usize {
        match self {
            Value::Str(s) => {
                *s = Str::new(b"");
                1
            }
            Value::List(l) => l.shed(max),
            Value::Hash(h) => h.shed(max),
            Value::Set(s) => s.shed(max),
            Value::ZSet(z) => z.shed(max),
            Value::Stream(s) => s.shed(max),
        }
    }

    /// True once nothing of the value is left to free.
    pub fn is_shed(&self) -> bool {
        match self {
            Value::Str(s) => s.is_empty(),
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
            Value::Stream(s) => s.free_effort() == 0,
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => string_encoding(s),
            Value::List(l) => l.encoding(),
            Value::Hash(h) => h.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
        }
    }
}

/// Redis stores a string that is a canonical 64-bit integer as `int`, a short one (≤ 44 bytes)
/// as `embstr`, anything else as `raw`.
pub fn string_encoding(s: &[u8]) -> &'static str {
    if s.len() <= 20 && crate::num::parse_i64(s).is_some_and(|n| crate::num::i64_canonical(s, n)) {
        "int"
    } else if s.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

/// Strings up to this many bytes live in the value itself, with no allocation of their own.
pub const INLINE_STR: usize = 22;

/// Strings from this many bytes on are shared with the replies that read them.
pub const SHARED_STR: usize = 16 * 1024;

/// A string value: in place when short, else in a block of exactly its size; a string edited
/// in place (APPEND, SETRANGE, SETBIT…) moves to a growable buffer, so that repeated edits
/// grow it amortized. Up to [`SHARED_STR`] a reply copies the bytes out (as Redis copies a
/// value into its reply buffer; cheaper than a shared handle on a small string). A larger
/// string is shared with its replies: a pipeline of GETs of a 64 MB value would otherwise hold
/// a copy per reply until the client reads them, and the 32-byte handle is nothing at that
/// size. A clone of a shared string shares it; [`Str::new`] over its bytes copies it.
#[derive(Clone)]
pub enum Str {
    Inline { len: u8, bytes: [u8; INLINE_STR] },
    Exact(Box<[u8]>),
    Growable(Box<Vec<u8>>),
    Shared(Box<Bytes>),
}

impl Str {
    pub fn new(bytes: &[u8]) -> Str {
        if bytes.len() >= SHARED_STR {
            Str::Shared(Box::new(Bytes::copy_from_slice(bytes)))
        } else if bytes.len() <= INLINE_STR {
            let mut inline = [0; INLINE_STR];
            inline[..bytes.len()].copy_from_slice(bytes);
            Str::Inline {
                len: bytes.len() as u8,
                bytes: inline,
            }
        } else {
            Str::Exact(bytes.into())
        }
    }

    /// A string from a buffer built by a command, stored as `new` would store its bytes.
    pub fn from_vec(buf: Vec<u8>) -> Str {
        if buf.len() <= INLINE_STR {
            Str::new(&buf)
        } else if buf.len() >= SHARED_STR {
            Str::Shared(Box::new(Bytes::from(buf)))
        } else {
            Str::Exact(buf.into_boxed_slice())
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Str::Inline { len, bytes } => &bytes[..usize::from(*len).min(INLINE_STR)],
            Str::Exact(b) => b,
            Str::Growable(v) => v,
            Str::Shared(b) => b,
        }
    }

    /// The bytes for a reply: a copy, or the shared bytes of a large string.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Str::Shared(b) => Bytes::clone(b),
            other => Bytes::copy_from_slice(other.as_bytes()),
        }
    }

    /// The string as a growable buffer, for editing in place.
    pub fn make_mut(&mut self) -> &mut Vec<u8> {
        match self {
            Str::Growable(v) => v,
            other => {
                *other = Str::Growable(Box::new(other.as_bytes().to_vec()));
                other.make_mut()
            }
        }
    }

    /// Heap bytes the string holds beyond the value itself (MEMORY USAGE).
    pub fn allocated_bytes(&self) -> usize {
        match self {
            Str::Inline { .. } => 0,
            Str::Exact(b) => b.len(),
            Str::Growable(v) => std::mem::size_of::<Vec<u8>>() + v.capacity(),
            Str::Shared(b) => std::mem::size_of::<Bytes>() + b.len(),
        }
    }
}

impl std::ops::Deref for Str {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for Str {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_entries_stay_small() {
        assert_eq!(std::mem::size_of::<Str>(), 24);
        assert_eq!(std::mem::size_of::<Value>(), 32);
        assert_eq!(std::mem::size_of::<crate::db::Entry>(), 40);
        assert_eq!(
            crate::dict::Dict::<crate::key::Key, crate::db::Entry>::node_bytes(),
            64
        );
    }

    #[test]
    fn strings_live_inline_exact_or_growable() {
        for len in [
            0,
            1,
            INLINE_STR,
            INLINE_STR + 1,
            1000,
            SHARED_STR - 1,
            SHARED_STR,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let s = Str::new(&bytes);
            assert_eq!(s.as_bytes(), &bytes[..]);
            assert_eq!(s.to_bytes(), &bytes[..]);
            assert_eq!(matches!(s, Str::Inline { .. }), len <= INLINE_STR);
            assert_eq!(matches!(s, Str::Shared(_)), len >= SHARED_STR);
            assert_eq!(Str::from_vec(bytes.clone()).as_bytes(), &bytes[..]);
            let mut g = s.clone();
            g.make_mut().extend_from_slice(b"tail");
            assert!(matches!(g, Str::Growable(_)));
            assert_eq!(&g[..len], &bytes[..]);
            assert_eq!(&g[len..], b"tail");
            assert_eq!(
                s.as_bytes(),
                &bytes[..],
                "an edit changes only its own string"
            );
        }
        // A large string's reply shares its bytes; a reallocated value shares nothing.
        let big = Str::new(&[7; SHARED_STR]);
        assert_eq!(big.to_bytes().as_ptr(), big.as_ptr());
        let Value::Str(copy) = Value::Str(big.clone()).reallocated() else {
            unreachable!()
        };
        assert_ne!(copy.as_ptr(), big.as_ptr());
        assert_eq!(copy.as_bytes(), big.as_bytes());
    }
}
