//! Sorted set commands (Redis's `t_zset.c`).

use bytes::Bytes;

use crate::command::table::Registration;
use crate::dict::Dict;

pub static COMMANDS: &[Registration] = &[];

/// A sorted set value.
#[derive(Debug, Clone, Default)]
pub struct ZSetValue {
    pub scores: Dict<Bytes, f64>,
}

impl ZSetValue {
    pub fn encoding(&self) -> &'static str {
        "skiplist"
    }
}
