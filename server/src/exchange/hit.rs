//! Phases **lookup** and **hit**: the stored response for a request (following a `Vary`
//! marker to its variant, cold pages read in off the worker first), and its answer:
//! preconditions and ranges evaluated on the stored object, the body sent from the slab.

use super::body::{SlabBody, SHORT_MIN};
use super::response::{CacheResult, ResponseHead};
use super::store::{request_value, targeted, Found};
use super::{BodyLength, BodySource, End, Exchange, ExchangeError, Sink};
use crate::http::conditional::{evaluate, if_range_allows, parse_range, Precondition, RangeSpec};
use crate::http::{Method, Request};
use crate::proxy::key::{self, Keyed};
use crate::proxy::meta::{Kind, Meta};
use crate::proxy::{now_ms, policy, ProxyWorker};
use std::time::Instant;

/// The stored response for a request, following a `Vary` marker to its variant.
pub async fn lookup(px: &ProxyWorker, keyed: &Keyed, req: &Request) -> Option<Found> {
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
pub async fn bring_in_head(px: &ProxyWorker, key: &[u8]) -> bool {
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

/// The status a stored response is answered with, and the byte range when it is partial:
/// preconditions (RFC 9110 §13.2.2) and a single range, evaluated on the stored object.
fn stored_status(req: &Request, m: &Meta, len: u64) -> (u16, Option<(u64, u64)>) {
    let conditional = req.headers().any(|(n, _)| {
        n.len() >= 5 && (n[..3].eq_ignore_ascii_case(b"if-") || n.eq_ignore_ascii_case(b"range"))
    });
    if m.status != 200 || !conditional {
        return (m.status, None);
    }
    // Without Last-Modified, the Date stands in (RFC 9111 §4.3.2).
    let lm = m
        .header("last-modified")
        .or_else(|| m.header("date"))
        .and_then(policy::parse_date);
    match evaluate(req, m.header("etag"), lm) {
        Precondition::NotModified => (304, None),
        Precondition::Failed => (412, None),
        Precondition::Proceed => match req.header("range") {
            Some(r) if req.method == Method::Get && if_range_allows(req, m.header("etag"), lm) => {
                match parse_range(r, len) {
                    RangeSpec::Ignore => (200, None),
                    RangeSpec::Satisfiable(a, b) => (206, Some((a, b))),
                    RangeSpec::Unsatisfiable => (416, None),
                }
            }
            _ => (200, None),
        },
    }
}

impl<S: Sink> Exchange<'_, S> {
    /// Phase **hit**: answers from a stored response, labelled `cache` with the
    /// `Cache-Status` detail `detail`.
    pub(super) async fn serve_stored(
        &mut self,
        f: Found,
        cache: CacheResult,
        detail: &str,
    ) -> Result<(), End> {
        let req = self.req;
        let Found {
            guard,
            meta: m,
            resident,
            key,
        } = f;
        let len = guard.body_len();
        let age = m.age_ms(now_ms()) / 1000;
        let w = self.w.clone();
        let px = w.proxy.as_ref().ok_or(End::Gone)?;
        let (status, range) = stored_status(req, &m, len);
        if status == 412 {
            let (head, body) = ExchangeError::PreconditionFailed.answer();
            return self.respond(head, BodySource::Bytes(body)).await;
        }
        let mut head = ResponseHead {
            status,
            reason: None,
            local: false,
            fields: Vec::with_capacity(m.headers.len() + 7),
            length: BodyLength::None,
            cache: CacheResult::Local,
            close: false,
        };
        let mut has_date = false;
        let mut upstream_status: Vec<&[u8]> = Vec::new();
        for (n, v) in &m.headers {
            if status == 304 && !kept_on_304(n) {
                continue;
            }
            if n.eq_ignore_ascii_case("age") || targeted(&n.to_ascii_lowercase()) {
                continue;
            }
            if n.eq_ignore_ascii_case("cache-status") {
                upstream_status.push(v.as_slice());
                continue;
            }
            if n.eq_ignore_ascii_case("content-range") && range.is_some() {
                continue;
            }
            has_date |= n.eq_ignore_ascii_case("date");
            head.field(n.as_str(), v.as_slice());
        }
        if !has_date {
            head.field("Date", crate::http::date::with_date(<[u8]>::to_vec));
        }
        head.field_u64("Age", age);
        head.field("Via", px.shared.via.as_bytes());
        let mut head = head.with_cache(cache);
        let ours = format!("{}; {}", px.shared.node, detail);
        head.field(
            "Cache-Status",
            super::relay::chain_cache_status(&upstream_status, &ours),
        );
        let zip = match self.compress {
            true => super::compress::choose(&w, px, req, &key, &guard, &m, status, range.is_some()).await,
            false => None,
        };
        let body = match (status, range) {
            (206, Some((a, b))) => {
                head.field("Content-Range", format!("bytes {a}-{b}/{len}"));
                head.length = BodyLength::Known(b - a + 1);
                Some((a as usize, b as usize + 1))
            }
            (416, _) => {
                head.field("Content-Range", format!("bytes */{len}"));
                head.length = BodyLength::Known(0);
                None
            }
            (304 | 204, _) => None,
            _ => {
                head.length = BodyLength::Known(len);
                Some((0, len as usize))
            }
        };
        let body = match body {
            Some((a, b)) if b > a && req.method != Method::Head => {
                BodySource::Slab(SlabBody::new(w.clone(), guard, a, b, resident))
            }
            _ => BodySource::Empty,
        };
        let (head, body) = match zip {
            Some(z) => z.apply(&w, req, head, body),
            None => (head, body),
        };
        self.respond(head, body).await
    }
}
