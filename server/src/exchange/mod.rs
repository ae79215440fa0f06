//! The exchange: one request and its response, as a sequence of named phases that every
//! protocol shares (`docs/phases.md`).
//!
//! It takes a protocol-neutral request ([`Request`]: method, target, fields, and a body that
//! the codec streams in as `Bytes`) and answers through its [`Sink`] with a structured
//! [`ResponseHead`] and a [`BodySource`]. Nothing here writes HTTP/1.1 syntax, decides
//! keep-alive, or asks what kind of socket the viewer uses: the codec (`conn` for HTTP/1.1)
//! owns framing, and its sink decides how each body window leaves.
//!
//! The phases, in order: [`route::viewer_policy`] (viewer checks) → [`route::route`]
//! (behavior) → a local answer ([`Exchange::local`]: static files, `OPTIONS *`, refusals) or
//! the cache ([`Exchange::proxy`]: key → [`hit::lookup`] → [`Exchange::serve_stored`] |
//! [`Exchange::fetch`] (collapse, revalidate, fill through a [`relay::Relay`]) |
//! [`Exchange::pass`]) → respond (the sink) → log (the codec, from the head and its counts).

pub mod body;
pub mod compress;
pub mod error;
mod error_page;
mod fill;
mod functions;
mod gate;
mod hit;
pub mod origin;
mod parent;
mod pass;
mod ranged;
pub mod relay;
pub mod response;
pub mod route;
mod store;
#[cfg(test)]
mod tests;
mod viewer_checks;

pub use body::{BodySource, Window};
pub use error::{ExchangeError, Fault};
pub use response::{text, BodyLength, CacheResult, ResponseHead};

use crate::context::Worker;
use crate::http::{Method, Request};
use bytes::Bytes;
use std::rc::Rc;

/// The phase a read timed out in (for logs). Idle waits end without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Head,
    Body,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Head => "head",
            Phase::Body => "body",
        }
    }
}

/// Why an exchange (and its connection) ended early.
#[derive(Debug)]
pub enum End {
    /// Peer closed, reset, or a write failed: nothing more to say.
    Gone,
    /// Time ran out in a phase.
    Timeout(Phase),
    /// The request was refused (the answer is written) and the connection must close.
    Refused,
}

/// The viewer's side of an exchange, as a codec provides it: the request body in, interim
/// and final responses out. Each codec implements it once (HTTP/1.1 in `conn`; a memory sink
/// in the tests); exchanges are generic over it, so calls are dispatched statically.
#[allow(async_fn_in_trait)]
pub trait Sink {
    /// The viewer came over TLS (the request's scheme is `https`).
    fn secure(&self) -> bool;
    /// The viewer's address.
    fn peer(&self) -> Option<std::net::SocketAddr>;
    /// The next piece of the request body (its framing removed), `None` at its end.
    async fn body_piece(&mut self, req: &Request) -> Result<Option<Bytes>, End>;
    /// An interim (1xx) response, when the protocol and the viewer take one.
    async fn interim(&mut self, req: &Request, head: &ResponseHead<'_>);
    /// The final response. The sink frames the head, sends the body's windows (none for
    /// HEAD), and counts what was sent for the log.
    async fn respond(&mut self, req: &Request, head: ResponseHead<'_>, body: BodySource) -> Result<(), End>;

    /// Reads the request body to its end, keeping nothing.
    async fn discard_body(&mut self, req: &Request) -> Result<(), End> {
        while self.body_piece(req).await?.is_some() {}
        Ok(())
    }
}

/// One exchange: the worker's configuration generation, the request, the viewer's sink.
pub struct Exchange<'a, S: Sink> {
    pub w: Rc<Worker>,
    pub req: &'a Request,
    pub sink: &'a mut S,
    /// The behavior compresses at the edge (`compress = true`; set once it is known).
    pub compress: bool,
    /// The behavior's response headers policy, once the behavior is known.
    pub headers: Option<Rc<crate::edge::headers::HeadersRt>>,
    /// The request with the edge's `CloudFront-Viewer-*` fields, when the gate wrote them.
    pub viewer_request: Option<Box<Request>>,
}

impl<'a, S: Sink> Exchange<'a, S> {
    pub fn new(w: Rc<Worker>, req: &'a Request, sink: &'a mut S) -> Self {
        Exchange {
            w,
            req,
            sink,
            compress: false,
            headers: None,
            viewer_request: None,
        }
    }

    /// Runs the phases until the response has been handed to the sink.
    pub async fn run(&mut self) -> Result<(), End> {
        // Phase **distribution**: the one that answers this Host (with several); from here on
        // `w` is that distribution's worker.
        match self.w.site_for(self.req.header("host")) {
            Some(site) => self.w = site,
            None => {
                let early = self.req.expect_continue;
                if !early {
                    self.sink.discard_body(self.req).await?;
                }
                let (mut head, body) = ExchangeError::UnknownHost.answer();
                head.close = early;
                return self.respond(head, BodySource::Bytes(body)).await;
            }
        }
        if !self.sink.secure() {
            if let Some(refusal) = route::viewer_policy(&self.w, self.req) {
                self.sink.discard_body(self.req).await?;
                let (mut head, body) = match refusal {
                    route::Refusal::Redirect(status, location) => {
                        let (mut head, body) = text(status, "use HTTPS");
                        head.fields
                            .insert(0, ("Location".into(), location.into_bytes().into()));
                        (head, body)
                    }
                    route::Refusal::HttpsOnly => ExchangeError::HttpsRequired.answer(),
                };
                // An unknown method's semantics are unknown: answer it and close.
                head.close = self.req.method == Method::Other;
                return self.respond(head, BodySource::Bytes(body)).await;
            }
        }
        // Phase **viewer checks**, then the viewer-request function (on the request as it
        // passed the checks: signing parameters already out of its query).
        let Some(route) = self.viewer_checks(route::route(&self.w, self.req)).await? else {
            return Ok(());
        };
        if let Some(req) = self.viewer_request.take() {
            let mut ex = Exchange::new(self.w.clone(), &req, &mut *self.sink);
            ex.headers = self.headers.take();
            return Box::pin(ex.after_checks(route)).await;
        }
        self.after_checks(route).await
    }

    /// Phase **viewer-request function** (when the behavior has one), then the route's.
    async fn after_checks(&mut self, route: route::Route) -> Result<(), End> {
        if let Some(f) = self.w.functions.clone() {
            return Box::pin(self.with_functions(f, route)).await;
        }
        self.routed(route).await
    }

    /// The route's phases, after the viewer checks and the viewer-request function: the
    /// cache and its origin, or a local answer.
    async fn routed(&mut self, route: route::Route) -> Result<(), End> {
        match route {
            route::Route::Custom(origin, behavior, path, query) => {
                Box::pin(self.proxy(origin, behavior, path, query)).await
            }
            other => self.local(other).await,
        }
    }

    /// A request answered here: a file of a directory origin, `OPTIONS *`, or a refusal.
    async fn local(&mut self, route: route::Route) -> Result<(), End> {
        // A refused request with a body we have not asked for: answered without reading it.
        let reject_early = matches!(route, route::Route::Error(..)) && self.req.expect_continue;
        if !reject_early {
            self.sink.discard_body(self.req).await?;
        }
        let (mut head, body) = match route {
            route::Route::Error(e) => {
                let (head, body) = e.answer();
                (head, BodySource::Bytes(body))
            }
            route::Route::Options => {
                let mut head = ResponseHead::local(200);
                head.field("Allow", &b"GET, HEAD, OPTIONS"[..]);
                head.length = BodyLength::Known(0);
                (head, BodySource::Empty)
            }
            route::Route::Static(i, path, query) => {
                let w = self.w.clone();
                let (head, body) = w.statics[i].serve(self.req, &path, &query, w.waits.now());
                return self.respond(head, body).await;
            }
            route::Route::Custom(..) => return Err(End::Gone),
        };
        head.close = reject_early || self.req.method == Method::Other;
        self.respond(head, body).await
    }

    /// Phase **respond**: the behavior's response headers policy, then the sink.
    async fn respond(&mut self, mut head: ResponseHead<'_>, body: BodySource) -> Result<(), End> {
        if let Some(p) = &self.headers {
            p.apply(self.req, &mut head);
        }
        self.sink.respond(self.req, head, body).await
    }
}
