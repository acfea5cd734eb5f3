//! List commands (Redis's `t_list.c`).

use bytes::Bytes;
use std::collections::VecDeque;

use crate::command::table::Registration;

pub static COMMANDS: &[Registration] = &[];

/// A list value.
#[derive(Debug, Clone, Default)]
pub struct ListValue {
    pub items: VecDeque<Bytes>,
}

impl ListValue {
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }
}
