//! Redis's error replies, word for word, shared by every command family.

use shardis_resp::Reply;

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const NO_SUCH_KEY: &str = "ERR no such key";
pub const OUT_OF_RANGE: &str = "ERR index out of range";
pub const DB_INDEX: &str = "ERR DB index is out of range";
pub const INVALID_EXPIRE: &str = "ERR invalid expire time in '%s' command";
pub const TIMEOUT_NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
pub const TIMEOUT_NEGATIVE: &str = "ERR timeout is negative";

pub fn wrongtype() -> Reply {
    Reply::err(WRONGTYPE)
}

pub fn syntax() -> Reply {
    Reply::err(SYNTAX)
}

pub fn not_integer() -> Reply {
    Reply::err(NOT_INTEGER)
}

pub fn not_float() -> Reply {
    Reply::err(NOT_FLOAT)
}

/// `ERR wrong number of arguments for 'name' command`, with the name as the client sent it
/// (subcommands as `container|sub`), lower-cased as Redis 7.0 prints it.
pub fn wrong_arity(name: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{}' command",
        name.to_ascii_lowercase()
    ))
}

/// `ERR invalid expire time in 'set' command`.
pub fn invalid_expire(command: &str) -> Reply {
    Reply::error(format!(
        "ERR invalid expire time in '{}' command",
        command.to_ascii_lowercase()
    ))
}

/// `ERR unknown command 'foo', with args beginning with: 'a' 'b' `, as Redis 7.0 words it.
pub fn unknown_command(args: &[bytes::Bytes]) -> Reply {
    let name = args
        .first()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_default();
    let mut msg = format!(
        "ERR unknown command '{}', with args beginning with: ",
        truncate(&name, 128)
    );
    for a in args.iter().skip(1) {
        if msg.len() >= 128 {
            break;
        }
        let s = String::from_utf8_lossy(a);
        msg.push('\'');
        msg.push_str(&truncate(&s, 128 - msg.len().min(128)));
        msg.push_str("' ");
    }
    Reply::error(sanitize(msg))
}

/// `ERR unknown subcommand 'x'. Try CONTAINER HELP.`
pub fn unknown_subcommand(container: &str, sub: &[u8]) -> Reply {
    let sub = String::from_utf8_lossy(sub);
    Reply::error(sanitize(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        truncate(&sub, 128),
        container.to_ascii_uppercase()
    )))
}

/// `ERR unknown subcommand or wrong number of arguments for '<sub>'. Try <CMD> HELP.`: a
/// container command with a known subcommand but the wrong arguments. Redis reads both names
/// as C strings (up to a NUL).
pub fn subcommand_syntax(args: &[bytes::Bytes]) -> Reply {
    let c_str = |i: usize| {
        let a = args.get(i).map_or(&[][..], |a| &a[..]);
        let end = a.iter().position(|&b| b == 0).unwrap_or(a.len());
        String::from_utf8_lossy(&a[..end]).into_owned()
    };
    Reply::error(sanitize(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        truncate(&c_str(1), 128),
        c_str(0).to_ascii_uppercase()
    )))
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Error replies are single-line: Redis replaces CR and LF with spaces.
pub fn sanitize(mut s: String) -> String {
    if s.contains(['\r', '\n']) {
        s = s.replace(['\r', '\n'], " ");
    }
    s
}
