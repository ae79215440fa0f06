//! Request-head parsing with httparse plus the RFC 9112 framing rules httparse leaves to us:
//! Content-Length / Transfer-Encoding validity, `Connection` semantics and `Expect`.
//!
//! [`parse_request`] is a plain function over a byte slice (not an `async fn`), so the header
//! array lives on its stack frame only, never in a connection's future.

use std::ops::Range;

mod edit;
mod parts;

/// Request methods. `Other` is any other valid token (answered 501 by origins that don't know it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Trace,
    Connect,
    Other,
}

impl Method {
    fn from_bytes(m: &[u8]) -> Method {
        match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"TRACE" => Method::Trace,
            b"CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }

    /// The method's name (for logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Trace => "TRACE",
            Method::Connect => "CONNECT",
            Method::Other => "OTHER",
        }
    }
}

/// HTTP/1.0 or HTTP/1.1, or HTTP/2 (a request built by `Request::from_parts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
    Http2,
}

/// How the request body is framed (RFC 9112 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head. Owns a copy of the head bytes; header names and values are ranges
/// into it.
#[derive(Debug, Clone)]
pub struct Request {
    head: Box<[u8]>,
    pub method: Method,
    pub version: Version,
    target: Range<usize>,
    headers: Vec<(Range<usize>, Range<usize>)>,
    pub body: BodyKind,
    /// The connection may be reused after this exchange (Connection / version rules).
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// Some field's name begins with `If-` (a precondition may apply).
    if_fields: bool,
}

impl Request {
    /// Whether any field's name begins with `If-` (`If-Match`, `If-None-Match`, `If-Range`,
    /// ...): without one, no precondition needs looking up.
    pub fn has_if_fields(&self) -> bool {
        self.if_fields
    }

    /// The method as sent.
    pub fn method_name(&self) -> &[u8] {
        let end = self.head.iter().position(|&b| b == b' ').unwrap_or(0);
        &self.head[..end]
    }

    /// The request target as sent.
    pub fn target(&self) -> &[u8] {
        &self.head[self.target.clone()]
    }

    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// Every header in order, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (&self.head[n.clone()], &self.head[v.clone()]))
    }

    /// Every field line of a header, as sent.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// Every value of a comma-separated list header, trimmed, across all its field lines.
    pub fn header_list<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .flat_map(|(_, v)| v.split(|&b| b == b','))
            .map(trim)
            .filter(|v| !v.is_empty())
    }
}

/// Trims optional whitespace (SP / HTAB) from both ends.
pub fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |p| p + 1);
    &v[start..end]
}

/// Why a request head was refused. Each maps to one status; all close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Malformed syntax or framing: 400.
    Bad(&'static str),
    /// Request target longer than the limit: 414.
    UriTooLong,
    /// Head larger than the limit, or too many fields: 431.
    HeadTooLarge,
    /// A transfer coding we do not implement: 501.
    NotImplemented(&'static str),
    /// Not HTTP/1.x: 505.
    Version,
}

impl ParseError {
    /// The HTTP status for this error.
    pub fn status(self) -> u16 {
        match self {
            ParseError::Bad(_) => 400,
            ParseError::UriTooLong => 414,
            ParseError::HeadTooLarge => 431,
            ParseError::NotImplemented(_) => 501,
            ParseError::Version => 505,
        }
    }

    /// A short reason for the body and the log.
    pub fn reason(self) -> &'static str {
        match self {
            ParseError::Bad(why) | ParseError::NotImplemented(why) => why,
            ParseError::UriTooLong => "request target too long",
            ParseError::HeadTooLarge => "request header fields too large",
            ParseError::Version => "HTTP version not supported",
        }
    }
}

/// The outcome of looking at the bytes received so far.
#[derive(Debug)]
pub enum Parsed {
    /// A complete head of this many bytes.
    Complete(Request, usize),
    /// More bytes are needed.
    Partial,
}

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_uri_bytes: usize,
}

/// The most header fields any configuration may allow (the stack array's size).
pub const HEADER_ARRAY: usize = 256;

/// Parses a request head from the start of `buf`.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Parsed, ParseError> {
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
    let mut skip = 0;
    while skip < buf.len() && skip < 4 && (buf[skip] == b'\r' || buf[skip] == b'\n') {
        skip += 1;
    }
    let buf = &buf[skip..];
    // Left uninitialised: httparse writes the fields it finds, and zeroing 8 KiB of headers
    // for a request that has three of them cost more than the parse itself.
    let mut storage = [const { std::mem::MaybeUninit::<httparse::Header>::uninit() }; HEADER_ARRAY];
    let max = limits.max_headers.min(HEADER_ARRAY);
    let mut req = httparse::Request::new(&mut []);
    let status = match req.parse_with_uninit_headers(buf, &mut storage[..max]) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::HeadTooLarge),
        Err(httparse::Error::Version) => {
            return Err(if looks_like_other_http(buf) {
                ParseError::Version
            } else {
                ParseError::Bad("malformed request line")
            })
        }
        Err(httparse::Error::HeaderName) => return Err(ParseError::Bad("invalid header field")),
        Err(httparse::Error::HeaderValue) => return Err(ParseError::Bad("invalid header value")),
        Err(httparse::Error::NewLine) => return Err(ParseError::Bad("invalid line ending")),
        Err(httparse::Error::Token) => return Err(ParseError::Bad("invalid request line")),
        Err(_) => return Err(ParseError::Bad("malformed request")),
    };
    let len = match status {
        httparse::Status::Partial => {
            // Enforce the limits on what has arrived so far.
            let line_end = buf.iter().position(|&b| b == b'\n');
            if line_end.is_none() && buf.len() > limits.max_uri_bytes + 32 {
                return Err(ParseError::UriTooLong);
            }
            if buf.len() > limits.max_header_bytes {
                return Err(ParseError::HeadTooLarge);
            }
            return Ok(Parsed::Partial);
        }
        httparse::Status::Complete(n) => n,
    };
    if len > limits.max_header_bytes {
        return Err(ParseError::HeadTooLarge);
    }
    let path = req.path.unwrap_or("");
    if path.len() > limits.max_uri_bytes {
        return Err(ParseError::UriTooLong);
    }
    let version = match req.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let method_str = req.method.unwrap_or("");
    let method = Method::from_bytes(method_str.as_bytes());

    let base = buf.as_ptr() as usize;
    let range_of = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let target = range_of(path.as_bytes());

    let f = scan_fields(req.headers, base)?;
    if version == Version::Http11 && f.host_count != 1 {
        // RFC 9112 §3.2: 400 for a missing Host in HTTP/1.1, or more than one.
        return Err(ParseError::Bad("HTTP/1.1 request needs exactly one Host field"));
    }
    if f.host_count > 1 {
        return Err(ParseError::Bad("several Host fields"));
    }
    let body = body_kind(f.te.map(|te| &buf[te]), f.content_length, version)?;
    let (headers, conn_close, conn_keep_alive, expect_continue, if_fields) = (
        f.headers,
        f.conn_close,
        f.conn_keep_alive,
        f.expect_continue,
        f.if_fields,
    );
    let keep_alive = match version {
        Version::Http11 | Version::Http2 => !conn_close,
        Version::Http10 => conn_keep_alive && !conn_close,
    };
    let total = skip + len;
    let head: Box<[u8]> = buf[..len].into();
    Ok(Parsed::Complete(
        Request {
            head,
            method,
            version,
            target,
            headers,
            body,
            keep_alive,
            expect_continue: expect_continue && version == Version::Http11,
            if_fields,
        },
        total,
    ))
}

/// What the request's fields say about its framing and connection, each field's name and
/// value located in the head.
struct FieldFacts {
    headers: Vec<(Range<usize>, Range<usize>)>,
    content_length: Option<u64>,
    te: Option<Range<usize>>,
    conn_close: bool,
    conn_keep_alive: bool,
    expect_continue: bool,
    host_count: usize,
    if_fields: bool,
}

/// Checks every field value and gathers the fields that frame the request (RFC 9112 §6):
/// one `Content-Length` at most, one `Transfer-Encoding` at most, `Connection` tokens,
/// `Expect`, and valid `Host` values.
fn scan_fields(fields: &[httparse::Header<'_>], base: usize) -> Result<FieldFacts, ParseError> {
    let range_of = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let mut f = FieldFacts {
        headers: Vec::with_capacity(fields.len()),
        content_length: None,
        te: None,
        conn_close: false,
        conn_keep_alive: false,
        expect_continue: false,
        host_count: 0,
        if_fields: false,
    };
    let (mut cl_count, mut te_count) = (0, 0);
    for h in fields {
        let name = h.name.as_bytes();
        let value = h.value;
        if !valid_field_value(value) {
            return Err(ParseError::Bad("invalid header value"));
        }
        f.headers.push((range_of(name), range_of(value)));
        f.if_fields |= name.len() > 3 && name[..3].eq_ignore_ascii_case(b"if-");
        if name.eq_ignore_ascii_case(b"content-length") {
            cl_count += 1;
            if cl_count > 1 {
                return Err(ParseError::Bad("several Content-Length fields"));
            }
            f.content_length = Some(parse_content_length(value)?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te_count += 1;
            if te_count > 1 {
                return Err(ParseError::Bad("several Transfer-Encoding fields"));
            }
            f.te = Some(range_of(value));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    f.conn_close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    f.conn_keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            if trim(value).eq_ignore_ascii_case(b"100-continue") {
                f.expect_continue = true;
            } else {
                return Err(ParseError::Bad("unsupported expectation"));
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            f.host_count += 1;
            if !valid_host(trim(value)) {
                // RFC 9112 §3.2: 400 for a Host field with an invalid value.
                return Err(ParseError::Bad("invalid Host"));
            }
        }
    }
    Ok(f)
}

/// How the request body is delimited (RFC 9112 §6.3): chunked as the final coding (and the
/// only one), else Content-Length; never both, never chunked in HTTP/1.0.
fn body_kind(
    te: Option<&[u8]>,
    content_length: Option<u64>,
    version: Version,
) -> Result<BodyKind, ParseError> {
    Ok(match (te, content_length) {
        (Some(_), Some(_)) => return Err(ParseError::Bad("both Transfer-Encoding and Content-Length")),
        (Some(te), None) => {
            if version == Version::Http10 {
                return Err(ParseError::Bad("Transfer-Encoding in an HTTP/1.0 request"));
            }
            let codings: Vec<&[u8]> = te.split(|&b| b == b',').map(trim).collect();
            match codings.last() {
                Some(last) if last.eq_ignore_ascii_case(b"chunked") => {}
                _ => return Err(ParseError::Bad("Transfer-Encoding must end in chunked")),
            }
            if codings.len() > 1 {
                return Err(ParseError::NotImplemented("transfer coding not implemented"));
            }
            BodyKind::Chunked
        }
        (None, Some(0)) | (None, None) => BodyKind::None,
        (None, Some(n)) => BodyKind::Length(n),
    })
}

/// RFC 9110 §5.5: a field value is visible characters, obs-text, spaces and tabs; no other
/// control character (CR, LF and NUL included).
fn valid_field_value(value: &[u8]) -> bool {
    value.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// RFC 9110 §7.2: `Host = uri-host [ ":" port ]`, with uri-host an IP literal in brackets, an
/// IPv4 address or a reg-name (RFC 3986 §3.2.2: unreserved, pct-encoded, sub-delims), and
/// the port digits. Empty is allowed (a target without an authority).
pub fn valid_host(v: &[u8]) -> bool {
    let (host, port) = if let Some(rest) = v.strip_prefix(b"[") {
        let Some(end) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &rest[..end];
        let ok = !literal.is_empty()
            && literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.' || b == b'v' || b == b'V');
        if !ok {
            return false;
        }
        match &rest[end + 1..] {
            [] => return true,
            [b':', port @ ..] => (&[][..], port),
            _ => return false,
        }
    } else {
        match v.iter().position(|&b| b == b':') {
            Some(i) => (&v[..i], &v[i + 1..]),
            None => (v, &[][..]),
        }
    };
    valid_reg_name(host) && port.iter().all(u8::is_ascii_digit)
}

fn valid_reg_name(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        let b = name[i];
        if b == b'%' {
            match name.get(i + 1..i + 3) {
                Some([h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
            continue;
        }
        let ok = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b);
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

fn parse_content_length(v: &[u8]) -> Result<u64, ParseError> {
    let v = trim(v);
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::Bad("invalid Content-Length"));
    }
    let mut n: u64 = 0;
    for &d in v {
        n = n * 10 + u64::from(d - b'0');
    }
    Ok(n)
}

/// `HTTP/2.0`, `HTTP/3` or `HTTP/1.2` in the request line: a version we do not speak (505),
/// as opposed to garbage (400).
fn looks_like_other_http(buf: &[u8]) -> bool {
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = &buf[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.rsplit(|&b| b == b' ').next() {
        Some(v) => {
            v.len() >= 6 && v.starts_with(b"HTTP/") && v[5..].iter().all(|&b| b.is_ascii_digit() || b == b'.')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_header_bytes: 8192,
        max_headers: 64,
        max_uri_bytes: 1024,
    };

    fn parse(s: &[u8]) -> Result<Parsed, ParseError> {
        parse_request(s, &LIMITS)
    }

    fn complete(s: &[u8]) -> (Request, usize) {
        match parse(s) {
            Ok(Parsed::Complete(r, n)) => (r, n),
            other => panic!("{:?} for {:?}", other, String::from_utf8_lossy(s)),
        }
    }

    #[test]
    fn if_fields_are_noticed() {
        let (r, _) = complete(b"GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"x\"\r\n\r\n");
        assert!(r.has_if_fields());
        let (r, _) = complete(b"GET / HTTP/1.1\r\nhost: a\r\nif-range: x\r\n\r\n");
        assert!(r.has_if_fields());
        let (r, _) = complete(b"GET / HTTP/1.1\r\nHost: a\r\nIf: x\r\nIfx: y\r\n\r\n");
        assert!(!r.has_if_fields());
        let (r, _) = complete(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(!r.has_if_fields());
    }

    fn err(s: &[u8]) -> ParseError {
        match parse(s) {
            Err(e) => e,
            Ok(p) => panic!("accepted {:?}: {p:?}", String::from_utf8_lossy(s)),
        }
    }

    #[test]
    fn split_at_every_boundary() {
        let req = b"POST /upload?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-Long: abcdef\r\n\r\nhello";
        let head_len = req.len() - 5;
        for cut in 0..head_len {
            assert!(
                matches!(parse(&req[..cut]), Ok(Parsed::Partial)),
                "cut at {cut} should be partial"
            );
        }
        for cut in head_len..=req.len() {
            let (r, n) = complete(&req[..cut]);
            assert_eq!(n, head_len);
            assert_eq!(r.target(), b"/upload?x=1");
            assert_eq!(r.body, BodyKind::Length(5));
            assert_eq!(r.header("x-long"), Some(&b"abcdef"[..]));
        }
    }

    #[test]
    fn keep_alive_rules() {
        assert!(complete(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").0.keep_alive);
        assert!(
            !complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(
            complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(
            !complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n")
                .0
                .keep_alive
        );
    }

    #[test]
    fn framing_errors() {
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
                .status(),
            400
        );
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n").status(),
            400
        );
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n").status(),
            400
        );
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\n").status(),
            400
        );
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n").status(),
            400
        );
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").status(),
            501
        );
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").status(),
            400
        );
        assert_eq!(
            err(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n").status(),
            400
        );
        // obs-fold
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n").status(),
            400
        );
        // bare CR
        assert_eq!(err(b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n").status(), 400);
        // bad header name
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: b\r\n\r\n").status(),
            400
        );
        assert_eq!(err(b"GET / HTTP/1.1\r\nHost: a\r\n(x): b\r\n\r\n").status(), 400);
        // Host values (RFC 9110 §7.2, RFC 3986 §3.2.2); regression: `Host: a b` was forwarded.
        for bad in [
            "a b", "a\tb", "a/b", "a@b", "a:b:c", "a:8o", "[::1", "[::1]x", "[]", "a%2", "a%zz", "\"a\"",
            "a\\b",
        ] {
            let req = format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n");
            assert_eq!(err(req.as_bytes()).status(), 400, "Host: {bad}");
        }
        for good in [
            "a",
            "www.example.com",
            "example.com:8080",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:443",
            "a%20b",
            "x_y-z~1",
            "a:",
        ] {
            let req = format!("GET / HTTP/1.1\r\nHost: {good}\r\n\r\n");
            assert!(complete(req.as_bytes()).0.keep_alive, "Host: {good}");
        }
        assert!(complete(b"GET / HTTP/1.1\r\nHost:\r\n\r\n").0.keep_alive);
        // Control characters in any field value (httparse lets obs-text through; so do we).
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n").status(),
            400
        );
        assert!(
            complete(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\xe9\tb\r\n\r\n")
                .0
                .keep_alive
        );
        // missing / duplicate Host in 1.1
        assert_eq!(err(b"GET / HTTP/1.1\r\n\r\n").status(), 400);
        assert_eq!(err(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status(), 400);
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n").status(),
            400
        );
    }

    #[test]
    fn versions() {
        assert_eq!(err(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n").status(), 505);
        assert_eq!(err(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n").status(), 505);
        assert_eq!(err(b"GET / FTP/1.1\r\nHost: a\r\n\r\n").status(), 400);
    }

    #[test]
    fn limits() {
        let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(2000));
        assert_eq!(err(long.as_bytes()).status(), 414);
        // Partial but already beyond the URI limit.
        let partial = format!("GET /{}", "a".repeat(2000));
        assert_eq!(err(partial.as_bytes()).status(), 414);
        let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
        assert_eq!(err(req.as_bytes()).status(), 431);
        let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "b".repeat(9000));
        assert_eq!(err(big.as_bytes()).status(), 431);
    }

    #[test]
    fn chunked_and_expect() {
        let (r, _) = complete(
            b"PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
        );
        assert_eq!(r.body, BodyKind::Chunked);
        assert!(r.expect_continue);
        assert_eq!(r.method, Method::Put);
    }

    #[test]
    fn leading_empty_line_is_ignored() {
        let (r, n) = complete(b"\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.target(), b"/a");
        assert_eq!(n, 30);
    }

    #[test]
    fn header_list_spans_lines() {
        let (r, _) = complete(
            b"GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip, br\r\nAccept-Encoding: zstd\r\n\r\n",
        );
        let v: Vec<&[u8]> = r.header_list("accept-encoding").collect();
        assert_eq!(v, vec![&b"gzip"[..], b"br", b"zstd"]);
    }
}
