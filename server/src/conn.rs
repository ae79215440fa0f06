//! One client connection, as a sequence of named phases:
//! wait (idle, no buffer held) → read head → read body → route → respond → write.

use crate::context::{Active, Worker};
use crate::exchange::ExchangeError;
use crate::http::body::ChunkedDecoder;
use crate::http::codec::{parse_request, BodyKind, Parsed};
use crate::http::response::simple;
use crate::http::uri::{clean_path, split_target, PathError};
use crate::http::{Method, Request, Status};
use crate::router::Target;
use crate::runtime::viewer::Viewer;
use crate::static_files::Body;
use bytes::Bytes;
use monoio::buf::IoBufMut;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Pending pipelined responses are flushed once they reach this size.
const FLUSH_AT: usize = 64 * 1024;
/// Bodies from this size on are corked with their head.
const CORK_MIN: usize = 64 * 1024;
/// Read buffer growth step.
const READ_CHUNK: usize = 8 * 1024;
/// How long a connection accepted while shutting down may take to send its request.
const SHUTDOWN_FIRST_READ: Duration = Duration::from_secs(1);
/// Chunk size for streaming large files from disk.
const FILE_CHUNK: usize = 256 * 1024;

/// The phase a read timed out in (for logs). Idle waits end without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Head,
    Body,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Head => "head",
            Phase::Body => "body",
        }
    }
}

/// Why a connection ended early.
#[derive(Debug)]
enum End {
    /// Peer closed, reset, or a write failed: nothing more to say.
    Gone,
    /// Time ran out in a phase.
    Timeout(Phase),
    /// The request was refused with this status (response already written).
    Refused,
}

/// The phases of a request routed to a custom origin: key, lookup, hit, revalidate, collapse,
/// fetch, relay and store, pass.
mod caching;

struct Conn {
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
    /// Where the current response's head starts in `out`, until it has been read into `note`.
    head_at: Option<usize>,
    note: crate::observe::Note,
    /// The current response comes from the proxy (it may carry a cache result).
    proxied: bool,
    /// When the current response's head went out.
    first_byte: Option<Instant>,
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
        head_at: None,
        note: crate::observe::Note::default(),
        proxied: false,
        first_byte: None,
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
            ExchangeError::ViewerTimeout(phase)
                .answer()
                .write_http1(&mut self.out, false, false, &[]);
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
        let start = self.begin();
        let r = self.handle(&req).await;
        self.end(&req, start, r).await
    }

    /// An exchange whose request head has just been taken off the buffer begins.
    fn begin(&mut self) -> Start {
        // Times are for the access log only: the clock is not read without one.
        let start = Start {
            t0: self.w.log.is_some().then(Instant::now),
            in0: self.bytes_in.saturating_sub(self.buf.len() as u64),
            out0: self.bytes_out,
        };
        self.head_at = Some(self.out.len());
        self.note = crate::observe::Note::default();
        self.proxied = false;
        self.first_byte = None;
        start
    }

    /// The exchange is over (`r` says how): it is counted and logged, and a connection that
    /// is not kept is closed gently.
    async fn end(&mut self, req: &Request, start: Start, r: Result<bool, End>) -> Result<bool, End> {
        self.record(req, start);
        if let Ok(false) = r {
            // Counted and logged first: the close may wait for the viewer.
            self.linger().await;
        }
        r
    }

    /// The exchange as far as it goes without waiting: a GET or HEAD without a body, its head
    /// already received (or readable now), for a directory origin. `Parsed` (the head taken
    /// off the buffer) for any other complete head; `Async` (nothing taken) when the head is
    /// incomplete or refused; `Rest` when the response needs writing that may wait (a larger
    /// body, a socket that took part, a connection to close).
    fn exchange_now(&mut self) -> Now {
        if self.viewer_tls {
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
        let plain = req.body == BodyKind::None && !req.expect_continue && self.viewer_policy(&req).is_none();
        let Some(Route::Static(i, path, query)) = plain.then(|| self.route(&req)) else {
            // A body, a redirect policy, a custom origin or an error: the general path, with
            // the request as parsed here.
            return Now::Parsed(Box::new(req));
        };
        let start = self.begin();
        let keep_alive = req.keep_alive && !self.w.waits.is_shut_down();
        let w = self.w.clone();
        let body = w.statics[i].serve(&req, &path, &query, keep_alive, w.waits.now(), &mut self.out);
        let rest = |req, start, body| {
            Now::Rest(Box::new(Rest {
                req,
                start,
                body,
                keep_alive,
            }))
        };
        if !keep_alive || !matches!(body, Body::None) {
            return rest(req, start, body);
        }
        // Pipelined requests waiting: answer them in the same write (as `send` does).
        if self.buf.is_empty() || self.out.len() >= FLUSH_AT {
            match self.flush_now() {
                Ok(true) => {}
                Ok(false) => return rest(req, start, Body::None),
                Err(e) => {
                    self.record(&req, start);
                    return Now::Done(Err(e));
                }
            }
        }
        self.record(&req, start);
        Now::Done(Ok(true))
    }

    /// What `exchange_now` left: the body is sent, then the exchange ends as any other.
    async fn finish(&mut self, rest: Rest) -> Result<bool, End> {
        let Rest {
            req,
            start,
            body,
            keep_alive,
        } = rest;
        let r = self.respond(body, keep_alive).await;
        self.end(&req, start, r).await
    }

    /// Writes the pending response bytes as far as the socket takes them now. `Ok(true)`: all
    /// of them; `Ok(false)`: the rest is still in `out`.
    fn flush_now(&mut self) -> Result<bool, End> {
        self.capture();
        let n = match self.stream.try_write(&self.out) {
            Ok(n) => n,
            Err(_) => return Err(End::Gone),
        };
        self.bytes_out += n as u64;
        self.w.metrics.add(&self.w.metrics.bytes_out, n as u64);
        self.out.drain(..n);
        Ok(self.out.is_empty())
    }

    /// Reads the response head just written (once) into `note`.
    fn capture(&mut self) {
        if let Some(at) = self.head_at {
            if at < self.out.len() {
                self.note = if self.w.log.is_some() {
                    crate::observe::Note::from_head(&self.out[at..])
                } else if self.proxied {
                    crate::observe::Note::brief(&self.out[at..])
                } else {
                    crate::observe::Note::status_only(&self.out[at..])
                };
                self.head_at = None;
                self.first_byte = self.w.log.is_some().then(Instant::now);
            }
        }
    }

    /// Counts the exchange and writes its access-log line.
    fn record(&mut self, req: &Request, start: Start) {
        let Start { t0, in0, out0 } = start;
        self.capture();
        let w = self.w.clone();
        w.metrics.request(req.method, &self.note);
        if let Some(log) = &w.log {
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

    /// Writes the pending head (and response bytes) followed by `body`.
    async fn send_out(&mut self, body: Bytes) -> Result<(), End> {
        self.capture();
        let out = std::mem::take(&mut self.out);
        let n = (out.len() + body.len()) as u64;
        let (res, out) = self.stream.write_all(out, body).await;
        self.out = out;
        self.bytes_out += n;
        self.w.metrics.add(&self.w.metrics.bytes_out, n);
        res.map_err(|_| End::Gone)
    }

    /// One request (its head already read) and its response. `Ok(true)`: keep the connection.
    async fn handle(&mut self, req: &Request) -> Result<bool, End> {
        let keep_alive = req.keep_alive && !self.w.waits.is_shut_down();

        if !self.viewer_tls {
            if let Some(refusal) = self.viewer_policy(req) {
                self.read_body(req).await?;
                let keep_alive = keep_alive && req.method != Method::Other;
                let (status, location) = refusal;
                match location {
                    Some(loc) => simple(
                        &mut self.out,
                        status,
                        "use HTTPS",
                        req.method == Method::Head,
                        keep_alive,
                        &[("Location", loc.as_bytes())],
                    ),
                    None => ExchangeError::HttpsRequired.answer().write_http1(
                        &mut self.out,
                        req.method == Method::Head,
                        keep_alive,
                        &[],
                    ),
                }
                self.flush().await?;
                return Ok(keep_alive);
            }
        }
        let route = self.route(req);
        if let Route::Custom(origin, behavior, path, query) = route {
            self.proxied = true;
            // The proxy reads (or streams) the body itself.
            let keep = Box::pin(self.proxy(req, origin, behavior, path, query, keep_alive)).await?;
            if !keep {
                self.flush().await?;
                return Ok(false);
            }
            if self.buf.is_empty() || self.out.len() >= FLUSH_AT {
                self.flush().await?;
            }
            return Ok(true);
        }
        // A refused request with a body we have not asked for: answer without reading it.
        let reject_early = matches!(route, Route::Error(..)) && req.expect_continue;
        if !reject_early {
            self.read_body(req).await?;
        }
        // An unknown method's semantics are unknown: answer it and close.
        let keep_alive = keep_alive && !reject_early && req.method != Method::Other;
        let head_only = req.method == Method::Head;
        let body = match route {
            Route::Error(e) => {
                e.answer().write_http1(&mut self.out, head_only, keep_alive, &[]);
                Body::None
            }
            Route::Options => {
                options_response(&mut self.out, keep_alive);
                Body::None
            }
            Route::Static(i, path, query) => {
                let w = self.w.clone();
                w.statics[i].serve(req, &path, &query, keep_alive, w.waits.now(), &mut self.out)
            }
            Route::Custom(..) => Body::None,
        };
        self.respond(body, keep_alive).await
    }

    /// Sends a local response's body after its head (already in `out`); a connection that is
    /// not kept has everything flushed. `Ok(true)`: keep the connection.
    async fn respond(&mut self, body: Body, keep_alive: bool) -> Result<bool, End> {
        self.send(body).await?;
        if !keep_alive {
            self.flush().await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// A plain-HTTP request under a behavior whose viewer protocol policy is not
    /// `allow-all`: the redirect (301 for GET/HEAD, 307 otherwise) or the 403.
    fn viewer_policy(&self, req: &Request) -> Option<(Status, Option<String>)> {
        use config::ViewerProtocolPolicy as P;
        if self.w.policies.iter().all(|p| *p == P::AllowAll) {
            return None;
        }
        let (path, _) = split_target(req.target())?;
        let clean = clean_path(path).ok()?;
        let b = self.w.router.route_behavior(clean.path.as_bytes()).1;
        match self.w.policies.get(b).copied().unwrap_or_default() {
            P::AllowAll => None,
            P::HttpsOnly => Some((Status(403), None)),
            P::RedirectToHttps => {
                let host = req
                    .header("host")
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                // CloudFront redirects to the default HTTPS port: the Host's port goes.
                let host = match host.strip_prefix('[') {
                    Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or_default()),
                    None => host.split(':').next().unwrap_or_default().to_string(),
                };
                let target = String::from_utf8_lossy(req.target());
                let status = if matches!(req.method, Method::Get | Method::Head) {
                    301
                } else {
                    307
                };
                Some((Status(status), Some(format!("https://{host}{target}"))))
            }
        }
    }

    fn route(&self, req: &Request) -> Route {
        let Some((path, query)) = split_target(req.target()) else {
            if req.target() == b"*" && req.method == Method::Options {
                return Route::Options;
            }
            return Route::Error(ExchangeError::Target("invalid request target"));
        };
        let clean = match clean_path(path) {
            Ok(c) => c,
            Err(PathError::Invalid(why)) => return Route::Error(ExchangeError::Target(why)),
            Err(PathError::Escapes) => return Route::Error(ExchangeError::Target("path leaves the root")),
        };
        match self.w.router.route_behavior(clean.path.as_bytes()) {
            (Target::Static(i), _) => {
                if !matches!(req.method, Method::Get | Method::Head) {
                    return Route::Error(ExchangeError::MethodNotServed {
                        unknown: req.method == Method::Other,
                    });
                }
                Route::Static(i, clean, query.to_vec())
            }
            (Target::Custom(i), b) => Route::Custom(i, b, path.to_vec(), query.to_vec()),
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

    /// Answers with the error's status and marks the connection for closing.
    fn refuse(&mut self, e: impl Into<ExchangeError>) -> End {
        let e = e.into();
        tracing::debug!(
            status = e.status().0,
            reason = e.reason(),
            fault = e.fault().as_str(),
            "request refused"
        );
        e.answer().write_http1(&mut self.out, false, false, &[]);
        End::Refused
    }

    /// Reads and discards the request body (directory origins take none).
    async fn read_body(&mut self, req: &Request) -> Result<(), End> {
        match self.take_body(req, None).await {
            Ok(()) => Ok(()),
            Err(caching::Forward::Viewer(e)) => Err(e),
            // Nothing is sent anywhere without an origin connection.
            Err(caching::Forward::Origin(_)) => Err(End::Gone),
        }
    }

    /// Reads the request body as it arrives, framing checked (Content-Length, or chunked
    /// with the size limit), and hands each piece, as framed, to the origin connection `to`,
    /// or discards it.
    async fn take_body(
        &mut self,
        req: &Request,
        mut to: Option<&mut crate::proxy::upstream::UpConn>,
    ) -> Result<(), caching::Forward> {
        use caching::Forward;
        let max = self.w.settings.max_body_bytes;
        let timeout = self.w.settings.body_timeout;
        let mut dec = match req.body {
            BodyKind::None => return Ok(()),
            BodyKind::Length(n) if n > max => {
                return Err(Forward::Viewer(self.refuse(ExchangeError::BodyTooLarge)))
            }
            BodyKind::Length(_) => None,
            BodyKind::Chunked => Some(ChunkedDecoder::new()),
        };
        let mut left = match req.body {
            BodyKind::Length(n) => n,
            _ => 0,
        };
        self.continue_if_expected(req).await.map_err(Forward::Viewer)?;
        let mut total: u64 = 0;
        loop {
            let (used, done) = match dec.as_mut() {
                None => {
                    let take = (self.buf.len() as u64).min(left) as usize;
                    left -= take as u64;
                    (take, left == 0)
                }
                Some(dec) => {
                    let mut used = 0;
                    loop {
                        let step = match dec.step(&self.buf[used..]) {
                            Ok(s) => s,
                            Err(e) => {
                                return Err(Forward::Viewer(self.refuse(ExchangeError::BodyFraming(e.0))))
                            }
                        };
                        total += step.data.len() as u64;
                        used += step.consumed;
                        if total + dec.remaining_in_chunk() > max {
                            return Err(Forward::Viewer(self.refuse(ExchangeError::BodyTooLarge)));
                        }
                        if dec.is_done() || step.consumed == 0 {
                            break;
                        }
                    }
                    (used, dec.is_done())
                }
            };
            if used > 0 {
                match to.as_deref_mut() {
                    // The framing was checked: the piece goes on as it came.
                    Some(up) => {
                        let piece: Vec<u8> = self.buf.drain(..used).collect();
                        up.write_all(piece).await.map_err(Forward::Origin)?;
                    }
                    None => {
                        self.buf.drain(..used);
                    }
                }
            }
            if done {
                return Ok(());
            }
            if self
                .read_more(|| Instant::now() + timeout, Phase::Body)
                .await
                .map_err(Forward::Viewer)?
                == 0
            {
                return Err(Forward::Viewer(End::Gone));
            }
        }
    }

    async fn continue_if_expected(&mut self, req: &Request) -> Result<(), End> {
        if req.expect_continue && self.buf.is_empty() {
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.flush().await?;
        }
        Ok(())
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

    /// Writes the pending response bytes.
    async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.send_out(Bytes::new()).await
    }

    fn count_in(&mut self, n: usize) {
        self.bytes_in += n as u64;
        self.w.metrics.add(&self.w.metrics.bytes_in, n as u64);
    }

    /// Sends a response body after its head (already in `out`).
    async fn send(&mut self, body: Body) -> Result<(), End> {
        match body {
            Body::None => {
                // Pipelined requests waiting: answer them in the same write.
                if self.buf.is_empty() || self.out.len() >= FLUSH_AT {
                    self.flush().await?;
                }
                Ok(())
            }
            Body::Bytes(b) => self.send_out(b).await,
            Body::File {
                path,
                offset,
                len,
                open,
                mem,
            } => {
                let _cork = self.cork_large(len as usize);
                if let (Viewer::Plain(_), Some(file)) = (&self.stream, &open) {
                    // Only from the page cache: a read from disk inside sendfile would stall
                    // every connection of this worker.
                    match cache_store::page_cached(file, offset, len) {
                        Some(true) => {
                            self.flush().await?;
                            return self.sendfile(&path, file, offset, len).await;
                        }
                        // Served another way this time; the next request finds the pages.
                        Some(false) => crate::runtime::io::will_need(file, offset, len),
                        None => {}
                    }
                }
                match mem {
                    Some(b) => self.send_out(b).await,
                    None => {
                        self.flush().await?;
                        self.stream_from_disk(&path, offset, len).await
                    }
                }
            }
        }
    }

    /// For a large body to a plain-TCP viewer: head and body leave in full segments (nginx's
    /// `tcp_nopush`) until the guard is dropped. Small bodies go in one write anyway.
    fn cork_large(&self, body_len: usize) -> Option<crate::runtime::io::Cork> {
        (body_len >= CORK_MIN && !self.viewer_tls).then(|| crate::runtime::io::Cork::set(self.stream.tcp()))
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

    /// Reads the file in chunks (io_uring reads) and sends each: for bodies not in the page
    /// cache and not in memory, or for HTTPS viewers.
    async fn stream_from_disk(
        &mut self,
        path: &std::path::Path,
        mut offset: u64,
        len: u64,
    ) -> Result<(), End> {
        // The head is already out: a failure from here on can only close the connection.
        let file = monoio::fs::File::open(path).await.map_err(|e| {
            tracing::warn!(path = %path.display(), error = %e, "cannot open file");
            End::Gone
        })?;
        let end = offset + len;
        let mut chunk = Vec::with_capacity(FILE_CHUNK.min(len as usize));
        while offset < end {
            let want = ((end - offset) as usize).min(FILE_CHUNK);
            chunk.clear();
            let (res, buf) = file.read_at(chunk.slice_mut(0..want), offset).await;
            chunk = buf.into_inner();
            match res {
                Ok(0) | Err(_) => {
                    tracing::warn!(path = %path.display(), "file shrank while being sent");
                    return Err(End::Gone);
                }
                Ok(n) => offset += n as u64,
            }
            self.send_out(Bytes::from(std::mem::take(&mut chunk))).await?;
            chunk = Vec::with_capacity(want);
        }
        let _ = file.close().await;
        Ok(())
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

enum Route {
    /// Refused before any origin: a bad target, or a method a directory origin does not serve.
    Error(ExchangeError),
    Options,
    Static(usize, crate::http::uri::CleanPath, Vec<u8>),
    /// Origin index, behavior index, raw path, query.
    Custom(usize, usize, Vec<u8>, Vec<u8>),
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
    body: Body,
    keep_alive: bool,
}

/// `OPTIONS *`: what the server allows in general.
fn options_response(out: &mut Vec<u8>, keep_alive: bool) {
    use crate::http::WriteHead;
    out.start(Status(200));
    out.header("Allow", b"GET, HEAD, OPTIONS");
    out.header_u64("Content-Length", 0);
    out.end(keep_alive);
}
