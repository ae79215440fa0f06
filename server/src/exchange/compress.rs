//! Compression at the edge (a behavior's `compress = true`, CloudFront's "Compress objects
//! automatically"), as a step of the **hit** phase and a follow-up of **relay and store**.
//!
//! An object is compressible when the origin answered 200 with a `Content-Type` on
//! CloudFront's list, 1,000 to 10,000,000 bytes, no `Content-Encoding` and no
//! `Cache-Control: no-transform` ([`eligible`]). Such an object always carries
//! `Vary: Accept-Encoding`; a viewer whose `Accept-Encoding` allows a coding ([`negotiate`])
//! gets it compressed, with a weak `ETag` and the compressed `Content-Length`. Range
//! requests, and every status but 200 and 304, get the identity bytes.
//!
//! Each compressed variant is stored in the slab beside the identity object, under the
//! identity entry's key with the coding appended ([`variant_key`], so an invalidation of the
//! URL removes it with the object), and its metadata is the identity entry's fingerprint
//! (slab offset, time written, length): a variant of an older body is never served. It is
//! computed once, on a compression thread (`compress/pool.rs`); the viewer that asked for it is sent
//! the output as it is produced, and later hits send the stored bytes like any stored body.
//! A miss sends the identity body (it streams from the origin) and then starts the variant
//! for the coding its viewer would have taken, so the next request finds it.

mod pool;

use super::hit::bring_in_head;
use super::response::{BodyLength, ResponseHead, Value};
use super::store::BUFFERED_MAX;
use super::{BodySource, End};
use crate::context::Worker;
use crate::http::{Method, Request};
use crate::proxy::fills::{Leader, Role, STORED};
use crate::proxy::meta::Meta;
use crate::proxy::ProxyWorker;
use bytes::Bytes;
use cache_store::ReadGuard;
use std::borrow::Cow;
use std::rc::Rc;

/// Smallest and largest bodies compressed (CloudFront's bounds).
pub const MIN_SIZE: u64 = 1_000;
pub const MAX_SIZE: u64 = 10_000_000;

/// A content coding the edge produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Br,
    Gzip,
    Zstd,
}

impl Coding {
    /// The `Content-Encoding` token.
    pub fn as_str(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Gzip => "gzip",
            Coding::Zstd => "zstd",
        }
    }
}

/// CloudFront's compressible types (its "file types that CloudFront compresses").
const TYPES: &[&str] = &[
    "application/dash+xml",
    "application/eot",
    "application/font",
    "application/font-sfnt",
    "application/javascript",
    "application/json",
    "application/opentype",
    "application/otf",
    "application/pdf",
    "application/pkcs7-mime",
    "application/protobuf",
    "application/rss+xml",
    "application/truetype",
    "application/ttf",
    "application/vnd.apple.mpegurl",
    "application/vnd.mapbox-vector-tile",
    "application/vnd.ms-fontobject",
    "application/wasm",
    "application/xhtml+xml",
    "application/xml",
    "application/x-font-opentype",
    "application/x-font-truetype",
    "application/x-font-ttf",
    "application/x-httpd-cgi",
    "application/x-javascript",
    "application/x-mpegurl",
    "application/x-opentype",
    "application/x-otf",
    "application/x-perl",
    "application/x-ttf",
    "font/eot",
    "font/opentype",
    "font/otf",
    "font/ttf",
    "image/svg+xml",
    "text/css",
    "text/csv",
    "text/html",
    "text/javascript",
    "text/js",
    "text/plain",
    "text/richtext",
    "text/tab-separated-values",
    "text/xml",
    "text/x-component",
    "text/x-java-source",
    "text/x-script",
    "vnd.apple.mpegurl",
];

/// Whether a `Content-Type` value is on the list (parameters ignored).
pub fn compressible_type(v: &[u8]) -> bool {
    let media = v.split(|&c| c == b';').next().unwrap_or_default();
    let media = crate::http::codec::trim(media);
    TYPES.iter().any(|t| media.eq_ignore_ascii_case(t.as_bytes()))
}

/// Whether a response (status, end-to-end fields, body length) may be compressed here.
pub fn eligible(status: u16, headers: &[(String, Vec<u8>)], len: Option<u64>) -> bool {
    use crate::proxy::fields::{first, values};
    status == 200
        && len.is_some_and(|n| (MIN_SIZE..=MAX_SIZE).contains(&n))
        && first(headers, "content-type").is_some_and(compressible_type)
        && values(headers, "content-encoding")
            .all(|v| crate::http::codec::trim(v).eq_ignore_ascii_case(b"identity"))
        && !values(headers, "cache-control").any(|v| {
            v.split(|&c| c == b',')
                .any(|d| crate::http::codec::trim(d).eq_ignore_ascii_case(b"no-transform"))
        })
}

/// The coding a viewer gets, from its `Accept-Encoding`: the acceptable coding with the
/// highest q (`*` stands for codings not named; no header means identity); among equals,
/// zstd when the viewer names it before the others, else Brotli, else gzip.
pub fn negotiate(req: &Request) -> Option<Coding> {
    let mut q = [None::<f32>; 3];
    let mut pos = [usize::MAX; 3];
    let mut star = None;
    let items = req
        .header_values("accept-encoding")
        .flat_map(|v| v.split(|&c| c == b','));
    for (i, item) in items.enumerate() {
        let mut parts = item.split(|&c| c == b';');
        let name = crate::http::codec::trim(parts.next().unwrap_or_default());
        let weight = parts
            .filter_map(|p| {
                let p = crate::http::codec::trim(p);
                (p.len() > 2 && p[..2].eq_ignore_ascii_case(b"q="))
                    .then(|| std::str::from_utf8(&p[2..]).ok()?.trim().parse::<f32>().ok())
                    .flatten()
            })
            .next()
            .unwrap_or(1.0);
        let slot = if name.eq_ignore_ascii_case(b"br") {
            0
        } else if name.eq_ignore_ascii_case(b"gzip") || name.eq_ignore_ascii_case(b"x-gzip") {
            1
        } else if name.eq_ignore_ascii_case(b"zstd") {
            2
        } else {
            if name == b"*" {
                star = Some(weight);
            }
            continue;
        };
        if q[slot].is_none() {
            q[slot] = Some(weight);
            pos[slot] = i;
        }
    }
    let q = q.map(|x| x.or(star).unwrap_or(0.0));
    let best = q.iter().copied().fold(0.0f32, f32::max);
    if best <= 0.0 {
        return None;
    }
    let top = |s: usize| q[s] == best;
    let zstd_first = top(2) && (0..2).all(|s| !top(s) || pos[2] < pos[s]);
    Some(if zstd_first {
        Coding::Zstd
    } else if top(0) {
        Coding::Br
    } else if top(1) {
        Coding::Gzip
    } else {
        Coding::Zstd
    })
}

/// The key of an identity entry's compressed variant: the entry's key, then a byte no key
/// part ends with, then the coding (so every variant shares the URL's key prefix).
pub fn variant_key(identity: &[u8], c: Coding) -> Vec<u8> {
    let mut k = Vec::with_capacity(identity.len() + 8);
    k.extend_from_slice(identity);
    k.push(2);
    k.extend_from_slice(b"ce=");
    k.extend_from_slice(c.as_str().as_bytes());
    k
}

const MAGIC: &[u8; 4] = b"SFZ1";

/// A variant's metadata: which identity body it was made from, and whether it was worth
/// keeping (a variant no smaller than the identity body is stored empty, as a marker that
/// the identity is sent).
fn fingerprint(src: &ReadGuard, worth: bool) -> Vec<u8> {
    let mut m = Vec::with_capacity(29);
    m.extend_from_slice(MAGIC);
    m.extend_from_slice(&src.body_offset().to_le_bytes());
    m.extend_from_slice(&src.written_at().to_le_bytes());
    m.extend_from_slice(&src.body_len().to_le_bytes());
    m.push(u8::from(worth));
    m
}

/// `Some(worth)` when `meta` is the fingerprint of the variant of `src`.
fn made_from(meta: &[u8], src: &ReadGuard) -> Option<bool> {
    let ours = fingerprint(src, false);
    (meta.len() == ours.len() && meta[..ours.len() - 1] == ours[..ours.len() - 1])
        .then(|| meta[ours.len() - 1] == 1)
}

/// Adds `Accept-Encoding` to the head's `Vary` (or a `Vary` of its own).
pub fn mark_vary(head: &mut ResponseHead<'_>) {
    let vary = head
        .fields
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case("vary"));
    match vary {
        Some((_, v)) => {
            let listed = v.as_ref().split(|&c| c == b',').any(|t| {
                let t = crate::http::codec::trim(t);
                t == b"*" || t.eq_ignore_ascii_case(b"accept-encoding")
            });
            if !listed {
                let mut line = v.as_ref().to_vec();
                line.extend_from_slice(b", Accept-Encoding");
                *v = Value::Owned(line);
            }
        }
        None => {
            head.field("Vary", "Accept-Encoding");
        }
    }
}

/// Marks a head as the compressed representation: `Content-Encoding`, the `ETag` weak (the
/// bytes differ from the identity's, the content does not), and a `Cache-Status` detail.
fn mark_encoded(head: &mut ResponseHead<'_>, c: Coding, detail: &str, body: bool) {
    for (n, v) in head.fields.iter_mut() {
        if n.eq_ignore_ascii_case("etag") && !v.as_ref().starts_with(b"W/") {
            let mut weak = b"W/".to_vec();
            weak.extend_from_slice(v.as_ref());
            *v = Value::Owned(weak);
        } else if n.eq_ignore_ascii_case("cache-status") {
            let mut line = v.as_ref().to_vec();
            line.extend_from_slice(format!("; detail={}-{detail}", c.as_str()).as_bytes());
            *v = Value::Owned(line);
        }
    }
    if body {
        head.fields.push((
            Cow::Borrowed("Content-Encoding"),
            Value::Ref(c.as_str().as_bytes()),
        ));
    }
}

/// What a hit on a compressible object sends.
pub enum Choice {
    /// The identity body (a range, no acceptable coding, HEAD before the variant exists, a
    /// compression already under way elsewhere, or a variant that was not worth keeping).
    Identity,
    /// A 304 for the representation the viewer would get.
    NotModified(Coding),
    /// The stored variant.
    Stored(Coding, ReadGuard),
    /// Compressed just now, whole.
    Now(Coding, Bytes),
    /// Being compressed: sent as it is produced.
    Streaming(Coding, Box<Compressing>),
}

/// The choice for a hit: `key` and `src` the identity entry, `status` and `ranged` what the
/// hit phase decided; `None` when the object is not compressible.
#[allow(clippy::too_many_arguments)]
pub async fn choose(
    w: &Rc<Worker>,
    px: &ProxyWorker,
    req: &Request,
    key: &[u8],
    src: &ReadGuard,
    m: &Meta,
    status: u16,
    ranged: bool,
) -> Option<Choice> {
    if !eligible(m.status, &m.headers, Some(src.body_len())) {
        return None;
    }
    let Some(c) = negotiate(req).filter(|_| !ranged && matches!(status, 200 | 304)) else {
        return Some(Choice::Identity);
    };
    if status == 304 {
        return Some(Choice::NotModified(c));
    }
    let vk = variant_key(key, c);
    bring_in_head(px, &vk).await;
    if let Some(g) = px.shared.store.get(&vk) {
        match made_from(g.meta(), src) {
            Some(true) => return Some(Choice::Stored(c, g)),
            Some(false) => return Some(Choice::Identity),
            None => {}
        }
    }
    if req.method == Method::Head {
        return Some(Choice::Identity);
    }
    let Some(mut z) = Compressing::start(w, px, key, src, c) else {
        return Some(Choice::Identity);
    };
    Some(match z.first().await {
        First::Failed => Choice::Identity,
        First::Whole(b) if (b.len() as u64) < src.body_len() => Choice::Now(c, b),
        First::Whole(_) => Choice::Identity,
        First::Streaming => Choice::Streaming(c, Box::new(z)),
    })
}

impl Choice {
    /// The head and body for this choice, from the identity's head and body.
    pub fn apply<'a>(
        self,
        w: &Rc<Worker>,
        req: &Request,
        mut head: ResponseHead<'a>,
        body: BodySource,
    ) -> (ResponseHead<'a>, BodySource) {
        mark_vary(&mut head);
        let head_only = req.method == Method::Head;
        match self {
            Choice::Identity => (head, body),
            Choice::NotModified(c) => {
                mark_encoded(&mut head, c, "stored", false);
                (head, body)
            }
            Choice::Stored(c, g) => {
                mark_encoded(&mut head, c, "stored", true);
                let len = g.body_len();
                head.length = BodyLength::Known(len);
                let body = if head_only {
                    BodySource::Empty
                } else {
                    BodySource::Slab(super::body::SlabBody::new(w.clone(), g, 0, len as usize, false))
                };
                (head, body)
            }
            Choice::Now(c, b) => {
                mark_encoded(&mut head, c, "compressed", true);
                head.length = BodyLength::Known(b.len() as u64);
                (head, BodySource::Bytes(b))
            }
            Choice::Streaming(c, z) => {
                mark_encoded(&mut head, c, "compressing", true);
                head.length = BodyLength::Unknown;
                (head, BodySource::Compressing(z))
            }
        }
    }
}

/// After a miss was sent whole and stored: starts the variant its viewer would have taken
/// (kept in the background; the next request finds it stored).
pub async fn after_fill(w: &Rc<Worker>, px: &ProxyWorker, req: &Request, keyed: &crate::proxy::key::Keyed) {
    let Some(c) = negotiate(req) else { return };
    let Some(f) = super::hit::lookup(px, keyed, req).await else {
        return;
    };
    if !eligible(f.meta.status, &f.meta.headers, Some(f.guard.body_len())) {
        return;
    }
    if let Some(z) = Compressing::start(w, px, &f.key, &f.guard, c) {
        monoio::spawn(z.finish_unsent());
    }
}

/// A variant being compressed on a compression thread, collected for the slab as it is
/// handed out.
pub struct Compressing {
    w: Rc<Worker>,
    pending: pool::Pending,
    /// The first piece, read before the head is answered.
    queued: Option<Bytes>,
    kept: Vec<u8>,
    key: Vec<u8>,
    src_len: u64,
    /// The identity entry's fingerprint (the variant's metadata once it proves worth it).
    made_from: [Vec<u8>; 2],
    expires_at: u64,
    epoch: u64,
    leader: Option<Leader>,
    done: bool,
}

/// How a compression began.
enum First {
    Failed,
    /// It is complete already (small bodies): the whole output.
    Whole(Bytes),
    Streaming,
}

impl Compressing {
    /// Starts compressing the identity entry `src` (stored under `key`) unless a compression
    /// of the same variant is under way (on any worker).
    fn start(w: &Rc<Worker>, px: &ProxyWorker, key: &[u8], src: &ReadGuard, c: Coding) -> Option<Self> {
        let vk = variant_key(key, c);
        let mut job_key = b"compress\0".to_vec();
        job_key.extend_from_slice(&vk);
        let Role::Leader(leader) = px.shared.fills.join(&job_key) else {
            return None;
        };
        // A guard of its own for the thread, on the same body.
        let g = px.shared.store.get(key)?;
        if g.body_offset() != src.body_offset() {
            return None;
        }
        let z = &px.compression;
        let level = match c {
            Coding::Br => z.brotli_level as i32,
            Coding::Gzip => z.gzip_level as i32,
            Coding::Zstd => z.zstd_level,
        };
        let expires_at = src.expires_at();
        let made_from = [fingerprint(src, false), fingerprint(src, true)];
        let epoch = px.shared.epoch.load(std::sync::atomic::Ordering::SeqCst);
        let pending = pool::start(c, level, g)?;
        Some(Compressing {
            w: w.clone(),
            pending,
            queued: None,
            kept: Vec::new(),
            key: vk,
            src_len: src.body_len(),
            made_from,
            expires_at,
            epoch,
            leader: Some(leader),
            done: false,
        })
    }

    /// Waits for the first output: a body whose output fits one piece is whole at once.
    async fn first(&mut self) -> First {
        let p = match self.pending.next().await {
            pool::Msg::Piece(p) => p,
            pool::Msg::End | pool::Msg::Failed => return First::Failed,
        };
        self.kept.extend_from_slice(&p);
        if p.len() >= pool::PIECE {
            self.queued = Some(p);
            return First::Streaming;
        }
        // A short piece is the last one.
        match self.pending.next().await {
            pool::Msg::End => {
                self.store();
                First::Whole(p)
            }
            _ => First::Failed,
        }
    }

    /// The next piece for the viewer, `None` at the end (the variant then stored).
    pub async fn next_piece(&mut self) -> Result<Option<Bytes>, End> {
        if let Some(p) = self.queued.take() {
            return Ok(Some(p));
        }
        if self.done {
            return Ok(None);
        }
        match self.pending.next().await {
            pool::Msg::Piece(p) => {
                // Bounded: the output is at most a little over the input (10 MB at most).
                self.kept.extend_from_slice(&p);
                Ok(Some(p))
            }
            pool::Msg::End => {
                self.store();
                Ok(None)
            }
            pool::Msg::Failed => {
                tracing::warn!("compression failed; closing the connection");
                self.done = true;
                Err(End::Gone)
            }
        }
    }

    /// Nothing more is sent (the viewer left, or nobody asked): the output is still
    /// collected to its end and stored.
    pub async fn finish_unsent(mut self) {
        self.queued = None;
        while matches!(self.next_piece().await, Ok(Some(_))) {}
    }

    fn store(&mut self) {
        self.done = true;
        let Some(px) = self.w.proxy.as_ref() else { return };
        let worth = (self.kept.len() as u64) < self.src_len;
        let body: &[u8] = if worth { &self.kept } else { &[] };
        let meta = &self.made_from[usize::from(worth)];
        let stored = px.shared.commit_unless_invalidated(&self.key, self.epoch, || {
            if body.len() as u64 > BUFFERED_MAX {
                let size = Some(body.len() as u64);
                let h = px
                    .shared
                    .store
                    .writer()
                    .begin_owned(&self.key, meta, self.expires_at, size);
                h.and_then(|mut h| h.write(body).and_then(|()| h.finish()))
                    .is_ok()
            } else {
                px.writer
                    .borrow_mut()
                    .insert(&self.key, meta, body, self.expires_at)
                    .is_ok()
            }
        });
        tracing::debug!(key = %String::from_utf8_lossy(&self.key), stored, worth, "compressed variant");
        if let Some(l) = self.leader.take() {
            l.finish(STORED);
        }
        self.kept = Vec::new();
    }
}

#[cfg(test)]
mod tests;
