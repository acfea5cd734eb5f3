//! Redis's glob-style pattern matching (`stringmatchlen`), for KEYS, SCAN MATCH and PSUBSCRIBE.
//!
//! The syntax: `*` any run of bytes, `?` any one byte, `[abc]` / `[^abc]` a set, `[a-z]` a
//! range (either order), `\x` the byte `x` literally (inside brackets too). Quirks of Redis
//! 7.0 kept on purpose, since clients see them:
//!
//! - the empty string matches no pattern but the empty one (not even `*`);
//! - an unterminated `[` ends the pattern: `[ab` is the set `{a, b}`, `[^` matches any byte,
//!   `[` nothing;
//! - `[]` and `[]...]` match nothing (a `]` right after `[` closes the set);
//! - range bounds and bytes compare as C `char`s, i.e. signed on x86-64, so `[a-\xff]` is
//!   the range -1..=97 and matches `0` but not `b`; with `nocase` they are lower-cased
//!   with glibc's `tolower`, which maps the negative chars except -1 to 128..=254.
//!
//! Pathological patterns are cut short as Redis does: once the text after a `*` has failed
//! to match at every position, the enclosing `*`s give up instead of trying longer matches
//! (CVE-2022-36021), and recursion stops after [`MAX_NESTING`] `*`s (as Redis 7.2.6 does,
//! CVE-2024-31228) so a long pattern cannot overflow the stack.

/// Deepest `*` nesting followed; a match needing more fails.
pub const MAX_NESTING: usize = 1000;

/// True if `string` matches `pattern`; `nocase` ignores ASCII case.
pub fn matches(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    matches!(match_at(pattern, string, nocase, 0), Outcome::Match)
}

enum Outcome {
    Match,
    NoMatch,
    /// No match, and none is possible with a longer match for an enclosing `*` either.
    GiveUp,
}

fn match_at(mut p: &[u8], mut s: &[u8], nocase: bool, depth: usize) -> Outcome {
    if depth > MAX_NESTING {
        return Outcome::NoMatch;
    }
    while let (Some((&pc, p_rest)), Some((&sc, s_rest))) = (p.split_first(), s.split_first()) {
        p = match pc {
            b'*' => return star(skip_stars(p), s, nocase, depth),
            b'?' => p_rest,
            b'[' => match bracket(p_rest, sc, nocase) {
                (true, rest) => rest,
                (false, _) => return Outcome::NoMatch,
            },
            _ => match literal(p) {
                (lit, rest) if bytes_eq(lit, sc, nocase) => rest,
                _ => return Outcome::NoMatch,
            },
        };
        s = s_rest;
        if s.is_empty() {
            // Trailing stars match the empty rest (but a string that starts empty is only
            // matched by the empty pattern: Redis never gets here for it).
            p = skip_stars(p);
            break;
        }
    }
    if p.is_empty() && s.is_empty() {
        Outcome::Match
    } else {
        Outcome::NoMatch
    }
}

/// A `*` (already skipped, with its repeats) followed by `rest`, against the non-empty `s`.
fn star(rest: &[u8], mut s: &[u8], nocase: bool, depth: usize) -> Outcome {
    if rest.is_empty() {
        return Outcome::Match;
    }
    while !s.is_empty() {
        match match_at(rest, s, nocase, depth + 1) {
            Outcome::NoMatch => {}
            done => return done,
        }
        s = s.get(1..).unwrap_or_default();
    }
    // `rest` matches no suffix of `s`: an enclosing `*` matching more would only leave a
    // shorter suffix for it, so stop everything.
    Outcome::GiveUp
}

fn skip_stars(p: &[u8]) -> &[u8] {
    let stars = p.iter().take_while(|&&b| b == b'*').count();
    p.get(stars..).unwrap_or_default()
}

/// The byte a literal stands for (after a `\` escape, unless the `\` ends the pattern) and
/// the pattern after it.
fn literal(p: &[u8]) -> (u8, &[u8]) {
    match p {
        [b'\\', escaped, rest @ ..] => (*escaped, rest),
        [b, rest @ ..] => (*b, rest),
        [] => (0, p),
    }
}

/// Matches `c` against the set whose text follows `[`; returns the verdict and the pattern
/// after the closing `]` (or the empty rest of an unterminated set).
fn bracket(mut p: &[u8], c: u8, nocase: bool) -> (bool, &[u8]) {
    let negate = p.first() == Some(&b'^');
    if negate {
        p = p.get(1..).unwrap_or_default();
    }
    let mut matched = false;
    loop {
        p = match p {
            // An escape inside a set compares exactly, even with nocase (as Redis).
            [b'\\', escaped, rest @ ..] => {
                matched |= *escaped == c;
                rest
            }
            [b']', rest @ ..] => {
                p = rest;
                break;
            }
            [] => break,
            [lo, b'-', hi, rest @ ..] => {
                matched |= in_range(*lo, *hi, c, nocase);
                rest
            }
            [b, rest @ ..] => {
                matched |= bytes_eq(*b, c, nocase);
                rest
            }
        };
    }
    (matched != negate, p)
}

fn bytes_eq(a: u8, b: u8, nocase: bool) -> bool {
    // glibc's `tolower` is injective apart from A-Z, so this is Redis's comparison.
    if nocase {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// `c` within `lo..=hi` (or `hi..=lo`), compared as Redis does on x86-64 Linux.
fn in_range(lo: u8, hi: u8, c: u8, nocase: bool) -> bool {
    let (mut start, mut end, mut c) = (c_char(lo), c_char(hi), c_char(c));
    if start > end {
        std::mem::swap(&mut start, &mut end);
    }
    if nocase {
        (start, end, c) = (c_tolower(start), c_tolower(end), c_tolower(c));
    }
    start <= c && c <= end
}

/// A byte as a C `char` promoted to `int`: signed on x86-64.
fn c_char(b: u8) -> i32 {
    i32::from(b as i8)
}

/// glibc's `tolower` in the C locale: A-Z lowered, -1 (EOF) kept, other negative values
/// mapped to their unsigned byte.
fn c_tolower(c: i32) -> i32 {
    match c {
        -1 => -1,
        -128..=-2 => c + 256,
        65..=90 => c + 32,
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(pattern: &str, string: &str) -> bool {
        matches(pattern.as_bytes(), string.as_bytes(), false)
    }

    fn mi(pattern: &str, string: &str) -> bool {
        matches(pattern.as_bytes(), string.as_bytes(), true)
    }

    #[test]
    fn keyspace_tcl_keys_patterns() {
        let keys = ["key_x", "key_y", "key_z", "foo_a", "foo_b", "foo_c"];
        let foo: Vec<&str> = keys.iter().copied().filter(|k| m("foo*", k)).collect();
        assert_eq!(foo, ["foo_a", "foo_b", "foo_c"]);
        assert!(keys.iter().all(|k| m("*", k)));
        assert!(m("*", "dlskeriewrioeuwqoirueioqwrueoqwrueqw"));
        // "Regression for pattern matching long nested loops": must fail, and fast.
        let a40 = "a".repeat(40);
        assert!(!m("a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", &a40));
    }

    #[test]
    fn scan_and_pubsub_tcl_patterns() {
        assert!(m("key:1??", "key:123"));
        assert!(!m("key:1??", "key:23"));
        assert!(!m("key:1??", "key:1234"));
        assert!(m("*a*", "xay"));
        assert!(m("*1*", "1"));
        assert!(!m("*a*", "xyz"));
        assert!(m("foo.*", "foo.bar"));
        assert!(!m("foo.*", "foo"));
        assert!(m("ch*", "chan1"));
        assert!(m("chan.*", "chan.x"));
    }

    #[test]
    fn documented_examples() {
        for s in ["hello", "hallo", "hxllo"] {
            assert!(m("h?llo", s));
        }
        for s in ["hllo", "heeeello"] {
            assert!(m("h*llo", s));
        }
        assert!(m("h[ae]llo", "hello") && m("h[ae]llo", "hallo") && !m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo") && m("h[^e]llo", "hbllo") && !m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hallo") && m("h[a-b]llo", "hbllo") && !m("h[a-b]llo", "hcllo"));
    }

    #[test]
    fn stars() {
        assert!(m("", ""));
        assert!(
            !m("*", ""),
            "Redis 7.0: the empty string matches only the empty pattern"
        );
        assert!(!m("**", ""));
        assert!(!m("", "a"));
        assert!(m("a*", "a"));
        assert!(m("a***", "a"));
        assert!(m("a*b", "ab"));
        assert!(m("a*b", "axxb"));
        assert!(!m("a*b", "axxbc"));
        assert!(m("*b*", "abc"));
        assert!(m("**x**", "x"));
        assert!(m("*?", "a"));
        assert!(!m("?", ""));
        assert!(!m("??", "a"));
    }

    #[test]
    fn sets_and_ranges() {
        assert!(m("[abc]", "b"));
        assert!(!m("[abc]", "d"));
        assert!(m("[^abc]", "d"));
        assert!(!m("[^abc]", "a"));
        assert!(m("[a-z]", "m"));
        assert!(m("[z-a]", "m"), "reversed range");
        assert!(!m("[a-z]", "M"));
        assert!(m("[0-9a-f]x", "cx"));
        assert!(m("[a-]", "]"), "range from a down to ]");
        assert!(m("[-a]", "-"));
        assert!(!m("[]", "]"), "[] is empty");
        assert!(!m("[]a]", "a"));
        assert!(m("[\\]]", "]"));
        assert!(m("[\\-]", "-"));
        assert!(m("[a\\]", "]"), "an escaped ] leaves the set unterminated");
        assert!(m("[a\\", "\\"), "a trailing backslash in a set is literal");
    }

    #[test]
    fn unterminated_sets() {
        assert!(!m("[", "a"));
        assert!(!m("[", "["));
        assert!(m("[^", "a"));
        assert!(!m("[^", ""));
        assert!(m("[ab", "b"));
        assert!(!m("[ab", "bx"));
        assert!(m("[a-", "-"));
        assert!(m("x[a", "xa"));
    }

    #[test]
    fn escapes() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("\\?", "?"));
        assert!(!m("\\?", "x"));
        assert!(m("\\[a]", "[a]"));
        assert!(m("a\\", "a\\"), "a trailing backslash is literal");
        assert!(m("\\\\", "\\"));
        assert!(m("\\a", "a"));
        assert!(m("*\\*", "abc*"));
    }

    #[test]
    fn nocase() {
        assert!(mi("HELLO", "hello"));
        assert!(mi("h?LLo", "HeLlO"));
        assert!(mi("[A-Z]", "q"));
        assert!(mi("[a-z]", "Q"));
        assert!(mi("[AB]", "b"));
        assert!(mi("\\A", "a"), "an escape outside a set honours nocase");
        assert!(!mi("[\\A]", "a"), "an escape inside a set does not");
        assert!(!m("HELLO", "hello"));
        // Bounds are swapped before lower-casing: Z..=a becomes z..=a, an empty range.
        assert!(!mi("[Z-a]", "_"));
        assert!(m("[Z-a]", "_"));
    }

    #[test]
    fn high_bytes_compare_as_signed_chars() {
        let b = |p: &[u8], s: &[u8], nocase| matches(p, s, nocase);
        assert!(b(b"[a-\xff]", b"0", false));
        assert!(!b(b"[a-\xff]", b"b", false));
        assert!(b(b"[a-\xff]", b"\xff", false));
        assert!(b(b"[\x80-\xc0]", b"\xa0", false));
        // nocase lower-cases the bounds to unsigned values (except 0xff, which stays -1).
        assert!(b(b"[\x80-\xc0]", b"\xa0", true));
        // -2..=97 is swapped first, then lowered to 254..=97: empty.
        assert!(!b(b"[a-\xfe]", b"b", true));
        assert!(!b(b"[a-\xfe]", b"0", true));
        assert!(b(b"[a-\xfe]", b"0", false));
        assert!(b(b"\xe9", b"\xe9", true));
        assert!(!b(b"\xe9", b"\xc9", true), "no case folding beyond ASCII");
        assert!(b(b"a\x00*", b"a\x00bc", false), "binary safe");
    }

    #[test]
    fn many_stars_are_fast() {
        let s = "a".repeat(10_000);
        let p = format!("{}b", "a*".repeat(500));
        assert!(!m(&p, &s));
        assert!(m(&format!("{}a", "*a".repeat(100)), &s));
        assert!(!m(&"*?".repeat(5000), "short"));
        // Without the give-up rule each of these takes exponential time (every split of the
        // string among the stars); with it, pattern length times string length at most.
        let long = "a".repeat(100_000);
        for pattern in [
            format!("{}b", "*a".repeat(200)),
            format!("{}*b", "a*".repeat(200)),
            format!("{}b", "*?".repeat(200)),
            format!("{}b", "*[a-z]".repeat(200)),
            format!("{}b", "*[^b]".repeat(200)),
            format!("*{}*b", "a".repeat(50)),
        ] {
            assert!(!m(&pattern, &long), "{pattern}");
            assert!(!mi(&pattern.to_uppercase(), &long), "{pattern}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        // Far deeper than the stack could take if each `*` recursed.
        let deep = "*a".repeat(1_000_000);
        let s = "a".repeat(2_000_000);
        assert!(!m(&deep, &s), "beyond MAX_NESTING a match fails");
        let ok = "*a".repeat(MAX_NESTING);
        assert!(m(&ok, &s[..MAX_NESTING + 5]));
    }

    /// The matcher without the give-up shortcut or nesting limit: every `*` tries every
    /// split. The real one must agree with it.
    fn reference(p: &[u8], s: &[u8], nocase: bool) -> bool {
        let (mut p, mut s) = (p, s);
        while let (Some((&pc, p_rest)), Some((&sc, s_rest))) = (p.split_first(), s.split_first()) {
            p = match pc {
                b'*' => {
                    let rest = skip_stars(p);
                    return rest.is_empty()
                        || (0..s.len()).any(|i| reference(rest, &s[i..], nocase));
                }
                b'?' => p_rest,
                b'[' => match bracket(p_rest, sc, nocase) {
                    (true, rest) => rest,
                    (false, _) => return false,
                },
                _ => match literal(p) {
                    (lit, rest) if bytes_eq(lit, sc, nocase) => rest,
                    _ => return false,
                },
            };
            s = s_rest;
            if s.is_empty() {
                p = skip_stars(p);
                break;
            }
        }
        p.is_empty() && s.is_empty()
    }

    fn glob_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(&b"ab*?[]^-\\A\xff"[..]), 0..max)
    }

    proptest! {
        #[test]
        fn never_panics(p in prop::collection::vec(any::<u8>(), 0..40),
                        s in prop::collection::vec(any::<u8>(), 0..40),
                        nocase in any::<bool>()) {
            matches(&p, &s, nocase);
        }

        #[test]
        fn agrees_with_exhaustive_matcher(p in glob_bytes(12), s in glob_bytes(12),
                                          nocase in any::<bool>()) {
            prop_assert_eq!(matches(&p, &s, nocase), reference(&p, &s, nocase));
        }

        #[test]
        fn literal_patterns_match_only_equal_strings(
            p in "[a-zA-Z0-9_:.-]{0,20}",
            s in "[a-zA-Z0-9_:.-]{0,20}",
        ) {
            prop_assert_eq!(m(&p, &s), p == s);
            prop_assert!(m(&p, &p));
            prop_assert_eq!(mi(&p, &s), p.eq_ignore_ascii_case(&s));
            prop_assert!(mi(&p, &p.to_uppercase()));
        }
    }
}
