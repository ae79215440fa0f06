//! A parsed request with some of its fields replaced: the edge writes fields only it can
//! know (`CloudFront-Viewer-Country`, `CloudFront-Viewer-Address`) in place of any a viewer
//! sent under those names, so that every later phase (cache key, origin request) reads them
//! like the viewer's own.

use super::Request;

impl Request {
    /// This request without the fields `drop` picks (by name), with `add` appended.
    pub fn with_fields(&self, drop: impl Fn(&[u8]) -> bool, add: &[(&str, &[u8])]) -> Request {
        // The request line (method, target, version) is kept as it is, so the target's
        // range stays valid.
        let line_end = self.head[self.target.end..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.head.len(), |p| self.target.end + p + 1);
        let mut head = Vec::with_capacity(self.head.len() + 64);
        head.extend_from_slice(&self.head[..line_end]);
        let mut headers = Vec::with_capacity(self.headers.len() + add.len());
        let mut push = |head: &mut Vec<u8>, name: &[u8], value: &[u8]| {
            let n = head.len()..head.len() + name.len();
            head.extend_from_slice(name);
            head.extend_from_slice(b": ");
            let v = head.len()..head.len() + value.len();
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
            headers.push((n, v));
        };
        for (n, v) in self.headers() {
            if !drop(n) {
                push(&mut head, n, v);
            }
        }
        for (n, v) in add {
            push(&mut head, n.as_bytes(), v);
        }
        head.extend_from_slice(b"\r\n");
        Request {
            head: head.into_boxed_slice(),
            method: self.method,
            version: self.version,
            target: self.target.clone(),
            headers,
            body: self.body,
            keep_alive: self.keep_alive,
            expect_continue: self.expect_continue,
            if_fields: self.if_fields,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::{parse_request, Limits, Parsed};

    #[test]
    fn fields_are_replaced_and_the_rest_reads_the_same() {
        let raw = b"GET /a?b=c HTTP/1.1\r\nHost: h\r\nCloudFront-Viewer-Country: ZZ\r\nAccept: */*\r\n\r\n";
        let Ok(Parsed::Complete(r, _)) = parse_request(
            raw,
            &Limits {
                max_header_bytes: 8192,
                max_headers: 64,
                max_uri_bytes: 4096,
            },
        ) else {
            panic!("parsed")
        };
        let e = r.with_fields(
            |n| n.eq_ignore_ascii_case(b"cloudfront-viewer-country"),
            &[("CloudFront-Viewer-Country", b"FR")],
        );
        assert_eq!(e.target(), b"/a?b=c");
        assert_eq!(e.method_name(), b"GET");
        assert_eq!(e.header("host").unwrap(), b"h");
        assert_eq!(e.header("accept").unwrap(), b"*/*");
        let c: Vec<&[u8]> = e.header_values("cloudfront-viewer-country").collect();
        assert_eq!(c, [&b"FR"[..]]);
        assert_eq!(e.keep_alive, r.keep_alive);
    }
}
