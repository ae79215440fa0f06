//! Threads, runtimes, listeners and the socket glue.

pub mod idle;
pub mod io;
pub mod listener;
pub mod shutdown;
pub mod worker;
