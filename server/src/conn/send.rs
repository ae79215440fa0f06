//! The HTTP/1.1 sink: heads framed as bytes, and body windows sent the way this viewer's
//! socket allows (sendfile of file and slab windows to plain-TCP viewers, writes from the
//! mapping or from memory otherwise), chunked when the length is not known.

use super::{Conn, End};
use crate::exchange::body::{Mapped, Window};
use crate::exchange::{BodyLength, BodySource, ResponseHead};
use crate::http::{Method, Request};
use crate::runtime::viewer::Viewer;
use bytes::Bytes;

/// Bodies up to this size are copied into the head buffer (one write); larger ones go by
/// writev.
pub const SMALL_BODY: usize = 16 * 1024;
/// Bodies from this size on are corked with their head.
const CORK_MIN: u64 = 64 * 1024;
/// Stored bodies up to this size are copied out of the mapping (and checked) before they are
/// sent.
const COPY_CHECKED_MAX: usize = 16 * 1024;

/// Appends a response head: status line, `Server` and `Date` for local answers, the fields,
/// the framing (`Content-Length`, or chunked), and `Connection: close` when not keeping alive.
pub fn write_head(out: &mut Vec<u8>, head: &ResponseHead<'_>, keep_alive: bool, chunked: bool) {
    status_line(out, head);
    if head.local {
        out.extend_from_slice(b"Server: slabfront\r\nDate: ");
        crate::http::date::with_date(|d| out.extend_from_slice(d));
        out.extend_from_slice(b"\r\n");
    }
    fields(out, head);
    match head.length {
        BodyLength::Known(n) => {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        BodyLength::Unknown if chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        _ => {}
    }
    out.extend_from_slice(if keep_alive {
        b"\r\n"
    } else {
        b"Connection: close\r\n\r\n"
    });
}

/// Appends an interim (1xx) head: status line and fields.
pub fn write_interim(out: &mut Vec<u8>, head: &ResponseHead<'_>) {
    status_line(out, head);
    fields(out, head);
    out.extend_from_slice(b"\r\n");
}

fn status_line(out: &mut Vec<u8>, head: &ResponseHead<'_>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(head.status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.reason().as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn fields(out: &mut Vec<u8>, head: &ResponseHead<'_>) {
    for (n, v) in &head.fields {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_ref());
        out.extend_from_slice(b"\r\n");
    }
}

impl Conn {
    /// Sends a body after its head (already in `out`), window by window. `streaming`: each
    /// window goes out as it comes (an origin's body), rather than gathered with the next.
    /// Chunked framing when the head announced no length.
    pub(super) async fn send_body(
        &mut self,
        req: &Request,
        mut body: BodySource,
        streaming: bool,
    ) -> Result<(), End> {
        if req.method == Method::Head || !self.body_allowed {
            body.finish_unsent(true).await;
            return Ok(());
        }
        let chunked = self.chunked;
        let _cork = body
            .len()
            .filter(|&n| n >= CORK_MIN && !self.viewer_tls)
            .map(|_| crate::runtime::io::Cork::set(self.stream.tcp()));
        let file_windows = !self.viewer_tls;
        loop {
            let window = match body.next_window(file_windows).await {
                Ok(Some(w)) => w,
                Ok(None) => break,
                Err(e) => {
                    // Part of the response may be out: close without completing the framing.
                    let _ = self.flush().await;
                    return Err(e);
                }
            };
            let sent = match window {
                Window::Bytes(b) if chunked => {
                    self.out
                        .extend_from_slice(format!("{:x}\r\n", b.len()).as_bytes());
                    self.out.extend_from_slice(&b);
                    self.out.extend_from_slice(b"\r\n");
                    self.flush().await
                }
                Window::Bytes(b) if b.len() <= SMALL_BODY => {
                    self.out.extend_from_slice(&b);
                    if streaming {
                        self.flush().await
                    } else {
                        Ok(())
                    }
                }
                Window::Bytes(b) => self.send_out(b).await,
                Window::Mapped { guard, a, b, last } => self.send_mapped(&guard, a, b, last).await,
                Window::File { file, off, len } => match file.file() {
                    Some(f) => {
                        let path = file.path().to_path_buf();
                        match self.flush().await {
                            Ok(()) => self.sendfile(&path, f, off, len).await,
                            Err(e) => Err(e),
                        }
                    }
                    None => Err(End::Gone),
                },
            };
            if let Err(e) = sent {
                // The viewer is gone: a body being stored is still read to its end.
                body.finish_unsent(false).await;
                return Err(e);
            }
        }
        if chunked {
            self.out.extend_from_slice(b"0\r\n\r\n");
        }
        Ok(())
    }

    /// Writes the pending head (and response bytes) followed by `body`.
    pub(super) async fn send_out(&mut self, body: Bytes) -> Result<(), End> {
        let out = std::mem::take(&mut self.out);
        let n = (out.len() + body.len()) as u64;
        let (res, out) = self.stream.write_all(out, body).await;
        self.out = out;
        self.bytes_out += n;
        self.w.metrics.add(&self.w.metrics.bytes_out, n);
        res.map_err(|_| End::Gone)
    }

    /// Writes the pending response bytes.
    pub(super) async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.send_out(Bytes::new()).await
    }

    async fn sendfile(
        &mut self,
        path: &std::path::Path,
        file: &std::fs::File,
        offset: u64,
        len: u64,
    ) -> Result<(), End> {
        let Viewer::Plain(tcp) = &self.stream else {
            return Err(End::Gone);
        };
        let res = crate::runtime::io::send_file(tcp, file, offset, len).await;
        let sent = match &res {
            Ok(()) => len,
            Err((_, n)) => *n,
        };
        self.bytes_out += sent;
        self.w.metrics.add(&self.w.metrics.bytes_out, sent);
        res.map_err(|(e, _)| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                tracing::warn!(path = %path.display(), "file shrank while being sent");
            }
            End::Gone
        })
    }

    /// Bytes `a..b` of a stored body, sent from the mapping. The slab may fault under a send
    /// (a read error, the file truncated): the faulting page then reads as zeros and the
    /// guard stops being intact. So a response's last byte leaves only after the check: a
    /// small body is copied out and checked before it is sent; a larger one is sent but for
    /// its last byte, checked, then finished. A fault closes the connection with the
    /// response incomplete, never complete with wrong bytes.
    async fn send_mapped(&mut self, guard: &Mapped, a: usize, b: usize, last: bool) -> Result<(), End> {
        let fault = |g: &Mapped| {
            if g.0.intact() {
                Ok(())
            } else {
                tracing::warn!("slab read fault under a send; closing the connection");
                Err(End::Gone)
            }
        };
        if !last {
            self.send_out(Bytes::from_owner(guard.clone()).slice(a..b))
                .await?;
            return fault(guard);
        }
        if b - a <= COPY_CHECKED_MAX {
            self.out.extend_from_slice(&guard.as_ref()[a..b]);
            return fault(guard);
        }
        self.send_out(Bytes::from_owner(guard.clone()).slice(a..b - 1))
            .await?;
        let tail = Bytes::copy_from_slice(&guard.as_ref()[b - 1..b]);
        fault(guard)?;
        self.send_out(tail).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::exchange::origin::interim_head;
    use crate::exchange::{text, CacheResult};
    use crate::proxy::upstream::parse_head;

    fn interim(raw: &[u8]) -> Option<String> {
        let (h, _) = parse_head(raw, false).unwrap().unwrap();
        let head = interim_head(&h)?;
        let mut out = Vec::new();
        write_interim(&mut out, &head);
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn interim_responses_for_the_viewer() {
        assert_eq!(
            interim(b"HTTP/1.1 103 Whatever\r\nLink: </a.css>; rel=preload\r\nConnection: x-hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nLink: </b.js>; rel=preload\r\n\r\n").unwrap(),
            "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>; rel=preload\r\n\r\n"
        );
        for status in [100, 101, 200, 204] {
            assert_eq!(
                interim(format!("HTTP/1.1 {status} X\r\n\r\n").as_bytes()),
                None,
                "{status}"
            );
        }
        assert_eq!(
            interim(b"HTTP/1.1 102 Processing\r\n\r\n").unwrap(),
            "HTTP/1.1 102 Processing\r\n\r\n"
        );
    }

    #[test]
    fn heads_are_framed_by_the_codec() {
        let (head, _) = text(404, "not found");
        let mut out = Vec::new();
        write_head(&mut out, &head, true, false);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with("HTTP/1.1 404 Not Found\r\nServer: slabfront\r\nDate: "),
            "{s}"
        );
        assert!(
            s.ends_with("Content-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n\r\n"),
            "{s}"
        );
        let mut relayed = ResponseHead::local(200).with_cache(CacheResult::Miss);
        relayed.local = false;
        relayed.reason = Some("Fine".into());
        relayed.length = BodyLength::Unknown;
        let mut out = Vec::new();
        write_head(&mut out, &relayed, false, true);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 Fine\r\nX-Cache: Miss from slabfront\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        // Unknown length without chunking (HTTP/1.0): no framing field, the close ends it.
        let mut out = Vec::new();
        write_head(&mut out, &relayed, false, false);
        assert!(!String::from_utf8(out).unwrap().contains("Transfer-Encoding"));
    }
}
