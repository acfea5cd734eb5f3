//! The arguments shared by SCAN, HSCAN, SSCAN and ZSCAN: the cursor and MATCH / COUNT / TYPE.

use bytes::Bytes;
use shardis_resp::Reply;

use crate::error;
use crate::num;

/// Parsed options of a SCAN-family command.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Glob pattern; None when absent or exactly `*`.
    pub pattern: Option<Bytes>,
    /// How much work one call should do (a hint, as in Redis); at least 1.
    pub count: usize,
    /// SCAN's TYPE filter, as a type name.
    pub type_name: Option<Bytes>,
}

/// Parses a cursor as Redis does (`strtoul`: an unsigned decimal, no spaces).
pub fn parse_cursor(arg: &[u8]) -> Result<u64, Reply> {
    num::parse_u64(arg).ok_or_else(|| Reply::err("ERR invalid cursor"))
}

/// Parses the options starting at `args[first]`; `allow_type` is true only for SCAN.
pub fn parse_options(args: &[Bytes], first: usize, allow_type: bool) -> Result<ScanOptions, Reply> {
    let mut opts = ScanOptions {
        count: 10,
        ..ScanOptions::default()
    };
    let mut i = first;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        let opt = &args[i];
        if opt.eq_ignore_ascii_case(b"count") && has_value {
            let n = num::parse_i64(&args[i + 1]).ok_or_else(error::not_integer)?;
            if n < 1 {
                return Err(error::syntax());
            }
            opts.count = n as usize;
        } else if opt.eq_ignore_ascii_case(b"match") && has_value {
            let p = &args[i + 1];
            opts.pattern = if &p[..] == b"*" {
                None
            } else {
                Some(p.clone())
            };
        } else if allow_type && opt.eq_ignore_ascii_case(b"type") && has_value {
            opts.type_name = Some(args[i + 1].clone());
        } else {
            return Err(error::syntax());
        }
        i += 2;
    }
    Ok(opts)
}

impl ScanOptions {
    /// True if `item` passes the MATCH filter.
    pub fn matches(&self, item: &[u8]) -> bool {
        self.pattern
            .as_ref()
            .is_none_or(|p| crate::glob::matches(p, item, false))
    }
}

/// The SCAN-family reply: `[next-cursor, [items…]]`.
pub fn reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(cursor.to_string())),
        Reply::Array(items),
    ])
}
