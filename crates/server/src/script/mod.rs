//! Lua scripting: EVAL and its variants, SCRIPT, FUNCTION and FCALL, as Redis 7.0.
//!
//! - [`vm`]: one Lua 5.1 interpreter with Redis's environment ([`sandbox`], [`api`],
//!   [`libs`]) and the conversions between replies and Lua values ([`convert`]).
//! - [`cache`]: scripts and their `#!lua` flags; [`functions`]: function libraries.
//! - [`state`]: what each core keeps (interpreters, its copy of the script cache and of the
//!   libraries, its running script).
//! - [`run`]: running a script atomically, on a stack of its own so that it can wait for
//!   other cores; [`roaming`]: scripts under the lock of every shard, batched per core;
//!   [`busy`]: long scripts, BUSY replies, SCRIPT/FUNCTION KILL.
//! - [`commands`]: EVAL, FCALL, SCRIPT and FUNCTION.
//!
//! This layer sits beside `cmd`: it runs the commands a script calls through
//! `conn::dispatch`, as a client would.

pub mod api;
pub mod busy;
pub mod cache;
pub mod commands;
pub mod convert;
pub mod functions;
pub mod libs;
pub mod lua;
pub mod roaming;
pub mod run;
pub mod sandbox;
pub mod state;
pub mod vm;

/// Script flags, from a script's `#!lua flags=` line or a function's registration.
pub mod flags {
    pub const NO_WRITES: u32 = 1 << 0;
    pub const ALLOW_OOM: u32 = 1 << 1;
    pub const ALLOW_STALE: u32 = 1 << 2;
    pub const NO_CLUSTER: u32 = 1 << 3;
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 4;
    /// An EVAL script without a shebang line: Redis's backwards compatible mode.
    pub const EVAL_COMPAT: u32 = 1 << 8;

    /// The flags in Redis's order, with their names.
    pub const NAMES: &[(u32, &str)] = &[
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];

    /// The flag named `name` (exact, lower case).
    pub fn by_name(name: &[u8]) -> Option<u32> {
        NAMES
            .iter()
            .find(|(_, n)| n.as_bytes() == name)
            .map(|(f, _)| *f)
    }
}

/// The SHA1 of `data` in lower-case hexadecimal, as Redis names scripts.
pub fn sha1hex(data: &[u8]) -> [u8; 40] {
    let digest = sha1_smol::Sha1::from(data).digest().bytes();
    let mut out = [0u8; 40];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in digest.iter().enumerate() {
        out[i * 2] = HEX[(b >> 4) as usize];
        out[i * 2 + 1] = HEX[(b & 15) as usize];
    }
    out
}

#[cfg(test)]
mod tests;
