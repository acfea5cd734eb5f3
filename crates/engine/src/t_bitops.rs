//! Bit commands on strings (Redis's `bitops.c`): SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD.

use crate::command::table::Registration;

pub static COMMANDS: &[Registration] = &[];
