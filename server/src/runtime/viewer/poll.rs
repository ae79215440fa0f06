//! The viewer's connection behind tokio's poll-based I/O traits, for the HTTP/2 codec (h2 is
//! written against them). No tokio runtime is involved: reads and writes are non-blocking
//! attempts on the socket (through rustls for TLS viewers), and when the socket has nothing
//! (or takes nothing) the task waits for the ring's readiness on a second descriptor of the
//! same socket, so that a pending wait borrows nothing of the connection.
//!
//! Writes are gathered: h2 hands over its frames one `poll_write` at a time, and they leave
//! together at its `poll_flush` (one `sendmsg`, or one pass of TLS records). On a plain socket
//! a write with nothing pending goes straight to the kernel from h2's buffers (a DATA frame's
//! payload from the slab's mapping included); on TLS, frames are encrypted as they come.

use super::Viewer;
use crate::observe::WorkerMetrics;
use monoio::net::TcpStream;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Response bytes gathered (plaintext for plain sockets, records for TLS) before `poll_write`
/// waits for the socket: the codec's memory per connection, whatever the viewer reads.
const OUT_MAX: usize = 256 * 1024;
/// Read buffer size (a few frames).
const READ_CHUNK: usize = 16 * 1024;

type Wait = Pin<Box<dyn Future<Output = io::Result<()>>>>;

pub struct PollIo {
    v: Viewer,
    /// The same socket, for readiness waits only.
    ready: Rc<TcpStream>,
    read_wait: Option<Wait>,
    write_wait: Option<Wait>,
    /// Received plaintext not yet taken by the codec, from `at`.
    inbuf: Vec<u8>,
    at: usize,
    /// Plain sockets: bytes accepted, not yet sent. TLS: how many plaintext bytes rustls holds
    /// as records not yet sent (approximately: reset when it has none).
    out: Vec<u8>,
    tls_pending: usize,
    /// close_notify is queued.
    notified: bool,
    metrics: Arc<WorkerMetrics>,
}

impl PollIo {
    pub fn new(v: Viewer, metrics: Arc<WorkerMetrics>) -> io::Result<PollIo> {
        let ready = Rc::new(TcpStream::from_std(crate::runtime::io::dup(v.tcp())?)?);
        Ok(PollIo {
            v,
            ready,
            read_wait: None,
            write_wait: None,
            inbuf: Vec::new(),
            at: 0,
            out: Vec::new(),
            tls_pending: 0,
            notified: false,
            metrics,
        })
    }

    /// The socket, through its second descriptor: it stays open while this is held, after
    /// the connection itself is dropped (to close it gently).
    pub fn socket(&self) -> Rc<TcpStream> {
        self.ready.clone()
    }

    fn wait(
        slot: &mut Option<Wait>,
        cx: &mut Context<'_>,
        make: impl FnOnce() -> Wait,
    ) -> Poll<io::Result<()>> {
        let w = slot.get_or_insert_with(make);
        match w.as_mut().poll(cx) {
            Poll::Ready(r) => {
                *slot = None;
                Poll::Ready(r)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn wait_writable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let ready = self.ready.clone();
        Self::wait(&mut self.write_wait, cx, || {
            Box::pin(async move { ready.writable(false).await })
        })
    }

    /// Sends what is pending as far as the socket takes it. Ready(Ok) when all of it is out.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let progress = match &mut self.v {
                Viewer::Plain(s) => {
                    if self.out.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    let n = crate::runtime::io::try_write(s, &self.out, &[])?;
                    self.out.drain(..n);
                    n > 0
                }
                Viewer::Tls(t) => {
                    if !t.tls.wants_write() {
                        self.tls_pending = 0;
                        return Poll::Ready(Ok(()));
                    }
                    match t.tls.write_tls(&mut super::SocketWriter(&t.tcp)) {
                        Ok(n) => n > 0,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
            };
            if !progress {
                std::task::ready!(self.wait_writable(cx))?;
            }
        }
    }

    fn pending(&self) -> usize {
        match self.v {
            Viewer::Plain(_) => self.out.len(),
            Viewer::Tls(_) => self.tls_pending,
        }
    }

    /// Takes `bufs` (all of them: the caller made room).
    fn take(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        match &mut self.v {
            Viewer::Plain(s) => {
                let mut sent = 0;
                if self.out.is_empty() {
                    // Straight from the codec's buffers while the socket takes them.
                    sent = match crate::runtime::io::send_now(s, bufs) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                        Err(e) => return Err(e),
                    };
                }
                let mut skip = sent;
                for b in bufs {
                    let s = skip.min(b.len());
                    skip -= s;
                    self.out.extend_from_slice(&b[s..]);
                }
            }
            Viewer::Tls(t) => {
                for b in bufs.iter().filter(|b| !b.is_empty()) {
                    t.encrypt(&[], b)?;
                }
                self.tls_pending += total;
            }
        }
        self.metrics.add(&self.metrics.bytes_out, total as u64);
        Ok(total)
    }
}

impl AsyncRead for PollIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.at < this.inbuf.len() {
                let n = buf.remaining().min(this.inbuf.len() - this.at);
                buf.put_slice(&this.inbuf[this.at..this.at + n]);
                this.at += n;
                return Poll::Ready(Ok(()));
            }
            this.inbuf.clear();
            this.at = 0;
            if this.inbuf.capacity() < READ_CHUNK {
                this.inbuf.reserve(READ_CHUNK);
            }
            match this.v.try_read(&mut this.inbuf) {
                Some(Ok(0)) => return Poll::Ready(Ok(())),
                Some(Ok(n)) => this.metrics.add(&this.metrics.bytes_in, n as u64),
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => {
                    let ready = this.ready.clone();
                    std::task::ready!(Self::wait(&mut this.read_wait, cx, || {
                        Box::pin(async move { ready.readable(false).await })
                    }))?;
                }
            }
        }
    }
}

impl AsyncWrite for PollIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pending() >= OUT_MAX {
            std::task::ready!(this.poll_drain(cx))?;
        }
        // Take whole slices up to the bound (at least one, in part if it alone is larger).
        let room = OUT_MAX - this.pending().min(OUT_MAX);
        let mut n = 0;
        let mut total = 0;
        for b in bufs {
            if total + b.len() > room && n > 0 {
                break;
            }
            total += b.len();
            n += 1;
        }
        if n == 1 && total > room.max(1) {
            let first = &bufs[0][..room.max(1)];
            return Poll::Ready(this.take(&[IoSlice::new(first)]));
        }
        Poll::Ready(this.take(&bufs[..n]))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_drain(cx))?;
        if let Viewer::Tls(t) = &mut this.v {
            if !this.notified {
                t.tls.send_close_notify();
                this.notified = true;
                return this.poll_drain(cx);
            }
        }
        Poll::Ready(Ok(()))
    }
}
