//! Preconditions and ranges (RFC 9110 §13 and §14), evaluated against a representation's
//! validators: shared by directory origins and cached responses.

use super::codec::trim;
use super::{Method, Request};
use std::time::SystemTime;

pub enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

pub fn etag_list_matches(list: &[u8], etag: &[u8], weak: bool) -> bool {
    let list = trim(list);
    if list == b"*" {
        return true;
    }
    list.split(|&b| b == b',').map(trim).any(|tag| {
        let (tag_weak, t) = match tag.strip_prefix(b"W/") {
            Some(t) => (true, t),
            None => (false, tag),
        };
        if tag_weak && !weak {
            return false;
        }
        t == strip_weak(etag, weak)
    })
}

fn header_date(req: &Request, name: &str) -> Option<SystemTime> {
    let v = req.header(name)?;
    httpdate::parse_http_date(std::str::from_utf8(v).ok()?.trim()).ok()
}

/// Whole seconds: HTTP dates have no finer resolution.
pub fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Evaluates a request's preconditions (RFC 9110 §13.2.2) against a representation's
/// validators: `etag` as sent in `ETag`, `last_modified` in seconds since the epoch.
pub fn evaluate(req: &Request, etag: Option<&[u8]>, last_modified: Option<u64>) -> Precondition {
    if !req.has_if_fields() {
        return Precondition::Proceed;
    }
    if let Some(im) = req.header("if-match") {
        if !etag.is_some_and(|t| etag_list_matches(im, t, false)) {
            return Precondition::Failed;
        }
    } else if let Some(d) = header_date(req, "if-unmodified-since") {
        if last_modified.is_none_or(|lm| lm > secs(d)) {
            return Precondition::Failed;
        }
    }
    if let Some(inm) = req.header("if-none-match") {
        if etag.is_some_and(|t| etag_list_matches(inm, t, true)) {
            return if matches!(req.method, Method::Get | Method::Head) {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if matches!(req.method, Method::Get | Method::Head) {
        if let Some(d) = header_date(req, "if-modified-since") {
            if last_modified.is_some_and(|lm| lm <= secs(d)) {
                return Precondition::NotModified;
            }
        }
    }
    Precondition::Proceed
}

/// Whether `If-Range` (if any) lets a Range apply: a strong ETag match or the exact date.
pub fn if_range_allows(req: &Request, etag: Option<&[u8]>, last_modified: Option<u64>) -> bool {
    let Some(v) = req.header("if-range") else {
        return true;
    };
    let v = trim(v);
    if v.first() == Some(&b'"') {
        // Strong comparison only.
        return etag.is_some_and(|t| !t.starts_with(b"W/") && v == t);
    }
    if v.starts_with(b"W/") {
        return false;
    }
    match std::str::from_utf8(v)
        .ok()
        .and_then(|s| httpdate::parse_http_date(s).ok())
    {
        Some(d) => last_modified == Some(secs(d)),
        None => false,
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum RangeSpec {
    Ignore,
    Satisfiable(u64, u64),
    Unsatisfiable,
}

/// A single byte range (RFC 9110 §14.1.2); several ranges or a malformed header are ignored
/// (the full representation is sent, which the RFC allows).
pub fn parse_range(v: &[u8], len: u64) -> RangeSpec {
    let v = trim(v);
    if v.len() < 6 || !v[..6].eq_ignore_ascii_case(b"bytes=") {
        return RangeSpec::Ignore;
    }
    let spec = trim(&v[6..]);
    if spec.contains(&b',') {
        return RangeSpec::Ignore;
    }
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return RangeSpec::Ignore;
    };
    let num = |s: &[u8]| -> Option<u64> {
        let s = trim(s);
        if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    let (a, b) = (&spec[..dash], &spec[dash + 1..]);
    if trim(a).is_empty() {
        let Some(n) = num(b) else {
            return RangeSpec::Ignore;
        };
        if n == 0 || len == 0 {
            return RangeSpec::Unsatisfiable;
        }
        let n = n.min(len);
        return RangeSpec::Satisfiable(len - n, len - 1);
    }
    let Some(first) = num(a) else {
        return RangeSpec::Ignore;
    };
    let last = if trim(b).is_empty() {
        u64::MAX
    } else {
        match num(b) {
            Some(l) if l >= first => l,
            _ => return RangeSpec::Ignore,
        }
    };
    if first >= len {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Satisfiable(first, last.min(len - 1))
}

/// An entity tag without its weakness prefix when comparing weakly.
fn strip_weak(etag: &[u8], weak: bool) -> &[u8] {
    match etag.strip_prefix(b"W/") {
        Some(t) if weak => t,
        _ => etag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(b"bytes=0-9", 100), RangeSpec::Satisfiable(0, 9));
        assert_eq!(parse_range(b"bytes=90-", 100), RangeSpec::Satisfiable(90, 99));
        assert_eq!(parse_range(b"bytes=90-1000", 100), RangeSpec::Satisfiable(90, 99));
        assert_eq!(parse_range(b"bytes=-10", 100), RangeSpec::Satisfiable(90, 99));
        assert_eq!(parse_range(b"bytes=-1000", 100), RangeSpec::Satisfiable(0, 99));
        assert_eq!(parse_range(b"bytes=100-", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=-0", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=5-3", 100), RangeSpec::Ignore);
        assert_eq!(parse_range(b"bytes=0-1,5-6", 100), RangeSpec::Ignore);
        assert_eq!(parse_range(b"items=0-1", 100), RangeSpec::Ignore);
        assert_eq!(parse_range(b"bytes=a-b", 100), RangeSpec::Ignore);
    }

    #[test]
    fn etag_matching() {
        assert!(etag_list_matches(b"\"a\", \"b\"", b"\"b\"", false));
        assert!(etag_list_matches(b"W/\"b\"", b"\"b\"", true));
        assert!(!etag_list_matches(b"W/\"b\"", b"\"b\"", false));
        assert!(etag_list_matches(b"*", b"\"b\"", false));
        assert!(!etag_list_matches(b"\"c\"", b"\"b\"", true));
    }
}
