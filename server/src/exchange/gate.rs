//! Phase **viewer checks**, its first part, per distribution: the WAF rules (in priority
//! order), then the geo restriction, for the client's address (the peer, or the right-most
//! untrusted `X-Forwarded-For` entry behind `trusted_proxies`). A blocked viewer is answered
//! here (403, a rule's `custom_response` status, or the distribution's error page for it),
//! logged and counted: it never reaches signed-URL verification, the cache or the origin.
//! Then the `CloudFront-Viewer-Country` / `-Address` fields a behavior forwards are written
//! into the request the later phases read (any the viewer sent under those names dropped).

use super::route::Route;
use super::{BodySource, CacheResult, End, Exchange, Sink};
use crate::edge::gate::Gate;
use crate::edge::waf::{canonical, Verdict};
use crate::http::Request;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;

const VIEWER_PREFIX: &[u8] = b"cloudfront-viewer-";

impl<S: Sink> Exchange<'_, S> {
    /// `Ok(false)` when the request was refused (and answered); `Ok(true)` to go on, with
    /// [`Exchange::viewer_request`] set when the request's viewer fields were rewritten.
    pub(super) async fn gate(&mut self, gate: &Gate, behavior: usize, route: &Route) -> Result<bool, End> {
        let Some(peer) = self.sink.peer() else {
            return Ok(true);
        };
        let req = self.req;
        let client = match &gate.waf {
            Some(w) => w.client(peer.ip(), || req.header_values("x-forwarded-for").collect()),
            None => canonical(peer.ip()),
        };
        if let Some(waf) = &gate.waf {
            let path = match route {
                Route::Custom(_, _, path, _) => path.as_slice(),
                Route::Static(_, clean, _) => clean.path.as_bytes(),
                _ => b"",
            };
            if let Verdict::Block(rule) = waf.evaluate(client, path) {
                tracing::info!(
                    rule = %rule.name,
                    client = %client,
                    status = rule.status,
                    target = %String::from_utf8_lossy(req.target()),
                    "request blocked by a WAF rule"
                );
                self.refuse_at_gate(rule.status, "Request blocked.\n").await?;
                return Ok(false);
            }
        }
        let forward = gate.forward.get(behavior).copied().unwrap_or_default();
        let country = match &gate.db {
            Some(db) if gate.geo.is_some() || forward.country => db.country(client),
            _ => None,
        };
        if let Some(geo) = gate.geo.as_ref().filter(|g| g.refuses(country)) {
            geo.blocked.fetch_add(1, Relaxed);
            tracing::info!(
                client = %client,
                country = %country.map_or("-".into(), |c| String::from_utf8_lossy(&c).into_owned()),
                target = %String::from_utf8_lossy(req.target()),
                "request blocked by the geo restriction"
            );
            self.refuse_at_gate(
                403,
                "The distribution is configured to block access from your country.\n",
            )
            .await?;
            return Ok(false);
        }
        let spoofed = req.headers().any(|(n, _)| is_viewer_field(n));
        if forward.country || forward.address || spoofed {
            self.viewer_request = Some(Box::new(viewer_fields(req, forward, country, client, peer)));
        }
        Ok(true)
    }

    /// 403 (or a rule's status) with a short text, or the distribution's error page for it.
    async fn refuse_at_gate(&mut self, status: u16, text: &'static str) -> Result<(), End> {
        self.sink.discard_body(self.req).await?;
        let w = self.w.clone();
        if let Some(px) = &w.proxy {
            if let Some(page) = px.error_page(status).filter(|p| p.page_path.is_some()) {
                let page = page.clone();
                return self.custom_error_page(px, &page, status).await;
            }
        }
        let body = bytes::Bytes::from_static(text.as_bytes());
        let mut head = super::ResponseHead::local(status);
        head.field("Content-Type", "text/plain");
        head.length = super::BodyLength::Known(body.len() as u64);
        let head = head.with_cache(CacheResult::Error);
        self.respond(head, BodySource::Bytes(body)).await
    }
}

fn is_viewer_field(name: &[u8]) -> bool {
    name.len() > VIEWER_PREFIX.len() && name[..VIEWER_PREFIX.len()].eq_ignore_ascii_case(VIEWER_PREFIX)
}

/// The request with the edge's viewer fields in place of the viewer's.
fn viewer_fields(
    req: &Request,
    forward: crate::edge::gate::Forward,
    country: Option<[u8; 2]>,
    client: IpAddr,
    peer: std::net::SocketAddr,
) -> Request {
    // Behind a trusted proxy the client's port is not known: 0.
    let port = if client == canonical(peer.ip()) {
        peer.port()
    } else {
        0
    };
    let address = format!("{client}:{port}");
    let mut add: Vec<(&str, &[u8])> = Vec::with_capacity(2);
    if let Some(c) = country.as_ref().filter(|_| forward.country) {
        add.push(("CloudFront-Viewer-Country", c));
    }
    if forward.address {
        add.push(("CloudFront-Viewer-Address", address.as_bytes()));
    }
    req.with_fields(is_viewer_field, &add)
}
