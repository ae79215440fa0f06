//! Response headers policies at run time: each policy turned once per configuration
//! generation into the fields it adds and removes, so that applying it to a response is a
//! few comparisons and pushes of `'static` slices, with no allocation unless a CORS
//! origin is echoed.
//!
//! Names and values are interned: they live as long as the process, and the set only grows
//! with the distinct texts ever configured (a reload of the same policy adds nothing).

use crate::exchange::{BodyLength, CacheResult, ResponseHead};
use crate::http::{Method, Request};
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;
use std::sync::Mutex;

static INTERNED: Mutex<Option<HashSet<&'static [u8]>>> = Mutex::new(None);

/// The process's one copy of `v`.
fn intern(v: &[u8]) -> &'static [u8] {
    let mut set = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    let set = set.get_or_insert_with(HashSet::new);
    if let Some(s) = set.get(v) {
        return s;
    }
    let s: &'static [u8] = Box::leak(v.to_vec().into_boxed_slice());
    set.insert(s);
    s
}

fn intern_str(v: &str) -> &'static str {
    // Interned from a &str: the bytes are UTF-8.
    std::str::from_utf8(intern(v.as_bytes())).unwrap_or("")
}

/// One field a policy sets.
struct Set {
    name: &'static str,
    value: &'static [u8],
    /// Replaces the origin's field of that name; otherwise added only when absent.
    override_origin: bool,
}

struct CorsRt {
    any_origin: bool,
    /// Allowed origins, lowercase (`*` wildcards allowed inside, as CloudFront does).
    origins: Vec<Vec<u8>>,
    any_headers: bool,
    allow_headers: Option<&'static [u8]>,
    allow_methods: &'static [u8],
    expose: Option<&'static [u8]>,
    max_age: Option<&'static [u8]>,
    credentials: bool,
    override_origin: bool,
    /// Preflights are answered here (the policy allows `OPTIONS`).
    preflight: bool,
}

/// A response headers policy, ready to apply.
pub struct HeadersRt {
    pub name: String,
    remove: Vec<&'static str>,
    set: Vec<Set>,
    cors: Option<CorsRt>,
    /// `Server-Timing` values per cache result, and the share sampled (per 10,000).
    timing: Option<([&'static [u8]; 5], u32)>,
    sampled: Cell<u32>,
}

const CORS_NAMES: [&str; 6] = [
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-expose-headers",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
];

fn joined(list: &[String]) -> Option<&'static [u8]> {
    (!list.is_empty()).then(|| intern(list.join(", ").as_bytes()))
}

impl HeadersRt {
    pub fn new(p: &config::ResponseHeadersPolicy, edge: &str) -> HeadersRt {
        let mut set = Vec::new();
        let mut add = |name: &str, value: String, o: bool| {
            set.push(Set {
                name: intern_str(name),
                value: intern(value.as_bytes()),
                override_origin: o,
            })
        };
        let s = &p.security_headers;
        if let Some(h) = &s.strict_transport_security {
            let mut v = format!("max-age={}", h.access_control_max_age_sec);
            if h.include_subdomains {
                v.push_str("; includeSubDomains");
            }
            if h.preload {
                v.push_str("; preload");
            }
            add("Strict-Transport-Security", v, h.override_origin);
        }
        if let Some(h) = &s.content_type_options {
            add("X-Content-Type-Options", "nosniff".into(), h.override_origin);
        }
        if let Some(h) = &s.frame_options {
            add("X-Frame-Options", h.frame_option.clone(), h.override_origin);
        }
        if let Some(h) = &s.referrer_policy {
            add("Referrer-Policy", h.referrer_policy.clone(), h.override_origin);
        }
        if let Some(h) = &s.content_security_policy {
            add(
                "Content-Security-Policy",
                h.content_security_policy.clone(),
                h.override_origin,
            );
        }
        if let Some(h) = &s.xss_protection {
            let mut v = if h.protection { "1" } else { "0" }.to_string();
            if h.protection && h.mode_block {
                v.push_str("; mode=block");
            } else if let Some(r) = h.report_uri.as_deref().filter(|_| h.protection) {
                v.push_str("; report=");
                v.push_str(r);
            }
            add("X-XSS-Protection", v, h.override_origin);
        }
        for h in &p.custom_headers {
            add(&h.header, h.value.clone(), h.override_origin);
        }
        let cors = p.cors.as_ref().map(|c| {
            let methods: Vec<String> = if c.access_control_allow_methods.iter().any(|m| m == "ALL") {
                ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
                    .map(String::from)
                    .to_vec()
            } else {
                c.access_control_allow_methods.clone()
            };
            CorsRt {
                any_origin: c.access_control_allow_origins.iter().any(|o| o == "*"),
                origins: c
                    .access_control_allow_origins
                    .iter()
                    .map(|o| o.to_ascii_lowercase().into_bytes())
                    .collect(),
                any_headers: c.access_control_allow_headers.iter().any(|h| h == "*"),
                allow_headers: joined(&c.access_control_allow_headers),
                preflight: methods.iter().any(|m| m == "OPTIONS"),
                allow_methods: intern(methods.join(", ").as_bytes()),
                expose: joined(&c.access_control_expose_headers),
                max_age: c
                    .access_control_max_age_sec
                    .map(|s| intern(s.to_string().as_bytes())),
                credentials: c.access_control_allow_credentials,
                override_origin: c.origin_override,
            }
        });
        let timing = p.server_timing.as_ref().filter(|t| t.enabled).map(|t| {
            let pop = format!("cdn-pop;desc=\"{}\"", edge.replace('"', ""));
            let v = |r: &str| intern(format!("cdn-cache-{r}, {pop}").as_bytes());
            (
                [v("local"), v("hit"), v("refresh-hit"), v("miss"), v("error")],
                (t.sampling_rate * 100.0).round() as u32,
            )
        });
        HeadersRt {
            name: p.name.clone(),
            remove: p.remove_headers.iter().map(|h| intern_str(h)).collect(),
            set,
            cors,
            timing,
            sampled: Cell::new(0),
        }
    }

    /// Adds and removes the policy's fields on a response to `req`.
    pub fn apply(&self, req: &Request, head: &mut ResponseHead<'_>) {
        if let Some(c) = &self.cors {
            if let Some(origin) = req.header("origin") {
                self.cors_fields(c, req, origin, head, false);
            }
        }
        self.apply_fixed(head);
    }

    /// The fields that do not depend on the request: removals, security and custom headers,
    /// `Server-Timing`.
    fn apply_fixed(&self, head: &mut ResponseHead<'_>) {
        if !self.remove.is_empty() {
            head.fields
                .retain(|(n, _)| !self.remove.iter().any(|r| r.eq_ignore_ascii_case(n)));
        }
        for s in &self.set {
            put(head, s.name, s.value, s.override_origin);
        }
        if let Some((values, rate)) = &self.timing {
            let acc = self.sampled.get() + rate;
            if acc >= 10_000 {
                self.sampled.set(acc - 10_000);
                let i = match head.cache {
                    CacheResult::Local => 0,
                    CacheResult::Hit => 1,
                    CacheResult::RefreshHit => 2,
                    CacheResult::Miss => 3,
                    CacheResult::Error => 4,
                };
                head.field("Server-Timing", values[i]);
            } else {
                self.sampled.set(acc);
            }
        }
    }

    fn cors_fields(
        &self,
        c: &CorsRt,
        req: &Request,
        origin: &[u8],
        head: &mut ResponseHead<'_>,
        preflight: bool,
    ) {
        let from_origin = head
            .fields
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("access-control-allow-origin"));
        if from_origin && !c.override_origin {
            return;
        }
        let lower = origin.to_ascii_lowercase();
        let allowed = c.any_origin || c.origins.iter().any(|o| super::policy::wildcard_match(o, &lower));
        if from_origin {
            head.fields
                .retain(|(n, _)| !CORS_NAMES.iter().any(|c| c.eq_ignore_ascii_case(n)));
        }
        if !allowed {
            return;
        }
        if c.any_origin && !c.credentials {
            head.field("Access-Control-Allow-Origin", &b"*"[..]);
        } else {
            head.field("Access-Control-Allow-Origin", origin.to_vec());
            add_vary_origin(head);
        }
        if c.credentials {
            head.field("Access-Control-Allow-Credentials", &b"true"[..]);
        }
        if preflight {
            head.field("Access-Control-Allow-Methods", c.allow_methods);
            match req.header("access-control-request-headers") {
                Some(asked) if c.any_headers => {
                    head.field("Access-Control-Allow-Headers", asked.to_vec());
                }
                _ => {
                    if let Some(h) = c.allow_headers {
                        head.field("Access-Control-Allow-Headers", h);
                    }
                }
            }
            if let Some(m) = c.max_age {
                head.field("Access-Control-Max-Age", m);
            }
        } else if let Some(e) = c.expose {
            head.field("Access-Control-Expose-Headers", e);
        }
    }

    /// A CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) that
    /// this policy answers here: the answer, without asking the origin.
    pub fn preflight(&self, req: &Request) -> Option<ResponseHead<'static>> {
        let c = self.cors.as_ref().filter(|c| c.preflight)?;
        if req.method != Method::Options || req.header("access-control-request-method").is_none() {
            return None;
        }
        let origin = req.header("origin")?;
        let mut head = ResponseHead::local(200);
        head.length = BodyLength::Known(0);
        self.cors_fields(c, req, origin, &mut head, true);
        self.apply_fixed(&mut head);
        Some(head)
    }
}

/// Sets a field: replacing the origin's when `override_origin`, else only when absent.
fn put(head: &mut ResponseHead<'_>, name: &'static str, value: &'static [u8], override_origin: bool) {
    let present = head.fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if present {
        if !override_origin {
            return;
        }
        head.fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
    head.fields
        .push((Cow::Borrowed(name), crate::exchange::response::Value::Ref(value)));
}

fn add_vary_origin(head: &mut ResponseHead<'_>) {
    let has = head.fields.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("vary")
            && v.as_ref()
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"origin") || t.trim_ascii() == b"*")
    });
    if !has {
        head.field("Vary", &b"Origin"[..]);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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

    fn managed(name: &str) -> HeadersRt {
        HeadersRt::new(&config::managed_policy(name).unwrap(), "edge1")
    }

    #[test]
    fn security_headers_keep_the_origins_unless_overriding() {
        let p = managed("SecurityHeadersPolicy");
        let r = req("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        let mut h = ResponseHead::local(200);
        h.field("X-Frame-Options", "DENY");
        h.field("X-Content-Type-Options", "sniff");
        p.apply(&r, &mut h);
        assert_eq!(h.get("x-frame-options").unwrap(), b"DENY");
        assert_eq!(h.get("x-content-type-options").unwrap(), b"nosniff");
        assert_eq!(h.get("strict-transport-security").unwrap(), b"max-age=31536000");
        assert_eq!(
            h.get("referrer-policy").unwrap(),
            b"strict-origin-when-cross-origin"
        );
        assert_eq!(h.get("x-xss-protection").unwrap(), b"1; mode=block");
    }

    #[test]
    fn cors_answers_only_requests_with_an_allowed_origin() {
        let mut policy = config::managed_policy("CORS-With-Preflight").unwrap();
        policy.cors.as_mut().unwrap().access_control_allow_origins = vec!["https://*.example.com".into()];
        let p = HeadersRt::new(&policy, "e");
        let pre = req(
            "OPTIONS /x HTTP/1.1\r\nHost: h\r\nOrigin: https://app.example.com\r\nAccess-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: x-a\r\n\r\n",
        );
        let h = p.preflight(&pre).unwrap();
        assert_eq!(
            h.get("access-control-allow-origin").unwrap(),
            b"https://app.example.com"
        );
        assert_eq!(h.get("access-control-allow-headers").unwrap(), b"x-a");
        assert!(h
            .get("access-control-allow-methods")
            .unwrap()
            .starts_with(b"DELETE"));
        assert_eq!(h.get("vary").unwrap(), b"Origin");
        let other = req(
            "OPTIONS /x HTTP/1.1\r\nHost: h\r\nOrigin: https://evil.test\r\nAccess-Control-Request-Method: PUT\r\n\r\n",
        );
        assert!(p
            .preflight(&other)
            .unwrap()
            .get("access-control-allow-origin")
            .is_none());
        let plain = req("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
        let mut h = ResponseHead::local(200);
        p.apply(&plain, &mut h);
        assert!(h.get("access-control-allow-origin").is_none());
        assert!(managed("SimpleCORS").preflight(&pre).is_none());
    }

    #[test]
    fn removed_custom_and_timing_headers() {
        let policy = config::ResponseHeadersPolicy {
            name: "p".into(),
            remove_headers: vec!["X-Powered-By".into()],
            custom_headers: vec![config::CustomHeader {
                header: "X-Edge".into(),
                value: "yes".into(),
                override_origin: true,
            }],
            server_timing: Some(config::ServerTiming {
                enabled: true,
                sampling_rate: 50.0,
            }),
            ..Default::default()
        };
        let p = HeadersRt::new(&policy, "edge1");
        let r = req("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        let mut timed = 0;
        for _ in 0..10 {
            let mut h = ResponseHead::local(200).with_cache(CacheResult::Hit);
            h.field("x-powered-by", "php");
            h.field("X-Edge", "no");
            p.apply(&r, &mut h);
            assert!(h.get("x-powered-by").is_none());
            assert_eq!(h.get("x-edge").unwrap(), b"yes");
            if let Some(t) = h.get("server-timing") {
                assert_eq!(t, b"cdn-cache-hit, cdn-pop;desc=\"edge1\"");
                timed += 1;
            }
        }
        assert_eq!(timed, 5);
    }
}
