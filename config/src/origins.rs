//! Origins as CloudFront has them: S3 buckets (signed or not), origin groups (failover
//! pairs), health checks, and the per-origin settings (`origin_path`, `custom_headers`,
//! `origin_keepalive_timeout`, `ssl_protocols`, `connection_attempts`, the `Host` rule).
//!
//! The checks here report each problem at its key; [`complete`] then turns an S3 origin into
//! the custom origin the server talks to (host, port, scheme and `Host` from the endpoint,
//! bucket and addressing style), so the rest of the server sees one kind of network origin.

use crate::schema::{Config, Duration, KeyPart, Origin, OriginProtocol};
use serde::Deserialize;

/// How the bucket is named in requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressingStyle {
    /// `Host: <bucket>.<endpoint host>`, the path is the object key (AWS's default).
    #[default]
    VirtualHost,
    /// `Host: <endpoint host>`, the path is `/<bucket>/<key>` (most S3-compatible servers).
    Path,
}

/// CloudFront's Origin Access Control signing behavior.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SigningBehavior {
    /// Every origin request is signed; a viewer's `Authorization` is replaced.
    #[default]
    Always,
    /// Signed unless the viewer's request carries an `Authorization` (forwarded as is).
    NoOverride,
    /// Never signed (a public bucket).
    Never,
}

/// `health_check = { path, interval, timeout }`: an active check of one origin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// The path requested (GET); a 2xx or 3xx answer is healthy.
    pub path: String,
    /// Time between checks.
    #[serde(default = "default_health_interval")]
    pub interval: Duration,
    /// Time allowed for a check's answer.
    #[serde(default = "default_health_timeout")]
    pub timeout: Duration,
}

/// `[[origin_groups]]`: a primary and a secondary origin (CloudFront's origin failover).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginGroup {
    /// The name behaviors refer to (as `target_origin`).
    pub id: String,
    /// `[primary, secondary]`, origin ids.
    pub members: Vec<String>,
    /// Answers of the primary that send the request to the secondary.
    #[serde(default = "default_failover_codes")]
    pub failover_status_codes: Vec<u16>,
}

pub(crate) fn default_region() -> String {
    "us-east-1".into()
}
pub(crate) fn default_keepalive_timeout() -> Duration {
    Duration::secs(5)
}
pub(crate) fn default_ssl_protocols() -> Vec<String> {
    vec!["TLSv1.2".into(), "TLSv1.3".into()]
}
pub(crate) fn default_connection_attempts() -> u32 {
    3
}
pub(crate) fn default_true() -> bool {
    true
}
fn default_health_interval() -> Duration {
    Duration::secs(10)
}
fn default_health_timeout() -> Duration {
    Duration::secs(2)
}
fn default_failover_codes() -> Vec<u16> {
    vec![500, 502, 503, 504]
}

/// The statuses CloudFront lets an origin group fail over on.
pub const FAILOVER_CODES: [u16; 6] = [403, 404, 500, 502, 503, 504];

/// At most this many `custom_headers` per origin (CloudFront's limit).
const MAX_CUSTOM_HEADERS: usize = 10;

/// Headers an origin's `custom_headers` may not set: the ones the proxy owns (framing,
/// conditionals, ranges, Host, hop-by-hop) and the ones request signing owns.
fn reserved_header(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    const RESERVED: [&str; 22] = [
        "cache-control",
        "connection",
        "content-length",
        "cookie",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "keep-alive",
        "max-forwards",
        "pragma",
        "proxy-authorization",
        "proxy-connection",
        "range",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "via",
        "authorization",
    ];
    RESERVED.contains(&l.as_str()) || l.starts_with("x-amz-") || l.starts_with("x-edge-")
}

/// An S3 endpoint, parsed: `(https, host, port)`.
pub fn parse_endpoint(url: &str) -> Result<(bool, String, u16), String> {
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("{url:?}: must start with http:// or https://"));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!("{url:?}: only a scheme, host and port (no path)"));
    }
    let default_port = if https { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: unclosed '['"))?;
        match after.strip_prefix(':') {
            Some(p) => (h.to_string(), p),
            None if after.is_empty() => (h.to_string(), ""),
            None => return Err(format!("{url:?}: bad port")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (authority.to_string(), ""),
        }
    };
    let port = match port {
        "" => default_port,
        p => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("{url:?}: port must be 1-65535"))?,
    };
    if host.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    Ok((https, host, port))
}

impl Origin {
    /// Whether this origin is an S3 bucket.
    pub fn is_s3(&self) -> bool {
        self.s3_bucket.is_some()
    }

    /// Whether requests to this origin go over the network (a custom or S3 origin).
    pub fn is_network(&self) -> bool {
        self.domain_name.is_some() || self.s3_bucket.is_some()
    }

    /// The prefix put before every request path: `/<bucket>` for path-style S3, then
    /// `origin_path`.
    pub fn request_prefix(&self) -> String {
        match (&self.s3_bucket, self.s3_addressing_style) {
            (Some(b), AddressingStyle::Path) => format!("/{b}{}", self.origin_path),
            _ => self.origin_path.clone(),
        }
    }

    /// The S3 endpoint URL in effect.
    pub fn s3_endpoint_url(&self) -> String {
        self.s3_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.s3_region))
    }
}

/// Fills in what an S3 origin's settings imply, after validation: the server connects to the
/// endpoint's host and port, over its scheme, and sends the bucket's `Host`.
pub(crate) fn complete(cfg: &mut Config) {
    let every = cfg
        .origins
        .iter_mut()
        .chain(cfg.distributions.iter_mut().flat_map(|d| d.origins.iter_mut()));
    for o in every {
        let Some(bucket) = o.s3_bucket.clone() else {
            continue;
        };
        let Ok((https, host, port)) = parse_endpoint(&o.s3_endpoint_url()) else {
            continue;
        };
        let authority = match (https, port) {
            (true, 443) | (false, 80) => host.clone(),
            _ if host.contains(':') => format!("[{host}]:{port}"),
            _ => format!("{host}:{port}"),
        };
        o.host_header = Some(match o.s3_addressing_style {
            AddressingStyle::VirtualHost => format!("{bucket}.{authority}"),
            AddressingStyle::Path => authority,
        });
        o.domain_name = Some(host);
        if https {
            o.protocol = OriginProtocol::HttpsOnly;
            o.https_port = port;
        } else {
            o.protocol = OriginProtocol::HttpOnly;
            o.http_port = port;
        }
    }
}

/// Whether a behavior forwards the viewer's `Host`.
fn forwards_host(headers: &KeyPart) -> bool {
    match headers {
        KeyPart::All => true,
        KeyPart::List(l) => l.iter().any(|h| h.eq_ignore_ascii_case("host")),
        KeyPart::None => false,
    }
}

/// Whether `id` names an origin or an origin group.
pub(crate) fn is_target(cfg: &Config, id: &str) -> bool {
    cfg.origins.iter().any(|o| o.id == id) || cfg.origin_groups.iter().any(|g| g.id == id)
}

/// The checks of S3 origins, per-origin settings, origin groups and health checks;
/// `machine` gets the problems of this machine (a credentials file that is not there).
pub(crate) fn check(cfg: &Config, bad: &mut impl FnMut(String, String), machine: &impl Fn(String, String)) {
    for (i, o) in cfg.origins.iter().enumerate() {
        check_origin(i, o, bad);
        crate::fleet::check_origin(cfg, i, o, bad);
        if let Some(f) = o.credentials_file.as_ref().filter(|_| o.is_s3()) {
            if let Err(e) = std::fs::metadata(f) {
                machine(format!("origins[{i}].credentials_file"), format!("{f:?}: {e}"));
            }
        }
    }
    check_host_rule(cfg, bad);
    for (i, g) in cfg.origin_groups.iter().enumerate() {
        check_group(cfg, i, g, bad);
    }
}

fn check_origin(i: usize, o: &Origin, bad: &mut impl FnMut(String, String)) {
    let k = |f: &str| format!("origins[{i}].{f}");
    if let Some(b) = &o.s3_bucket {
        check_s3(i, o, b, bad);
    } else {
        for (set, key) in [
            (o.s3_endpoint.is_some(), "s3_endpoint"),
            (o.credentials_file.is_some(), "credentials_file"),
            (o.credentials_profile.is_some(), "credentials_profile"),
        ] {
            if set {
                bad(k(key), "only S3 origins (with s3_bucket) take this key".into());
            }
        }
    }
    let p = &o.origin_path;
    if !p.is_empty() {
        if !p.starts_with('/') || p.ends_with('/') {
            bad(
                k("origin_path"),
                "must start with '/' and not end with '/' (e.g. \"/production\")".into(),
            );
        } else if p.len() > 255 {
            bad(k("origin_path"), "at most 255 characters".into());
        } else if let Some(c) = p
            .chars()
            .find(|c| c.is_control() || c.is_whitespace() || "?#%".contains(*c))
        {
            bad(k("origin_path"), format!("character {c:?} is not allowed"));
        }
    }
    if o.custom_headers.len() > MAX_CUSTOM_HEADERS {
        bad(
            k("custom_headers"),
            format!("at most {MAX_CUSTOM_HEADERS} headers"),
        );
    }
    for (name, value) in &o.custom_headers {
        let at = k(&format!("custom_headers.{name}"));
        let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
        if name.is_empty() || !name.bytes().all(token) {
            bad(at, format!("{name:?} is not a valid header name"));
        } else if reserved_header(name) {
            bad(
                at,
                format!("{name:?} cannot be set here (the proxy or request signing sets it)"),
            );
        } else if value.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
            bad(at, "a header value cannot hold control characters".into());
        }
    }
    let ka = o.origin_keepalive_timeout.0;
    if ka < std::time::Duration::from_secs(1) || ka > std::time::Duration::from_secs(60) {
        bad(k("origin_keepalive_timeout"), "must be 1s to 60s".into());
    }
    if !(1..=3).contains(&o.connection_attempts) {
        bad(k("connection_attempts"), "must be 1, 2 or 3".into());
    }
    check_ssl_protocols(i, &o.ssl_protocols, bad);
    if let Some(h) = &o.health_check {
        if o.path.is_some() {
            bad(
                k("health_check"),
                "a directory origin has no health to check".into(),
            );
        }
        if !h.path.starts_with('/') || h.path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            bad(k("health_check.path"), "must be a path starting with '/'".into());
        }
        if h.interval.0 < std::time::Duration::from_secs(1) {
            bad(k("health_check.interval"), "must be at least 1s".into());
        }
        if h.timeout.0.is_zero() || h.timeout.0 >= h.interval.0 {
            bad(
                k("health_check.timeout"),
                "must be longer than 0 and shorter than the interval".into(),
            );
        }
    }
}

fn check_ssl_protocols(i: usize, list: &[String], bad: &mut impl FnMut(String, String)) {
    if list.is_empty() {
        bad(
            format!("origins[{i}].ssl_protocols"),
            "needs \"TLSv1.2\", \"TLSv1.3\" or both".into(),
        );
    }
    for (j, p) in list.iter().enumerate() {
        let at = format!("origins[{i}].ssl_protocols[{j}]");
        match p.as_str() {
            "TLSv1.2" | "TLSv1.3" if list[..j].contains(p) => bad(at, format!("{p} is listed twice")),
            "TLSv1.2" | "TLSv1.3" => {}
            "SSLv3" | "TLSv1" | "TLSv1.1" => bad(
                at,
                format!(
                    "{p} is not supported: rustls speaks TLS 1.2 and 1.3 only (\"TLSv1.2\", \"TLSv1.3\")"
                ),
            ),
            _ => bad(at, format!("{p:?}: expected \"TLSv1.2\" or \"TLSv1.3\"")),
        }
    }
}

fn check_s3(i: usize, o: &Origin, bucket: &str, bad: &mut impl FnMut(String, String)) {
    let k = |f: &str| format!("origins[{i}].{f}");
    if o.path.is_some() || o.domain_name.is_some() {
        bad(
            k("s3_bucket"),
            "an origin has one of `path`, `domain_name` or `s3_bucket`".into(),
        );
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    if !(3..=63).contains(&bucket.len())
        || !bucket.chars().all(ok_char)
        || bucket.starts_with(['.', '-'])
        || bucket.ends_with(['.', '-'])
        || bucket.contains("..")
    {
        bad(
            k("s3_bucket"),
            format!("{bucket:?} is not a bucket name (3-63 of a-z, 0-9, '.', '-')"),
        );
    }
    let r = &o.s3_region;
    if r.is_empty()
        || !r
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        bad(
            k("s3_region"),
            format!("{r:?} is not a region name (e.g. \"eu-west-1\")"),
        );
    }
    if let Some(e) = &o.s3_endpoint {
        if let Err(m) = parse_endpoint(e) {
            bad(k("s3_endpoint"), m);
        }
    }
    if o.host_header.is_some() {
        bad(
            k("host_header"),
            "an S3 origin always gets the bucket's Host (it is signed)".into(),
        );
    }
    if let Some(p) = &o.credentials_profile {
        if p.is_empty() || p.contains([']', '[', '\n']) {
            bad(k("credentials_profile"), format!("{p:?} is not a profile name"));
        }
    }
}

/// The Host rule: an S3 origin gets the bucket's Host, so a behavior that would forward the
/// viewer's Host to one (directly or through a group) is refused, as CloudFront refuses it.
fn check_host_rule(cfg: &Config, bad: &mut impl FnMut(String, String)) {
    let s3_behind = |target: &str| -> bool {
        let members: Vec<&str> = match cfg.origin_groups.iter().find(|g| g.id == target) {
            Some(g) => g.members.iter().map(String::as_str).collect(),
            None => vec![target],
        };
        members
            .iter()
            .any(|m| cfg.origins.iter().any(|o| o.id == *m && o.is_s3()))
    };
    let all = std::iter::once(("default_cache_behavior".to_string(), &cfg.default_cache_behavior)).chain(
        cfg.behaviors
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("behaviors[{i}]"), b)),
    );
    for (at, b) in all {
        if forwards_host(&b.headers) && s3_behind(&b.target_origin) {
            bad(
                format!("{at}.headers"),
                format!(
                    "{:?} is an S3 origin, which must get the bucket's Host: do not forward Host",
                    b.target_origin
                ),
            );
        }
    }
}

fn check_group(cfg: &Config, i: usize, g: &OriginGroup, bad: &mut impl FnMut(String, String)) {
    let k = |f: &str| format!("origin_groups[{i}].{f}");
    if g.id.is_empty() {
        bad(k("id"), "must not be empty".into());
    } else if cfg.origins.iter().any(|o| o.id == g.id) || cfg.origin_groups[..i].iter().any(|o| o.id == g.id)
    {
        bad(
            k("id"),
            format!("id {:?} is used twice (origins and groups share ids)", g.id),
        );
    }
    if g.members.len() != 2 {
        bad(
            k("members"),
            "needs exactly two origin ids: [primary, secondary]".into(),
        );
    } else if g.members[0] == g.members[1] {
        bad(
            k("members[1]"),
            "the secondary must differ from the primary".into(),
        );
    }
    for (j, m) in g.members.iter().enumerate() {
        match cfg.origins.iter().find(|o| o.id == *m) {
            None => bad(
                format!("origin_groups[{i}].members[{j}]"),
                format!("no origin has id {m:?}"),
            ),
            Some(o) if !o.is_network() => bad(
                format!("origin_groups[{i}].members[{j}]"),
                format!("{m:?} is a directory origin; groups are of custom or S3 origins"),
            ),
            Some(_) => {}
        }
    }
    if g.failover_status_codes.is_empty() {
        bad(k("failover_status_codes"), "needs at least one status".into());
    }
    for (j, c) in g.failover_status_codes.iter().enumerate() {
        let at = format!("origin_groups[{i}].failover_status_codes[{j}]");
        if !FAILOVER_CODES.contains(c) {
            bad(at, format!("{c}: must be one of 403, 404, 500, 502, 503, 504"));
        } else if g.failover_status_codes[..j].contains(c) {
            bad(at, format!("{c} is listed twice"));
        }
    }
}
