//! Redis's glob-style pattern matching (`stringmatchlen`), for KEYS, SCAN MATCH and PSUBSCRIBE.

/// True if `string` matches `pattern` (`*`, `?`, `[...]` with `^` and ranges, `\` escapes).
pub fn matches(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let _ = (pattern, string, nocase);
    unimplemented_glob()
}

fn unimplemented_glob() -> bool {
    false
}
