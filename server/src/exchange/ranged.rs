//! Ranged GETs that miss, for S3 origins: when asking the bucket for the range beats fetching
//! the whole object.
//!
//! The rule: a GET with one byte range, no `If-Range`, for an S3 origin, whose object is not
//! stored, goes to the bucket as that range (the 206 relayed, not stored) when the range starts
//! at byte [`DEEP_RANGE`] or later, or is a suffix range (`bytes=-N`, the end of an object of
//! unknown size: a zip's central directory, a video's index). Fetching the whole object first
//! would make such a viewer wait for at least 8 MiB it did not ask for. Every other ranged
//! miss fetches and stores the whole object, as for other origins, so later ranges are hits;
//! and an object already stored answers every range from the slab.

use crate::http::{Method, Request};
use crate::proxy::upstream::OriginClient;

/// The first byte from which a range is sent to S3 as a range on a miss.
pub const DEEP_RANGE: u64 = 8 << 20;

/// Whether this request, missing, goes to its origin as a range (see the module docs).
pub fn to_origin(req: &Request, client: &OriginClient) -> bool {
    req.method == Method::Get
        && client.is_s3()
        && req.header("if-range").is_none()
        && req.header("range").is_some_and(deep)
}

/// `bytes=A-[B]` with A ≥ [`DEEP_RANGE`], or `bytes=-N`; one range only.
fn deep(v: &[u8]) -> bool {
    let v = v.trim_ascii();
    let Some(spec) = v
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case(b"bytes="))
        .map(|_| v[6..].trim_ascii())
    else {
        return false;
    };
    if spec.contains(&b',') {
        return false;
    }
    let Some((first, last)) =
        spec.split_at_checked(spec.iter().position(|&b| b == b'-').unwrap_or(spec.len()))
    else {
        return false;
    };
    let last = last.strip_prefix(b"-").unwrap_or_default().trim_ascii();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let first = first.trim_ascii();
    if first.is_empty() {
        return digits(last);
    }
    if !digits(first) || !(last.is_empty() || digits(last)) {
        return false;
    }
    std::str::from_utf8(first)
        .ok()
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|f| f >= DEEP_RANGE)
}

#[cfg(test)]
mod tests {
    use super::deep;

    #[test]
    fn deep_ranges_and_suffixes_only() {
        assert!(deep(b"bytes=8388608-8388700"));
        assert!(deep(b"bytes=20000000-"));
        assert!(deep(b"bytes=-1000"));
        assert!(deep(b" Bytes=9000000-9000001 "));
        assert!(!deep(b"bytes=0-99"));
        assert!(!deep(b"bytes=8388607-8388700"));
        assert!(!deep(b"bytes=9000000-9000001,0-5"));
        assert!(!deep(b"bytes=-"));
        assert!(!deep(b"items=9000000-"));
        assert!(!deep(b"bytes=9x-"));
    }
}
