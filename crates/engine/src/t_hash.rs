//! Hash commands (Redis's `t_hash.c`).

use bytes::Bytes;

use crate::command::table::Registration;
use crate::dict::Dict;

pub static COMMANDS: &[Registration] = &[];

/// A hash value.
#[derive(Debug, Clone, Default)]
pub struct HashValue {
    pub fields: Dict<Bytes, Bytes>,
}

impl HashValue {
    pub fn encoding(&self) -> &'static str {
        "hashtable"
    }
}
