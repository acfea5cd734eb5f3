//! The values a key can hold, and the type names and encodings Redis reports for them.

use bytes::Bytes;

use crate::t_hash::HashValue;
use crate::t_list::ListValue;
use crate::t_set::SetValue;
use crate::t_zset::ZSetValue;

/// One key's value. Strings keep their bytes; collections their own compact or general form.
#[derive(Debug, Clone)]
pub enum Value {
    Str(Bytes),
    List(ListValue),
    Hash(HashValue),
    Set(SetValue),
    ZSet(ZSetValue),
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
        }
    }

    /// A deep copy sharing no allocation with `self` (a clone shares string bytes and sorted
    /// set members): what a shard stores when a value comes from another core, so that its
    /// memory is allocated, and counted, on the shard's own core.
    pub fn reallocated(&self) -> Value {
        match self {
            Value::Str(s) => Value::Str(Bytes::copy_from_slice(s)),
            Value::List(l) => Value::List(l.clone()),
            Value::Hash(h) => Value::Hash(h.reallocated()),
            Value::Set(s) => Value::Set(s.reallocated()),
            Value::ZSet(z) => Value::ZSet(z.reallocated()),
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
        }
    }

    /// Frees up to `max` units of the value's work (see [`Value::free_effort`]), leaving the
    /// rest valid; returns the work done. A value reduced to nothing has `free_effort` 0 or 1.
    pub fn shed(&mut self, max: usize) -> usize {
        match self {
            Value::Str(s) => {
                *s = Bytes::new();
                1
            }
            Value::List(l) => l.shed(max),
            Value::Hash(h) => h.shed(max),
            Value::Set(s) => s.shed(max),
            Value::ZSet(z) => z.shed(max),
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
