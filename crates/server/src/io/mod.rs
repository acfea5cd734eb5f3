//! The network I/O layer: the core's io_uring ring, its provided-buffer ring, listening
//! sockets, and the start-up probes of what the kernel and the limits allow. Nothing here knows
//! about commands, shards or connections' meaning.

pub mod buf_ring;
pub mod listen;
pub mod probe;
pub mod uring;
