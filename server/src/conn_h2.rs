//! The HTTP/2 codec: one viewer connection speaking HTTP/2 (ALPN `h2` on TLS listeners, or
//! prior knowledge on plain listeners with `server.h2c`), its streams served concurrently on
//! the worker, each by the same exchange as an HTTP/1.1 request (`exchange`).
//!
//! Frames, HPACK, flow control and the protocol's own limits are hyperium's `h2`, driven over
//! the viewer's socket through `runtime::viewer::PollIo`. This module owns the connection's
//! life: the limits of `[server.http2]` (h2's builder options, and a count of streams the
//! viewer resets, for rapid reset), GOAWAY when the worker shuts down, reloads or the
//! connection idles, then a gentle close. The phases: handshake → accept streams (each a task:
//! `stream::serve`) → GOAWAY → drain → close.

use crate::context::{Active, Worker};
use crate::runtime::viewer::{PollIo, Viewer};
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

mod stream;

/// How often the connection looks at shutdown, reloads and idleness.
const TICK: Duration = Duration::from_secs(1);
/// The connection preface a prior-knowledge (h2c) viewer starts with (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the streams of a connection share with it.
pub(crate) struct Shared {
    pub peer: Option<std::net::SocketAddr>,
    pub tls: bool,
    pub ssl: Option<(String, String)>,
    /// Streams running now.
    pub streams: Cell<usize>,
    /// Streams the viewer reset in the current interval, and when that interval began.
    resets: Cell<u32>,
    reset_since: Cell<Instant>,
    /// Too many resets: the connection is closed with ENHANCE_YOUR_CALM.
    calm: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Shared {
    /// A stream was reset by the viewer before its response was complete.
    pub fn reset_by_viewer(&self, w: &Worker) {
        let lim = &w.settings.http2;
        let now = Instant::now();
        if now.duration_since(self.reset_since.get()) > lim.reset_interval.0 {
            self.reset_since.set(now);
            self.resets.set(0);
        }
        self.resets.set(self.resets.get() + 1);
        if self.resets.get() > lim.max_resets && !self.calm.get() {
            tracing::info!(peer = ?self.peer, resets = self.resets.get(), "HTTP/2 viewer resets too many streams; closing");
            self.calm.set(true);
            if let Some(wk) = self.waker.borrow_mut().take() {
                wk.wake();
            }
        }
    }
}

/// Serves an HTTP/2 connection until it closes.
pub async fn serve(active: Active, viewer: Viewer) {
    run(active, viewer).await
}

/// The h2 server options from `[server.http2]`.
fn builder(w: &Worker) -> h2::server::Builder {
    let lim = &w.settings.http2;
    let clamp = |v: u64| v.min(u32::MAX as u64) as u32;
    let mut b = h2::server::Builder::new();
    b.max_concurrent_streams(lim.max_concurrent_streams)
        .max_header_list_size(clamp(lim.max_header_list_size.0))
        .header_table_size(clamp(lim.header_table_size.0))
        .initial_window_size(clamp(lim.stream_window.0))
        .initial_connection_window_size(clamp(lim.connection_window.0))
        .max_send_buffer_size(lim.max_send_buffer.0 as usize)
        // Streams reset before they are accepted, and streams we reset for protocol errors
        // (h2's own rapid-reset and 2024 "MadeYouReset" bounds).
        .max_pending_accept_reset_streams(lim.max_resets.min(100) as usize)
        .max_local_error_reset_streams(Some(lim.max_resets as usize))
        .max_concurrent_reset_streams(lim.max_concurrent_streams as usize);
    b
}

async fn run(active: Active, viewer: Viewer) {
    let w = active.0.clone();
    let _ = viewer.tcp().set_nodelay(true);
    let shared = Rc::new(Shared {
        peer: viewer.tcp().peer_addr().ok(),
        tls: viewer.is_tls(),
        ssl: viewer.tls_info(),
        streams: Cell::new(0),
        resets: Cell::new(0),
        reset_since: Cell::new(Instant::now()),
        calm: Cell::new(false),
        waker: RefCell::new(None),
    });
    let io = match PollIo::new(viewer, w.metrics.clone()) {
        Ok(io) => io,
        Err(e) => {
            tracing::debug!(error = %e, "cannot drive an HTTP/2 connection");
            return;
        }
    };
    let sock = io.socket();
    let handshake = builder(&w).handshake::<_, Bytes>(io);
    let mut conn = match monoio::time::timeout(w.settings.header_timeout, handshake).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "HTTP/2 handshake failed");
            return;
        }
        Err(_) => return,
    };
    accept_streams(&w, &shared, &mut conn).await;
    // The connection is done (GOAWAY sent and every stream finished, or the viewer left):
    // close gently, so that the viewer reads our last frames before any reset.
    let _ = monoio::time::timeout(
        Duration::from_secs(1),
        std::future::poll_fn(|cx| conn.poll_closed(cx)),
    )
    .await;
    drop(conn);
    linger(&sock).await;
    drop(active);
}

/// Closes politely: our side is shut (FIN after the last frames), then what the viewer still
/// sends (window updates while it reads the rest of a body, its own GOAWAY) is read and
/// dropped until it closes, for at most `LINGER`: closing with unread bytes would reset the
/// connection, and the viewer would lose what it had not read yet.
async fn linger(sock: &monoio::net::TcpStream) {
    const LINGER: Duration = Duration::from_secs(5);
    let _ = crate::runtime::io::shutdown_write(sock);
    let deadline = Instant::now() + LINGER;
    let mut buf = Vec::with_capacity(4096);
    let mut drained = 0usize;
    while drained < (1 << 20) {
        buf.clear();
        match crate::runtime::io::try_read(sock, &mut buf) {
            Some(Ok(0)) | Some(Err(_)) => return,
            Some(Ok(n)) => drained += n,
            None => match monoio::time::timeout_at(deadline.into(), sock.readable(false)).await {
                Ok(Ok(())) => {}
                _ => return,
            },
        }
    }
}

/// A stream as h2 hands it over: its request and the handle to answer it.
type Accepted = (http::Request<h2::RecvStream>, h2::server::SendResponse<Bytes>);

enum Event {
    Stream(Option<Result<Box<Accepted>, h2::Error>>),
    Tick,
    Calm,
}

/// Accepts streams and spawns each, until the connection ends. GOAWAY (graceful: streams
/// begun are finished) on shutdown, reload or idleness; GOAWAY with ENHANCE_YOUR_CALM and an
/// immediate close when the viewer resets too many streams.
async fn accept_streams(
    w: &Rc<Worker>,
    shared: &Rc<Shared>,
    conn: &mut h2::server::Connection<PollIo, Bytes>,
) {
    let mut tick = Box::pin(monoio::time::sleep(TICK));
    let mut idle_since = Instant::now();
    let mut going_away = false;
    let mut first = true;
    loop {
        let calm = std::future::poll_fn(|cx| {
            if shared.calm.get() {
                Poll::Ready(())
            } else {
                *shared.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        });
        let ev = monoio::select! {
            s = conn.accept() => Event::Stream(s.map(|r| r.map(Box::new))),
            _ = &mut tick => Event::Tick,
            _ = calm => Event::Calm,
        };
        match ev {
            Event::Stream(Some(Ok(accepted))) => {
                let (req, respond) = *accepted;
                first = false;
                let gen = w.newest().unwrap_or_else(|| w.clone());
                shared.streams.set(shared.streams.get() + 1);
                monoio::spawn(stream::serve(gen, shared.clone(), req, respond));
            }
            Event::Stream(Some(Err(e))) => {
                tracing::debug!(error = %e, "HTTP/2 connection error");
                return;
            }
            Event::Stream(None) => return,
            Event::Calm => {
                conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
                return;
            }
            Event::Tick => {
                tick = Box::pin(monoio::time::sleep(TICK));
                if going_away {
                    continue;
                }
                let now = Instant::now();
                if shared.streams.get() > 0 {
                    idle_since = now;
                }
                let idle = if first {
                    w.settings.header_timeout
                } else {
                    w.settings.keepalive_timeout
                };
                if w.waits.is_shut_down() || w.newest().is_some() || now.duration_since(idle_since) >= idle {
                    // In-flight streams finish; new ones are refused; accept() ends when
                    // the last one is done.
                    going_away = true;
                    conn.graceful_shutdown();
                }
            }
        }
    }
}

/// Reads a plain connection's first bytes without taking them: true when they are the HTTP/2
/// preface (a prior-knowledge viewer), false for anything else (HTTP/1.1, or nothing within
/// the header timeout, which the HTTP/1.1 codec then handles as it always does).
pub async fn is_preface(stream: &monoio::net::TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; PREFACE.len()];
    loop {
        match crate::runtime::io::peek_now(stream, &mut buf) {
            Some(Ok(0)) | Some(Err(_)) => return false,
            Some(Ok(n)) if n == PREFACE.len() || buf[..n] != PREFACE[..n] => return buf[..n] == *PREFACE,
            Some(Ok(_)) => {
                // Part of the preface so far: wait for more.
                monoio::time::sleep(Duration::from_millis(5)).await;
                if Instant::now() >= deadline {
                    return false;
                }
            }
            None => match monoio::time::timeout_at(deadline.into(), stream.readable(false)).await {
                Ok(Ok(())) => {}
                _ => return false,
            },
        }
    }
}
