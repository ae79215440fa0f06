//! One HTTP/2 stream: its request made into the exchange's `Request`, the exchange run with
//! this stream as its sink, the response framed as HEADERS and DATA within the viewer's
//! flow-control window, then counted and logged like any other.
//!
//! What is copied: h2 queues DATA payloads as `Bytes`, so a window from the slab's mapping is
//! queued as it is (a reference, no copy) and read once, when the connection's writer sends it
//! (to the socket for h2c; into TLS records, a copy TLS needs anyway, for h2). Files and
//! memory bodies likewise. No sendfile: DATA frames interleave frame headers with the body.

use super::Shared;
use crate::context::Worker;
use crate::exchange::body::{Mapped, Window};
use crate::exchange::{BodyLength, BodySource, End, Exchange, ExchangeError, Phase, ResponseHead};
use crate::http::codec::BodyKind;
use crate::http::{Method, Request};
use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Fields HTTP/2 forbids (RFC 9113 §8.2.2): never relayed.
const CONNECTION_FIELDS: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

pub(super) struct Stream {
    w: Rc<Worker>,
    shared: Rc<Shared>,
    respond: Rc<RefCell<SendResponse<Bytes>>>,
    body: RecvStream,
    body_total: u64,
    responded: bool,
    note: crate::observe::Note,
    first_byte: Option<Instant>,
    bytes_in: u64,
    bytes_out: u64,
}

/// Serves one stream to its end.
pub(super) async fn serve(
    w: Rc<Worker>,
    shared: Rc<Shared>,
    req: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
) {
    let t0 = Instant::now();
    let (parts, body) = req.into_parts();
    let kind = if body.is_end_stream() {
        BodyKind::None
    } else {
        BodyKind::Chunked
    };
    let target = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let authority = parts.uri.authority().map(|a| a.as_str().as_bytes());
    let fields = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()));
    let parsed = Request::from_parts(
        parts.method.as_str().as_bytes(),
        target.as_bytes(),
        authority,
        fields,
        kind,
    );
    let mut s = Stream {
        w: w.clone(),
        shared: shared.clone(),
        respond: Rc::new(RefCell::new(respond)),
        body,
        body_total: 0,
        responded: false,
        note: crate::observe::Note::default(),
        first_byte: None,
        bytes_in: 0,
        bytes_out: 0,
    };
    let req = match parsed {
        Ok(req) => req,
        Err(e) => {
            let _ = s.refuse(false, ExchangeError::from(e)).await;
            // Logged as a request for `/` (what was sent could not be read).
            let fallback = Request::from_parts(b"GET", b"/", Some(b"-"), std::iter::empty(), BodyKind::None);
            if let Ok(req) = fallback {
                s.record(&req, t0);
            }
            s.done();
            return;
        }
    };
    s.bytes_in = parts
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum::<usize>() as u64;
    let r = s.exchange(&req).await;
    match r {
        Err(End::Timeout(phase)) if !s.responded => {
            let _ = s.refuse(false, ExchangeError::ViewerTimeout(phase)).await;
        }
        Err(_) if !s.responded => s.respond.borrow_mut().send_reset(h2::Reason::INTERNAL_ERROR),
        _ => {}
    }
    s.record(&req, t0);
    s.done();
}

impl Stream {
    /// The exchange, watched for a reset by the viewer (counted for rapid reset). The exchange
    /// still runs to its end after a reset: a fill in progress is finished for the cache.
    async fn exchange(&mut self, req: &Request) -> Result<(), End> {
        let respond = self.respond.clone();
        let (w, shared) = (self.w.clone(), self.shared.clone());
        let mut ex = std::pin::pin!(async { Exchange::new(w.clone(), req, self).run().await });
        let reset = std::future::poll_fn(|cx| respond.borrow_mut().poll_reset(cx));
        monoio::select! {
            r = &mut ex => return r,
            r = reset => {
                if matches!(r, Ok(reason) if reason != h2::Reason::NO_ERROR) {
                    shared.reset_by_viewer(&w);
                }
            }
        }
        ex.await
    }

    fn done(&self) {
        self.shared
            .streams
            .set(self.shared.streams.get().saturating_sub(1));
    }

    /// Answers with an error (the request could not be read, or the viewer ran out of time).
    async fn refuse(&mut self, head_only: bool, e: ExchangeError) -> Result<(), End> {
        let (head, body) = e.answer();
        self.send(head_only, head, BodySource::Bytes(body)).await
    }

    /// Counts the exchange and writes its access-log line.
    fn record(&self, req: &Request, t0: Instant) {
        let w = &self.w;
        w.metrics.request(req.method, &self.note);
        if let Some(log) = &w.log {
            let now = Instant::now();
            let id = w.request_id();
            log.push(
                &crate::observe::LogEntry {
                    req,
                    note: &self.note,
                    edge: &w.edge,
                    peer: self.shared.peer,
                    tls: self.shared.tls,
                    bytes_in: self.bytes_in + self.body_total,
                    bytes_out: self.bytes_out,
                    time_taken: now - t0,
                    ttfb: self.first_byte.unwrap_or(now) - t0,
                    request_id: &id,
                    include_cookies: log.include_cookies,
                    ssl: self.shared.ssl.as_ref().map(|(v, c)| (v.as_str(), c.as_str())),
                },
                &w.metrics,
            );
        }
    }

    /// The response head as an h2 response: `server` and `date` for local answers,
    /// `content-length` when known, no connection-specific fields.
    fn head(&self, head: &ResponseHead<'_>) -> http::Response<()> {
        let mut r = http::Response::new(());
        *r.status_mut() = http::StatusCode::from_u16(head.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        let h = r.headers_mut();
        if head.local {
            h.insert(http::header::SERVER, http::HeaderValue::from_static("slabfront"));
            crate::http::date::with_date(|d| {
                if let Ok(v) = http::HeaderValue::from_bytes(d) {
                    h.insert(http::header::DATE, v);
                }
            });
        }
        for (n, v) in &head.fields {
            if CONNECTION_FIELDS.iter().any(|c| n.eq_ignore_ascii_case(c)) {
                continue;
            }
            match (
                http::HeaderName::from_bytes(n.as_bytes()),
                http::HeaderValue::from_bytes(v.as_ref()),
            ) {
                (Ok(n), Ok(v)) => {
                    h.append(n, v);
                }
                _ => tracing::debug!(field = %n, "field not valid in HTTP/2; dropped"),
            }
        }
        if let BodyLength::Known(n) = head.length {
            if head.status >= 200 && !matches!(head.status, 204 | 304) {
                h.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(n));
            }
        }
        r
    }

    /// Sends the head, then the body within the viewer's window.
    async fn send(
        &mut self,
        head_only: bool,
        head: ResponseHead<'_>,
        mut body: BodySource,
    ) -> Result<(), End> {
        let body_allowed = head.status >= 200 && !matches!(head.status, 204 | 304);
        let empty = matches!(body, BodySource::Empty) || head.length == BodyLength::Known(0);
        let end_now = head_only || !body_allowed || empty;
        self.note = crate::observe::Note::of(&head, self.w.log.is_some());
        self.first_byte = self.w.log.is_some().then(Instant::now);
        let resp = self.head(&head);
        drop(head);
        self.responded = true;
        let sent = self.respond.borrow_mut().send_response(resp, end_now);
        let mut out = match sent {
            Ok(s) => s,
            Err(_) => {
                body.finish_unsent(false).await;
                return Err(End::Gone);
            }
        };
        if end_now {
            body.finish_unsent(true).await;
            return Ok(());
        }
        loop {
            let window = match body.next_window(false).await {
                Ok(Some(w)) => w,
                Ok(None) => break,
                Err(e) => {
                    out.send_reset(h2::Reason::INTERNAL_ERROR);
                    return Err(e);
                }
            };
            let r = match window {
                Window::Bytes(b) => self.push(&mut out, b).await,
                Window::Mapped { guard, a, b, last } => self.push_mapped(&mut out, guard, a, b, last).await,
                // Not asked for (file windows off): never handed out.
                Window::File { .. } => Err(End::Gone),
            };
            if let Err(e) = r {
                out.send_reset(h2::Reason::CANCEL);
                body.finish_unsent(false).await;
                return Err(e);
            }
        }
        out.send_data(Bytes::new(), true).map_err(|_| End::Gone)
    }

    /// Queues `data` on the stream as the viewer's window and the send buffer allow. A
    /// stream that gets no window for `send_timeout` is reset: a viewer that stops reading
    /// holds at most `max_send_buffer` of ours.
    async fn push(&mut self, out: &mut SendStream<Bytes>, mut data: Bytes) -> Result<(), End> {
        let timeout = self.w.settings.http2.send_timeout.0;
        while !data.is_empty() {
            out.reserve_capacity(data.len());
            let mut cap = out.capacity();
            if cap == 0 {
                let wait = std::future::poll_fn(|cx| out.poll_capacity(cx));
                cap = match monoio::time::timeout(timeout, wait).await {
                    Ok(Some(Ok(n))) => n,
                    Ok(_) => return Err(End::Gone),
                    Err(_) => {
                        tracing::debug!("HTTP/2 viewer gave no window in time; stream reset");
                        return Err(End::Timeout(Phase::Body));
                    }
                };
            }
            let n = cap.min(data.len());
            if n == 0 {
                continue;
            }
            self.bytes_out += n as u64;
            out.send_data(data.split_to(n), false).map_err(|_| End::Gone)?;
        }
        Ok(())
    }

    /// Bytes `a..b` of a stored body, queued by reference to the mapping. The slab may fault
    /// under a read (the page then reads as zeros and the guard stops being intact), so the
    /// body's last byte is queued only after every earlier byte has been read by the writer
    /// (each queued piece counts itself out when h2 drops it) and the guard is found intact.
    async fn push_mapped(
        &mut self,
        out: &mut SendStream<Bytes>,
        guard: Mapped,
        a: usize,
        b: usize,
        last: bool,
    ) -> Result<(), End> {
        let queued = Arc::new(Queued::default());
        let end = if last { b - 1 } else { b };
        if end > a {
            let owner = Counted {
                guard: guard.clone(),
                queued: queued.clone(),
            };
            queued.n.fetch_add(1, Ordering::AcqRel);
            self.push(out, Bytes::from_owner(owner).slice(a..end)).await?;
        }
        if !last {
            return Ok(());
        }
        let timeout = self.w.settings.http2.send_timeout.0;
        while queued.n.load(Ordering::Acquire) > 0 {
            let listener = queued.done.listen();
            if queued.n.load(Ordering::Acquire) == 0 {
                break;
            }
            if monoio::time::timeout(timeout, listener).await.is_err() {
                return Err(End::Timeout(Phase::Body));
            }
        }
        let tail = Bytes::copy_from_slice(&guard.as_ref()[b - 1..b]);
        if !guard.0.intact() {
            tracing::warn!("slab read fault under a send; resetting the stream");
            return Err(End::Gone);
        }
        self.push(out, tail).await
    }
}

/// Pieces of a stored body still queued in h2.
#[derive(Default)]
struct Queued {
    n: AtomicUsize,
    done: event_listener::Event,
}

/// A stored body's bytes, as the owner of the `Bytes` queued in h2: dropped when h2 has
/// written (or discarded) every slice of it.
struct Counted {
    guard: Mapped,
    queued: Arc<Queued>,
}

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        self.guard.as_ref()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if self.queued.n.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.queued.done.notify(usize::MAX);
        }
    }
}

impl crate::exchange::Sink for Stream {
    fn secure(&self) -> bool {
        self.shared.tls
    }

    fn peer(&self) -> Option<std::net::SocketAddr> {
        self.shared.peer
    }

    async fn body_piece(&mut self, _req: &Request) -> Result<Option<Bytes>, End> {
        let timeout = self.w.settings.body_timeout;
        let next = std::future::poll_fn(|cx| self.body.poll_data(cx));
        match monoio::time::timeout(timeout, next).await {
            Err(_) => Err(End::Timeout(Phase::Body)),
            Ok(None) => Ok(None),
            Ok(Some(Err(_))) => Err(End::Gone),
            Ok(Some(Ok(data))) => {
                let _ = self.body.flow_control().release_capacity(data.len());
                self.body_total += data.len() as u64;
                if self.body_total > self.w.settings.max_body_bytes {
                    let _ = self.refuse(false, ExchangeError::BodyTooLarge).await;
                    return Err(End::Refused);
                }
                Ok(Some(data))
            }
        }
    }

    async fn interim(&mut self, _req: &Request, head: &ResponseHead<'_>) {
        let resp = self.head(head);
        let _ = self.respond.borrow_mut().send_informational(resp);
    }

    async fn respond(&mut self, req: &Request, head: ResponseHead<'_>, body: BodySource) -> Result<(), End> {
        self.send(req.method == Method::Head, head, body).await
    }
}
