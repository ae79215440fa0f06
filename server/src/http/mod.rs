//! HTTP/1.1: bytes in, requests out; responses in, bytes out. Knows nothing of caching,
//! files or origins.

pub mod body;
pub mod codec;
pub mod conditional;
pub mod date;
pub mod response;
pub mod uri;

pub use codec::{parse_request, BodyKind, Method, ParseError, Parsed, Request, Version};
pub use response::Status;
