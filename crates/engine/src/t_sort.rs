//! SORT and SORT_RO (Redis's `sort.c`).

use crate::command::table::Registration;

pub static COMMANDS: &[Registration] = &[];
