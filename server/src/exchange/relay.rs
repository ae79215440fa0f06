//! Phase **relay and store**: an origin's response passed on to the viewer as it arrives,
//! stored on the way when its plan says so. The body is a [`BodySource::Relay`]: the codec
//! pulls pieces from it, and each piece is written to the slab before it is handed out, so an
//! object is stored (and its collapsed followers released) before the viewer sees its last
//! byte.
//!
//! [`BodySource::Relay`]: super::BodySource::Relay

use super::store::{begin_large, commit, StorePlan, BUFFERED_MAX};
use super::{BodyLength, CacheResult, End, ResponseHead};
use crate::context::Worker;
use crate::proxy::fills::{Leader, NOT_STORED, STORED};
use crate::proxy::key::{connection_names, hop_by_hop};
use crate::proxy::upstream::{BodyReader, Framing, Head, UpConn, UpstreamError};
use bytes::Bytes;
use std::rc::Rc;

/// An origin's body on its way to the viewer (and the slab).
pub struct Relay {
    w: Rc<Worker>,
    /// The origin (index in the proxy's origins).
    origin: usize,
    up: Option<UpConn>,
    reader: BodyReader,
    /// The origin allows reusing its connection once the body is read.
    reuse: bool,
    plan: Option<StorePlan>,
    /// A run of its own, for objects too large to gather in memory.
    handle: Option<cache_store::WriteHandle<'static>>,
    buffered: Vec<u8>,
    leader: Option<Leader>,
    /// The first piece, read before the head is answered.
    first: Option<Vec<u8>>,
    done: bool,
}

impl Relay {
    /// Starts relaying: reads the first piece of the body, so that an origin failing before
    /// any of it arrives can still be answered with a clean error (nothing was sent yet).
    pub async fn start(
        w: Rc<Worker>,
        origin: usize,
        up: UpConn,
        resp: &Head,
        plan: Option<StorePlan>,
        leader: Option<Leader>,
    ) -> Result<Relay, (UpstreamError, Option<Leader>)> {
        let known_len = match resp.framing {
            Framing::Length(n) => Some(n),
            Framing::None => Some(0),
            _ => None,
        };
        let mut r = Relay {
            w,
            origin,
            up: Some(up),
            reader: BodyReader::new(resp.framing),
            reuse: resp.keep_alive,
            plan,
            handle: None,
            buffered: Vec::new(),
            leader,
            first: None,
            done: false,
        };
        // Large objects (and those of unknown length once they outgrow the buffer) stream
        // into a run of their own.
        if let (Some(p), Some(n), Some(px)) = (&r.plan, known_len, r.w.proxy.as_ref()) {
            if n > BUFFERED_MAX {
                r.handle = begin_large(px, p, known_len);
                if r.handle.is_none() {
                    r.plan = None;
                }
            }
        }
        match r.read().await {
            Ok(p) => {
                r.first = Some(p);
                Ok(r)
            }
            Err(e) => Err((e, r.leader.take())),
        }
    }

    /// The next piece for the viewer, `None` at the end. A failure closes the viewer's
    /// connection with the response incomplete (the object is not stored).
    pub async fn next_piece(&mut self) -> Result<Option<Bytes>, End> {
        if let Some(p) = self.first.take() {
            return Ok((!p.is_empty()).then(|| Bytes::from(p)));
        }
        if self.done {
            return Ok(None);
        }
        match self.read().await {
            Ok(p) if p.is_empty() => Ok(None),
            Ok(p) => Ok(Some(Bytes::from(p))),
            Err(_) => Err(End::Gone),
        }
    }

    /// Nothing more is sent (the viewer is gone, or asked with HEAD): the body is still read
    /// to its end while it is being stored, or when `all` (so the origin connection is reused).
    pub async fn finish_unsent(mut self, all: bool) {
        while !self.done && (all || self.plan.is_some()) {
            if self.read().await.is_err() {
                return;
            }
        }
    }

    /// Reads one piece from the origin and stores it; the last piece completes the fill
    /// (stored, followers released, the origin connection back in the pool) before it is
    /// returned.
    async fn read(&mut self) -> Result<Vec<u8>, UpstreamError> {
        let w = self.w.clone();
        let (Some(px), Some(conn)) = (w.proxy.as_ref(), self.up.as_mut()) else {
            self.done = true;
            return Ok(Vec::new());
        };
        let Some(client) = px.origins.get(self.origin).and_then(Option::as_ref) else {
            return Err(UpstreamError::Closed);
        };
        let piece = match self.reader.next(conn, client.read_timeout).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(origin = %client.id, error = %e, "origin response cut short; not stored");
                // The write handle is never finished: the partial object stays invisible and
                // its space is reused.
                self.plan = None;
                self.handle = None;
                self.done = true;
                self.up = None;
                return Err(e);
            }
        };
        let last = piece.is_empty() || self.reader.is_done();
        if self.plan.is_some() && !piece.is_empty() {
            self.store_piece(px, &piece);
        }
        if last {
            self.done = true;
            if let Some(p) = self.plan.take() {
                let stored = commit(px, &p, self.handle.take(), &self.buffered);
                tracing::debug!(key = %String::from_utf8_lossy(&p.key), stored, "fill complete");
                if let Some(l) = self.leader.take() {
                    l.finish(if stored { STORED } else { NOT_STORED });
                }
            }
            if let Some(conn) = self.up.take().filter(|_| self.reuse) {
                client.checkin(conn);
            }
        }
        Ok(piece)
    }

    fn store_piece(&mut self, px: &crate::proxy::ProxyWorker, piece: &[u8]) {
        if let Some(h) = self.handle.as_mut() {
            if let Err(e) = h.write(piece) {
                tracing::debug!(error = %e, "object not stored");
                self.handle = None;
                self.plan = None;
            }
        } else if (self.buffered.len() + piece.len()) as u64 <= BUFFERED_MAX {
            self.buffered.extend_from_slice(piece);
        } else if let Some(mut h) = self.plan.as_ref().and_then(|p| begin_large(px, p, None)) {
            let moved = h.write(&self.buffered).and_then(|()| h.write(piece));
            self.buffered = Vec::new();
            match moved {
                Ok(()) => self.handle = Some(h),
                Err(_) => self.plan = None,
            }
        } else {
            self.plan = None;
            self.buffered = Vec::new();
        }
    }
}

/// The viewer's head for an origin response: its status and end-to-end fields, and ours
/// (`Via` appended to the origin's, `X-Cache`, `Cache-Status`).
pub fn origin_head<'a>(
    resp: &'a Head,
    via: &'a str,
    cache: CacheResult,
    node: &str,
    detail: &str,
) -> ResponseHead<'a> {
    let mut head = ResponseHead {
        status: resp.status,
        reason: (!resp.reason.is_empty()).then(|| resp.reason.as_str().into()),
        local: false,
        fields: Vec::with_capacity(resp.headers.len() + 4),
        length: BodyLength::None,
        cache: CacheResult::Local,
        close: false,
    };
    let conn = connection_names(resp.header_values("connection"));
    let mut origin_via = None;
    let mut upstream_status: Vec<&[u8]> = Vec::new();
    let mut has_date = false;
    for (n, v) in &resp.headers {
        let l = n.to_ascii_lowercase();
        if hop_by_hop(&l) || conn.contains(&l) || super::store::targeted(&l) {
            continue;
        }
        if l == "via" {
            origin_via = Some(v);
            continue;
        }
        if l == "cache-status" {
            upstream_status.push(v.as_slice());
            continue;
        }
        has_date |= l == "date";
        head.field(n.as_str(), v.as_slice());
    }
    if !has_date {
        head.field("Date", crate::http::date::with_date(<[u8]>::to_vec));
    }
    match origin_via {
        Some(v) => {
            let mut line = v.clone();
            line.extend_from_slice(b", ");
            line.extend_from_slice(via.as_bytes());
            head.field("Via", line);
        }
        None => {
            head.field("Via", via);
        }
    }
    let mut head = head.with_cache(cache);
    head.field(
        "Cache-Status",
        chain_cache_status(&upstream_status, &format!("{node}; {detail}")),
    );
    let body_allowed = !matches!(resp.status, 204 | 304) && resp.status >= 200;
    head.length = match resp.framing {
        Framing::Length(n) if body_allowed => BodyLength::Known(n),
        Framing::None if body_allowed => BodyLength::Known(0),
        Framing::Chunked | Framing::Close if body_allowed => BodyLength::Unknown,
        _ => BodyLength::None,
    };
    head
}

/// `Cache-Status` in RFC 9211's chained form: the upstream caches' entries first (a parent
/// and the caches behind it), this node's last.
pub fn chain_cache_status(upstream: &[&[u8]], ours: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(ours.len() + upstream.iter().map(|u| u.len() + 2).sum::<usize>());
    for u in upstream {
        v.extend_from_slice(u);
        v.extend_from_slice(b", ");
    }
    v.extend_from_slice(ours.as_bytes());
    v
}
