//! The values a key can hold, and the type names and encodings Redis reports for them.

use bytes::Bytes;

use crate::t_hash::HashValue;
use crate::t_list::ListValue;
use crate::t_set::SetValue;
use crate::t_stream::StreamValue;
use crate::t_zset::ZSetValue;

/// One key's value. Strings keep their bytes; collections their own compact or general form.
#[derive(Debug, Clone)]
pub enum Value {
    Str(Bytes),
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
