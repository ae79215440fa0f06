//! Phase **viewer checks**: after the behavior is chosen and before the cache or a directory
//! origin is asked, the behavior's edge controls run: a CORS preflight its response headers
//! policy answers here, then its signed URL or signed cookies (`trusted_key_groups`). A
//! refused viewer never reaches the cache or the origin. The signing parameters leave the
//! query here, so the cache key and the origin request never see them. Geo restriction and
//! WAF rules join this phase.

use super::route::Route;
use super::{BodySource, CacheResult, End, Exchange, Sink};
use crate::edge::signed::{self, Refusal, Trusted};
use crate::edge::Controls;
use crate::http::uri::split_target;

impl<S: Sink> Exchange<'_, S> {
    /// Runs the checks of the route's behavior: the route to go on with (its query without
    /// signing parameters), or `None` when the request has been answered here.
    pub(super) async fn viewer_checks(&mut self, route: Route) -> Result<Option<Route>, End> {
        let Some(controls) = self.w.controls.clone() else {
            return Ok(Some(route));
        };
        let b = match &route {
            Route::Custom(_, b, ..) => *b,
            Route::Static(_, clean, _) => self.w.router.route_behavior(clean.path.as_bytes()).1,
            _ => return Ok(Some(route)),
        };
        if let Some(gate) = &controls.gate {
            if !self.gate(gate, b, &route).await? {
                return Ok(None);
            }
        }
        self.headers = controls.headers.get(b).cloned().flatten();
        if let Some(head) = self.headers.as_ref().and_then(|h| h.preflight(self.req)) {
            self.sink.discard_body(self.req).await?;
            self.sink.respond(self.req, head, BodySource::Empty).await?;
            return Ok(None);
        }
        let Some(trusted) = controls.signed.get(b).cloned().flatten() else {
            return Ok(Some(route));
        };
        match self.signed(&controls, &trusted) {
            Ok(None) => Ok(Some(route)),
            Ok(Some(stripped)) => Ok(Some(match route {
                Route::Custom(o, b, path, _) => Route::Custom(o, b, path, stripped),
                Route::Static(i, clean, _) => Route::Static(i, clean, stripped),
                other => other,
            })),
            Err(refusal) => {
                self.refuse_signed(refusal).await?;
                Ok(None)
            }
        }
    }

    /// Checks the request's signed URL or cookies: the query without its signing parameters
    /// (`None` when they came as cookies), or why the request is refused.
    fn signed(&self, controls: &Controls, trusted: &Trusted) -> Result<Option<Vec<u8>>, Refusal> {
        let req = self.req;
        let (path, query) = split_target(req.target()).ok_or(Refusal::Missing)?;
        let in_query = signed::query_has_material(query);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let peer = self.sink.peer().map(|a| a.ip());
        let host = req.header("host").unwrap_or_default();
        let secure = self.sink.secure();
        // The exact request: scheme, Host, target, and the cookies when they sign it.
        let mut key = Vec::with_capacity(host.len() + req.target().len() + 8);
        key.push(u8::from(secure));
        key.extend_from_slice(host);
        key.push(0);
        key.extend_from_slice(req.target());
        if !in_query {
            for v in req.header_values("cookie") {
                key.push(0);
                key.extend_from_slice(v);
            }
        }
        let remembered = controls.verified.borrow().get(&key);
        if let Some(grant) = remembered {
            grant.check(now, peer)?;
            return Ok(in_query.then(|| signed::strip_query(query)));
        }
        let (material, stripped) = if in_query {
            let (m, rest) = signed::split_query(query);
            (m, Some(rest))
        } else {
            (signed::cookie_material(req.header_values("cookie")), None)
        };
        let rest = stripped.as_deref().unwrap_or(query);
        let mut url = String::with_capacity(host.len() + path.len() + rest.len() + 10);
        url.push_str(if secure { "https://" } else { "http://" });
        url.push_str(&String::from_utf8_lossy(host));
        url.push_str(&String::from_utf8_lossy(path));
        if !rest.is_empty() {
            url.push('?');
            url.push_str(&String::from_utf8_lossy(rest));
        }
        let grant = signed::verify(trusted, &material, &url, now, peer)?;
        controls
            .verified
            .borrow_mut()
            .insert(key.into_boxed_slice(), grant, now);
        Ok(stripped)
    }

    /// 403 with CloudFront's short message, or the distribution's error page for 403.
    async fn refuse_signed(&mut self, refusal: Refusal) -> Result<(), End> {
        self.w.metrics.signed_refused(refusal);
        tracing::info!(
            reason = refusal.as_str(),
            target = %String::from_utf8_lossy(self.req.target()),
            "signed URL or cookies refused"
        );
        self.sink.discard_body(self.req).await?;
        let w = self.w.clone();
        if let Some(px) = &w.proxy {
            if let Some(page) = px.error_page(403).filter(|p| p.page_path.is_some()) {
                let page = page.clone();
                return self.custom_error_page(px, &page, 403).await;
            }
        }
        let body = bytes::Bytes::from(refusal.body());
        let mut head = super::ResponseHead::local(403);
        head.field("Content-Type", "text/xml");
        head.length = super::BodyLength::Known(body.len() as u64);
        let head = head.with_cache(CacheResult::Error);
        self.respond(head, BodySource::Bytes(body)).await
    }
}
