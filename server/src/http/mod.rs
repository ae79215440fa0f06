//! HTTP: request heads and chunked bodies in (RFC 9112 parsing), URIs, conditionals, status
//! reasons. Response framing is the codec's (`conn`). Knows nothing of caching,
//! files or origins.

pub mod body;
pub mod codec;
pub mod conditional;
pub mod date;
pub mod response;
pub mod uri;

pub use codec::{parse_request, BodyKind, Method, ParseError, Parsed, Request, Version};
pub use response::Status;
