//! Phases **viewer-request function** and **viewer-response function**: the behavior's
//! CloudFront Functions (`functions/`), between the route and the lookup and before respond.
//!
//! A viewer-request function sees the request after the viewer checks and the behavior's
//! choice; what it returns is the request the rest of the exchange sees (the cache key, the
//! behavior's origin, or the origin it picked, and the origin request), kept here as an owned
//! [`Request`] built like an HTTP/2 one (`Request::from_parts`). A response it generates is
//! sent as it is and never cached. A viewer-response function runs on the final head (hits,
//! misses, static files; CloudFront skips it on statuses of 400 and above) through a
//! [`Sink`] that wraps the codec's. A failed function is CloudFront's 503. Behaviors with no
//! function take none of this: the exchange checks one `Option`.

use super::route::Route;
use super::{text, BodyLength, BodySource, End, Exchange, ResponseHead, Sink};
use crate::functions::edge::EdgeFunctions;
use crate::functions::{FnContext, FnError, FnOutcome, FnRequest, FnResponse, OriginChoice, SetCookie};
use crate::http::uri::{clean_path, split_target};
use crate::http::Request;
use crate::router::Target;
use bytes::Bytes;
use config::EventType;
use std::borrow::Cow;
use std::rc::Rc;

/// The request as a function sees it. Fields CloudFront does not show a function
/// (hop-by-hop and CloudFront's own) are left out; [`rebuild`] puts them back.
pub fn fn_request(req: &Request) -> FnRequest {
    let (path, query) = split_target(req.target()).unwrap_or((req.target(), b""));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let querystring = query
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (text(&p[..i]), text(&p[i + 1..])),
            None => (text(p), String::new()),
        })
        .collect();
    let mut headers = Vec::with_capacity(16);
    let mut cookies = Vec::new();
    for (name, value) in req.headers() {
        if name.eq_ignore_ascii_case(b"cookie") {
            for pair in value.split(|&b| b == b';') {
                let pair = pair.trim_ascii();
                if pair.is_empty() {
                    continue;
                }
                cookies.push(match pair.iter().position(|&b| b == b'=') {
                    Some(i) => (text(&pair[..i]), text(&pair[i + 1..])),
                    None => (text(pair), String::new()),
                });
            }
            continue;
        }
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        if crate::functions::hidden(&name) {
            continue;
        }
        headers.push((name, text(value)));
    }
    FnRequest {
        method: text(req.method_name()),
        uri: text(path),
        querystring,
        headers,
        cookies,
    }
}

/// Whether the function gave back the request it was given (JSON objects may come back in
/// another order: compared as sets of fields).
fn unchanged(a: &FnRequest, b: &FnRequest) -> bool {
    fn same(x: &[(String, String)], y: &[(String, String)]) -> bool {
        if x.len() != y.len() {
            return false;
        }
        if x == y {
            return true;
        }
        let (mut x, mut y) = (x.to_vec(), y.to_vec());
        x.sort();
        y.sort();
        x == y
    }
    a.uri == b.uri
        && same(&a.querystring, &b.querystring)
        && same(&a.headers, &b.headers)
        && same(&a.cookies, &b.cookies)
}

/// Bytes that cannot appear as they are in this part of a request target (`special`, and
/// anything not visible ASCII) are percent-encoded.
fn push_encoded(out: &mut Vec<u8>, text: &str, special: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        if b.is_ascii_graphic() && !special.contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// The request a function returned, as the rest of the exchange reads it: its URI, query
/// string, headers and cookies, with the original's method, framing and the fields the
/// function never saw.
pub fn rebuild(original: &Request, fr: &FnRequest) -> Result<Request, crate::http::ParseError> {
    let mut target = Vec::with_capacity(fr.uri.len() + 64);
    push_encoded(&mut target, &fr.uri, b"#?");
    for (i, (k, v)) in fr.querystring.iter().enumerate() {
        target.push(if i == 0 { b'?' } else { b'&' });
        push_encoded(&mut target, k, b"#&=");
        if !v.is_empty() {
            target.push(b'=');
            push_encoded(&mut target, v, b"#&");
        }
    }
    let cookie = fr
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let kept = original.headers().filter(|(n, _)| {
        !n.eq_ignore_ascii_case(b"cookie")
            && crate::functions::hidden(&String::from_utf8_lossy(n).to_ascii_lowercase())
    });
    let fields = fr
        .headers
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .chain(kept)
        .chain((!cookie.is_empty()).then_some((&b"cookie"[..], cookie.as_bytes())));
    let mut req = Request::from_parts(original.method_name(), &target, None, fields, original.body)?;
    req.version = original.version;
    req.keep_alive = original.keep_alive;
    req.expect_continue = original.expect_continue;
    Ok(req)
}

/// The route of the changed request: the same behavior, its path and query from the new
/// target, and the origin the function picked, if it picked one.
fn reroute(x: &Exchange<'_, impl Sink>, route: Route, req: &Request, origin: Option<&OriginChoice>) -> Route {
    let (b, target) = match &route {
        Route::Custom(i, b, ..) => (*b, Target::Custom(*i)),
        Route::Static(i, clean, _) => (
            x.w.router.route_behavior(clean.path.as_bytes()).1,
            Target::Static(*i),
        ),
        _ => return route,
    };
    let target = match origin {
        Some(OriginChoice::ById(id)) => {
            x.w.functions
                .as_ref()
                .and_then(|f| f.origin(id))
                .unwrap_or(target)
        }
        _ => target,
    };
    let Some((path, query)) = split_target(req.target()) else {
        return Route::Error(super::ExchangeError::Target("invalid request target"));
    };
    match target {
        Target::Custom(i) => Route::Custom(i, b, path.to_vec(), query.to_vec()),
        Target::Static(i) => match clean_path(path) {
            Ok(clean) if matches!(req.method, crate::http::Method::Get | crate::http::Method::Head) => {
                Route::Static(i, clean, query.to_vec())
            }
            Ok(_) => Route::Error(super::ExchangeError::MethodNotServed {
                unknown: req.method == crate::http::Method::Other,
            }),
            Err(_) => Route::Error(super::ExchangeError::Target("invalid path")),
        },
    }
}

/// CloudFront's answer to a function that failed.
fn failed() -> (ResponseHead<'static>, BodySource) {
    let (head, body) = text(503, "The CloudFront function associated with the request failed.");
    (head, BodySource::Bytes(body))
}

/// A response generated by a viewer-request function.
fn generated(r: FnResponse) -> (ResponseHead<'static>, BodySource) {
    let mut head = ResponseHead::local(r.status);
    if !r.status_description.is_empty() {
        head.reason = Some(Cow::Owned(r.status_description));
    }
    for (n, v) in r.headers {
        head.fields.push((Cow::Owned(n), v.into()));
    }
    for c in &r.cookies {
        head.field("set-cookie", c.to_field());
    }
    head.field("X-Cache", "FunctionGeneratedResponse from slabfront");
    let no_body = matches!(r.status, 100..=199 | 204 | 304);
    let body = if no_body {
        Vec::new()
    } else {
        r.body.unwrap_or_default()
    };
    head.length = if no_body {
        BodyLength::None
    } else {
        BodyLength::Known(body.len() as u64)
    };
    let body = if body.is_empty() {
        BodySource::Empty
    } else {
        BodySource::Bytes(Bytes::from(body))
    };
    (head, body)
}

impl<'a, S: Sink> Exchange<'a, S> {
    /// The phases from the route on, with the behavior's functions.
    pub(super) async fn with_functions(&mut self, f: Rc<EdgeFunctions>, route: Route) -> Result<(), End> {
        let b = match &route {
            Route::Custom(_, b, ..) => *b,
            Route::Static(_, clean, _) => self.w.router.route_behavior(clean.path.as_bytes()).1,
            _ => return self.routed(route).await,
        };
        let on_request = f.for_behavior(b, EventType::ViewerRequest);
        let on_response = f.for_behavior(b, EventType::ViewerResponse);
        if on_request.is_none() && on_response.is_none() {
            return self.routed(route).await;
        }
        let cx = FnContext {
            distribution_domain_name: f.domain_name.clone(),
            distribution_id: f.distribution_id.clone(),
            request_id: f.request_id(),
            viewer_ip: self.sink.peer().map(|p| p.ip().to_string()).unwrap_or_default(),
        };
        let mut request = fn_request(self.req);
        let mut owned = None;
        let mut route = route;
        if let Some(func) = on_request {
            let inv = f.invoke(func, |e, name| e.run_viewer_request(name, &cx, &request));
            match inv.outcome {
                FnOutcome::Continue {
                    request: changed,
                    origin,
                } => {
                    if origin.is_some() || !unchanged(&request, &changed) {
                        let Ok(new) = rebuild(self.req, &changed) else {
                            let e = FnError::InvalidReturn("the request cannot be rebuilt".into());
                            tracing::warn!(function = f.name(func), error = %e, "function failed: 503");
                            return self.answer_now(failed()).await;
                        };
                        route = reroute(self, route, &new, origin.as_ref());
                        owned = Some(new);
                        request = changed;
                    }
                }
                FnOutcome::Respond(r) => return self.answer_now(generated(r)).await,
                FnOutcome::Error(_) | FnOutcome::Response(_) => return self.answer_now(failed()).await,
            }
        }
        let req = owned.as_ref().unwrap_or(self.req);
        match on_response {
            None => {
                let mut x = Exchange::new(self.w.clone(), req, &mut *self.sink);
                x.headers = self.headers.clone();
                x.routed(route).await
            }
            Some(func) => {
                let mut sink = FnSink {
                    inner: &mut *self.sink,
                    f,
                    func,
                    cx,
                    request,
                };
                let mut x = Exchange::new(self.w.clone(), req, &mut sink);
                x.headers = self.headers.clone();
                Box::pin(x.routed(route)).await
            }
        }
    }

    /// Answers without reading further: the request body is read and dropped first.
    async fn answer_now(&mut self, (head, body): (ResponseHead<'static>, BodySource)) -> Result<(), End> {
        self.sink.discard_body(self.req).await?;
        self.sink.respond(self.req, head, body).await
    }
}

/// The codec's sink with the behavior's viewer-response function run on the final head.
struct FnSink<'s, S: Sink> {
    inner: &'s mut S,
    f: Rc<EdgeFunctions>,
    func: usize,
    cx: FnContext,
    /// The request as the viewer-request function left it (or as the viewer sent it).
    request: FnRequest,
}

impl<S: Sink> FnSink<'_, S> {
    /// The head the function returned, or `None` when it failed.
    fn run<'h>(&self, mut head: ResponseHead<'h>) -> Option<ResponseHead<'h>> {
        let mut response = FnResponse {
            status: head.status,
            status_description: head.reason().to_string(),
            ..FnResponse::default()
        };
        for (n, v) in &head.fields {
            let name = n.to_ascii_lowercase();
            let value = String::from_utf8_lossy(v.as_ref()).into_owned();
            if name == "set-cookie" {
                response.cookies.push(SetCookie::parse(&value));
            } else if !crate::functions::hidden(&name) {
                response.headers.push((name, value));
            }
        }
        let cx = &self.cx;
        let inv = self.f.invoke(self.func, |e, name| {
            e.run_viewer_response(name, cx, &self.request, &response)
        });
        let FnOutcome::Response(out) = inv.outcome else {
            return None;
        };
        if out == response {
            return Some(head);
        }
        head.fields
            .retain(|(n, _)| crate::functions::hidden(&n.to_ascii_lowercase()));
        if out.status != head.status || out.status_description != response.status_description {
            head.status = out.status;
            head.reason = (!out.status_description.is_empty()).then_some(Cow::Owned(out.status_description));
        }
        for (n, v) in out.headers {
            head.fields.push((Cow::Owned(n), v.into()));
        }
        for c in &out.cookies {
            head.fields
                .push((Cow::Borrowed("set-cookie"), c.to_field().into()));
        }
        Some(head)
    }
}

impl<S: Sink> Sink for FnSink<'_, S> {
    fn secure(&self) -> bool {
        self.inner.secure()
    }

    fn peer(&self) -> Option<std::net::SocketAddr> {
        self.inner.peer()
    }

    async fn body_piece(&mut self, req: &Request) -> Result<Option<Bytes>, End> {
        self.inner.body_piece(req).await
    }

    async fn interim(&mut self, req: &Request, head: &ResponseHead<'_>) {
        self.inner.interim(req, head).await
    }

    async fn respond(&mut self, req: &Request, head: ResponseHead<'_>, body: BodySource) -> Result<(), End> {
        if head.status >= 400 {
            return self.inner.respond(req, head, body).await;
        }
        match self.run(head) {
            Some(head) => self.inner.respond(req, head, body).await,
            None => {
                drop(body);
                let (head, body) = failed();
                self.inner.respond(req, head, body).await
            }
        }
    }
}
