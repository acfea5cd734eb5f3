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
    pub fn find(&self, args_len: usize, args: &[bytes::Bytes], out: &mut Vec<usize>) -> bool {
        let argc = args_len as i64;
        let first = match self.begin_search {
            BeginSearch::Index(pos) => pos as i64,
            BeginSearch::Keyword {
                keyword,
                start_from,
            } => {
                let found = if start_from >= 0 {
                    (start_from as i64..argc)
                        .find(|&i| args[i as usize].eq_ignore_ascii_case(keyword.as_bytes()))
                } else {
                    let start = argc + start_from as i64;
                    (1..=start.max(0)).rev().find(|&i| {
                        i < argc && args[i as usize].eq_ignore_ascii_case(keyword.as_bytes())
                    })
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
                let step = step.max(1) as i64;
                let last = if last_key >= 0 {
                    first + last_key as i64
                } else if last_key == -1 && limit > 1 {
                    first + (argc - first) / limit as i64 - 1
                } else {
                    argc + last_key as i64
                };
                let last = last.min(argc - 1);
                let mut i = first;
                while i <= last {
                    out.push(i as usize);
                    i += step;
                }
                true
            }
            FindKeys::Keynum {
                keynum_index,
                first_key,
                step,
            } => {
                let idx = first + keynum_index as i64;
                if idx >= argc {
                    return false;
                }
                let count = match std::str::from_utf8(&args[idx as usize])
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                {
                    Some(n) if n >= 0 => n,
                    _ => return false,
                };
                let start = first + first_key as i64;
                let step = step.max(1) as i64;
                let end = start + count * step; // exclusive bound of the last key's slot
                if count > 0 && end - step >= argc {
                    return false;
                }
                let mut i = start;
                for _ in 0..count {
                    out.push(i as usize);
                    i += step;
                }
                true
            }
            FindKeys::Unknown => true,
        }
    }
}
