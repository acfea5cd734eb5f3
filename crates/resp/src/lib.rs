//! RESP2/RESP3: the incremental request parser and the reply encoder.
//!
//! Knows nothing about commands or I/O: bytes in, argument vectors out; replies in, bytes out.

mod encode;
mod parse;
mod reply;

pub use encode::{encode, encode_request, format_double};
pub use parse::{peek_keys, split_line, Limits, ProtocolError, RequestParser};
pub use reply::Reply;
