//! The reply value every command produces, independent of the wire protocol.
//!
//! Commands build a [`Reply`]; the encoder turns it into RESP2 or RESP3 bytes for the
//! connection's negotiated protocol. Keeping replies structured (rather than writing bytes
//! directly) lets the runtime merge replies of a command split across shards, queue them in
//! MULTI, and hand them to scripts.

use bytes::Bytes;
use std::borrow::Cow;

/// One reply, in the richest (RESP3) form; RESP2 encoding flattens it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A status reply: `+<text>`.
    Simple(Cow<'static, str>),
    /// An error reply: `-<text>`. The text starts with the error code (`ERR`, `WRONGTYPE`…).
    Error(Cow<'static, str>),
    /// `:<n>`.
    Int(i64),
    /// `$<len>\r\n<bytes>`.
    Bulk(Bytes),
    /// The null bulk string: `$-1` in RESP2, `_` in RESP3.
    Nil,
    /// The null array: `*-1` in RESP2, `_` in RESP3.
    NilArray,
    /// `*<n>`.
    Array(Vec<Reply>),
    /// RESP3 map `%<n>`; a flat array of key, value, key, value… in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 set `~<n>`; an array in RESP2.
    Set(Vec<Reply>),
    /// RESP3 double `,<f>`; a bulk string formatted as Redis's `%.17g` in RESP2.
    Double(f64),
    /// RESP3 boolean `#t`/`#f`; the integer 1/0 in RESP2.
    Bool(bool),
    /// RESP3 verbatim string `=<len>\r\ntxt:<text>`; a bulk string in RESP2.
    Verbatim(Bytes),
    /// RESP3 push `><n>` (pub/sub messages, invalidations); an array in RESP2.
    Push(Vec<Reply>),
    /// RESP3 big number `(<digits>`; a bulk string in RESP2. Only scripts return one.
    BigNumber(Bytes),
    /// A verbatim string with its three-letter format (`txt`, `mkd`…); a bulk string in RESP2.
    /// Scripts can return any format; the commands use [`Reply::Verbatim`].
    VerbatimAs([u8; 3], Bytes),
    /// RESP3 attributes (`|<n>` and their pairs) before the reply they describe; only that
    /// reply in RESP2, as Redis drops attributes for RESP2 clients.
    Attribute(Vec<(Reply, Reply)>, Box<Reply>),
    /// Several replies in a row, for a command that answers more than once (SUBSCRIBE with
    /// several channels confirms each one).
    Multiple(Vec<Reply>),
}

impl Reply {
    /// An error reply from a static string (no allocation).
    pub const fn err(text: &'static str) -> Reply {
        Reply::Error(Cow::Borrowed(text))
    }

    /// An error reply built at run time.
    pub fn error(text: String) -> Reply {
        Reply::Error(Cow::Owned(text))
    }

    /// A status reply from a static string.
    pub const fn simple(text: &'static str) -> Reply {
        Reply::Simple(Cow::Borrowed(text))
    }

    /// A bulk string copied from a slice.
    pub fn bulk(data: &[u8]) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(data))
    }

    /// A bulk string holding a decimal integer (as Redis replies with numbers-as-strings).
    pub fn bulk_int(n: i64) -> Reply {
        Reply::Bulk(Bytes::from(n.to_string()))
    }

    /// True for error replies.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

impl From<i64> for Reply {
    fn from(n: i64) -> Self {
        Reply::Int(n)
    }
}

impl From<Bytes> for Reply {
    fn from(b: Bytes) -> Self {
        Reply::Bulk(b)
    }
}

impl From<Option<Bytes>> for Reply {
    fn from(b: Option<Bytes>) -> Self {
        match b {
            Some(b) => Reply::Bulk(b),
            None => Reply::Nil,
        }
    }
}
