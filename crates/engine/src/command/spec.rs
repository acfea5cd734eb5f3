//! Types of the generated command facts, and the key-finding rules they describe.

/// Where the first key of a key spec is found.
#[derive(Debug, Clone, Copy)]
pub enum BeginSearch {
    /// At this argument index (the command name is index 0).
    Index(i32),
    /// After the first argument equal to `keyword`, searching from `start_from`
    /// (negative: from the end, backwards).
    Keyword {
        keyword: &'static str,
        start_from: i32,
    },
    /// Not describable: the command finds its keys itself.
    Unknown,
}

/// How many keys follow the first one.
#[derive(Debug, Clone, Copy)]
pub enum FindKeys {
    /// Keys up to `last_key` (relative to the first key; negative counts from the end), every
    /// `step` arguments; when `last_key` is -1 and `limit` > 1, only 1/limit of the rest.
    Range {
        last_key: i32,
        step: i32,
        limit: i32,
    },
    /// The number of keys is the argument at `keynum_index` (relative to the begin-search
    /// position); keys start `first_key` after it, every `step`.
    Keynum {
        keynum_index: i32,
        first_key: i32,
        step: i32,
    },
    Unknown,
}

#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    pub begin_search: BeginSearch,
    pub find_keys: FindKeys,
    /// Lower-case Redis key-spec flags (`rw`, `ro`, `ow`, `rm`, `access`, `update`, `insert`,
    /// `delete`, `not_key`, `incomplete`, `variable_flags`).
    pub flags: &'static [&'static str],
}

/// One argument of a command's grammar, as COMMAND DOCS reports it.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    pub name: &'static str,
    /// `key`, `string`, `integer`, `double`, `pattern`, `unix-time`, `pure-token`, `oneof`, `block`.
    pub kind: &'static str,
    pub token: Option<&'static str>,
    /// Index into the command's key specs for `key` arguments, else -1.
    pub key_spec_index: i32,
    pub optional: bool,
    pub multiple: bool,
    pub multiple_token: bool,
    pub since: Option<&'static str>,
    pub arguments: &'static [Arg],
}

/// Everything Redis 7.0 says about one command (or one subcommand, with `container` set).
#[derive(Debug, Clone, Copy)]
pub struct CommandFacts {
    pub name: &'static str,
    pub container: Option<&'static str>,
    /// Redis arity: positive = exact argument count (name included), negative = at least -arity.
    pub arity: i32,
    /// Lower-case Redis command flags (`write`, `readonly`, `fast`, `admin`…).
    pub flags: &'static [&'static str],
    /// Explicit ACL categories (implicit ones are derived from the flags).
    pub acl_categories: &'static [&'static str],
    pub group: &'static str,
    pub since: &'static str,
    pub key_specs: &'static [KeySpec],
    pub arguments: &'static [Arg],
}

impl KeySpec {
    /// Appends the argument indexes of this spec's keys in `args` (index 0 = command name).
    /// Returns false when the arguments do not fit the spec (e.g. a key count that is not a
    /// number or runs past the end), which the caller reports as a syntax or arity error.
    ///
    /// Only the first `args_len` arguments are looked at (never more than `args` holds), and
    /// every index appended is below that: a count the client sends is checked against the
    /// arguments actually present before anything is appended, so the work and the memory are
    /// bounded by the request's own size whatever the numbers in it say.
    pub fn find(&self, args_len: usize, args: &[bytes::Bytes], out: &mut Vec<usize>) -> bool {
        let args = &args[..args_len.min(args.len())];
        let argc = args.len();
        let first = match self.begin_search {
            BeginSearch::Index(pos) => match usize::try_from(pos) {
                Ok(pos) => pos,
                Err(_) => return true,
            },
            BeginSearch::Keyword {
                keyword,
                start_from,
            } => {
                let is_keyword = |i: &usize| args[*i].eq_ignore_ascii_case(keyword.as_bytes());
                let found = match usize::try_from(start_from) {
                    Ok(from) => (from..argc).find(is_keyword),
                    // Negative: backwards from that far before the end, never the name.
                    Err(_) => match argc.checked_sub(start_from.unsigned_abs() as usize) {
                        Some(from) => (1..=from).rev().find(is_keyword),
                        None => None,
                    },
                };
                match found {
                    Some(i) => i + 1,
                    None => return true, // keyword absent: no keys from this spec
                }
            }
            BeginSearch::Unknown => return true,
        };
        if first >= argc {
            return true;
        }
        match self.find_keys {
            FindKeys::Range {
                last_key,
                step,
                limit,
            } => {
                let step = usize::try_from(step).unwrap_or(1).max(1);
                let last = match (usize::try_from(last_key), usize::try_from(limit)) {
                    (Ok(relative), _) => Some(first.saturating_add(relative)),
                    // Up to the end, of which only the first 1/limit holds keys.
                    (Err(_), Ok(limit)) if last_key == -1 && limit > 1 => {
                        (first + (argc - first) / limit).checked_sub(1)
                    }
                    (Err(_), _) => argc.checked_sub(last_key.unsigned_abs() as usize),
                };
                if let Some(last) = last {
                    out.extend((first..=last.min(argc - 1)).step_by(step));
                }
                true
            }
            FindKeys::Keynum {
                keynum_index,
                first_key,
                step,
            } => {
                let count_at = match usize::try_from(keynum_index) {
                    Ok(offset) => first.saturating_add(offset),
                    Err(_) => return false,
                };
                let Some(count) = args.get(count_at).and_then(|a| crate::num::parse_i64(a)) else {
                    return false;
                };
                let Ok(count) = usize::try_from(count) else {
                    return false; // negative
                };
                if count == 0 {
                    return true;
                }
                let step = usize::try_from(step).unwrap_or(1).max(1);
                let keys_from = usize::try_from(first_key)
                    .ok()
                    .and_then(|offset| first.checked_add(offset));
                // The last key's index, computed without overflow before anything is
                // appended: a count larger than the arguments present is refused here.
                let last = keys_from.and_then(|from| {
                    (count - 1)
                        .checked_mul(step)
                        .and_then(|span| from.checked_add(span))
                        .map(|last| (from, last))
                });
                match last {
                    Some((from, last)) if last < argc => {
                        out.extend((from..=last).step_by(step));
                        true
                    }
                    _ => false,
                }
            }
            FindKeys::Unknown => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    const NUMKEYS: KeySpec = KeySpec {
        begin_search: BeginSearch::Index(2),
        find_keys: FindKeys::Keynum {
            keynum_index: 0,
            first_key: 1,
            step: 1,
        },
        flags: &["ro"],
    };

    #[test]
    fn a_key_count_beyond_the_arguments_is_refused_without_allocating() {
        // BLMPOP 0 <huge> k LEFT used to compute count * step with wrap-around and push
        // that many indexes: the process aborted on the allocation.
        for huge in [
            "9223372036854775807",
            "4611686018427387904",
            "4294967297",
            "5",
            "-1",
            "-9223372036854775808",
            "18446744073709551616",
            "nan",
            "",
            "+1",
            "01",
        ] {
            let mut out = Vec::new();
            let request = args(&["blmpop", "0", huge, "k", "LEFT"]);
            assert!(!NUMKEYS.find(request.len(), &request, &mut out), "{huge}");
            assert!(out.is_empty(), "{huge}");
        }
        let mut out = Vec::new();
        let request = args(&["blmpop", "0", "2", "k", "LEFT"]);
        assert!(NUMKEYS.find(request.len(), &request, &mut out));
        assert_eq!(out, vec![3, 4]);
        out.clear();
        let request = args(&["blmpop", "0", "0", "LEFT"]);
        assert!(NUMKEYS.find(request.len(), &request, &mut out));
        assert!(out.is_empty());
        // The count itself missing: no keys (arity checks catch it before).
        let request = args(&["blmpop", "0"]);
        NUMKEYS.find(request.len(), &request, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn indexes_never_pass_the_arguments_present() {
        let request = args(&["x", "a", "b", "c"]);
        let specs = [
            (BeginSearch::Index(1), -1, 1, 0),
            (BeginSearch::Index(1), 5, 1, 0),
            (BeginSearch::Index(1), i32::MAX, i32::MAX, 0),
            (BeginSearch::Index(1), i32::MIN, 1, 0),
            (BeginSearch::Index(1), -1, 1, 2),
            (BeginSearch::Index(i32::MAX), 0, 1, 0),
            (BeginSearch::Index(-1), 0, 1, 0),
            (
                BeginSearch::Keyword {
                    keyword: "a",
                    start_from: i32::MIN,
                },
                0,
                1,
                0,
            ),
            (
                BeginSearch::Keyword {
                    keyword: "a",
                    start_from: i32::MAX,
                },
                0,
                1,
                0,
            ),
        ];
        for (begin_search, last_key, step, limit) in specs {
            let spec = KeySpec {
                begin_search,
                find_keys: FindKeys::Range {
                    last_key,
                    step,
                    limit,
                },
                flags: &[],
            };
            let mut out = Vec::new();
            // A length larger than the slice is clamped to it.
            spec.find(usize::MAX, &request, &mut out);
            assert!(out.iter().all(|&i| i < request.len()), "{spec:?}: {out:?}");
        }
        let spec = KeySpec {
            begin_search: BeginSearch::Index(1),
            find_keys: FindKeys::Keynum {
                keynum_index: i32::MAX,
                first_key: i32::MAX,
                step: i32::MAX,
            },
            flags: &[],
        };
        assert!(!spec.find(request.len(), &request, &mut Vec::new()));
    }

    #[test]
    fn range_specs_as_redis_reads_them() {
        let request = args(&["mset", "a", "1", "b", "2"]);
        let mset = KeySpec {
            begin_search: BeginSearch::Index(1),
            find_keys: FindKeys::Range {
                last_key: -1,
                step: 2,
                limit: 0,
            },
            flags: &[],
        };
        let mut out = Vec::new();
        assert!(mset.find(request.len(), &request, &mut out));
        assert_eq!(out, vec![1, 3]);
        // last_key -1 with limit 2: the first half of what follows (BLPOP-like layouts).
        let half = KeySpec {
            find_keys: FindKeys::Range {
                last_key: -1,
                step: 1,
                limit: 2,
            },
            ..mset
        };
        out.clear();
        assert!(half.find(request.len(), &request, &mut out));
        assert_eq!(out, vec![1, 2]);
        let request = args(&["x", "a"]);
        out.clear();
        assert!(half.find(request.len(), &request, &mut out));
        assert!(out.is_empty());
    }
}
