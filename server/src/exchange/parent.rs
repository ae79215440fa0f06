//! The request toward a parent (a shield node, `proxy::parents`) and the loop check.
//!
//! A parent serves the same distributions as this edge and applies its own origin settings,
//! so it gets the request as the viewer made it, keyed as here: the viewer's `Host` (the
//! shield picks the same distribution by it), the target and forwarded fields as the cache
//! key has them, no `origin_path`, custom headers or signing (those are for the origin), and
//! the viewer's `Via` with this node appended, so that a request coming round to a node it
//! passed is refused there (508) instead of going round forever.

use super::origin::request_head;
use super::store::Validators;
use crate::http::Request;
use crate::proxy::key::Keyed;
use crate::proxy::upstream::OriginClient;

/// The request head for `client`: as a parent gets it when `client` is a parent's, else as
/// the origin gets it (`origin::request_head`).
pub fn fill_head(
    req: &Request,
    keyed: &Keyed,
    client: &OriginClient,
    via: &str,
    peer: Option<std::net::SocketAddr>,
    validators: Option<&Validators>,
) -> Vec<u8> {
    if !client.parent {
        return request_head(b"GET", keyed, client, via, peer, validators, None);
    }
    let mut k = keyed.clone();
    k.headers.retain(|(n, _)| n != "host" && n != "via");
    if let Some(host) = req.header("host") {
        k.headers.push(("host".into(), host.to_vec()));
        k.forward_host = true;
    }
    let incoming: Vec<&[u8]> = req.header_values("via").collect();
    if !incoming.is_empty() {
        k.headers.push(("via".into(), incoming.join(&b", "[..])));
    }
    request_head(b"GET", &k, client, via, peer, validators, None)
}

/// Whether the request has passed this node already (its `Via` names this node).
pub fn loops(req: &Request, via: &str) -> bool {
    req.header_values("via")
        .any(|v| crate::proxy::parents::via_names(v, via))
}
