//! Cache keys and what is forwarded to the origin. A behavior's key policy names the query
//! parameters, headers and cookies that select a cached object; exactly those parts reach the
//! origin for cacheable requests, so two requests with one key always get one answer.
//!
//! Key layout: `path \0 query \0 headers \0 cookies \0 method-class`. Invalidations by path
//! are prefix removals on `path \0` (exact) or on the path prefix (`/dir/*`). Variants of a
//! response that `Vary`s add `\x01` and the normalised values of the varying headers.

use crate::http::codec::trim;
use crate::http::{Method, Request};
use config::KeyPart;

/// A behavior's cache key policy, names lowercased.
#[derive(Debug, Clone, Default)]
pub struct KeyPolicy {
    pub query: KeyPart,
    pub headers: KeyPart,
    pub cookies: KeyPart,
}

impl KeyPolicy {
    pub fn new(query: &KeyPart, headers: &KeyPart, cookies: &KeyPart) -> Self {
        let lower = |p: &KeyPart| match p {
            KeyPart::List(l) => KeyPart::List(l.iter().map(|s| s.to_ascii_lowercase()).collect()),
            other => other.clone(),
        };
        KeyPolicy {
            query: query.clone(),
            headers: lower(headers),
            cookies: cookies.clone(),
        }
    }

    fn header_in_key(&self, lname: &str) -> bool {
        match &self.headers {
            KeyPart::List(l) => l.iter().any(|h| h == lname),
            _ => false,
        }
    }
}

/// The request as the cache sees it.
#[derive(Debug, Clone)]
pub struct Keyed {
    /// The primary cache key.
    pub key: Vec<u8>,
    /// `path \0 query \0`: every stored response for this URL starts with it.
    pub url_prefix: Vec<u8>,
    /// The request target sent to the origin.
    pub target: Vec<u8>,
    /// Viewer headers forwarded to the origin (lowercase names, normalised values).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The viewer's Host is forwarded instead of the origin's host header.
    pub forward_host: bool,
}

/// Headers that never cross a proxy (RFC 9110 §7.6.1), plus framing we redo ourselves.
pub fn hop_by_hop(lname: &str) -> bool {
    matches!(
        lname,
        "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "expect"
    ) || lname.starts_with("proxy-")
}

/// Names listed in `Connection` (also hop-by-hop).
pub fn connection_names<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    values
        .flat_map(|v| v.split(|&b| b == b','))
        .map(|t| String::from_utf8_lossy(trim(t)).to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Request headers the cache answers itself (they never go to the origin with a cacheable
/// request; a revalidation sends its own validators).
fn answered_here(lname: &str) -> bool {
    matches!(
        lname,
        "if-none-match" | "if-modified-since" | "if-match" | "if-unmodified-since" | "if-range" | "range"
    )
}

/// Builds the key and the forwarded parts of a request for `path` (as received) and `query`.
/// `cacheable`: the method is one of the behavior's cached methods; otherwise every end-to-end
/// header is forwarded and the key is only used for invalidation.
pub fn build(req: &Request, path: &[u8], query: &[u8], policy: &KeyPolicy, cacheable: bool) -> Keyed {
    let q = if cacheable {
        filter_query(query, &policy.query)
    } else {
        query.to_vec()
    };
    let mut url_prefix = Vec::with_capacity(path.len() + q.len() + 2);
    url_prefix.extend_from_slice(path);
    url_prefix.push(0);
    url_prefix.extend_from_slice(&q);
    url_prefix.push(0);
    let mut target = path.to_vec();
    if !q.is_empty() {
        target.push(b'?');
        target.extend_from_slice(&q);
    }

    let conn = connection_names(req.header_values("connection"));
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    let mut key_headers: Vec<(String, Vec<u8>)> = Vec::new();
    let mut forward_host = false;
    for (n, v) in req.headers() {
        let lname = String::from_utf8_lossy(n).to_ascii_lowercase();
        if hop_by_hop(&lname) || conn.contains(&lname) {
            continue;
        }
        if lname == "host" {
            forward_host = !cacheable || policy.headers == KeyPart::All || policy.header_in_key("host");
            if forward_host {
                if policy.header_in_key("host") {
                    key_headers.push((lname.clone(), v.to_ascii_lowercase()));
                }
                headers.push((lname, v.to_vec()));
            }
            continue;
        }
        if !cacheable {
            headers.push((lname, v.to_vec()));
            continue;
        }
        if answered_here(&lname) || lname == "cookie" {
            continue;
        }
        let in_key = policy.header_in_key(&lname);
        if in_key || policy.headers == KeyPart::All {
            let v = normalize(&lname, v);
            if in_key {
                key_headers.push((lname.clone(), v.clone()));
            }
            merge(&mut headers, lname, v);
        }
    }
    let cookie = if cacheable {
        filter_cookies(
            req.header_values("cookie")
                .flat_map(|v| v.split(|&b| b == b';'))
                .map(trim)
                .filter(|c| !c.is_empty()),
            &policy.cookies,
        )
    } else {
        Vec::new()
    };
    if !cookie.is_empty() {
        headers.push(("cookie".into(), cookie.clone()));
    }

    let mut key = url_prefix.clone();
    key_headers.sort();
    for (n, v) in &key_headers {
        key.extend_from_slice(n.as_bytes());
        key.push(b':');
        key.extend_from_slice(v);
        key.push(b'\n');
    }
    key.push(0);
    key.extend_from_slice(&cookie);
    key.push(0);
    key.push(match req.method {
        Method::Options => b'O',
        _ => b'G',
    });
    Keyed {
        key,
        url_prefix,
        target,
        headers,
        forward_host,
    }
}

/// Several field lines of one header become one comma-separated value.
fn merge(headers: &mut Vec<(String, Vec<u8>)>, lname: String, v: Vec<u8>) {
    if let Some((_, old)) = headers.iter_mut().find(|(n, _)| *n == lname) {
        old.extend_from_slice(b", ");
        old.extend_from_slice(&v);
    } else {
        headers.push((lname, v));
    }
}

/// The variant key of a response that varies on `vary` (lowercase names).
pub fn variant_key(primary: &[u8], vary: &[String], req_value: impl Fn(&str) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut k = primary.to_vec();
    k.push(1);
    for name in vary {
        k.extend_from_slice(name.as_bytes());
        k.push(b'=');
        if let Some(v) = req_value(name) {
            k.extend_from_slice(&normalize(name, &v));
        } else {
            k.push(0xff);
        }
        k.push(0);
    }
    k
}

/// Values of headers that responses commonly vary on, in a canonical form: so that a `Vary`
/// on them yields few variants, and (since the canonical form is what the origin receives)
/// every variant is exactly what its key says.
pub fn normalize(lname: &str, v: &[u8]) -> Vec<u8> {
    match lname {
        "accept-encoding" => {
            let (mut br, mut gzip) = (false, false);
            for (coding, q) in media_list(v) {
                if q > 0.0 {
                    br |= coding == "br";
                    gzip |= coding == "gzip" || coding == "x-gzip";
                }
            }
            match (br, gzip) {
                (true, true) => b"br, gzip".to_vec(),
                (true, false) => b"br".to_vec(),
                (false, true) => b"gzip".to_vec(),
                (false, false) => b"identity".to_vec(),
            }
        }
        "accept" => {
            // Lowercase, no spaces, q=0 entries dropped, most preferred first (stable).
            let mut items: Vec<(String, f32)> = media_list(v).filter(|(_, q)| *q > 0.0).collect();
            items.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
            let parts: Vec<String> = items
                .into_iter()
                .map(|(m, q)| if q >= 1.0 { m } else { format!("{m};q={q}") })
                .collect();
            parts.join(",").into_bytes()
        }
        _ => {
            let parts: Vec<&[u8]> = v.split(|&b| b == b',').map(trim).collect();
            parts.join(&b", "[..])
        }
    }
}

/// `token;params;q=x` items: (lowercase token with its non-q parameters, q).
fn media_list(v: &[u8]) -> impl Iterator<Item = (String, f32)> + '_ {
    v.split(|&b| b == b',').filter_map(|item| {
        let item = String::from_utf8_lossy(trim(item)).to_ascii_lowercase();
        if item.is_empty() {
            return None;
        }
        let mut q = 1.0f32;
        let mut kept = Vec::new();
        for (i, p) in item.split(';').enumerate() {
            let p = p.trim();
            if i > 0 {
                if let Some(x) = p.strip_prefix("q=") {
                    q = x.parse().unwrap_or(0.0);
                    continue;
                }
            }
            kept.push(p.replace(' ', ""));
        }
        Some((kept.join(";"), q.clamp(0.0, 1.0)))
    })
}

fn filter_query(query: &[u8], part: &KeyPart) -> Vec<u8> {
    match part {
        KeyPart::None => Vec::new(),
        KeyPart::All => query.to_vec(),
        KeyPart::List(names) => {
            let kept: Vec<&[u8]> = query
                .split(|&b| b == b'&')
                .filter(|p| {
                    let name = p.split(|&b| b == b'=').next().unwrap_or_default();
                    names.iter().any(|n| n.as_bytes() == name)
                })
                .collect();
            kept.join(&b'&')
        }
    }
}

fn filter_cookies<'a>(pairs: impl Iterator<Item = &'a [u8]>, part: &KeyPart) -> Vec<u8> {
    let mut kept: Vec<&[u8]> = match part {
        KeyPart::None => return Vec::new(),
        // Signed cookies (`CloudFront-Policy`, ...) are credentials, not content: every
        // viewer's signature shares one cached object.
        KeyPart::All => pairs
            .filter(|p| !crate::edge::signed::is_signing_cookie(p))
            .collect(),
        KeyPart::List(names) => pairs
            .filter(|p| {
                let name = trim(p.split(|&b| b == b'=').next().unwrap_or_default());
                names.iter().any(|n| n.as_bytes() == name)
            })
            .collect(),
    };
    kept.sort();
    kept.join(&b"; "[..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::codec::{parse_request, Limits, Parsed};

    fn req(head: &str) -> Request {
        let limits = Limits {
            max_header_bytes: 16384,
            max_headers: 100,
            max_uri_bytes: 8192,
        };
        match parse_request(head.as_bytes(), &limits).unwrap() {
            Parsed::Complete(r, _) => r,
            Parsed::Partial => panic!("partial"),
        }
    }

    #[test]
    fn key_has_exactly_the_policy_parts() {
        let r = req("GET /a?x=1&y=2&z=3 HTTP/1.1\r\nHost: h\r\nAccept: text/html\r\nX-Other: 1\r\nCookie: s=1; t=2\r\nConnection: x-other\r\n\r\n");
        let p = KeyPolicy::new(
            &KeyPart::List(vec!["z".into(), "x".into()]),
            &KeyPart::List(vec!["Accept".into(), "X-Other".into()]),
            &KeyPart::List(vec!["t".into()]),
        );
        let k = build(&r, b"/a", b"x=1&y=2&z=3", &p, true);
        assert_eq!(k.target, b"/a?x=1&z=3");
        assert_eq!(k.url_prefix, b"/a\0x=1&z=3\0");
        // X-Other is named by Connection: hop-by-hop, neither forwarded nor keyed.
        assert_eq!(
            k.headers,
            vec![
                ("accept".to_string(), b"text/html".to_vec()),
                ("cookie".to_string(), b"t=2".to_vec())
            ]
        );
        assert_eq!(k.key, b"/a\0x=1&z=3\0accept:text/html\n\0t=2\0G".to_vec());
        assert!(!k.forward_host);

        let none = build(&r, b"/a", b"x=1", &KeyPolicy::default(), true);
        assert_eq!(none.target, b"/a");
        assert!(none.headers.is_empty());
        let other = req("GET /a HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n");
        assert_ne!(build(&other, b"/a", b"", &p, true).key, k.key);
    }

    #[test]
    fn uncacheable_requests_forward_everything_end_to_end() {
        let r = req("POST /f?a=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nCookie: s=1\r\nKeep-Alive: 5\r\nX-A: b\r\n\r\n");
        let k = build(&r, b"/f", b"a=1", &KeyPolicy::default(), false);
        assert_eq!(k.target, b"/f?a=1");
        assert_eq!(
            k.headers,
            vec![
                ("host".to_string(), b"h".to_vec()),
                ("cookie".to_string(), b"s=1".to_vec()),
                ("x-a".to_string(), b"b".to_vec())
            ]
        );
        assert!(k.forward_host);
    }

    #[test]
    fn accept_normalisation_keeps_variants_apart() {
        let json = normalize("accept", b"application/vnd.pypi.simple.v1+json, text/html;q=0.01");
        let json2 = normalize("accept", b"Application/vnd.pypi.simple.v1+json,text/html; q=0.01");
        let html = normalize("accept", b"text/html");
        assert_eq!(json, json2);
        assert_ne!(json, html);
        assert_eq!(
            normalize("accept", b"text/html;q=0.5, application/json"),
            b"application/json,text/html;q=0.5"
        );
        assert_eq!(normalize("accept-encoding", b"gzip, deflate, br;q=0"), b"gzip");
        assert_eq!(normalize("accept-encoding", b"br, gzip, zstd"), b"br, gzip");
        assert_eq!(normalize("accept-encoding", b"deflate"), b"identity");
        let vk = variant_key(b"k", &["accept".into()], |_| Some(b"text/html".to_vec()));
        assert_eq!(vk, b"k\x01accept=text/html\0");
    }
}
