//! The proxy exchange of a connection: cache lookup, hits from the slab, misses fetched from
//! the origin (collapsed across workers), streamed to the viewer while they are stored,
//! revalidation, stale serving, and pass-through of uncacheable methods.

use super::{Conn, End};
use crate::context::Worker;
use crate::exchange::ExchangeError;
use crate::http::codec::BodyKind;
use crate::http::conditional::{evaluate, if_range_allows, parse_range, Precondition, RangeSpec};
use crate::http::response::simple;
use crate::http::{Method, Request, Status, Version};
use crate::proxy::fills::{Leader, Role, NOT_STORED, STORED};
use crate::proxy::key::{self, connection_names, hop_by_hop, Keyed};
use crate::proxy::meta::{Kind, Meta};
use crate::proxy::policy::{self, CacheControl, ResponseFacts};
use crate::proxy::upstream::{
    read_final_head, viewer_interim, BodyReader, Framing, Head, HeadEvent, HeadReader, OriginClient, UpConn,
    UpstreamError,
};
use crate::proxy::{now_ms, BehaviorRt, ProxyWorker};
use bytes::Bytes;
use cache_store::ReadGuard;
use std::rc::Rc;
use std::time::Instant;

/// Bodies up to this size (or of unknown length, up to it) are gathered in memory and
/// appended to the worker's open segment when complete; larger ones stream into a run of
/// their own as they arrive.
const BUFFERED_MAX: u64 = 4 << 20;
/// How long a stale object with validators is kept for revalidation beyond its freshness.
const KEEP_STALE: u64 = 86_400;
/// Cold bodies are read and sent in windows of this size (one buffer per cold hit).
const COLD_WINDOW: usize = 1 << 20;
/// Resident bodies up to this size go in one send, by sendfile from the slab file or from the
/// mapping (while memory is not short, see `SHORT_MIN`): sent window by window from the
/// mapping, the 1.3 MB page measured 15–25% fewer
/// bytes per CPU-second (the socket drains while each window's write completes). Larger
/// bodies go window by window, so that a send waiting on the viewer cannot meet pages
/// reclaimed since its check.
const HOT_SEND_MAX: usize = 4 << 20;
/// Bodies from this size on are read into a buffer off the event loop, not sent from the
/// mapping, while memory is short (`ProxyWorker::memory_short`).
const SHORT_MIN: usize = 64 * 1024;
/// This cache's device token for `Surrogate-Control` targets.
const SURROGATE_TOKEN: &str = "slabfront";
const SURROGATE_CAPABILITY: &[u8] = b"slabfront=\"Surrogate/1.0\"";

/// A stored response found for a request.
struct Found {
    guard: ReadGuard,
    meta: Meta,
    key: Vec<u8>,
    /// The whole entry, body included, was in memory at the lookup (checked then for small
    /// bodies: one residency check per hit instead of two).
    resident: bool,
}

/// What to do with a response being relayed.
struct StorePlan {
    key: Vec<u8>,
    meta: Meta,
    expires_at: u64,
    /// For responses that vary: the marker stored under the primary key.
    stub: Option<(Vec<u8>, Meta, u64)>,
    epoch: u64,
}

/// How a response is labelled for the viewer.
#[derive(Clone, Copy)]
enum Outcome {
    Hit,
    RefreshHit,
    Miss,
    Error,
}

impl Outcome {
    fn x_cache(self) -> &'static [u8] {
        match self {
            Outcome::Hit => b"Hit from slabfront",
            Outcome::RefreshHit => b"RefreshHit from slabfront",
            Outcome::Miss => b"Miss from slabfront",
            Outcome::Error => b"Error from slabfront",
        }
    }
}

impl Conn {
    /// Serves a request routed to a custom origin.
    pub(super) async fn proxy(
        &mut self,
        req: &Request,
        origin: usize,
        behavior: usize,
        path: Vec<u8>,
        query: Vec<u8>,
        keep_alive: bool,
    ) -> Result<bool, End> {
        let w = self.w.clone();
        let head_only = req.method == Method::Head;
        let parts = w.proxy.as_ref().and_then(|px| {
            let client = px.origins.get(origin).and_then(Option::as_ref)?;
            Some((px, client, px.behaviors.get(behavior)?))
        });
        let Some((px, client, b)) = parts else {
            self.read_body(req).await?;
            ExchangeError::OriginUnavailable
                .answer()
                .write_http1(&mut self.out, head_only, keep_alive, &[]);
            return Ok(keep_alive);
        };
        let extension = req.method == Method::Other && b.allowed.is_all();
        if !b.allowed.contains(req.method) && !extension {
            self.read_body(req).await?;
            let allow = b.allowed.names().to_string();
            ExchangeError::MethodNotAllowed { allow }.answer().write_http1(
                &mut self.out,
                head_only,
                keep_alive,
                &[],
            );
            return Ok(keep_alive);
        }
        let cacheable = b.cached.contains(req.method);
        let keyed = key::build(req, &path, &query, &b.key, cacheable);
        if !cacheable {
            return self.pass(req, &keyed, px, client, keep_alive).await;
        }
        self.read_body(req).await?;
        self.cached(req, &keyed, px, client, b, keep_alive).await
    }

    /// A cacheable request: hit, stale hit, revalidation, or miss.
    async fn cached(
        &mut self,
        req: &Request,
        keyed: &Keyed,
        px: &ProxyWorker,
        client: &OriginClient,
        b: &BehaviorRt,
        keep_alive: bool,
    ) -> Result<bool, End> {
        let mut collapse = true;
        for _attempt in 0..3 {
            let found = lookup(px, keyed, req).await;
            let now = now_ms();
            if let Some(f) = found {
                let age = f.meta.age_ms(now);
                if age < f.meta.lifetime_ms {
                    return self.serve_stored(req, f, Outcome::Hit, "hit", keep_alive).await;
                }
                let cc = response_cc(&f.meta.headers);
                let stale_for = age - f.meta.lifetime_ms;
                let may_serve_stale = !(cc.must_revalidate || cc.proxy_revalidate || cc.no_cache);
                if may_serve_stale && cc.stale_while_revalidate.is_some_and(|s| stale_for < s * 1000) {
                    spawn_refresh(
                        self.w.clone(),
                        keyed.clone(),
                        f.key.clone(),
                        f.meta.clone(),
                        self.peer,
                    );
                    return self
                        .serve_stored(req, f, Outcome::Hit, "hit; fwd=stale", keep_alive)
                        .await;
                }
                return self
                    .fetch(req, keyed, px, client, b, Some(f), None, keep_alive)
                    .await;
            }
            if !collapse {
                return self
                    .fetch(req, keyed, px, client, b, None, None, keep_alive)
                    .await;
            }
            match px.shared.fills.join(&keyed.key) {
                Role::Leader(l) => {
                    return self
                        .fetch(req, keyed, px, client, b, None, Some(l), keep_alive)
                        .await
                }
                Role::Follower(fill) => match fill.wait(client.read_timeout).await {
                    Some(STORED) => continue,
                    _ => collapse = false,
                },
            }
        }
        self.fetch(req, keyed, px, client, b, None, None, keep_alive)
            .await
    }

    /// Fetches from the origin (conditionally when a stale copy has validators), then serves
    /// and stores the answer.
    #[allow(clippy::too_many_arguments)]
    async fn fetch(
        &mut self,
        req: &Request,
        keyed: &Keyed,
        px: &ProxyWorker,
        client: &OriginClient,
        b: &BehaviorRt,
        stale: Option<Found>,
        leader: Option<Leader>,
        keep_alive: bool,
    ) -> Result<bool, End> {
        let epoch = px.shared.epoch.load(std::sync::atomic::Ordering::SeqCst);
        let validators = stale.as_ref().map(|f| validators_of(&f.meta));
        let head = request_head(
            b"GET",
            keyed,
            client,
            &px.shared.via,
            self.peer,
            validators.as_ref(),
            None,
        );
        let request_ms = now_ms();
        let answer = self.exchange_head_relaying(req, client, head).await;
        let (up, resp) = match answer {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(origin = %client.id, error = %e, "origin request failed");
                if let Some(f) = stale {
                    if stale_if_error_allows(&f.meta) {
                        return self
                            .serve_stored(req, f, Outcome::Hit, "hit; fwd=stale", keep_alive)
                            .await;
                    }
                }
                drop(leader);
                return self.origin_error(req, px, e.into(), keep_alive).await;
            }
        };
        if let Some(f) = stale {
            if resp.status == 304 {
                client.checkin(up);
                let f = refresh_stored(px, b, f, &resp, request_ms, epoch);
                if let Some(l) = leader {
                    l.finish(STORED);
                }
                return self
                    .serve_stored(
                        req,
                        f,
                        Outcome::RefreshHit,
                        "hit; fwd=stale; fwd-status=304",
                        keep_alive,
                    )
                    .await;
            }
            if resp.status >= 500 && stale_if_error_allows(&f.meta) {
                drop(up);
                return self
                    .serve_stored(req, f, Outcome::Hit, "hit; fwd=stale", keep_alive)
                    .await;
            }
        }
        let plan = plan_store(px, b, keyed, req, &resp, request_ms, epoch);
        tracing::debug!(
            target_ = %String::from_utf8_lossy(&keyed.target),
            status = resp.status,
            storable = plan.is_some(),
            "origin answered"
        );
        let leader = match (leader, plan.is_some()) {
            (Some(l), true) => Some(l),
            (Some(l), false) => {
                // Not storable: let the followers go to the origin themselves right away.
                l.release(NOT_STORED);
                None
            }
            (None, _) => None,
        };
        if let Some(page) = px.error_page(resp.status).filter(|p| p.page_path.is_some()) {
            let page = page.clone();
            drop(up);
            return self
                .custom_error_page(req, px, &page, resp.status, keep_alive)
                .await;
        }
        self.relay(req, up, client, resp, plan, leader, Outcome::Miss, keep_alive)
            .await
    }

    /// Sends an origin's response to the viewer, storing it on the way when `plan` says so.
    #[allow(clippy::too_many_arguments)]
    async fn relay(
        &mut self,
        req: &Request,
        up: UpConn,
        client: &OriginClient,
        resp: Head,
        plan: Option<StorePlan>,
        leader: Option<Leader>,
        outcome: Outcome,
        keep_alive: bool,
    ) -> Result<bool, End> {
        let head_only = req.method == Method::Head;
        let w = self.w.clone();
        let px = w.proxy.as_ref().ok_or(End::Gone)?;
        let body_allowed = !matches!(resp.status, 204 | 304) && resp.status >= 200;
        // How the viewer's copy is framed.
        let (to_viewer_chunked, keep_alive) = match resp.framing {
            Framing::Length(_) | Framing::None => (false, keep_alive),
            _ if head_only || !body_allowed => (false, keep_alive),
            _ if req.version == Version::Http11 => (true, keep_alive),
            _ => (false, false),
        };
        let cache_status = match (&plan, outcome) {
            (Some(_), Outcome::Miss) => "fwd=miss; stored",
            (None, Outcome::Miss) => "fwd=miss",
            _ => "fwd=miss",
        };
        let mut out = std::mem::take(&mut self.out);
        write_origin_head(
            &mut out,
            &resp,
            &px.shared.via,
            outcome,
            &px.shared.node,
            cache_status,
        );
        match resp.framing {
            Framing::Length(n) if body_allowed => {
                out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes())
            }
            Framing::None if body_allowed && resp.status != 304 => {
                out.extend_from_slice(b"Content-Length: 0\r\n")
            }
            _ if to_viewer_chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            _ => {}
        }
        out.extend_from_slice(if keep_alive {
            b"\r\n"
        } else {
            b"Connection: close\r\n\r\n"
        });
        self.out = out;

        let mut reader = BodyReader::new(resp.framing);
        let mut viewer_ok = true;
        let mut buffered: Vec<u8> = Vec::new();
        let known_len = match resp.framing {
            Framing::Length(n) => Some(n),
            Framing::None => Some(0),
            _ => None,
        };
        let mut plan = plan;
        // Large objects (and those of unknown length once they outgrow the buffer) stream
        // into a run of their own.
        let mut handle = None;
        if let (Some(p), Some(n)) = (&plan, known_len) {
            if n > BUFFERED_MAX {
                handle = begin_large(px, p, known_len);
                if handle.is_none() {
                    plan = None;
                }
            }
        }
        let mut head_sent = false;
        let mut leader = leader;
        let mut up = Some(up);
        while let Some(conn) = up.as_mut() {
            let piece = match reader.next(conn, client.read_timeout).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(origin = %client.id, error = %e, "origin response cut short; not stored");
                    // The write handle is never finished: the partial object stays invisible
                    // and its space is reused.
                    if !head_sent {
                        // Nothing of it reached the viewer: a clean 502 instead.
                        self.out.clear();
                        drop(leader);
                        return self
                            .origin_error(req, px, ExchangeError::OriginCutShort, false)
                            .await
                            .map(|_| false);
                    }
                    // The viewer has part of it: close without completing the framing.
                    let _ = self.flush().await;
                    return Err(End::Gone);
                }
            };
            let last = piece.is_empty() || reader.is_done();
            if plan.is_some() && !piece.is_empty() {
                if let Some(h) = handle.as_mut() {
                    if let Err(e) = h.write(&piece) {
                        tracing::debug!(error = %e, "object not stored");
                        handle = None;
                        plan = None;
                    }
                } else if (buffered.len() + piece.len()) as u64 <= BUFFERED_MAX {
                    buffered.extend_from_slice(&piece);
                } else if let Some(mut h) = plan.as_ref().and_then(|p| begin_large(px, p, None)) {
                    let moved = h.write(&buffered).and_then(|()| h.write(&piece));
                    buffered = Vec::new();
                    match moved {
                        Ok(()) => handle = Some(h),
                        Err(_) => plan = None,
                    }
                } else {
                    plan = None;
                    buffered = Vec::new();
                }
            }
            if last {
                // Complete: stored before the viewer sees its last byte, so that a request it
                // sends next finds it.
                if let Some(p) = plan.take() {
                    let stored = commit(px, &p, handle.take(), &buffered);
                    tracing::debug!(key = %String::from_utf8_lossy(&p.key), stored, "fill complete");
                    if let Some(l) = leader.take() {
                        l.finish(if stored { STORED } else { NOT_STORED });
                    }
                }
                if let Some(conn) = up.take().filter(|_| resp.keep_alive) {
                    client.checkin(conn);
                }
            }
            if viewer_ok && !head_only && body_allowed {
                let mut framed_head = std::mem::take(&mut self.out);
                let body = if to_viewer_chunked {
                    let mut p = Vec::with_capacity(piece.len() + 16);
                    if !piece.is_empty() {
                        framed_head.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                        p = piece;
                        p.extend_from_slice(b"\r\n");
                    }
                    if last {
                        p.extend_from_slice(b"0\r\n\r\n");
                    }
                    Bytes::from(p)
                } else {
                    Bytes::from(piece)
                };
                if !framed_head.is_empty() || !body.is_empty() {
                    self.out = framed_head;
                    head_sent = true;
                    if self.send_out(body).await.is_err() {
                        viewer_ok = false;
                    }
                }
            } else if viewer_ok && !head_sent {
                if self.flush().await.is_err() {
                    viewer_ok = false;
                }
                head_sent = true;
            }
            if !viewer_ok && plan.is_none() {
                // Nobody is waiting for the rest.
                return Err(End::Gone);
            }
            if last {
                break;
            }
        }
        if !viewer_ok {
            return Err(End::Gone);
        }
        Ok(keep_alive)
    }

    /// Uncacheable methods: the request (and its body, streamed) goes to the origin, the
    /// response comes back unstored. A successful unsafe method invalidates the URL.
    async fn pass(
        &mut self,
        req: &Request,
        keyed: &Keyed,
        px: &ProxyWorker,
        client: &OriginClient,
        keep_alive: bool,
    ) -> Result<bool, End> {
        let framing = match req.body {
            BodyKind::None => None,
            BodyKind::Length(n) if n > self.w.settings.max_body_bytes => {
                return Err(self.refuse(ExchangeError::BodyTooLarge))
            }
            BodyKind::Length(n) => Some(Some(n)),
            BodyKind::Chunked => Some(None),
        };
        let head = request_head(
            req.method_name(),
            keyed,
            client,
            &px.shared.via,
            self.peer,
            None,
            framing,
        );
        let mut up = if framing.is_none() {
            match self.exchange_head_relaying(req, client, head).await {
                Ok((up, resp)) => {
                    return self
                        .after_pass(req, keyed, px, client, up, resp, keep_alive)
                        .await
                }
                Err(e) => {
                    tracing::warn!(origin = %client.id, error = %e, "origin request failed");
                    return self.origin_error(req, px, e.into(), keep_alive).await;
                }
            }
        } else {
            let tls = client.uses_tls(self.viewer_tls);
            let mut up = match client.connect(tls).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(origin = %client.id, error = %e, "origin request failed");
                    self.read_body(req).await?;
                    return self.origin_error(req, px, e.into(), keep_alive).await;
                }
            };
            if let Err(e) = up.write_all(head).await {
                tracing::warn!(origin = %client.id, error = %e, "origin request failed");
                self.read_body(req).await?;
                return self.origin_error(req, px, e.into(), keep_alive).await;
            }
            up
        };
        // Stream the body through as it arrives.
        if let Err(e) = self.take_body(req, Some(&mut up)).await {
            return match e {
                Forward::Viewer(end) => Err(end),
                Forward::Origin(e) => {
                    tracing::warn!(origin = %client.id, error = %e, "origin request failed");
                    self.origin_error(req, px, e.into(), false).await.map(|_| false)
                }
            };
        }
        let t0 = Instant::now();
        let answer = self
            .read_head_relaying(req, &mut up, client, &mut HeadReader::new(false))
            .await;
        count_origin(&self.w.metrics, t0, &answer);
        match answer {
            Ok(resp) => {
                self.after_pass(req, keyed, px, client, up, resp, keep_alive)
                    .await
            }
            Err(e) => {
                tracing::warn!(origin = %client.id, error = %e, "origin request failed");
                self.origin_error(req, px, e.into(), keep_alive).await
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn after_pass(
        &mut self,
        req: &Request,
        keyed: &Keyed,
        px: &ProxyWorker,
        client: &OriginClient,
        up: UpConn,
        resp: Head,
        keep_alive: bool,
    ) -> Result<bool, End> {
        // Unsafe methods, and those whose safety is unknown (RFC 9111 §4.4).
        let unsafe_method = !matches!(
            req.method,
            Method::Get | Method::Head | Method::Options | Method::Trace
        );
        if unsafe_method && resp.status < 400 {
            px.shared.invalidate_prefix(&keyed.url_prefix);
            for h in ["location", "content-location"] {
                if let Some(prefix) = resp.header(h).and_then(|v| same_host_url_prefix(v, req)) {
                    px.shared.invalidate_prefix(&prefix);
                }
            }
        }
        self.relay(req, up, client, resp, None, None, Outcome::Miss, keep_alive)
            .await
    }

    /// Sends a request head without a body and reads the final response head, relaying
    /// interim responses (103 Early Hints) to the viewer as they arrive. A pooled connection
    /// that fails before any response byte is retried once on a fresh one.
    async fn exchange_head_relaying(
        &mut self,
        req: &Request,
        client: &OriginClient,
        head: Vec<u8>,
    ) -> Result<(UpConn, Head), UpstreamError> {
        let t0 = Instant::now();
        let tls = client.uses_tls(self.viewer_tls);
        let r = async {
            let mut up = client.checkout(tls).await?;
            let mut reader = HeadReader::new(false);
            let first = match up.write_all(head.clone()).await {
                Ok(_) => self.read_head_relaying(req, &mut up, client, &mut reader).await,
                Err(e) => Err(e),
            };
            match first {
                Ok(h) => Ok((up, h)),
                Err(e)
                    if up.reused
                        && up.buf.is_empty()
                        && reader.interims() == 0
                        && !matches!(e, UpstreamError::Timeout) =>
                {
                    tracing::debug!(origin = %client.id, error = %e, "pooled connection failed; retrying on a new one");
                    let mut up = client.connect(tls).await?;
                    up.write_all(head).await?;
                    let h = self
                        .read_head_relaying(req, &mut up, client, &mut HeadReader::new(false))
                        .await?;
                    Ok((up, h))
                }
                Err(e) => Err(e),
            }
        }
        .await;
        count_origin(&self.w.metrics, t0, &r);
        r
    }

    /// Reads the final response head; interim responses for the viewer are sent on at once
    /// (never to an HTTP/1.0 viewer, never stored). A viewer gone meanwhile is noticed when
    /// the final response is sent.
    async fn read_head_relaying(
        &mut self,
        req: &Request,
        up: &mut UpConn,
        client: &OriginClient,
        reader: &mut HeadReader,
    ) -> Result<Head, UpstreamError> {
        loop {
            match reader.next(up, client.read_timeout).await? {
                HeadEvent::Final(h) => return Ok(h),
                HeadEvent::Interim(h) => {
                    if let Some(bytes) = viewer_interim(&h, req.version == Version::Http11) {
                        self.out.extend_from_slice(&bytes);
                        let _ = self.flush().await;
                    }
                }
            }
        }
    }

    /// Serves a stored response: conditionals and ranges are answered here.
    async fn serve_stored(
        &mut self,
        req: &Request,
        f: Found,
        outcome: Outcome,
        cache_status: &str,
        keep_alive: bool,
    ) -> Result<bool, End> {
        let head_only = req.method == Method::Head;
        let m = &f.meta;
        let len = f.guard.body_len();
        let age = m.age_ms(now_ms()) / 1000;
        let w = self.w.clone();
        let px = w.proxy.as_ref().ok_or(End::Gone)?;
        let mut status = m.status;
        let mut range = None;
        let conditional = req.headers().any(|(n, _)| {
            n.len() >= 5 && (n[..3].eq_ignore_ascii_case(b"if-") || n.eq_ignore_ascii_case(b"range"))
        });
        if status == 200 && conditional {
            // Without Last-Modified, the Date stands in (RFC 9111 §4.3.2).
            let lm = m
                .header("last-modified")
                .or_else(|| m.header("date"))
                .and_then(policy::parse_date);
            match evaluate(req, m.header("etag"), lm) {
                Precondition::NotModified => status = 304,
                Precondition::Failed => status = 412,
                Precondition::Proceed => {
                    if let Some(r) = req.header("range") {
                        if req.method == Method::Get && if_range_allows(req, m.header("etag"), lm) {
                            match parse_range(r, len) {
                                RangeSpec::Ignore => {}
                                RangeSpec::Satisfiable(a, b) => {
                                    status = 206;
                                    range = Some((a, b));
                                }
                                RangeSpec::Unsatisfiable => status = 416,
                            }
                        }
                    }
                }
            }
        }
        if status == 412 {
            ExchangeError::PreconditionFailed
                .answer()
                .write_http1(&mut self.out, head_only, keep_alive, &[]);
            return Ok(keep_alive);
        }
        let out = &mut self.out;
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
        out.push(b' ');
        out.extend_from_slice(Status(status).reason().as_bytes());
        out.extend_from_slice(b"\r\n");
        let mut has_date = false;
        for (n, v) in &m.headers {
            if status == 304 && !kept_on_304(n) {
                continue;
            }
            if n.eq_ignore_ascii_case("age") || targeted(&n.to_ascii_lowercase()) {
                continue;
            }
            if n.eq_ignore_ascii_case("content-range") && range.is_some() {
                continue;
            }
            has_date |= n.eq_ignore_ascii_case("date");
            push_header(out, n, v);
        }
        if !has_date {
            crate::http::date::with_date(|d| push_header(out, "Date", d));
        }
        push_header(out, "Age", itoa::Buffer::new().format(age).as_bytes());
        push_header(out, "Via", px.shared.via.as_bytes());
        push_header(out, "X-Cache", outcome.x_cache());
        push_header(
            out,
            "Cache-Status",
            format!("{}; {}", px.shared.node, cache_status).as_bytes(),
        );
        let body = match (status, range) {
            (206, Some((a, b))) => {
                push_header(out, "Content-Range", format!("bytes {a}-{b}/{len}").as_bytes());
                push_header(
                    out,
                    "Content-Length",
                    itoa::Buffer::new().format(b - a + 1).as_bytes(),
                );
                Some((a as usize, b as usize + 1))
            }
            (416, _) => {
                push_header(out, "Content-Range", format!("bytes */{len}").as_bytes());
                push_header(out, "Content-Length", b"0");
                None
            }
            (304, _) => None,
            (204, _) => None,
            _ => {
                push_header(out, "Content-Length", itoa::Buffer::new().format(len).as_bytes());
                Some((0, len as usize))
            }
        };
        out.extend_from_slice(if keep_alive {
            b"\r\n"
        } else {
            b"Connection: close\r\n\r\n"
        });
        match body {
            Some((a, b)) if !head_only && b > a => {
                let _cork = self.cork_large(b - a);
                let now = Instant::now();
                let resident = f.resident || f.guard.resident(a as u64, (b - a) as u64);
                if !resident {
                    px.saw_cold(now);
                }
                let short = b - a >= SHORT_MIN && px.memory_short(now);
                if resident && !short && b - a <= HOT_SEND_MAX {
                    let lent = (!self.viewer_tls && (b - a) as u64 >= crate::static_files::SENDFILE_MIN)
                        .then(|| f.guard.lend_body())
                        .flatten();
                    if let Some(off) = lent {
                        // Hot and large, to a plain viewer: sendfile from the slab file, no
                        // copy. The kernel keeps referencing the pages after the call returns,
                        // so their segments get fresh pages before they are written again
                        // (`ReadGuard::lend_body`): the bytes sent never change.
                        let r = self.send_from_slab(px, off + a as u64, (b - a) as u64).await;
                        drop(f.guard);
                        r?;
                    } else {
                        // Hot: one send straight from the mapping (it copies the bytes into
                        // the socket before it returns).
                        let guard = Mapped::new(f.guard);
                        self.send_mapped(&guard, a, b, true).await?;
                    }
                } else {
                    // Larger or colder bodies go window by window, residency checked before
                    // each: a long send from the mapping could otherwise meet pages reclaimed
                    // after one check at the start.
                    self.send_cold(px, f.guard, a, b, short || !resident).await?;
                }
            }
            _ => self.flush().await?,
        }
        Ok(keep_alive)
    }

    /// Pending head bytes, then `len` bytes of the slab file at `off` by sendfile (a body lent
    /// with `ReadGuard::lend_body`, its guard held by the caller).
    async fn send_from_slab(&mut self, px: &ProxyWorker, off: u64, len: u64) -> Result<(), End> {
        self.flush().await?;
        let slab = std::path::Path::new("(slab file)");
        self.sendfile(slab, px.shared.store.file(), off, len).await
    }

    /// A body sent window by window: with `through_buffers` (part of it was out of memory, or
    /// memory is short), every window is read from the slab file by the prefetch thread into
    /// a buffer and sent from it, resident or not, since pages found resident can be reclaimed
    /// again before a send from the mapping reaches them and that fault would stall the
    /// worker; otherwise each window is checked and, when resident, sent by sendfile from the
    /// slab file (plain viewers) or from the mapping (TLS). The guard keeps the object from
    /// being overwritten until the last window has been read.
    async fn send_cold(
        &mut self,
        px: &ProxyWorker,
        guard: ReadGuard,
        a: usize,
        b: usize,
        through_buffers: bool,
    ) -> Result<(), End> {
        let base = guard.body_offset();
        // Resident windows go to a plain viewer by sendfile (see the hot path in `hit`).
        let lent = !through_buffers && !self.viewer_tls && guard.lend_body().is_some();
        let guard = Mapped::new(guard);
        let store = &px.shared.store;
        let mut at = a;
        while at < b {
            let end = (at + COLD_WINDOW).min(b);
            let (off, len) = (base + at as u64, (end - at) as u64);
            let resident = !through_buffers && store.resident(off, len);
            if resident && lent {
                self.send_from_slab(px, off, len).await?;
                at = end;
                continue;
            }
            if resident {
                self.send_mapped(&guard, at, end, end == b).await?;
                at = end;
                continue;
            }
            let window = {
                let data = px.shared.prefetch.read(off, len).await.map_err(|e| {
                    tracing::warn!(error = %e, offset = off, "slab read failed; closing the connection");
                    End::Gone
                })?;
                Bytes::from(data)
            };
            self.send_out(window).await?;
            at = end;
        }
        Ok(())
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
            fault(guard)?;
            return self.flush().await;
        }
        self.send_out(Bytes::from_owner(guard.clone()).slice(a..b - 1))
            .await?;
        let tail = Bytes::copy_from_slice(&guard.as_ref()[b - 1..b]);
        fault(guard)?;
        self.send_out(tail).await
    }

    /// 502/504 for an origin that failed, or the configured error page.
    async fn origin_error(
        &mut self,
        req: &Request,
        px: &ProxyWorker,
        e: ExchangeError,
        keep_alive: bool,
    ) -> Result<bool, End> {
        let code = e.status().0;
        if e.takes_error_page() {
            if let Some(page) = px.error_page(code).filter(|p| p.page_path.is_some()) {
                let page = page.clone();
                return self.custom_error_page(req, px, &page, code, keep_alive).await;
            }
        }
        let head_only = req.method == Method::Head;
        e.answer().write_http1(
            &mut self.out,
            head_only,
            keep_alive,
            &[
                ("X-Cache", Outcome::Error.x_cache()),
                ("Via", px.shared.via.as_bytes()),
            ],
        );
        self.flush().await?;
        Ok(keep_alive)
    }

    /// The body of `page.page_path` (from a directory origin) with the configured status.
    async fn custom_error_page(
        &mut self,
        req: &Request,
        px: &ProxyWorker,
        page: &crate::proxy::ErrorPage,
        code: u16,
        keep_alive: bool,
    ) -> Result<bool, End> {
        let head_only = req.method == Method::Head;
        let status = page.response_code.unwrap_or(code);
        let path = page.page_path.clone().unwrap_or_default();
        let w = self.w.clone();
        let body = match w.router.route(path.as_bytes()) {
            crate::router::Target::Static(i) => w.statics[i].read_small(&path),
            crate::router::Target::Custom(_) => {
                // A page behind a custom origin is used when it is cached.
                let b = &px.behaviors[w.router.route_behavior(path.as_bytes()).1];
                let k = key::build(req, path.as_bytes(), b"", &b.key, true);
                lookup(px, &k, req)
                    .await
                    .map(|f| (Bytes::from_owner(f.guard), content_type_of(&f.meta)))
            }
        };
        let Some((body, ctype)) = body else {
            tracing::warn!(path, "error page not found; sending the plain error");
            let why = format!("error {code}");
            simple(
                &mut self.out,
                Status(status),
                &why,
                head_only,
                keep_alive,
                &[("X-Cache", b"Error from slabfront")],
            );
            self.flush().await?;
            return Ok(keep_alive);
        };
        let out = &mut self.out;
        use crate::http::WriteHead;
        out.start(Status(status));
        out.header("Content-Type", ctype.as_bytes());
        out.header_u64("Content-Length", body.len() as u64);
        out.header("X-Cache", b"Error from slabfront");
        out.header("Via", px.shared.via.as_bytes());
        out.end(keep_alive);
        let body = if head_only { Bytes::new() } else { body };
        self.send_out(body).await?;
        Ok(keep_alive)
    }
}

/// Bodies up to this size are copied out of the mapping (and checked) before they are sent.
const COPY_CHECKED_MAX: usize = 16 * 1024;

/// A read guard shared by the windows sent from it, so it can still be asked whether the
/// mapping faulted once the bytes are out.
#[derive(Clone)]
struct Mapped(std::sync::Arc<ReadGuard>);

impl Mapped {
    fn new(g: ReadGuard) -> Mapped {
        Mapped(std::sync::Arc::new(g))
    }
}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        self.0.body()
    }
}

/// Why a request body could not be passed on: the viewer's side, or the origin's.
pub(super) enum Forward {
    Viewer(End),
    Origin(UpstreamError),
}

fn content_type_of(m: &Meta) -> String {
    m.header("content-type")
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// A write handle with a writer of its own, for an object too large to gather in memory.
fn begin_large(
    px: &ProxyWorker,
    p: &StorePlan,
    size: Option<u64>,
) -> Option<cache_store::WriteHandle<'static>> {
    match px
        .shared
        .store
        .writer()
        .begin_owned(&p.key, &p.meta.encode(), p.expires_at, size)
    {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::debug!(error = %e, "object not stored");
            None
        }
    }
}

/// Makes a complete fill visible (unless an invalidation ran meanwhile).
fn commit(
    px: &ProxyWorker,
    p: &StorePlan,
    handle: Option<cache_store::WriteHandle<'_>>,
    buffered: &[u8],
) -> bool {
    px.shared
        .commit_unless_invalidated(&p.key, p.epoch, || commit_now(px, p, handle, buffered))
}

fn commit_now(
    px: &ProxyWorker,
    p: &StorePlan,
    handle: Option<cache_store::WriteHandle<'_>>,
    buffered: &[u8],
) -> bool {
    let ok = match handle {
        Some(h) => h.finish().is_ok(),
        None => px
            .writer
            .borrow_mut()
            .insert(&p.key, &p.meta.encode(), buffered, p.expires_at)
            .is_ok(),
    };
    if ok {
        if let Some((k, m, exp)) = &p.stub {
            let _ = px.writer.borrow_mut().insert(k, &m.encode(), &[], *exp);
        }
    }
    ok
}

/// Headers that describe the stored body: a 304 does not replace them.
fn kept_from_stored(n: &str) -> bool {
    [
        "content-length",
        "content-encoding",
        "content-md5",
        "content-range",
        "etag",
    ]
    .iter()
    .any(|k| n.eq_ignore_ascii_case(k))
}

/// Headers a 304 carries (RFC 9110 §15.4.5).
fn kept_on_304(n: &str) -> bool {
    [
        "cache-control",
        "content-location",
        "date",
        "etag",
        "expires",
        "vary",
        "last-modified",
    ]
    .iter()
    .any(|k| n.eq_ignore_ascii_case(k))
}

fn push_header(out: &mut Vec<u8>, n: &str, v: &[u8]) {
    out.extend_from_slice(n.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
}

/// The stored response for a request, following a `Vary` marker to its variant.
async fn lookup(px: &ProxyWorker, keyed: &Keyed, req: &Request) -> Option<Found> {
    let store = &px.shared.store;
    let resident = bring_in_head(px, &keyed.key).await;
    let g = store.get(&keyed.key)?;
    let m = Meta::decode(g.meta())?;
    if m.kind == Kind::Object {
        return Some(Found {
            guard: g,
            meta: m,
            key: keyed.key.clone(),
            resident,
        });
    }
    let vk = key::variant_key(&keyed.key, &m.vary, |name| request_value(req, name));
    drop(g);
    let resident = bring_in_head(px, &vk).await;
    let g = store.get(&vk)?;
    let m = Meta::decode(g.meta())?;
    (m.kind == Kind::Object).then_some(Found {
        guard: g,
        meta: m,
        key: vk,
        resident,
    })
}

/// Makes sure the stored header, key and metadata of `key`'s entry (what a lookup reads
/// from the mapping) are in memory, reading them in on the prefetch thread when they are
/// not, so that the lookup does not stall the worker on a major fault. Bodies under
/// `SHORT_MIN` are checked in the same call: true when the whole entry was resident.
async fn bring_in_head(px: &ProxyWorker, key: &[u8]) -> bool {
    let store = &px.shared.store;
    let Some((off, head, body)) = store.entry_head(key) else {
        return false;
    };
    let small = body < SHORT_MIN as u64;
    let len = if small { head + body } else { head };
    let now = Instant::now();
    if px.resident_lately(off, len, now) {
        return small;
    }
    if store.resident(off, len) {
        px.saw_resident(off, len, now);
        return small;
    }
    px.saw_cold(now);
    if !small || !store.resident(off, head) {
        // The bytes are not used (the entry may even be replaced meanwhile): reading them
        // is what brings the pages in. A failed read leaves the lookup to fault them in.
        let _ = px.shared.prefetch.read(off, head).await;
    }
    false
}

/// A request header's field lines joined as one value.
fn request_value(req: &Request, name: &str) -> Option<Vec<u8>> {
    let mut vals = req.header_values(name).peekable();
    vals.peek()?;
    Some(vals.collect::<Vec<_>>().join(&b", "[..]))
}

/// The caching directives of a response (received or stored): `CDN-Cache-Control`
/// (RFC 9213), else the `Surrogate-Control` directives aimed at this cache, else
/// `Cache-Control`.
fn response_cc(headers: &[(String, Vec<u8>)]) -> CacheControl {
    policy::directives(headers, SURROGATE_TOKEN).cc
}

/// `Surrogate-Control` is for this cache only; `CDN-Cache-Control` goes on downstream.
fn targeted(lname: &str) -> bool {
    policy::consumed_here(lname)
}

/// Whether a stale copy may stand in for an origin that failed: as CloudFront does, unless
/// the response forbids serving it stale (must-revalidate, proxy-revalidate, s-maxage,
/// no-cache); `stale-if-error` bounds how stale.
fn stale_if_error_allows(m: &Meta) -> bool {
    let cc = response_cc(&m.headers);
    if cc.must_revalidate || cc.proxy_revalidate || cc.no_cache || cc.s_maxage.is_some() {
        return false;
    }
    let stale_for = m.age_ms(now_ms()).saturating_sub(m.lifetime_ms);
    cc.stale_if_error.is_none_or(|s| stale_for < s * 1000)
}

/// End-to-end headers of an origin response, as stored.
/// `Set-Cookie` is kept only when the behavior forwards cookies (as CloudFront does): a
/// response to one viewer's cookies is never replayed to viewers whose cookies were not seen.
fn stored_headers(h: &Head, b: &BehaviorRt) -> Vec<(String, Vec<u8>)> {
    let conn = connection_names(h.header_values("connection"));
    h.headers
        .iter()
        .filter(|(n, _)| {
            let l = n.to_ascii_lowercase();
            !hop_by_hop(&l) && !conn.contains(&l) && (l != "set-cookie" || b.store_set_cookie) && l != "age"
        })
        .cloned()
        .collect()
}

/// Freshness, age and the store's expiry for a response.
fn meta_for(
    px: &ProxyWorker,
    b: &BehaviorRt,
    h: &Head,
    headers: Vec<(String, Vec<u8>)>,
    authorized: bool,
    request_ms: u64,
) -> Option<(Meta, u64)> {
    let now = now_ms();
    let date = h
        .header("date")
        .and_then(policy::parse_date)
        .unwrap_or(now / 1000);
    let directives = policy::directives(&h.headers, SURROGATE_TOKEN);
    let cc = directives.cc.clone();
    let facts = ResponseFacts {
        status: h.status,
        cc: cc.clone(),
        // RFC 9213 §2.1: Expires is ignored when CDN-Cache-Control decides.
        expires: h
            .header("expires")
            .filter(|_| directives.uses_expires())
            .map(|v| policy::parse_date(v).unwrap_or(0)),
        date,
        has_validator: h.header("etag").is_some() || h.header("last-modified").is_some(),
        vary_star: h.header_values("vary").any(|v| {
            v.split(|&c| c == b',')
                .any(|t| crate::http::codec::trim(t) == b"*")
        }),
        authorized,
    };
    let ttl = match px.error_page(h.status) {
        // Configured errors without explicit freshness are cached for their error TTL.
        Some(e) if cc.max_age.is_none() && cc.s_maxage.is_none() && facts.expires.is_none() => {
            (e.ttl > 0 && !cc.no_store && !cc.private).then_some(e.ttl)?
        }
        _ => policy::ttl(&facts, b.ttls)?,
    };
    // RFC 9111 §5.1: the first member; an invalid value is ignored.
    let age_header = policy::age(h.header_values("age"));
    let initial_age_ms = policy::initial_age_ms(age_header, date, request_ms, now);
    let lifetime_ms = ttl.saturating_mul(1000);
    let keep = cc
        .stale_while_revalidate
        .unwrap_or(0)
        .max(cc.stale_if_error.unwrap_or(0))
        .max(KEEP_STALE);
    let remaining = lifetime_ms.saturating_sub(initial_age_ms) / 1000;
    if remaining == 0 && keep == 0 {
        return None;
    }
    let expires_at = now / 1000 + remaining + keep + 1;
    let vary: Vec<String> = h
        .header_values("vary")
        .flat_map(|v| v.split(|&c| c == b','))
        .map(|t| String::from_utf8_lossy(crate::http::codec::trim(t)).to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    Some((
        Meta {
            kind: Kind::Object,
            status: h.status,
            response_ms: now,
            initial_age_ms,
            lifetime_ms,
            vary,
            headers,
        },
        expires_at,
    ))
}

/// Whether and where a fetched response is stored.
fn plan_store(
    px: &ProxyWorker,
    b: &BehaviorRt,
    keyed: &Keyed,
    req: &Request,
    h: &Head,
    request_ms: u64,
    epoch: u64,
) -> Option<StorePlan> {
    if h.status == 206 {
        return None;
    }
    let authorized = req.header("authorization").is_some();
    let (meta, expires_at) = meta_for(px, b, h, stored_headers(h, b), authorized, request_ms)?;
    if meta.vary.is_empty() {
        return Some(StorePlan {
            key: keyed.key.clone(),
            meta,
            expires_at,
            stub: None,
            epoch,
        });
    }
    let vk = key::variant_key(&keyed.key, &meta.vary, |name| request_value(req, name));
    let stub = Meta {
        kind: Kind::VaryStub,
        vary: meta.vary.clone(),
        response_ms: meta.response_ms,
        ..Meta::default()
    };
    let stub_exp = expires_at.max(now_ms() / 1000 + b.ttls.max.min(86_400 * 365));
    Some(StorePlan {
        key: vk,
        meta,
        expires_at,
        stub: Some((keyed.key.clone(), stub, stub_exp)),
        epoch,
    })
}

/// A 304 from the origin: the stored headers are updated (RFC 9111 §3.2) and the object gets
/// a new lifetime, without touching its body.
fn refresh_stored(
    px: &ProxyWorker,
    b: &BehaviorRt,
    f: Found,
    resp: &Head,
    request_ms: u64,
    epoch: u64,
) -> Found {
    let mut headers = f.meta.headers.clone();
    let fresh = stored_headers(resp, b);
    let fresh: Vec<_> = fresh.into_iter().filter(|(n, _)| !kept_from_stored(n)).collect();
    for (n, _) in &fresh {
        headers.retain(|(old, _)| !old.eq_ignore_ascii_case(n));
    }
    headers.extend(fresh);
    let mut merged = resp.clone();
    merged.status = f.meta.status;
    merged.headers = headers.clone();
    let Some((mut meta, expires_at)) = meta_for(px, b, &merged, headers, false, request_ms) else {
        // No longer storable: serve this once, drop it.
        px.shared.store.remove(&f.key);
        let mut meta = f.meta.clone();
        meta.headers = merged.headers;
        return Found { meta, ..f };
    };
    meta.vary = f.meta.vary.clone();
    if px.shared.epoch.load(std::sync::atomic::Ordering::SeqCst) == epoch {
        let encoded = meta.encode();
        if !px.shared.store.update_meta(&f.key, &encoded, expires_at) {
            // The new headers outgrew the room kept for them: write a fresh copy.
            let _ = px
                .writer
                .borrow_mut()
                .insert(&f.key, &encoded, f.guard.body(), expires_at);
        }
    }
    Found { meta, ..f }
}

/// `Location` / `Content-Location` on the request's own host, as a `path \0 query \0` prefix.
fn same_host_url_prefix(v: &[u8], req: &Request) -> Option<Vec<u8>> {
    let v = crate::http::codec::trim(v);
    let rest = if v.starts_with(b"/") && !v.starts_with(b"//") {
        v
    } else {
        let after = v
            .strip_prefix(b"http://")
            .or_else(|| v.strip_prefix(b"https://"))?;
        let slash = after.iter().position(|&c| c == b'/').unwrap_or(after.len());
        let host = &after[..slash];
        if !req.header("host").is_some_and(|h| h.eq_ignore_ascii_case(host)) {
            return None;
        }
        &after[slash..]
    };
    let (path, query) = match rest.iter().position(|&c| c == b'?') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let mut p = if path.is_empty() {
        b"/".to_vec()
    } else {
        path.to_vec()
    };
    p.push(0);
    p.extend_from_slice(query);
    p.push(0);
    Some(p)
}

/// A stored response's `ETag` and `Last-Modified`, for a conditional request.
type Validators = (Option<Vec<u8>>, Option<Vec<u8>>);

fn validators_of(m: &Meta) -> Validators {
    (
        m.header("etag").map(<[u8]>::to_vec),
        m.header("last-modified").map(<[u8]>::to_vec),
    )
}

/// The request head sent to the origin.
fn request_head(
    method: &[u8],
    keyed: &Keyed,
    client: &OriginClient,
    via: &str,
    peer: Option<std::net::SocketAddr>,
    validators: Option<&Validators>,
    body: Option<Option<u64>>,
) -> Vec<u8> {
    let mut h = Vec::with_capacity(512);
    h.extend_from_slice(method);
    h.push(b' ');
    h.extend_from_slice(&keyed.target);
    h.extend_from_slice(b" HTTP/1.1\r\n");
    let viewer_host = keyed.headers.iter().find(|(n, _)| n == "host");
    if !keyed.forward_host || viewer_host.is_none() {
        push_header(&mut h, "Host", client.host_header.as_bytes());
    }
    let mut xff: Option<Vec<u8>> = None;
    let mut via_line: Option<Vec<u8>> = None;
    for (n, v) in &keyed.headers {
        match n.as_str() {
            "x-forwarded-for" => xff = Some(v.clone()),
            "via" => via_line = Some(v.clone()),
            _ => push_header(&mut h, n, v),
        }
    }
    if let Some(ip) = peer.map(|p| p.ip().to_string()) {
        let v = match xff {
            Some(mut old) => {
                old.extend_from_slice(b", ");
                old.extend_from_slice(ip.as_bytes());
                old
            }
            None => ip.into_bytes(),
        };
        push_header(&mut h, "X-Forwarded-For", &v);
    }
    let via_v = match via_line {
        Some(mut old) => {
            old.extend_from_slice(b", ");
            old.extend_from_slice(via.as_bytes());
            old
        }
        None => via.as_bytes().to_vec(),
    };
    push_header(&mut h, "Via", &via_v);
    push_header(&mut h, "Surrogate-Capability", SURROGATE_CAPABILITY);
    if let Some((etag, lm)) = validators {
        if let Some(e) = etag {
            push_header(&mut h, "If-None-Match", e);
        }
        if let Some(l) = lm {
            push_header(&mut h, "If-Modified-Since", l);
        }
    }
    match body {
        Some(Some(n)) => push_header(&mut h, "Content-Length", itoa::Buffer::new().format(n).as_bytes()),
        Some(None) => push_header(&mut h, "Transfer-Encoding", b"chunked"),
        None => {}
    }
    h.extend_from_slice(b"\r\n");
    h
}

/// The viewer's head for an origin response: its status and end-to-end headers, and ours.
fn write_origin_head(
    out: &mut Vec<u8>,
    resp: &Head,
    via: &str,
    outcome: Outcome,
    node: &str,
    cache_status: &str,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(resp.status).as_bytes());
    out.push(b' ');
    if resp.reason.is_empty() {
        out.extend_from_slice(Status(resp.status).reason().as_bytes());
    } else {
        out.extend_from_slice(resp.reason.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    let conn = connection_names(resp.header_values("connection"));
    let mut origin_via = None;
    let mut has_date = false;
    for (n, v) in &resp.headers {
        let l = n.to_ascii_lowercase();
        if hop_by_hop(&l) || conn.contains(&l) || targeted(&l) {
            continue;
        }
        if l == "via" {
            origin_via = Some(v);
            continue;
        }
        has_date |= l == "date";
        push_header(out, n, v);
    }
    if !has_date {
        crate::http::date::with_date(|d| push_header(out, "Date", d));
    }
    match origin_via {
        Some(v) => {
            let mut line = v.clone();
            line.extend_from_slice(b", ");
            line.extend_from_slice(via.as_bytes());
            push_header(out, "Via", &line);
        }
        None => push_header(out, "Via", via.as_bytes()),
    }
    push_header(out, "X-Cache", outcome.x_cache());
    push_header(out, "Cache-Status", format!("{node}; {cache_status}").as_bytes());
}

/// Sends a request head without a body and reads the response head. A pooled connection that
/// fails before any response byte is retried once on a fresh one.
async fn exchange_head(
    client: &OriginClient,
    viewer_tls: bool,
    head: Vec<u8>,
    metrics: &crate::observe::WorkerMetrics,
) -> Result<(UpConn, Head), UpstreamError> {
    let t0 = Instant::now();
    let r = exchange_head_once(client, viewer_tls, head).await;
    count_origin(metrics, t0, &r);
    r
}

/// Counts an origin exchange: its latency, or the kind of its failure.
fn count_origin<T>(metrics: &crate::observe::WorkerMetrics, t0: Instant, r: &Result<T, UpstreamError>) {
    match r {
        Ok(_) => metrics.origin_ok(t0.elapsed()),
        Err(e) => metrics.origin_error(e.kind()),
    }
}

async fn exchange_head_once(
    client: &OriginClient,
    viewer_tls: bool,
    head: Vec<u8>,
) -> Result<(UpConn, Head), UpstreamError> {
    let tls = client.uses_tls(viewer_tls);
    let mut up = client.checkout(tls).await?;
    let first = try_exchange(&mut up, client, head.clone()).await;
    match first {
        Ok(h) => Ok((up, h)),
        Err(e) if up.reused && up.buf.is_empty() && !matches!(e, UpstreamError::Timeout) => {
            tracing::debug!(origin = %client.id, error = %e, "pooled connection failed; retrying on a new one");
            let mut up = client.connect(tls).await?;
            let h = try_exchange(&mut up, client, head).await?;
            Ok((up, h))
        }
        Err(e) => Err(e),
    }
}

/// For exchanges no viewer waits on (background refresh): interim responses are dropped,
/// bounded as `HeadReader` bounds them.
async fn try_exchange(up: &mut UpConn, client: &OriginClient, head: Vec<u8>) -> Result<Head, UpstreamError> {
    up.write_all(head).await?;
    read_final_head(up, client.read_timeout, false).await
}

/// stale-while-revalidate: one background refresh per object.
fn spawn_refresh(w: Rc<Worker>, keyed: Keyed, key: Vec<u8>, meta: Meta, peer: Option<std::net::SocketAddr>) {
    let Some(px) = w.proxy.as_ref() else { return };
    let mut fill_key = b"refresh\0".to_vec();
    fill_key.extend_from_slice(&key);
    let Role::Leader(leader) = px.shared.fills.join(&fill_key) else {
        return;
    };
    monoio::spawn(async move {
        let _leader = leader;
        let Some(px) = w.proxy.as_ref() else { return };
        let behavior = w
            .router
            .route_behavior(keyed.target.split(|&c| c == b'?').next().unwrap_or_default())
            .1;
        let (Some(b), Some(client)) = (
            px.behaviors.get(behavior),
            w.router_origin(keyed.target.split(|&c| c == b'?').next().unwrap_or_default())
                .and_then(|i| px.origins.get(i))
                .and_then(Option::as_ref),
        ) else {
            return;
        };
        let epoch = px.shared.epoch.load(std::sync::atomic::Ordering::SeqCst);
        let validators = validators_of(&meta);
        let head = request_head(
            b"GET",
            &keyed,
            client,
            &px.shared.via,
            peer,
            Some(&validators),
            None,
        );
        let request_ms = now_ms();
        let Ok((mut up, resp)) = exchange_head(client, false, head, &w.metrics).await else {
            return;
        };
        if resp.status == 304 {
            client.checkin(up);
            bring_in_head(px, &key).await;
            if let Some(g) = px.shared.store.get(&key) {
                let f = Found {
                    guard: g,
                    meta,
                    key,
                    resident: false,
                };
                refresh_stored(px, b, f, &resp, request_ms, epoch);
            }
            return;
        }
        // A full response: read it (bounded) and store it.
        let mut reader = BodyReader::new(resp.framing);
        let mut body = Vec::new();
        loop {
            match reader.next(&mut up, client.read_timeout).await {
                Ok(p) if p.is_empty() => break,
                Ok(p) if (body.len() + p.len()) as u64 <= BUFFERED_MAX => body.extend_from_slice(&p),
                _ => return,
            }
        }
        if resp.keep_alive {
            client.checkin(up);
        }
        let Some((mut m, exp)) = meta_for(px, b, &resp, stored_headers(&resp, b), false, request_ms) else {
            return;
        };
        m.vary = meta.vary.clone();
        px.shared.commit_unless_invalidated(&key, epoch, || {
            px.writer
                .borrow_mut()
                .insert(&key, &m.encode(), &body, exp)
                .is_ok()
        });
    });
}
