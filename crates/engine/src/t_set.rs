//! Set commands (Redis's `t_set.c`).

use bytes::Bytes;

use crate::command::table::Registration;
use crate::dict::Dict;

pub static COMMANDS: &[Registration] = &[];

/// A set value.
#[derive(Debug, Clone, Default)]
pub struct SetValue {
    pub members: Dict<Bytes, ()>,
}

impl SetValue {
    pub fn encoding(&self) -> &'static str {
        "hashtable"
    }
}
