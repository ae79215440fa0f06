//! The first phases: the viewer protocol policy, then the behavior (and its origin) that
//! serves the request's path.

use super::ExchangeError;
use crate::context::Worker;
use crate::http::uri::{clean_path, split_target, CleanPath, PathError};
use crate::http::{Method, Request};
use crate::router::Target;

/// Where a request goes.
pub enum Route {
    /// Refused before any origin: a bad target, or a method a directory origin does not serve.
    Error(ExchangeError),
    /// `OPTIONS *`.
    Options,
    /// A directory origin: its index, the clean path, the query.
    Static(usize, CleanPath, Vec<u8>),
    /// Origin index, behavior index, raw path, query.
    Custom(usize, usize, Vec<u8>, Vec<u8>),
}

/// A plain-HTTP request refused by its behavior's viewer protocol policy.
pub enum Refusal {
    /// `redirect-to-https`: 301 for GET and HEAD, 307 otherwise, to this location.
    Redirect(u16, String),
    /// `https-only`: 403.
    HttpsOnly,
}

/// Phase **viewer policy**: for a plain-HTTP request under a behavior whose viewer protocol
/// policy is not `allow-all`, the redirect or the refusal.
pub fn viewer_policy(w: &Worker, req: &Request) -> Option<Refusal> {
    use config::ViewerProtocolPolicy as P;
    if w.policies.iter().all(|p| *p == P::AllowAll) {
        return None;
    }
    let (path, _) = split_target(req.target())?;
    let clean = clean_path(path).ok()?;
    let b = w.router.route_behavior(clean.path.as_bytes()).1;
    match w.policies.get(b).copied().unwrap_or_default() {
        P::AllowAll => None,
        P::HttpsOnly => Some(Refusal::HttpsOnly),
        P::RedirectToHttps => {
            let host = req
                .header("host")
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            // CloudFront redirects to the default HTTPS port: the Host's port goes.
            let host = match host.strip_prefix('[') {
                Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or_default()),
                None => host.split(':').next().unwrap_or_default().to_string(),
            };
            let target = String::from_utf8_lossy(req.target());
            let status = if matches!(req.method, Method::Get | Method::Head) {
                301
            } else {
                307
            };
            Some(Refusal::Redirect(status, format!("https://{host}{target}")))
        }
    }
}

/// Phase **route**: the target is split and its path percent-decoded and normalised, then
/// the first matching behavior picks the origin.
pub fn route(w: &Worker, req: &Request) -> Route {
    let Some((path, query)) = split_target(req.target()) else {
        if req.target() == b"*" && req.method == Method::Options {
            return Route::Options;
        }
        return Route::Error(ExchangeError::Target("invalid request target"));
    };
    let clean = match clean_path(path) {
        Ok(c) => c,
        Err(PathError::Invalid(why)) => return Route::Error(ExchangeError::Target(why)),
        Err(PathError::Escapes) => return Route::Error(ExchangeError::Target("path leaves the root")),
    };
    match w.router.route_behavior(clean.path.as_bytes()) {
        (Target::Static(i), _) => {
            if !matches!(req.method, Method::Get | Method::Head) {
                return Route::Error(ExchangeError::MethodNotServed {
                    unknown: req.method == Method::Other,
                });
            }
            Route::Static(i, clean, query.to_vec())
        }
        (Target::Custom(i), b) => Route::Custom(i, b, path.to_vec(), query.to_vec()),
    }
}
