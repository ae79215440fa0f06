//! What is stored, and how: the plan for a fetched response (key, metadata, expiry, the
//! `Vary` marker), freshness from the response's directives, writes to the slab (gathered in
//! memory or streamed into a run of their own), refreshes after a 304.

use crate::http::Request;
use crate::proxy::key::{self, connection_names, hop_by_hop, Keyed};
use crate::proxy::meta::{Kind, Meta};
use crate::proxy::policy::{self, CacheControl, ResponseFacts};
use crate::proxy::upstream::Head;
use crate::proxy::{now_ms, BehaviorRt, ProxyWorker};
use cache_store::ReadGuard;

/// Bodies up to this size (or of unknown length, up to it) are gathered in memory and
/// appended to the worker's open segment when complete; larger ones stream into a run of
/// their own as they arrive.
pub const BUFFERED_MAX: u64 = 4 << 20;

/// How long a stale object with validators is kept for revalidation beyond its freshness.
pub const KEEP_STALE: u64 = 86_400;

/// This cache's device token for `Surrogate-Control` targets.
pub const SURROGATE_TOKEN: &str = "slabfront";

/// What to do with a response being relayed.
pub struct StorePlan {
    pub key: Vec<u8>,
    pub meta: Meta,
    pub expires_at: u64,
    /// For responses that vary: the marker stored under the primary key.
    pub stub: Option<(Vec<u8>, Meta, u64)>,
    pub epoch: u64,
}

/// A stored response found for a request.
pub struct Found {
    pub guard: ReadGuard,
    pub meta: Meta,
    pub key: Vec<u8>,
    /// The whole entry, body included, was in memory at the lookup (checked then for small
    /// bodies: one residency check per hit instead of two).
    pub resident: bool,
}

/// A write handle with a writer of its own, for an object too large to gather in memory.
pub fn begin_large(
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
pub fn commit(
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
pub fn kept_from_stored(n: &str) -> bool {
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

/// End-to-end headers of an origin response, as stored.
/// `Set-Cookie` is kept only when the behavior forwards cookies (as CloudFront does): a
/// response to one viewer's cookies is never replayed to viewers whose cookies were not seen.
pub fn stored_headers(h: &Head, b: &BehaviorRt) -> Vec<(String, Vec<u8>)> {
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
pub fn meta_for(
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
pub fn plan_store(
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
pub fn refresh_stored(
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

/// The caching directives of a response (received or stored): `CDN-Cache-Control`
/// (RFC 9213), else the `Surrogate-Control` directives aimed at this cache, else
/// `Cache-Control`.
pub fn response_cc(headers: &[(String, Vec<u8>)]) -> CacheControl {
    policy::directives(headers, SURROGATE_TOKEN).cc
}

/// `Surrogate-Control` is for this cache only; `CDN-Cache-Control` goes on downstream.
pub fn targeted(lname: &str) -> bool {
    policy::consumed_here(lname)
}

/// Whether a stale copy may stand in for an origin that failed: as CloudFront does, unless
/// the response forbids serving it stale (must-revalidate, proxy-revalidate, s-maxage,
/// no-cache); `stale-if-error` bounds how stale.
pub fn stale_if_error_allows(m: &Meta) -> bool {
    let cc = response_cc(&m.headers);
    if cc.must_revalidate || cc.proxy_revalidate || cc.no_cache || cc.s_maxage.is_some() {
        return false;
    }
    let stale_for = m.age_ms(now_ms()).saturating_sub(m.lifetime_ms);
    cc.stale_if_error.is_none_or(|s| stale_for < s * 1000)
}

/// A request header's field lines joined as one value.
pub fn request_value(req: &Request, name: &str) -> Option<Vec<u8>> {
    let mut vals = req.header_values(name).peekable();
    vals.peek()?;
    Some(vals.collect::<Vec<_>>().join(&b", "[..]))
}

/// A stored response's `ETag` and `Last-Modified`, for a conditional request.
pub type Validators = (Option<Vec<u8>>, Option<Vec<u8>>);

pub fn validators_of(m: &Meta) -> Validators {
    (
        m.header("etag").map(<[u8]>::to_vec),
        m.header("last-modified").map(<[u8]>::to_vec),
    )
}
