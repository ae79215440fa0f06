//! What an exchange is, apart from the protocol that carries it: for now, its errors (who is
//! at fault, whether a retry is allowed, the status a viewer gets). See `docs/phases.md`.

pub mod error;

pub use error::{ErrorAnswer, ExchangeError, Fault};
