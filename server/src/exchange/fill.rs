//! Phases **key**, **collapse**, **fetch** and **revalidate**: a request routed to a custom
//! origin is keyed by its behavior; a fresh stored object is a hit; a stale one is served
//! while it is refreshed (stale-while-revalidate) or revalidated; a missing one is fetched
//! once for every worker (the first request leads, the others wait for the fill).

use super::hit::{bring_in_head, lookup};
use super::origin::{exchange_head, request_head};
use super::parent::fill_head;
use super::relay::{origin_head, Relay};
use super::store::{
    meta_for, plan_store, refresh_stored, response_cc, stale_if_error_allows, stored_headers, validators_of,
    Found, BUFFERED_MAX,
};
use super::{compress, BodySource, CacheResult, End, Exchange, ExchangeError, Sink};
use crate::context::Worker;
use crate::http::Method;
use crate::proxy::fills::{Leader, Role, NOT_STORED, STORED};
use crate::proxy::key::{self, Keyed};
use crate::proxy::meta::Meta;
use crate::proxy::upstream::{BodyReader, OriginClient};
use crate::proxy::{now_ms, BehaviorRt, ProxyWorker};
use std::rc::Rc;

/// What a cacheable request goes to: its key, the worker's proxy, the behavior and its origin.
#[derive(Clone, Copy)]
struct Target<'p> {
    keyed: &'p Keyed,
    px: &'p ProxyWorker,
    client: &'p OriginClient,
    b: &'p BehaviorRt,
    /// The origin's index (for the relay, which outlives these borrows).
    origin: usize,
}

impl<S: Sink> Exchange<'_, S> {
    /// Serves a request routed to a custom origin: the behavior's allowed methods, its key,
    /// then the cache (cacheable methods) or a pass to the origin.
    pub(super) async fn proxy(
        &mut self,
        origin: usize,
        behavior: usize,
        path: Vec<u8>,
        query: Vec<u8>,
    ) -> Result<(), End> {
        let req = self.req;
        let w = self.w.clone();
        let parts = w.proxy.as_ref().and_then(|px| {
            let client = px.origins.get(origin).and_then(Option::as_ref)?;
            Some((px, client, px.behaviors.get(behavior)?))
        });
        let Some((px, client, b)) = parts else {
            self.sink.discard_body(req).await?;
            let (head, body) = ExchangeError::OriginUnavailable.answer();
            return self.respond(head, BodySource::Bytes(body)).await;
        };
        if super::parent::loops(req, &px.shared.via) {
            self.sink.discard_body(req).await?;
            let (head, body) = ExchangeError::LoopDetected.answer();
            return self.respond(head, BodySource::Bytes(body)).await;
        }
        let extension = req.method == Method::Other && b.allowed.is_all();
        if !b.allowed.contains(req.method) && !extension {
            self.sink.discard_body(req).await?;
            let allow = b.allowed.names().to_string();
            let (head, body) = ExchangeError::MethodNotAllowed { allow }.answer();
            return self.respond(head, BodySource::Bytes(body)).await;
        }
        self.compress = b.compress;
        let cacheable = b.cached.contains(req.method);
        let keyed = distribution_key(px, key::build(req, &path, &query, &b.key, cacheable));
        if !cacheable {
            return self.pass(&keyed, px, client, origin).await;
        }
        self.sink.discard_body(req).await?;
        let t = Target {
            keyed: &keyed,
            px,
            client,
            b,
            origin,
        };
        self.cached(t).await
    }

    /// A cacheable request: hit, stale hit, revalidation, or miss (collapsed).
    async fn cached(&mut self, t: Target<'_>) -> Result<(), End> {
        let Target {
            keyed, px, client, ..
        } = t;
        let mut collapse = true;
        for _attempt in 0..3 {
            let found = lookup(px, keyed, self.req).await;
            let now = now_ms();
            if let Some(f) = found {
                let age = f.meta.age_ms(now);
                if age < f.meta.lifetime_ms {
                    return self.serve_stored(f, CacheResult::Hit, "hit").await;
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
                        self.sink.peer(),
                    );
                    return self.serve_stored(f, CacheResult::Hit, "hit; fwd=stale").await;
                }
                return self.fetch(t, Some(f), None).await;
            }
            if super::ranged::to_origin(self.req, client) {
                // A deep range of an S3 object not stored: asked for as a range, not stored.
                let mut ranged = keyed.clone();
                if let Some(r) = self.req.header("range") {
                    ranged.headers.push(("range".into(), r.to_vec()));
                }
                return self.pass(&ranged, px, client, t.origin).await;
            }
            if !collapse {
                return self.fetch(t, None, None).await;
            }
            match px.shared.fills.join(&keyed.key) {
                Role::Leader(l) => return self.fetch(t, None, Some(l)).await,
                Role::Follower(fill) => match fill.wait(client.read_timeout).await {
                    Some(STORED) => continue,
                    _ => collapse = false,
                },
            }
        }
        self.fetch(t, None, None).await
    }

    /// Phase **fetch**: asks the origin (conditionally when a stale copy has validators),
    /// then serves and stores the answer.
    async fn fetch(
        &mut self,
        t: Target<'_>,
        stale: Option<Found>,
        leader: Option<Leader>,
    ) -> Result<(), End> {
        let Target {
            keyed,
            px,
            client,
            b,
            origin,
        } = t;
        let req = self.req;
        let epoch = px.shared.epoch.load(std::sync::atomic::Ordering::SeqCst);
        let validators = stale.as_ref().map(|f| validators_of(&f.meta));
        let request_ms = now_ms();
        // The one hook of parents and origin groups: a parent by rendezvous hashing
        // (proxy::parents), else the primary, else the secondary (proxy::failover).
        let (origin, client, answer) =
            crate::proxy::parents::exchange(px, origin, client, &keyed.key, req.method, async |c| {
                let peer = self.sink.peer();
                let head = fill_head(req, keyed, c, &px.shared.via, peer, validators.as_ref());
                self.exchange_head_relaying(c, head).await
            })
            .await;
        let (up, resp) = match answer {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(origin = %client.id, error = %e, "origin request failed");
                if let Some(f) = stale.filter(|f| stale_if_error_allows(&f.meta)) {
                    return self.serve_stored(f, CacheResult::Hit, "hit; fwd=stale").await;
                }
                drop(leader);
                return self.origin_error(px, e.into(), false).await;
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
                    .serve_stored(f, CacheResult::RefreshHit, "hit; fwd=stale; fwd-status=304")
                    .await;
            }
            if resp.status >= 500 && stale_if_error_allows(&f.meta) {
                drop(up);
                return self.serve_stored(f, CacheResult::Hit, "hit; fwd=stale").await;
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
            return self.custom_error_page(px, &page, resp.status).await;
        }
        let detail = if plan.is_some() {
            "fwd=miss; stored"
        } else {
            "fwd=miss"
        };
        let failover = resp.detail.as_ref().map(|d| format!("{detail}; detail={d}"));
        let detail = failover.as_deref().unwrap_or(detail);
        let mut head = origin_head(&resp, &px.shared.via, CacheResult::Miss, &px.shared.node, detail);
        // A compressible object varies on Accept-Encoding; its first viewer gets the identity
        // body as it streams from the origin, and the variant is made once it is stored.
        let len = match head.length {
            super::BodyLength::Known(n) => Some(n),
            _ => None,
        };
        let zip = self.compress && compress::eligible(resp.status, &resp.headers, len);
        if zip {
            compress::mark_vary(&mut head);
        }
        let stored = plan.is_some();
        match Relay::start(self.w.clone(), origin, up, &resp, plan, leader).await {
            Ok(relay) => {
                self.respond(head, BodySource::Relay(Box::new(relay))).await?;
                if zip && stored {
                    compress::after_fill(&self.w, px, req, keyed).await;
                }
                Ok(())
            }
            Err((_, leader)) => {
                // Nothing of it reached the viewer: a clean 502 instead.
                drop(leader);
                self.origin_error(px, ExchangeError::OriginCutShort, true).await
            }
        }
    }
}

/// A key (and its URL prefix, for invalidations) within the distribution.
pub(super) fn distribution_key(px: &ProxyWorker, mut keyed: Keyed) -> Keyed {
    if !px.key_prefix.is_empty() {
        keyed.key.splice(0..0, px.key_prefix.iter().copied());
        keyed.url_prefix.splice(0..0, px.key_prefix.iter().copied());
    }
    keyed
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
        refresh(&w, &keyed, key, meta, peer).await;
    });
}

/// Fetches a stale object again and stores the answer (no viewer waits on it).
async fn refresh(w: &Worker, keyed: &Keyed, key: Vec<u8>, meta: Meta, peer: Option<std::net::SocketAddr>) {
    let Some(px) = w.proxy.as_ref() else { return };
    let path = keyed.target.split(|&c| c == b'?').next().unwrap_or_default();
    let behavior = w.router.route_behavior(path).1;
    let (Some(b), Some(client)) = (
        px.behaviors.get(behavior),
        w.router_origin(path)
            .and_then(|i| px.origins.get(i))
            .and_then(Option::as_ref),
    ) else {
        return;
    };
    let epoch = px.shared.epoch.load(std::sync::atomic::Ordering::SeqCst);
    let validators = validators_of(&meta);
    let head = request_head(
        b"GET",
        keyed,
        client,
        &px.shared.via,
        peer,
        Some(&validators),
        None,
    );
    let request_ms = now_ms();
    let Ok((mut up, resp)) = exchange_head(client, false, head, w).await else {
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
}
