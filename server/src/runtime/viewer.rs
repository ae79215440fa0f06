//! The viewer's side of a connection: plain TCP, or TLS terminated here with rustls driven
//! directly over the socket (non-blocking attempts first, the ring's readiness when the
//! socket has nothing, so an idle TLS connection holds no read buffer either).

use crate::runtime::io::{try_read, write_all};
use bytes::Bytes;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use std::io::{self, Read, Write};
use std::time::Instant;

mod poll;
pub use poll::PollIo;

/// Plaintext handed to rustls per encryption pass: large records for large bodies, bounded
/// memory per connection.
const TLS_CHUNK: usize = 256 * 1024;

/// rustls copies plaintext into each record's buffer one slice at a time, and the record's
/// payload starts 5 bytes into its allocation. glibc copies 2 KiB and more with `rep movsb`,
/// which on AMD Zen runs at a tenth of its speed when the destination sits just above the
/// source modulo 4 KiB (5 bytes above a page-aligned body: measured 1.5-1.9 GB/s instead of
/// 26). Slices below glibc's threshold (2,048 bytes on this machine, 4,096 at most elsewhere
/// with AVX2) take its vector loop, fast at every offset (22 GB/s at that same offset).
const COPY_SLICE: usize = 2016;

/// The slice size for this CPU: `COPY_SLICE` on AMD, where `rep movsb` has the slow case
/// above; elsewhere whole chunks, since on Intel Xeon the slices only cost rustls's copy
/// loop calls (3.5% of the core on the 1.3 MB page) and `rep movsb` is fast at every offset.
fn copy_slice() -> usize {
    static SLICE: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        slice_for(&cpuinfo)
    });
    *SLICE
}

fn slice_for(cpuinfo: &str) -> usize {
    let vendor = cpuinfo.lines().find_map(|l| {
        l.strip_prefix("vendor_id")
            .map(|v| v.trim_start_matches([' ', '\t', ':']))
    });
    match vendor {
        Some("AuthenticAMD" | "HygonGenuine") | None => COPY_SLICE,
        Some(_) => TLS_CHUNK,
    }
}

/// A TLS session over a TCP stream.
pub struct TlsConn {
    tcp: TcpStream,
    tls: rustls::ServerConnection,
    /// Ciphertext received, not yet given to rustls.
    inbuf: Vec<u8>,
    /// The peer sent close_notify or closed.
    eof: bool,
}

pub enum Viewer {
    Plain(TcpStream),
    Tls(Box<TlsConn>),
}

impl Viewer {
    pub fn is_tls(&self) -> bool {
        matches!(self, Viewer::Tls(_))
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            Viewer::Plain(s) => s,
            Viewer::Tls(t) => &t.tcp,
        }
    }

    /// The viewer chose HTTP/2 by ALPN.
    pub fn is_h2(&self) -> bool {
        matches!(self, Viewer::Tls(t) if t.tls.alpn_protocol() == Some(b"h2"))
    }

    /// The negotiated protocol version and cipher suite (for logs).
    pub fn tls_info(&self) -> Option<(String, String)> {
        let Viewer::Tls(t) = self else { return None };
        let v = t.tls.protocol_version().map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
            other => format!("{other:?}"),
        });
        let c = t.tls.negotiated_cipher_suite().map(|c| {
            let name = format!("{:?}", c.suite());
            name.trim_start_matches("TLS13_")
                .trim_start_matches("TLS_")
                .replace('_', "-")
        });
        Some((v.unwrap_or_default(), c.unwrap_or_default()))
    }

    /// Waits until a read would find something (no buffer held meanwhile).
    pub async fn readable(&mut self) -> io::Result<()> {
        match self {
            Viewer::Plain(s) => s.readable(false).await,
            Viewer::Tls(t) => {
                if t.has_plaintext() || !t.inbuf.is_empty() || t.eof {
                    return Ok(());
                }
                t.tcp.readable(false).await
            }
        }
    }

    /// Writes what a plain socket takes of `buf` now (0 when it would block). Over TLS,
    /// nothing is written this way (0).
    pub fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Viewer::Plain(s) => crate::runtime::io::try_write(s, buf, &[]),
            Viewer::Tls(_) => Ok(0),
        }
    }

    /// Appends what is there now to `buf`. `None`: nothing yet.
    pub fn try_read(&mut self, buf: &mut Vec<u8>) -> Option<io::Result<usize>> {
        match self {
            Viewer::Plain(s) => try_read(s, buf),
            Viewer::Tls(t) => t.try_read(buf),
        }
    }

    /// Appends at least one byte to `buf` (0 = the peer closed).
    pub async fn read_some(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Viewer::Plain(s) => {
                if buf.capacity() - buf.len() < 1024 {
                    buf.reserve(8 * 1024);
                }
                let (len, cap) = (buf.len(), buf.capacity());
                let owned = std::mem::take(buf);
                let (res, slice) = s.read(owned.slice_mut(len..cap)).await;
                *buf = slice.into_inner();
                res
            }
            Viewer::Tls(t) => loop {
                if let Some(r) = t.try_read(buf) {
                    return r;
                }
                t.tcp.readable(false).await?;
            },
        }
    }

    /// Writes `head` then `body` completely; gives the head buffer back, cleared.
    pub async fn write_all(&mut self, head: Vec<u8>, body: Bytes) -> (io::Result<()>, Vec<u8>) {
        match self {
            Viewer::Plain(s) => write_all(s, head, body).await,
            Viewer::Tls(t) => {
                let r = t.write_all(&head, &body).await;
                let mut head = head;
                head.clear();
                (r, head)
            }
        }
    }

    pub async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Viewer::Plain(s) => s.shutdown().await,
            Viewer::Tls(t) => {
                t.tls.send_close_notify();
                let _ = t.flush_tls().await;
                t.tcp.shutdown().await
            }
        }
    }
}

/// Non-blocking sends on a socket, for rustls's `write_tls` (`WouldBlock` when it is full).
struct SocketWriter<'a>(&'a TcpStream);

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        crate::runtime::io::send_now(self.0, bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsConn {
    /// Runs the handshake until the session can carry application data.
    pub async fn accept(
        tcp: TcpStream,
        config: std::sync::Arc<rustls::ServerConfig>,
        deadline: Instant,
    ) -> io::Result<TlsConn> {
        let tls = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        let mut c = TlsConn {
            tcp,
            tls,
            inbuf: Vec::new(),
            eof: false,
        };
        c.tls.set_buffer_limit(None);
        while c.tls.is_handshaking() {
            if c.tls.wants_write() {
                c.flush_tls().await?;
                continue;
            }
            let got = match try_read(&c.tcp, &mut c.inbuf) {
                Some(r) => r?,
                None => {
                    monoio::time::timeout_at(deadline.into(), c.tcp.readable(false))
                        .await
                        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
                    continue;
                }
            };
            if got == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if let Err(e) = c.feed() {
                // Tell the peer why (an alert), then give up.
                let _ = c.flush_tls().await;
                return Err(e);
            }
        }
        c.flush_tls().await?;
        Ok(c)
    }

    fn has_plaintext(&mut self) -> bool {
        self.tls
            .process_new_packets()
            .map(|s| s.plaintext_bytes_to_read() > 0)
            .unwrap_or(true)
    }

    /// Gives the buffered ciphertext to rustls.
    fn feed(&mut self) -> io::Result<()> {
        while !self.inbuf.is_empty() {
            let mut rd = &self.inbuf[..];
            let n = self.tls.read_tls(&mut rd)?;
            self.inbuf.drain(..n);
            let state = self.tls.process_new_packets().map_err(io::Error::other)?;
            if state.peer_has_closed() {
                self.eof = true;
            }
            if n == 0 {
                break;
            }
        }
        Ok(())
    }

    fn take_plaintext(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let state = self.tls.process_new_packets().map_err(io::Error::other)?;
        let avail = state.plaintext_bytes_to_read();
        if avail == 0 {
            if state.peer_has_closed() {
                self.eof = true;
            }
            return Ok(0);
        }
        // Decrypted straight into the request buffer (only the new bytes are zeroed first).
        let start = buf.len();
        buf.resize(start + avail, 0);
        match self.tls.reader().read(&mut buf[start..]) {
            Ok(n) => {
                buf.truncate(start + n);
                Ok(n)
            }
            Err(e) => {
                buf.truncate(start);
                if e.kind() == io::ErrorKind::WouldBlock {
                    Ok(0)
                } else {
                    Err(e)
                }
            }
        }
    }

    fn try_read(&mut self, buf: &mut Vec<u8>) -> Option<io::Result<usize>> {
        match self.take_plaintext(buf) {
            Ok(0) if self.eof => return Some(Ok(0)),
            Ok(0) => {}
            r => return Some(r),
        }
        match try_read(&self.tcp, &mut self.inbuf) {
            None => None,
            Some(Err(e)) => Some(Err(e)),
            Some(Ok(0)) => {
                self.eof = true;
                Some(Ok(0))
            }
            Some(Ok(_)) => {
                if let Err(e) = self.feed() {
                    return Some(Err(e));
                }
                match self.take_plaintext(buf) {
                    Ok(0) if self.eof => Some(Ok(0)),
                    // Only part of a record: wait for more.
                    Ok(0) => None,
                    r => Some(r),
                }
            }
        }
    }

    /// Sends whatever rustls has encrypted, from its record buffers straight to the socket
    /// (one `sendmsg` over up to 64 records per attempt, no copy into a buffer of ours).
    async fn flush_tls(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut SocketWriter(&self.tcp)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.tcp.writable(false).await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Encrypts and sends `head` and `body`, a bounded chunk at a time; the head shares its
    /// record with the start of the body (one record, one seal, for a small response).
    async fn write_all(&mut self, head: &[u8], body: &[u8]) -> io::Result<()> {
        let mut pieces = body.chunks(TLS_CHUNK);
        self.encrypt(head, pieces.next().unwrap_or_default())?;
        self.flush_tls().await?;
        for piece in pieces {
            self.encrypt(&[], piece)?;
            self.flush_tls().await?;
        }
        Ok(())
    }

    /// Hands `head` then `plain` to rustls, `plain` in slices of `copy_slice()` (one vectored
    /// write; rustls builds full-size records across the slices).
    fn encrypt(&mut self, head: &[u8], plain: &[u8]) -> io::Result<()> {
        let mut slices = [io::IoSlice::new(&[]); TLS_CHUNK.div_ceil(COPY_SLICE) + 1];
        let (mut head, mut rest) = (head, plain);
        while !head.is_empty() || !rest.is_empty() {
            let mut n = 0;
            if !head.is_empty() {
                slices[0] = io::IoSlice::new(head);
                n = 1;
            }
            for (slot, chunk) in slices[n..].iter_mut().zip(rest.chunks(copy_slice())) {
                *slot = io::IoSlice::new(chunk);
                n += 1;
            }
            let taken = self.tls.writer().write_vectored(&slices[..n])?;
            if taken == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            let of_head = taken.min(head.len());
            head = &head[of_head..];
            rest = &rest[taken - of_head..];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_is_sliced_on_amd_only() {
        let amd = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n";
        let intel = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n";
        assert_eq!(slice_for(amd), COPY_SLICE);
        assert_eq!(slice_for(intel), TLS_CHUNK);
        assert_eq!(
            slice_for(""),
            COPY_SLICE,
            "unknown: the slices are safe everywhere"
        );
        // The slice array of `encrypt` holds a whole chunk in either size.
        assert!(TLS_CHUNK.div_ceil(slice_for(intel)) <= TLS_CHUNK.div_ceil(COPY_SLICE));
    }
}
