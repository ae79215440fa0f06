//! Origin failures as the viewer sees them: the plain 502/504 answer from
//! [`ExchangeError::answer`], or the distribution's `error_responses` page for the status.

use super::hit::lookup;
use super::response::text;
use super::{BodySource, CacheResult, End, Exchange, ExchangeError, ResponseHead, Sink};
use crate::proxy::key;
use crate::proxy::meta::Meta;
use crate::proxy::ProxyWorker;
use bytes::Bytes;

impl<S: Sink> Exchange<'_, S> {
    /// 502/504 for an origin that failed, or the configured error page. `close`: the request
    /// was not read to its end.
    pub(super) async fn origin_error(
        &mut self,
        px: &ProxyWorker,
        e: ExchangeError,
        close: bool,
    ) -> Result<(), End> {
        let code = e.status().0;
        if e.takes_error_page() {
            if let Some(page) = px.error_page(code).filter(|p| p.page_path.is_some()) {
                let page = page.clone();
                return self.error_page_answer(px, &page, code, close).await;
            }
        }
        let (head, body) = e.answer();
        let mut head = head.with_cache(CacheResult::Error);
        head.field("Via", px.shared.via.as_bytes());
        head.close = close;
        self.respond(head, BodySource::Bytes(body)).await
    }

    /// The body of `page.page_path` with the configured status, for an origin that answered
    /// `code`.
    pub(super) async fn custom_error_page(
        &mut self,
        px: &ProxyWorker,
        page: &crate::proxy::ErrorPage,
        code: u16,
    ) -> Result<(), End> {
        self.error_page_answer(px, page, code, false).await
    }

    async fn error_page_answer(
        &mut self,
        px: &ProxyWorker,
        page: &crate::proxy::ErrorPage,
        code: u16,
        close: bool,
    ) -> Result<(), End> {
        let status = page.response_code.unwrap_or(code);
        let path = page.page_path.clone().unwrap_or_default();
        let w = self.w.clone();
        let body = match w.router.route(path.as_bytes()) {
            crate::router::Target::Static(i) => w.statics[i].read_small(&path),
            crate::router::Target::Custom(_) => {
                // A page behind a custom origin is used when it is cached.
                let b = &px.behaviors[w.router.route_behavior(path.as_bytes()).1];
                let k = super::fill::distribution_key(
                    px,
                    key::build(self.req, path.as_bytes(), b"", &b.key, true),
                );
                lookup(px, &k, self.req)
                    .await
                    .map(|f| (Bytes::from_owner(f.guard), content_type_of(&f.meta)))
            }
        };
        let Some((body, ctype)) = body else {
            tracing::warn!(path, "error page not found; sending the plain error");
            let (head, body) = text(status, &format!("error {code}"));
            let mut head = head.with_cache(CacheResult::Error);
            head.close = close;
            return self.respond(head, BodySource::Bytes(body)).await;
        };
        let mut head = ResponseHead::local(status);
        head.field("Content-Type", ctype);
        head.length = super::BodyLength::Known(body.len() as u64);
        let mut head = head.with_cache(CacheResult::Error);
        head.field("Via", px.shared.via.as_bytes());
        head.close = close;
        self.respond(head, BodySource::Bytes(body)).await
    }
}

fn content_type_of(m: &Meta) -> String {
    m.header("content-type")
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| "application/octet-stream".into())
}
