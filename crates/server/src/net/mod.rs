//! The core's event loop and its connections' I/O.

pub mod conn;
pub mod event_loop;
