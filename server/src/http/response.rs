//! Response heads as bytes: status line, common headers, framing.

use super::date::with_date;

/// An HTTP status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u16);

impl Status {
    /// The reason phrase.
    pub fn reason(self) -> &'static str {
        match self.0 {
            100 => "Continue",
            200 => "OK",
            201 => "Created",
            204 => "No Content",
            206 => "Partial Content",
            301 => "Moved Permanently",
            302 => "Found",
            304 => "Not Modified",
            307 => "Temporary Redirect",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            411 => "Length Required",
            412 => "Precondition Failed",
            413 => "Content Too Large",
            414 => "URI Too Long",
            416 => "Range Not Satisfiable",
            417 => "Expectation Failed",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            505 => "HTTP Version Not Supported",
            _ => "Unknown",
        }
    }
}

/// Appending a response head to a buffer.
pub trait WriteHead {
    /// Status line, `Server` and `Date`.
    fn start(&mut self, status: Status);
    /// One header field.
    fn header(&mut self, name: &str, value: &[u8]);
    /// One header field with a decimal value.
    fn header_u64(&mut self, name: &str, value: u64);
    /// `Connection: close` when not keeping alive, then the blank line.
    fn end(&mut self, keep_alive: bool);
}

impl WriteHead for Vec<u8> {
    fn start(&mut self, status: Status) {
        self.extend_from_slice(b"HTTP/1.1 ");
        self.extend_from_slice(itoa::Buffer::new().format(status.0).as_bytes());
        self.push(b' ');
        self.extend_from_slice(status.reason().as_bytes());
        self.extend_from_slice(b"\r\nServer: slabfront\r\nDate: ");
        with_date(|d| self.extend_from_slice(d));
        self.extend_from_slice(b"\r\n");
    }

    fn header(&mut self, name: &str, value: &[u8]) {
        self.extend_from_slice(name.as_bytes());
        self.extend_from_slice(b": ");
        self.extend_from_slice(value);
        self.extend_from_slice(b"\r\n");
    }

    fn header_u64(&mut self, name: &str, value: u64) {
        self.header(name, itoa::Buffer::new().format(value).as_bytes());
    }

    fn end(&mut self, keep_alive: bool) {
        if keep_alive {
            self.extend_from_slice(b"\r\n");
        } else {
            self.extend_from_slice(b"Connection: close\r\n\r\n");
        }
    }
}

/// A complete short response: a status with a one-line text body (omitted for HEAD).
pub fn simple(
    out: &mut Vec<u8>,
    status: Status,
    body: &str,
    head_only: bool,
    keep_alive: bool,
    extra: &[(&str, &[u8])],
) {
    out.start(status);
    for (n, v) in extra {
        out.header(n, v);
    }
    out.header("Content-Type", b"text/plain; charset=utf-8");
    out.header_u64("Content-Length", body.len() as u64 + 1);
    out.end(keep_alive);
    if !head_only {
        out.extend_from_slice(body.as_bytes());
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_response_is_framed() {
        let mut out = Vec::new();
        simple(&mut out, Status(404), "not found", false, true, &[]);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 404 Not Found\r\nServer: slabfront\r\nDate: "));
        assert!(s.ends_with("Content-Length: 10\r\n\r\nnot found\n"), "{s}");
        let mut out = Vec::new();
        simple(&mut out, Status(400), "bad", true, false, &[]);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"),
            "{s}"
        );
    }
}
