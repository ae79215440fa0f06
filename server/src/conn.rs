//! The HTTP/1.1 codec: one viewer connection, its framing and its life.
//!
//! It reads request heads (`http::codec`) and bodies (Content-Length or chunked, `100
//! Continue` when expected), hands each request to the exchange (`exchange`), and frames what
//! the exchange answers: status line, `Server`/`Date` for local answers, `Content-Length` or
//! chunked encoding, `Connection` and keep-alive, HEAD, pipelining, graceful close. Its sink
//! (`send.rs`) decides how each body window leaves. The phases:
//! wait (idle, no buffer held) → read head → exchange → write → close or loop.

use crate::context::{Active, Worker};
use crate::exchange::{BodySource, End, Exchange, ExchangeError, Phase, ResponseHead};
use crate::http::body::ChunkedDecoder;
use crate::http::codec::{parse_request, BodyKind, Parsed};
use crate::http::{Method, Request, Version};
use crate::runtime::viewer::Viewer;
use bytes::Bytes;
use std::rc::Rc;
use std::time::{Duration, Instant};

mod send;

/// Pending pipelined responses are flushed once they reach this size.
const FLUSH_AT: usize = 64 * 1024;
/// Read buffer growth step.
const READ_CHUNK: usize = 8 * 1024;
/// How long a connection accepted while shutting down may take to send its request.
const SHUTDOWN_FIRST_READ: Duration = Duration::from_secs(1);

/// The request body being read, for the current exchange.
#[derive(Default)]
struct BodyIn {
    /// The body's framing has been looked at (size limit, `100 Continue`).
    started: bool,
    /// Read to its end (or there is none).
    done: bool,
    /// Chunked framing, else Content-Length with `left` bytes to come.
    dec: Option<ChunkedDecoder>,
    left: u64,
    total: u64,
}

pub struct Conn {
    /// Counts this connection while it lives.
    _active: Active,
    w: Rc<Worker>,
    stream: Viewer,
    /// The viewer's address (for X-Forwarded-For and logs).
    peer: Option<std::net::SocketAddr>,
    /// The viewer came over TLS.
    viewer_tls: bool,
    /// Bytes received from and sent to the viewer on this connection.
    bytes_in: u64,
    bytes_out: u64,
    /// What the current response is, for the counters and the log.
    note: crate::observe::Note,
    /// When the current response's head was framed.
    first_byte: Option<Instant>,
    /// The current exchange answered, and the connection may serve another request.
    keep: bool,
    /// The current response has a body (not 1xx, 204, 304), chunked when its length is unknown.
    body_allowed: bool,
    chunked: bool,
    body: BodyIn,
    /// Received, not yet consumed bytes.
    buf: Vec<u8>,
    /// Response bytes not yet written.
    out: Vec<u8>,
}

/// Serves a connection until it closes.
///
/// A plain function that moves everything into the connection before the first await: the
/// returned future holds the stream and the worker once (inside `Conn`), not also as the
/// arguments of an `async fn`. Every idle connection carries this future.
pub fn serve(active: Active, stream: Viewer) -> impl std::future::Future<Output = ()> {
    let w = active.0.clone();
    let _ = stream.tcp().set_nodelay(true);
    let peer = stream.tcp().peer_addr().ok();
    let viewer_tls = stream.is_tls();
    let mut c = Conn {
        _active: active,
        w,
        stream,
        peer,
        viewer_tls,
        bytes_in: 0,
        bytes_out: 0,
        note: crate::observe::Note::default(),
        first_byte: None,
        keep: false,
        body_allowed: false,
        chunked: false,
        body: BodyIn::default(),
        buf: Vec::new(),
        out: Vec::new(),
    };
    // `run` borrows: the connection is stored once, as this block's capture (an `async fn`
    // taking `self` by value would keep a second copy).
    async move { c.run().await }
}

impl Conn {
    async fn run(&mut self) {
        let c = self;
        let mut first = true;
        loop {
            // After a reload, the next request is served by the new configuration.
            if let Some(newer) = c.w.newest() {
                c.w = newer;
            }
            if c.buf.is_empty() && !c.wait_idle(first).await {
                return;
            }
            if let Some(newer) = c.w.newest() {
                c.w = newer;
            }
            first = false;
            // Most requests (the whole head already here, a file answered from memory) are
            // served by a plain function, without suspending; the rest by the exchange future,
            // boxed: it is large, and an idle connection should not carry it.
            let r = match c.exchange_now() {
                Now::Done(r) => r,
                Now::Rest(rest) => Box::pin(c.finish(*rest)).await,
                Now::Parsed(req) => Box::pin(c.exchange(Some(req))).await,
                Now::Async => Box::pin(c.exchange(None)).await,
            };
            match r {
                Ok(true) => {}
                Ok(false) => return,
                // The closing paths are rare: boxed, so that idle connections do not carry them.
                Err(End::Timeout(phase)) => {
                    Box::pin(c.timed_out(phase)).await;
                    return;
                }
                Err(End::Refused) => {
                    Box::pin(c.close_after_refusal()).await;
                    return;
                }
                Err(End::Gone) => return,
            }
        }
    }

    async fn timed_out(&mut self, phase: Phase) {
        tracing::debug!(phase = phase.as_str(), "client timed out");
        if !self.w.waits.is_shut_down() {
            self.out.clear();
            self.write_error(ExchangeError::ViewerTimeout(phase), false);
            let _ = self.flush().await;
        }
    }

    async fn close_after_refusal(&mut self) {
        let _ = self.flush().await;
        self.linger().await;
    }

    /// Idle: return the buffers, wait for readability (or shutdown, or the idle timeout).
    async fn wait_idle(&mut self, first: bool) -> bool {
        self.w.put_buf(std::mem::take(&mut self.buf));
        self.w.put_buf(std::mem::take(&mut self.out));
        let s = &self.w.settings;
        let wait = if first {
            s.header_timeout
        } else {
            s.keepalive_timeout
        };
        // A worker-wide sweeper ends idle waits (a monoio timer is 640 bytes; an entry in the
        // sweeper's table is a few dozen), and ends them all on shutdown.
        let mut ready = !self.w.waits.is_shut_down() && {
            let deadline = self.w.waits.wait_until(self.w.waits.now() + wait);
            monoio::select! {
                r = self.stream.readable() => r.is_ok(),
                _ = deadline => false,
            }
        };
        // A new connection while shutting down (taken from a closing listener's queue, or
        // accepted just before): its first request is answered, since closing it unread would
        // reset it. Kept connections that are idle just close.
        if !ready && first && self.w.waits.is_shut_down() {
            let r = monoio::time::timeout(wait.min(SHUTDOWN_FIRST_READ), self.stream.readable()).await;
            ready = matches!(r, Ok(Ok(())));
        }
        if ready {
            self.buf = self.w.take_buf();
            self.out = self.w.take_buf();
        }
        ready
    }

    /// One request and its response. `Ok(true)`: keep the connection.
    /// `parsed`: its head, already read and taken off the buffer.
    async fn exchange(&mut self, parsed: Option<Box<Request>>) -> Result<bool, End> {
        let req = match parsed {
            Some(req) => *req,
            None => self.read_head().await?,
        };
        let start = self.begin(&req);
        let mut ex = Exchange::new(self.w.clone(), &req, self);
        let r = ex.run().await;
        // The distribution that answered (its access log takes the line).
        let site = ex.w.clone();
        let r = match r {
            Ok(()) if self.keep && self.body.done => Ok(true),
            Ok(()) => self.flush().await.map(|()| false),
            Err(e) => Err(e),
        };
        self.end(&req, start, r, &site).await
    }

    /// An exchange whose request head has just been taken off the buffer begins.
    fn begin(&mut self, req: &Request) -> Start {
        // Times are for the access log and the dashboard's latency percentiles.
        let start = Start {
            t0: Some(Instant::now()),
            in0: self.bytes_in.saturating_sub(self.buf.len() as u64),
            out0: self.bytes_out,
        };
        self.note = crate::observe::Note::default();
        self.first_byte = None;
        self.keep = false;
        self.body = BodyIn {
            done: req.body == BodyKind::None,
            ..BodyIn::default()
        };
        start
    }

    /// The exchange is over (`r` says how): it is counted and logged, and a connection that
    /// is not kept is closed gently.
    async fn end(
        &mut self,
        req: &Request,
        start: Start,
        r: Result<bool, End>,
        site: &Worker,
    ) -> Result<bool, End> {
        self.record(req, start, site);
        if let Ok(false) = r {
            // Counted and logged first: the close may wait for the viewer.
            self.linger().await;
        }
        r
    }

    /// The exchange as far as it goes without waiting: a GET or HEAD without a body for a
    /// directory origin, its head already received (or readable now), its body (if any)
    /// small enough to go with the head. `Parsed` (the head taken off the buffer) for any
    /// other complete head; `Async` (nothing taken) when the head is incomplete or refused;
    /// `Rest` when the response needs writing that may wait (a larger body, a socket that
    /// took part, a connection to close). A codec-level shortcut: the general path gives the
    /// same bytes (tested).
    fn exchange_now(&mut self) -> Now {
        if self.viewer_tls || !fast_path_enabled() {
            return Now::Async;
        }
        if self.buf.is_empty() {
            if !self.out.is_empty() {
                // Pending responses go out before any wait: the general path's order.
                return Now::Async;
            }
            match self.stream.try_read(&mut self.buf) {
                Some(Ok(0)) | Some(Err(_)) => return Now::Done(Err(End::Gone)),
                Some(Ok(n)) => self.count_in(n),
                None => return Now::Async,
            }
        }
        let (req, n) = match parse_request(&self.buf, &self.w.settings.limits) {
            Ok(Parsed::Complete(req, n)) => (req, n),
            // Incomplete or refused: the general path reads on, or refuses it.
            _ => return Now::Async,
        };
        self.buf.drain(..n);
        let Some(site) = self.w.site_for(req.header("host")) else {
            return Now::Parsed(Box::new(req));
        };
        // Edge functions run in the exchange's phases: a worker with any takes that path.
        let plain = req.body == BodyKind::None
            && !req.expect_continue
            && site.functions.is_none()
            && site.controls.is_none()
            && crate::exchange::route::viewer_policy(&site, &req).is_none();
        let Some(crate::exchange::route::Route::Static(i, path, query)) =
            plain.then(|| crate::exchange::route::route(&site, &req))
        else {
            // A body, a redirect policy, a custom origin or an error: the general path, with
            // the request as parsed here.
            return Now::Parsed(Box::new(req));
        };
        let start = self.begin(&req);
        let (head, body) = site.statics[i].serve(&req, &path, &query, site.waits.now());
        let body = self.frame(&req, &head, body);
        let rest = |req, start, body, site| {
            Now::Rest(Box::new(Rest {
                req,
                start,
                body,
                site,
            }))
        };
        if !self.keep || !body.is_empty() {
            return rest(req, start, body, site);
        }
        // Pipelined requests waiting: answer them in the same write (as `respond` does).
        if self.buf.is_empty() || self.out.len() >= FLUSH_AT {
            match self.flush_now() {
                Ok(true) => {}
                Ok(false) => return rest(req, start, BodySource::Empty, site),
                Err(e) => {
                    self.record(&req, start, &site);
                    return Now::Done(Err(e));
                }
            }
        }
        self.record(&req, start, &site);
        Now::Done(Ok(true))
    }

    /// What `exchange_now` left: the body is sent, then the exchange ends as any other.
    async fn finish(&mut self, rest: Rest) -> Result<bool, End> {
        let Rest {
            req,
            start,
            body,
            site,
        } = rest;
        let r = match self.send_body(&req, body, false).await {
            Ok(()) if self.keep => Ok(true),
            Ok(()) => self.flush().await.map(|()| false),
            Err(e) => Err(e),
        };
        self.end(&req, start, r, &site).await
    }

    /// Frames a response head into `out` and decides whether the connection is kept; small
    /// bodies in memory go into `out` with it. Returns what is left to send.
    fn frame(&mut self, req: &Request, head: &ResponseHead<'_>, body: BodySource) -> BodySource {
        let head_only = req.method == Method::Head;
        let body_allowed = head.status >= 200 && !matches!(head.status, 204 | 304);
        let unknown = head.length == crate::exchange::BodyLength::Unknown && body_allowed && !head_only;
        let chunked = unknown && req.version == Version::Http11;
        self.body_allowed = body_allowed;
        self.chunked = chunked;
        // An HTTP/1.0 viewer's body of unknown length ends with the connection.
        let delimited = !unknown || chunked;
        self.keep = req.keep_alive && !self.w.waits.is_shut_down() && !head.close && delimited;
        let logging = self.w.logging();
        self.note = crate::observe::Note::of(head, logging);
        self.first_byte = logging.then(Instant::now);
        send::write_head(&mut self.out, head, self.keep, chunked);
        if head_only || !body_allowed {
            return match body {
                BodySource::Relay(_) => body,
                _ => BodySource::Empty,
            };
        }
        match body {
            BodySource::Bytes(b) if b.len() <= send::SMALL_BODY => {
                self.out.extend_from_slice(&b);
                BodySource::Empty
            }
            other => other,
        }
    }

    /// Writes the pending response bytes as far as the socket takes them now. `Ok(true)`: all
    /// of them; `Ok(false)`: the rest is still in `out`.
    fn flush_now(&mut self) -> Result<bool, End> {
        let n = match self.stream.try_write(&self.out) {
            Ok(n) => n,
            Err(_) => return Err(End::Gone),
        };
        self.bytes_out += n as u64;
        self.w.metrics.add(&self.w.metrics.bytes_out, n as u64);
        self.out.drain(..n);
        Ok(self.out.is_empty())
    }

    /// Counts the exchange and writes its access-log line (in the log of the distribution
    /// that answered).
    fn record(&mut self, req: &Request, start: Start, site: &Worker) {
        let Start { t0, in0, out0 } = start;
        let w = self.w.clone();
        w.metrics.request(req.method, &self.note);
        let sent = self.bytes_out - out0 + self.out.len() as u64;
        let n = &self.note;
        // The distribution that answered.
        site.stats.record(
            req.target(),
            n.status,
            n.result,
            self.viewer_tls,
            sent,
            t0.unwrap_or_else(Instant::now),
        );
        if let Some(log) = site.log.as_ref().or(w.log.as_ref()) {
            let now = Instant::now();
            let t0 = t0.unwrap_or(now);
            let pending = self.out.len() as u64;
            let id = w.request_id();
            let ssl = self.stream.tls_info();
            log.push(
                &crate::observe::LogEntry {
                    req,
                    note: &self.note,
                    edge: &w.edge,
                    peer: self.peer,
                    tls: self.viewer_tls,
                    bytes_in: self
                        .bytes_in
                        .saturating_sub(self.buf.len() as u64)
                        .saturating_sub(in0),
                    bytes_out: self.bytes_out - out0 + pending,
                    time_taken: now - t0,
                    ttfb: self.first_byte.unwrap_or(now) - t0,
                    request_id: &id,
                    include_cookies: log.include_cookies,
                    ssl: ssl.as_ref().map(|(v, c)| (v.as_str(), c.as_str())),
                },
                &w.metrics,
            );
        }
    }

    /// Reads until a whole request head is buffered, then takes it off the buffer.
    async fn read_head(&mut self) -> Result<Request, End> {
        // Taken when the first wait begins: usually the whole head is already buffered.
        let mut deadline = None;
        loop {
            if !self.buf.is_empty() {
                match parse_request(&self.buf, &self.w.settings.limits) {
                    Ok(Parsed::Complete(req, n)) => {
                        self.buf.drain(..n);
                        return Ok(req);
                    }
                    Ok(Parsed::Partial) => {}
                    Err(e) => return Err(self.refuse(e)),
                }
            }
            // Nothing more to parse: whatever is pending goes out before we wait.
            self.flush().await?;
            let timeout = self.w.settings.header_timeout;
            let first_wait = || *deadline.get_or_insert_with(|| Instant::now() + timeout);
            let n = self.read_more(first_wait, Phase::Head).await?;
            if n == 0 {
                return Err(End::Gone);
            }
        }
    }

    /// Writes an error answer that closes the connection (the codec's own refusals: a head or
    /// body it cannot read, a viewer out of time).
    fn write_error(&mut self, e: ExchangeError, head_only: bool) {
        let (mut head, body) = e.answer();
        head.close = true;
        self.note = crate::observe::Note::of(&head, self.w.logging());
        send::write_head(&mut self.out, &head, false, false);
        if !head_only {
            self.out.extend_from_slice(&body);
        }
    }

    /// Answers with the error's status and marks the connection for closing.
    fn refuse(&mut self, e: impl Into<ExchangeError>) -> End {
        let e = e.into();
        tracing::debug!(
            status = e.status().0,
            reason = e.reason(),
            fault = e.fault().as_str(),
            "request refused"
        );
        self.write_error(e, false);
        End::Refused
    }

    /// The next piece of the request body, its framing checked (Content-Length, or chunked
    /// with the size limit) and removed; `None` at its end.
    async fn next_body_piece(&mut self, req: &Request) -> Result<Option<Bytes>, End> {
        if self.body.done {
            return Ok(None);
        }
        let max = self.w.settings.max_body_bytes;
        if !self.body.started {
            self.body.started = true;
            match req.body {
                BodyKind::Length(n) if n > max => return Err(self.refuse(ExchangeError::BodyTooLarge)),
                BodyKind::Length(n) => self.body.left = n,
                BodyKind::Chunked => self.body.dec = Some(ChunkedDecoder::new()),
                BodyKind::None => {}
            }
            if req.expect_continue && self.buf.is_empty() {
                self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                self.flush().await?;
            }
        }
        let timeout = self.w.settings.body_timeout;
        loop {
            let piece = match self.body.dec.as_mut() {
                None => {
                    let take = (self.buf.len() as u64).min(self.body.left) as usize;
                    self.body.left -= take as u64;
                    self.body.done = self.body.left == 0;
                    Bytes::from(self.buf.drain(..take).collect::<Vec<u8>>())
                }
                Some(dec) => {
                    let mut used = 0;
                    let mut data = Vec::new();
                    loop {
                        let step = match dec.step(&self.buf[used..]) {
                            Ok(s) => s,
                            Err(e) => return Err(self.refuse(ExchangeError::BodyFraming(e.0))),
                        };
                        data.extend_from_slice(&self.buf[used..][step.data.clone()]);
                        self.body.total += step.data.len() as u64;
                        used += step.consumed;
                        if self.body.total + dec.remaining_in_chunk() > max {
                            return Err(self.refuse(ExchangeError::BodyTooLarge));
                        }
                        if dec.is_done() || step.consumed == 0 {
                            break;
                        }
                    }
                    self.body.done = dec.is_done();
                    self.buf.drain(..used);
                    Bytes::from(data)
                }
            };
            if !piece.is_empty() {
                return Ok(Some(piece));
            }
            if self.body.done {
                return Ok(None);
            }
            if self.read_more(|| Instant::now() + timeout, Phase::Body).await? == 0 {
                return Err(End::Gone);
            }
        }
    }

    /// Appends what the socket has to `buf`; 0 means the peer closed. `deadline` is asked for
    /// only when the bytes are not already there (usually they are: we were woken by
    /// readability), so the fast path reads no clock.
    async fn read_more(&mut self, deadline: impl FnOnce() -> Instant, phase: Phase) -> Result<usize, End> {
        match self.stream.try_read(&mut self.buf) {
            Some(Ok(n)) => {
                self.count_in(n);
                return Ok(n);
            }
            Some(Err(_)) => return Err(End::Gone),
            None => {}
        }
        let deadline = deadline();
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(READ_CHUNK);
        }
        let read = self.stream.read_some(&mut self.buf);
        match monoio::time::timeout_at(deadline.into(), read).await {
            Err(_) => Err(End::Timeout(phase)),
            Ok(Ok(n)) => {
                self.count_in(n);
                Ok(n)
            }
            Ok(Err(_)) => Err(End::Gone),
        }
    }

    fn count_in(&mut self, n: usize) {
        self.bytes_in += n as u64;
        self.w.metrics.add(&self.w.metrics.bytes_in, n as u64);
    }

    /// Closes politely: stop sending, then drain what the client still sends for a moment, so
    /// that the kernel does not reset the connection before the client reads our response.
    async fn linger(&mut self) {
        let _ = self.stream.shutdown().await;
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut drained = 0;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if buf.capacity() < 4096 {
            buf.reserve(4096);
        }
        while drained < 256 * 1024 {
            buf.clear();
            match monoio::time::timeout_at(deadline.into(), self.stream.read_some(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => drained += n,
                _ => return,
            }
        }
    }
}

impl crate::exchange::Sink for Conn {
    fn secure(&self) -> bool {
        self.viewer_tls
    }

    fn peer(&self) -> Option<std::net::SocketAddr> {
        self.peer
    }

    async fn body_piece(&mut self, req: &Request) -> Result<Option<Bytes>, End> {
        self.next_body_piece(req).await
    }

    async fn interim(&mut self, req: &Request, head: &ResponseHead<'_>) {
        // RFC 9110 §15.2: never to an HTTP/1.0 viewer.
        if req.version == Version::Http11 {
            send::write_interim(&mut self.out, head);
            let _ = self.flush().await;
        }
    }

    async fn respond(&mut self, req: &Request, head: ResponseHead<'_>, body: BodySource) -> Result<(), End> {
        let body = self.frame(req, &head, body);
        drop(head);
        let streaming = matches!(body, BodySource::Relay(_));
        self.send_body(req, body, streaming).await?;
        if !self.keep {
            return self.flush().await;
        }
        // Pipelined requests waiting: answered in the same write.
        if self.buf.is_empty() || self.out.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }
}

/// Where an exchange's counts started (for its access-log line).
#[derive(Clone, Copy)]
struct Start {
    t0: Option<Instant>,
    in0: u64,
    out0: u64,
}

/// How far `exchange_now` got.
enum Now {
    /// The exchange is over.
    Done(Result<bool, End>),
    /// The response's head (or all of it) is in `out`; sending may wait.
    Rest(Box<Rest>),
    /// A complete head taken off the buffer, for the general path to serve.
    Parsed(Box<Request>),
    /// Nothing taken: the general path serves this request.
    Async,
}

struct Rest {
    req: Request,
    start: Start,
    body: BodySource,
    /// The distribution that answered.
    site: Rc<Worker>,
}

/// An error answer as HTTP/1.1 bytes, closing the connection (for refusals made before a
/// connection is served, such as too many connections).
pub fn error_bytes(e: ExchangeError) -> Vec<u8> {
    let (mut head, body) = e.answer();
    head.close = true;
    let mut out = Vec::with_capacity(256);
    send::write_head(&mut out, &head, false, false);
    out.extend_from_slice(&body);
    out
}

/// The synchronous shortcut for small static responses is on unless
/// `SLABFRONT_NO_FAST_PATH` is set (the differential test compares both paths' bytes).
fn fast_path_enabled() -> bool {
    static ON: std::sync::LazyLock<bool> =
        std::sync::LazyLock::new(|| std::env::var_os("SLABFRONT_NO_FAST_PATH").is_none());
    *ON
}
