//! A connection's session and the carrying out of its commands that must wait.

pub mod dispatch;
pub mod multi;
pub mod session;
