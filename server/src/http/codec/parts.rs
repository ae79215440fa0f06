//! A request built from parts a codec decoded itself (HTTP/2's pseudo-header fields and
//! field list), shaped like a parsed HTTP/1.1 head so that every phase reads it the same way.

use super::{
    parse_content_length, trim, valid_field_value, valid_host, BodyKind, Method, ParseError, Request, Version,
};

impl Request {
    /// A request from its method, target (`:path`), authority (`:authority`, written as the
    /// `Host` field when the fields have none) and fields. `body`: how much body follows
    /// (`Length` when a `content-length` was sent, `Chunked` for a body of unknown length).
    /// HTTP/2 splits `cookie` into several fields; they are joined with `; ` (RFC 9113
    /// §8.2.3). Connection-specific fields were already refused by the HTTP/2 codec.
    pub fn from_parts<'a>(
        method: &[u8],
        target: &[u8],
        authority: Option<&[u8]>,
        fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        body: BodyKind,
    ) -> Result<Request, ParseError> {
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(method);
        head.push(b' ');
        let target_at = head.len()..head.len() + target.len();
        head.extend_from_slice(target);
        head.extend_from_slice(b" HTTP/2\r\n");
        let mut headers = Vec::new();
        let mut push = |head: &mut Vec<u8>, name: &[u8], value: &[u8]| {
            let n = head.len()..head.len() + name.len();
            head.extend_from_slice(name);
            head.extend_from_slice(b": ");
            let v = head.len()..head.len() + value.len();
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
            headers.push((n, v));
        };
        let (mut host, mut if_fields, mut length) = (false, false, None);
        let mut cookies: Vec<&[u8]> = Vec::new();
        for (name, value) in fields {
            if !valid_field_value(value) {
                return Err(ParseError::Bad("invalid header value"));
            }
            if name.eq_ignore_ascii_case(b"cookie") {
                cookies.push(value);
                continue;
            }
            if name.eq_ignore_ascii_case(b"host") {
                if host || !valid_host(trim(value)) {
                    return Err(ParseError::Bad("invalid Host"));
                }
                host = true;
            } else if name.eq_ignore_ascii_case(b"content-length") {
                length = Some(parse_content_length(value)?);
            }
            if_fields |= name.len() > 3 && name[..3].eq_ignore_ascii_case(b"if-");
            push(&mut head, name, value);
        }
        if !host {
            let Some(a) = authority.filter(|a| valid_host(a)) else {
                return Err(ParseError::Bad("request needs :authority or Host"));
            };
            push(&mut head, b"host", a);
        }
        if !cookies.is_empty() {
            push(&mut head, b"cookie", &cookies.join(&b"; "[..]));
        }
        let body = match (body, length) {
            (BodyKind::None, _) | (_, Some(0)) => BodyKind::None,
            (_, Some(n)) => BodyKind::Length(n),
            (other, None) => other,
        };
        head.extend_from_slice(b"\r\n");
        Ok(Request {
            head: head.into_boxed_slice(),
            method: Method::from_bytes(method),
            version: Version::Http2,
            target: target_at,
            headers,
            body,
            keep_alive: true,
            expect_continue: false,
            if_fields,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_http2_request_reads_like_a_parsed_head() {
        let fields: Vec<(&[u8], &[u8])> = vec![
            (b"accept", b"*/*"),
            (b"cookie", b"a=1"),
            (b"if-none-match", b"\"x\""),
            (b"cookie", b"b=2"),
        ];
        let r = Request::from_parts(
            b"GET",
            b"/a/b?c=d",
            Some(b"example.com:8443"),
            fields.into_iter(),
            BodyKind::None,
        )
        .unwrap();
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.method_name(), b"GET");
        assert_eq!(r.target(), b"/a/b?c=d");
        assert_eq!(r.header("Host").unwrap(), b"example.com:8443");
        assert_eq!(r.header("cookie").unwrap(), b"a=1; b=2");
        assert!(r.has_if_fields());
        assert_eq!(r.version, Version::Http2);
        assert_eq!(r.body, BodyKind::None);
    }

    #[test]
    fn bodies_and_bad_authorities() {
        let none = std::iter::empty::<(&[u8], &[u8])>;
        let r = Request::from_parts(b"POST", b"/", Some(b"h"), none(), BodyKind::Chunked).unwrap();
        assert_eq!(r.body, BodyKind::Chunked);
        let cl: Vec<(&[u8], &[u8])> = vec![(b"content-length", b"12")];
        let r = Request::from_parts(b"POST", b"/", Some(b"h"), cl.into_iter(), BodyKind::Chunked).unwrap();
        assert_eq!(r.body, BodyKind::Length(12));
        assert!(Request::from_parts(b"GET", b"/", Some(b"a b"), none(), BodyKind::None).is_err());
        assert!(Request::from_parts(b"GET", b"/", None, none(), BodyKind::None).is_err());
        let bad: Vec<(&[u8], &[u8])> = vec![(b"x", b"a\x00b")];
        assert!(Request::from_parts(b"GET", b"/", Some(b"h"), bad.into_iter(), BodyKind::None).is_err());
    }
}
