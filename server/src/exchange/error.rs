//! Why an exchange ends in an error, and the one place that turns that into a status.
//!
//! Every refusal and failure on the request path is an [`ExchangeError`]: who is at fault
//! (the viewer, the origin, this server, or its configuration), whether a client may retry,
//! and the status and reason a viewer is given ([`ExchangeError::status`]). Codecs write the
//! answer in their own framing from [`ErrorAnswer`]; custom error pages (`error_responses`)
//! are applied by the caller for the faults that allow them ([`ExchangeError::takes_error_page`]).

use super::response::{text, ResponseHead};
use crate::http::codec::ParseError;
use crate::http::Status;
use crate::proxy::upstream::UpstreamError;

/// Who caused an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request, or the viewer's connection.
    Viewer,
    /// The origin: unreachable, slow, or answering something unusable.
    Origin,
    /// This server.
    Internal,
    /// The distribution's configuration (e.g. a behavior whose origin is not available).
    Configuration,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Viewer => "viewer",
            Fault::Origin => "origin",
            Fault::Internal => "internal",
            Fault::Configuration => "configuration",
        }
    }
}

/// The phase a viewer ran out of time in.
pub use super::Phase as TimeoutPhase;

/// An exchange that cannot be answered normally.
#[derive(Debug)]
pub enum ExchangeError {
    /// The request head is malformed or not supported (400, 414, 431, 501, 505).
    Request(ParseError),
    /// The request body's chunked framing is malformed.
    BodyFraming(&'static str),
    /// The request body is larger than `max_body_bytes`.
    BodyTooLarge,
    /// The request target is not a usable path.
    Target(&'static str),
    /// The viewer sent nothing, or too little, in time.
    ViewerTimeout(TimeoutPhase),
    /// `viewer_protocol_policy = "https-only"` on a plain-HTTP request.
    HttpsRequired,
    /// A method a directory origin does not serve (405), or an unknown one (501).
    MethodNotServed { unknown: bool },
    /// A method the cache behavior does not allow; `allow` lists the ones it does.
    MethodNotAllowed { allow: String },
    /// A precondition (`If-Match`, `If-Unmodified-Since`) failed on a stored object.
    PreconditionFailed,
    /// The behavior's origin is not available (not configured for proxying).
    OriginUnavailable,
    /// The origin failed before a response could be relayed.
    Origin(UpstreamError),
    /// The origin's response was cut short before any of it reached the viewer.
    OriginCutShort,
    /// Too many open connections on this worker.
    Overloaded,
    /// No enabled distribution answers the request's Host (CloudFront's 403).
    UnknownHost,
    /// The request's `Via` already names this node: forwarding it again would loop
    /// (parents configured in a circle). 508, never forwarded.
    LoopDetected,
}

impl ExchangeError {
    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        use ExchangeError as E;
        match self {
            E::Request(_)
            | E::BodyFraming(_)
            | E::BodyTooLarge
            | E::Target(_)
            | E::ViewerTimeout(_)
            | E::HttpsRequired
            | E::MethodNotServed { .. }
            | E::MethodNotAllowed { .. }
            | E::PreconditionFailed
            | E::UnknownHost => Fault::Viewer,
            E::Origin(_) | E::OriginCutShort => Fault::Origin,
            E::OriginUnavailable | E::LoopDetected => Fault::Configuration,
            E::Overloaded => Fault::Internal,
        }
    }

    /// Whether the viewer may send the same request again and expect another outcome.
    pub fn retry_allowed(&self) -> bool {
        use ExchangeError as E;
        match self {
            E::ViewerTimeout(_) | E::Origin(_) | E::OriginCutShort | E::Overloaded => true,
            E::Request(_)
            | E::BodyFraming(_)
            | E::BodyTooLarge
            | E::Target(_)
            | E::HttpsRequired
            | E::MethodNotServed { .. }
            | E::MethodNotAllowed { .. }
            | E::PreconditionFailed
            | E::UnknownHost
            | E::OriginUnavailable
            | E::LoopDetected => false,
        }
    }

    /// The status a viewer is given.
    pub fn status(&self) -> Status {
        use ExchangeError as E;
        Status(match self {
            E::Request(p) => p.status(),
            E::BodyFraming(_) | E::Target(_) => 400,
            E::BodyTooLarge => 413,
            E::ViewerTimeout(_) => 408,
            E::HttpsRequired | E::MethodNotAllowed { .. } | E::UnknownHost => 403,
            E::MethodNotServed { unknown: true } => 501,
            E::MethodNotServed { unknown: false } => 405,
            E::PreconditionFailed => 412,
            E::OriginUnavailable | E::OriginCutShort => 502,
            E::Origin(e) => e.status(),
            E::Overloaded => 503,
            E::LoopDetected => 508,
        })
    }

    /// The short text of the answer's body.
    pub fn reason(&self) -> &'static str {
        use ExchangeError as E;
        match self {
            E::Request(p) => p.reason(),
            E::BodyFraming(why) | E::Target(why) => why,
            E::BodyTooLarge => "request body too large",
            E::ViewerTimeout(_) => "request timeout",
            E::HttpsRequired => "HTTPS is required",
            E::MethodNotServed { unknown: true } => "Not Implemented",
            E::MethodNotServed { unknown: false } => "Method Not Allowed",
            E::MethodNotAllowed { .. } => "method not allowed by this cache behavior",
            E::PreconditionFailed => "precondition failed",
            E::OriginUnavailable => "origin not available",
            E::Origin(UpstreamError::Timeout) => "origin timed out",
            E::Origin(_) | E::OriginCutShort => "origin unreachable or invalid",
            E::Overloaded => "too many connections",
            E::UnknownHost => "The request could not be satisfied: no distribution answers this host.",
            E::LoopDetected => "Loop Detected: this request has already passed this node",
        }
    }

    /// Whether a configured custom error page (`error_responses`) replaces the plain answer:
    /// for origin failures, as CloudFront does.
    pub fn takes_error_page(&self) -> bool {
        self.fault() == Fault::Origin
    }

    /// The answer: a short text response (with `Allow` where it applies), framing left to
    /// the codec.
    pub fn answer(&self) -> (ResponseHead<'static>, bytes::Bytes) {
        let (mut head, body) = text(self.status().0, self.reason());
        let allow: Option<Vec<u8>> = match self {
            ExchangeError::MethodNotAllowed { allow } => Some(allow.clone().into_bytes()),
            ExchangeError::MethodNotServed { .. } => Some(b"GET, HEAD".to_vec()),
            _ => None,
        };
        if let Some(a) = allow {
            head.fields.insert(0, ("Allow".into(), a.into()));
        }
        (head, body)
    }
}

impl From<ParseError> for ExchangeError {
    fn from(e: ParseError) -> Self {
        ExchangeError::Request(e)
    }
}

impl From<UpstreamError> for ExchangeError {
    fn from(e: UpstreamError) -> Self {
        ExchangeError::Origin(e)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_error_has_one_status_fault_and_retry_rule() {
        use ExchangeError as E;
        let cases: Vec<(E, u16, Fault, bool)> = vec![
            (E::Request(ParseError::UriTooLong), 414, Fault::Viewer, false),
            (E::Request(ParseError::Bad("x")), 400, Fault::Viewer, false),
            (E::BodyFraming("bad chunk"), 400, Fault::Viewer, false),
            (E::BodyTooLarge, 413, Fault::Viewer, false),
            (E::Target("invalid request target"), 400, Fault::Viewer, false),
            (E::ViewerTimeout(TimeoutPhase::Head), 408, Fault::Viewer, true),
            (E::HttpsRequired, 403, Fault::Viewer, false),
            (E::MethodNotServed { unknown: true }, 501, Fault::Viewer, false),
            (E::MethodNotServed { unknown: false }, 405, Fault::Viewer, false),
            (
                E::MethodNotAllowed { allow: "GET".into() },
                403,
                Fault::Viewer,
                false,
            ),
            (E::PreconditionFailed, 412, Fault::Viewer, false),
            (E::OriginUnavailable, 502, Fault::Configuration, false),
            (E::Origin(UpstreamError::Timeout), 504, Fault::Origin, true),
            (E::Origin(UpstreamError::Closed), 502, Fault::Origin, true),
            (E::OriginCutShort, 502, Fault::Origin, true),
            (E::Overloaded, 503, Fault::Internal, true),
            (E::UnknownHost, 403, Fault::Viewer, false),
            (E::LoopDetected, 508, Fault::Configuration, false),
        ];
        for (e, status, fault, retry) in cases {
            assert_eq!(e.status().0, status, "{e:?}");
            assert_eq!(e.fault(), fault, "{e:?}");
            assert_eq!(e.retry_allowed(), retry, "{e:?}");
            assert_eq!(e.takes_error_page(), fault == Fault::Origin, "{e:?}");
        }
    }

    #[test]
    fn answers_carry_allow_where_it_applies() {
        let e = ExchangeError::MethodNotAllowed {
            allow: "GET, HEAD".into(),
        };
        let (head, body) = e.answer();
        assert_eq!(head.status, 403);
        assert_eq!(head.get("allow").unwrap(), b"GET, HEAD");
        assert_eq!(&body[..], b"method not allowed by this cache behavior\n");
        let (head, _) = ExchangeError::Origin(UpstreamError::Timeout).answer();
        assert!(head.get("allow").is_none());
        assert_eq!(head.status, 504);
    }
}
