//! RESP2/RESP3: the incremental request parser and the reply encoder.
//!
//! Knows nothing about commands or I/O: bytes in, argument vectors out; replies in, bytes out.

mod reply;

pub use reply::Reply;
