//! The primary's replies a replica parses during its handshake, as pure functions of the
//! reply line: PSYNC's answer (`+FULLRESYNC <replid> <offset>` / `+CONTINUE [<replid>]`), the
//! full sync payload's header (`$<length>` or `$EOF:<40-byte mark>`), and the offset a
//! reconnection resumes from. Kept apart from the socket so hostile replies can be fuzzed
//! (`fuzz/fuzz_targets/replica_replies.rs`).

/// What PSYNC was answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Psync {
    /// A full sync follows; the stream starts after `offset` of history `replid`.
    Full { replid: String, offset: i64 },
    /// A partial resync: the stream goes on (`replid`: the primary's id if it says one).
    Continue { replid: Option<String> },
}

/// Parses PSYNC's reply line. An offset the replica could not count on from (negative, or
/// so close to `i64::MAX` that adding the stream to it would overflow) is refused as a bad
/// reply: the link retries rather than keeping a position it cannot move.
pub fn psync_reply(reply: &str) -> Result<Psync, String> {
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC") {
        let mut words = rest.split_whitespace();
        let replid = words.next().unwrap_or_default().to_string();
        let offset = words
            .next()
            .and_then(|o| o.parse::<i64>().ok())
            .filter(|o| (0..=MAX_OFFSET).contains(o))
            .ok_or_else(|| format!("bad FULLRESYNC reply: '{reply}'"))?;
        return Ok(Psync::Full { replid, offset });
    }
    if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        let replid = rest.split_whitespace().next().map(str::to_string);
        return Ok(Psync::Continue { replid });
    }
    Err(format!("unexpected reply to PSYNC: '{reply}'"))
}

/// The largest starting offset taken from a primary: half of `i64`'s range, which leaves
/// room for more stream than any link carries.
pub const MAX_OFFSET: i64 = i64::MAX / 2;

/// How a full sync's payload is delimited.
#[derive(Debug, PartialEq, Eq)]
pub enum Payload {
    /// This many bytes.
    Length(u64),
    /// Up to these 40 bytes (the diskless form).
    Mark(Vec<u8>),
}

/// Parses the line announcing the payload.
pub fn payload_header(header: &str) -> Result<Payload, String> {
    let spec = header.strip_prefix('$').ok_or_else(|| {
        format!("bad protocol from MASTER, the first byte is not '$': '{header}'")
    })?;
    match spec.strip_prefix("EOF:") {
        Some(mark) if mark.len() == 40 => Ok(Payload::Mark(mark.as_bytes().to_vec())),
        Some(_) => Err("bad EOF mark from the primary".into()),
        None => spec
            .parse::<u64>()
            .map(Payload::Length)
            .map_err(|_| format!("bad RDB length from the primary: '{header}'")),
    }
}

/// PSYNC's arguments to resume history `replid` after `offset` (the last byte applied); a
/// full sync (`? -1`) when there is nothing to resume or the offset cannot move on.
pub fn resume_args(resume: Option<&(String, i64)>) -> (String, String) {
    match resume.and_then(|(id, offset)| Some((id, offset.checked_add(1)?))) {
        Some((id, from)) => (id.clone(), from.to_string()),
        None => ("?".to_string(), "-1".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psync_replies() {
        assert_eq!(
            psync_reply("+FULLRESYNC abc 42"),
            Ok(Psync::Full {
                replid: "abc".into(),
                offset: 42
            })
        );
        assert_eq!(
            psync_reply("+CONTINUE"),
            Ok(Psync::Continue { replid: None })
        );
        assert_eq!(
            psync_reply("+CONTINUE def"),
            Ok(Psync::Continue {
                replid: Some("def".into())
            })
        );
        assert!(psync_reply("-ERR no").is_err());
        assert!(psync_reply("+FULLRESYNC abc").is_err());
        assert!(psync_reply("+FULLRESYNC abc x").is_err());
    }

    #[test]
    fn hostile_offsets_are_bad_replies() {
        // A primary announcing the last offset i64 holds would make the next PSYNC (offset
        // + 1) and every byte of stream overflow.
        assert!(psync_reply("+FULLRESYNC abc 9223372036854775807").is_err());
        assert!(psync_reply("+FULLRESYNC abc -5").is_err());
        assert!(psync_reply(&format!("+FULLRESYNC abc {MAX_OFFSET}")).is_ok());
        assert_eq!(
            resume_args(Some(&("abc".into(), i64::MAX))),
            ("?".into(), "-1".into())
        );
        assert_eq!(
            resume_args(Some(&("abc".into(), 9))),
            ("abc".into(), "10".into())
        );
        assert_eq!(resume_args(None), ("?".into(), "-1".into()));
    }

    #[test]
    fn payload_headers() {
        assert_eq!(payload_header("$12"), Ok(Payload::Length(12)));
        let mark = "x".repeat(40);
        assert_eq!(
            payload_header(&format!("$EOF:{mark}")),
            Ok(Payload::Mark(mark.into_bytes()))
        );
        assert!(payload_header("$EOF:short").is_err());
        assert!(payload_header("12").is_err());
        assert!(payload_header("$-1").is_err());
        assert!(payload_header("$99999999999999999999999").is_err());
    }
}
