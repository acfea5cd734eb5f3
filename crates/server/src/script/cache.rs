//! EVAL scripts: their `#!` line (flags), and the cache of scripts by SHA1 that every core
//! keeps a copy of (a script loaded or run on one core is callable from all of them).

use bytes::Bytes;

use super::flags;

/// A cached script: its body, flags, and where its code starts.
#[derive(Clone, Debug)]
pub struct Script {
    pub body: Bytes,
    pub flags: u32,
    /// Offset of the code in `body`: after the `#!` line, whose newline is kept so line
    /// numbers do not change.
    pub code_at: usize,
}

impl Script {
    /// Parses a script body; errors are Redis's (without the `ERR ` prefix).
    pub fn parse(body: Bytes) -> Result<Script, String> {
        let (flags, code_at) = parse_shebang(&body)?;
        Ok(Script {
            body,
            flags,
            code_at,
        })
    }

    /// The Lua code to compile.
    pub fn code(&self) -> &[u8] {
        self.body.get(self.code_at..).unwrap_or_default()
    }

    /// Bytes the cache entry accounts for (`used_memory_scripts_eval`).
    pub fn memory(&self) -> usize {
        40 + self.body.len()
    }
}

/// The flags of a script's `#!lua` line and the length of that line; a script without one
/// runs in Redis's compatibility mode ([`flags::EVAL_COMPAT`]).
pub fn parse_shebang(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((flags::EVAL_COMPAT, 0));
    }
    let Some(end) = body.iter().position(|&c| c == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let parts = match shardis_resp::split_line(&body[..end]) {
        Some(parts) if !parts.is_empty() => parts,
        _ => return Err("Invalid engine in script shebang".into()),
    };
    if &parts[0][..] != b"#!lua" {
        return Err(format!(
            "Unexpected engine in script shebang: {}",
            String::from_utf8_lossy(&parts[0])
        ));
    }
    let mut out = 0;
    for part in &parts[1..] {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(format!(
                "Unknown lua shebang option: {}",
                String::from_utf8_lossy(part)
            ));
        };
        if list.is_empty() {
            continue;
        }
        for name in list.split(|&c| c == b',') {
            match flags::by_name(name) {
                Some(f) => out |= f,
                None => {
                    return Err(format!(
                        "Unexpected flag in script shebang: {}",
                        String::from_utf8_lossy(name)
                    ))
                }
            }
        }
    }
    Ok((out, end))
}

/// A SHA1 as given by a client (any case), lower-cased; None unless 40 bytes.
pub fn normalize_sha(sha: &[u8]) -> Option<String> {
    if sha.len() != 40 {
        return None;
    }
    Some(String::from_utf8_lossy(&sha.to_ascii_lowercase()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines() {
        assert_eq!(parse_shebang(b"return 1"), Ok((flags::EVAL_COMPAT, 0)));
        assert_eq!(parse_shebang(b"#!lua\nreturn 1"), Ok((0, 5)));
        assert_eq!(
            parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1"),
            Ok((flags::NO_WRITES | flags::ALLOW_OOM, 31))
        );
        assert_eq!(parse_shebang(b"#!lua flags=\nreturn 1"), Ok((0, 12)));
        assert_eq!(
            parse_shebang(b"#!not-lua\nreturn 1").unwrap_err(),
            "Unexpected engine in script shebang: #!not-lua"
        );
        assert_eq!(
            parse_shebang(b"#!lua badger=data\n").unwrap_err(),
            "Unknown lua shebang option: badger=data"
        );
        assert_eq!(
            parse_shebang(b"#!lua flags=allow-oom,what?\n").unwrap_err(),
            "Unexpected flag in script shebang: what?"
        );
        assert_eq!(
            parse_shebang(b"#!lua").unwrap_err(),
            "Invalid script shebang"
        );
    }
}
