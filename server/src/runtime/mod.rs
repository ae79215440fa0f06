//! Threads, runtimes, listeners and the socket glue.

pub mod accept;
pub mod io;
pub mod listener;
pub mod ring;
pub mod viewer;
pub mod wait;
pub mod worker;
