//! Caching decisions (RFC 9111 with CloudFront's TTL rules), as plain functions over header
//! values: what a response's TTL is, whether it may be stored, how old a stored one is.
//!
//! Edges of the RFCs handled here:
//! - `Age` (RFC 9111 §5.1, [`age`]): the first member of a list or of repeated lines is used;
//!   a value that is not a non-negative integer is ignored, never taken as "very old".
//! - Targeted cache control (RFC 9213, [`CacheControl::parse_targeted`], [`directives`]):
//!   `CDN-Cache-Control` is an RFC 8941 Dictionary, parsed with the `sfv` crate. When it is
//!   valid and not empty it decides, and `Cache-Control` and `Expires` are ignored; when it is
//!   not a valid Dictionary or a known directive has the wrong type, the whole field is ignored.
//!   It is forwarded downstream unchanged (a shield tier or another CDN in front obeys it too);
//!   only `Surrogate-Control` is consumed here ([`consumed_here`]).

use crate::http::codec::trim;

/// The directives of a `Cache-Control` (or `CDN-Cache-Control`) field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub stale_while_revalidate: Option<u64>,
    pub stale_if_error: Option<u64>,
    /// Request only.
    pub max_stale: Option<u64>,
    pub min_fresh: Option<u64>,
    pub only_if_cached: bool,
    pub must_understand: bool,
}

impl CacheControl {
    /// Parses every field line given. Unknown directives are ignored; a directive with an
    /// invalid argument counts as present with the most conservative value.
    pub fn parse<'a>(values: impl Iterator<Item = &'a [u8]>) -> CacheControl {
        let mut cc = CacheControl::default();
        for v in values {
            for d in split_directives(v) {
                cc.apply(d);
            }
        }
        cc
    }

    /// `Surrogate-Control` (Edge Architecture Specification 1.0): the directives without a
    /// target, and those whose `;target` is `me`. `None` when none apply.
    pub fn parse_surrogate<'a>(values: impl Iterator<Item = &'a [u8]>, me: &str) -> Option<CacheControl> {
        let mut cc = CacheControl::default();
        let mut any = false;
        for v in values {
            for d in split_directives(v) {
                let (d, target) = match d.iter().position(|&b| b == b';') {
                    Some(i) => (&d[..i], Some(trim(&d[i + 1..]))),
                    None => (d, None),
                };
                if target.is_none_or(|t| t.eq_ignore_ascii_case(me.as_bytes())) {
                    any = true;
                    cc.apply(d);
                }
            }
        }
        any.then_some(cc)
    }

    /// A targeted cache-control field (RFC 9213 §2.1), such as `CDN-Cache-Control`: its lines
    /// joined (RFC 8941 §4.2) and parsed as a Structured Field Dictionary. `None` (the field is
    /// ignored) when there is no line, the value is empty, it is not a valid Dictionary, or a
    /// directive this cache knows has a value of the wrong type (`max-age` that is not a
    /// non-negative Integer, `no-store` that is not a Boolean, ...). Parameters and unknown
    /// directives are ignored; `private` and `no-cache` may carry a String of field names and
    /// then apply to the whole response, as in `Cache-Control`.
    pub fn parse_targeted<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<CacheControl> {
        let mut joined = Vec::new();
        for v in values {
            if !joined.is_empty() {
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(v);
        }
        if trim(&joined).is_empty() {
            return None;
        }
        let dict: sfv::Dictionary = sfv::Parser::new(&joined)
            .with_version(sfv::Version::Rfc8941)
            .parse()
            .ok()?;
        let mut cc = CacheControl::default();
        for (name, entry) in &dict {
            let sfv::ListEntry::Item(item) = entry else {
                // An inner list is never a valid argument of a known directive.
                if is_known_directive(name.as_str()) {
                    return None;
                }
                continue;
            };
            let v = &item.bare_item;
            let flag = || v.as_boolean();
            let secs = || v.as_integer().map(i64::from).and_then(|n| u64::try_from(n).ok());
            let field_list = || flag().or_else(|| v.as_string().map(|_| true));
            match name.as_str() {
                "no-store" => cc.no_store = flag()?,
                "no-cache" => cc.no_cache = field_list()?,
                "private" => cc.private = field_list()?,
                "public" => cc.public = flag()?,
                "must-revalidate" => cc.must_revalidate = flag()?,
                "proxy-revalidate" => cc.proxy_revalidate = flag()?,
                "must-understand" => cc.must_understand = flag()?,
                "max-age" => cc.max_age = Some(secs()?),
                "s-maxage" => cc.s_maxage = Some(secs()?),
                "stale-while-revalidate" => cc.stale_while_revalidate = Some(secs()?),
                "stale-if-error" => cc.stale_if_error = Some(secs()?),
                _ => {}
            }
        }
        Some(cc)
    }

    /// One directive. No whitespace is allowed around `=` (RFC 9111 §5.2): a directive
    /// written with it is ignored.
    fn apply(&mut self, d: &[u8]) {
        let cc = self;
        {
            {
                let (name, arg) = match d.iter().position(|&b| b == b'=') {
                    Some(i) => {
                        let (n, a) = (&d[..i], &d[i + 1..]);
                        if n.last().is_some_and(|c| c.is_ascii_whitespace())
                            || a.first().is_some_and(|c| c.is_ascii_whitespace())
                        {
                            return;
                        }
                        (n, Some(unquote(a)))
                    }
                    None => (d, None),
                };
                let secs = || arg.map(parse_delta).unwrap_or(Some(0)).or(Some(0));
                let name = name.to_ascii_lowercase();
                match name.as_slice() {
                    b"no-store" => cc.no_store = true,
                    b"no-cache" => cc.no_cache = true,
                    b"private" => cc.private = true,
                    b"public" => cc.public = true,
                    b"must-revalidate" => cc.must_revalidate = true,
                    b"proxy-revalidate" => cc.proxy_revalidate = true,
                    b"only-if-cached" => cc.only_if_cached = true,
                    // Duplicates: the first wins for max-age (the least surprising choice is
                    // the smallest, RFC 9111 §4.2.1 says treat as invalid → stale).
                    b"max-age" => cc.max_age = min_opt(cc.max_age, secs()),
                    b"s-maxage" => cc.s_maxage = min_opt(cc.s_maxage, secs()),
                    b"stale-while-revalidate" => cc.stale_while_revalidate = secs(),
                    b"stale-if-error" => cc.stale_if_error = secs(),
                    b"max-stale" => cc.max_stale = Some(arg.and_then(parse_delta).unwrap_or(u64::MAX / 4)),
                    b"min-fresh" => cc.min_fresh = secs(),
                    b"must-understand" => cc.must_understand = true,
                    _ => {}
                }
            }
        }
    }
}

/// Response directives [`CacheControl::parse_targeted`] checks the type of.
fn is_known_directive(name: &str) -> bool {
    matches!(
        name,
        "no-store"
            | "no-cache"
            | "private"
            | "public"
            | "must-revalidate"
            | "proxy-revalidate"
            | "must-understand"
            | "max-age"
            | "s-maxage"
            | "stale-while-revalidate"
            | "stale-if-error"
    )
}

/// Which field a response's caching directives came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `CDN-Cache-Control` (RFC 9213): `Cache-Control` and `Expires` are ignored.
    Cdn,
    /// `Surrogate-Control` directives aimed at this cache.
    Surrogate,
    /// `Cache-Control` (with `Expires` beside it).
    CacheControl,
}

/// The caching directives of a response (received or stored) and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    pub cc: CacheControl,
    pub from: Source,
}

impl Directives {
    /// Whether `Expires` counts: not when a targeted field decides (RFC 9213 §2.1).
    pub fn uses_expires(&self) -> bool {
        self.from != Source::Cdn
    }
}

/// The caching directives this cache obeys for a response: a valid, non-empty
/// `CDN-Cache-Control` (RFC 9213), else the `Surrogate-Control` directives aimed at
/// `surrogate_token`, else `Cache-Control`.
pub fn directives(headers: &[(String, Vec<u8>)], surrogate_token: &str) -> Directives {
    use super::fields::values;
    if let Some(cc) = CacheControl::parse_targeted(values(headers, "cdn-cache-control")) {
        return Directives {
            cc,
            from: Source::Cdn,
        };
    }
    if let Some(cc) = CacheControl::parse_surrogate(values(headers, "surrogate-control"), surrogate_token) {
        return Directives {
            cc,
            from: Source::Surrogate,
        };
    }
    Directives {
        cc: CacheControl::parse(values(headers, "cache-control")),
        from: Source::CacheControl,
    }
}

/// Response fields this cache consumes and does not send downstream (`lname` lowercase):
/// `Surrogate-Control`. `CDN-Cache-Control` is not among them: it goes on unchanged, so that
/// the next cache in a chain (a shield in front of an edge, another CDN) obeys it too.
pub fn consumed_here(lname: &str) -> bool {
    lname == "surrogate-control"
}

/// The `Age` a response carries (RFC 9111 §5.1), from every line of the field: the first
/// member of a list or of repeated lines, if it is a non-negative integer (an overflowing one
/// saturates); `None` when there is none or it is invalid (negative, fractional, with junk
/// before or after), and an invalid `Age` is ignored rather than taken as "very old".
pub fn age<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<u64> {
    let first = values
        .flat_map(|v| v.split(|&b| b == b','))
        .map(trim)
        .find(|m| !m.is_empty())?;
    parse_delta(first)
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Splits on commas outside quoted strings.
fn split_directives(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, &b) in v.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                parts.push(trim(&v[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(trim(&v[start..]));
    parts.into_iter().filter(|p| !p.is_empty())
}

fn unquote(v: &[u8]) -> &[u8] {
    if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// A delta-seconds value; overflow saturates (RFC 9111 §1.2.2).
pub fn parse_delta(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        v.iter()
            .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
            .unwrap_or(1 << 31),
    )
}

/// Parses an HTTP date into seconds since the epoch.
pub fn parse_date(v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(trim(v)).ok()?;
    let t = httpdate::parse_http_date(s).ok()?;
    t.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// A behavior's TTL bounds (seconds).
#[derive(Debug, Clone, Copy)]
pub struct Ttls {
    pub min: u64,
    pub default: u64,
    pub max: u64,
}

/// Statuses that may be cached without explicit freshness (RFC 9110 §15.1).
pub fn heuristically_cacheable(status: u16) -> bool {
    matches!(
        status,
        200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Statuses this cache stores at all (with explicit freshness, any final status it
/// understands).
pub fn understood(status: u16) -> bool {
    matches!(
        status,
        200 | 203
            | 204
            | 300
            | 301
            | 302
            | 303
            | 307
            | 308
            | 400
            | 403
            | 404
            | 405
            | 410
            | 414
            | 500
            | 501
            | 502
            | 503
            | 504
    )
}

/// What a response's header values say about caching it.
#[derive(Debug, Clone, Default)]
pub struct ResponseFacts {
    pub status: u16,
    pub cc: CacheControl,
    /// `Expires` (seconds since the epoch), `Some(0)` when present but invalid.
    pub expires: Option<u64>,
    /// `Date`, or the time received when absent.
    pub date: u64,
    pub has_validator: bool,
    pub vary_star: bool,
    /// The request carried `Authorization`.
    pub authorized: bool,
}

/// The freshness lifetime to store a response with, in seconds, or `None` if it is not
/// stored. CloudFront's rules: `s-maxage`, else `max-age`, else `Expires` decide, clamped to
/// [min, max]; with none of them, `default` (for statuses the RFC lets a cache assign
/// heuristic freshness to); `no-store`, `private` and `no-cache` prevent storing unless
/// `min` > 0, which then applies.
pub fn ttl(f: &ResponseFacts, t: Ttls) -> Option<u64> {
    let cc = &f.cc;
    if f.vary_star || !(200..600).contains(&f.status) || matches!(f.status, 206 | 304) {
        return None;
    }
    if cc.must_understand {
        if !understood(f.status) {
            return None;
        }
    } else if cc.no_store {
        return (t.min > 0).then_some(t.min);
    }
    if f.authorized && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate) {
        return None;
    }
    if cc.private || cc.no_cache {
        return (t.min > 0).then_some(t.min);
    }
    let explicit = cc.s_maxage.or(cc.max_age).or_else(|| {
        f.expires
            .map(|e| if e == 0 { 0 } else { e.saturating_sub(f.date) })
    });
    match explicit {
        Some(s) => Some(s.clamp(t.min, t.max)),
        None if heuristically_cacheable(f.status) || cc.public => Some(t.default.clamp(t.min, t.max)),
        None if t.min > 0 => Some(t.min),
        None => None,
    }
}

/// Age bookkeeping of RFC 9111 §4.2.3, in milliseconds.
pub fn initial_age_ms(age_header: Option<u64>, date_secs: u64, request_ms: u64, response_ms: u64) -> u64 {
    let apparent = response_ms.saturating_sub(date_secs * 1000);
    let corrected = age_header.unwrap_or(0) * 1000 + response_ms.saturating_sub(request_ms);
    apparent.max(corrected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(s: &str) -> CacheControl {
        CacheControl::parse(std::iter::once(s.as_bytes()))
    }

    fn facts(status: u16, c: &str) -> ResponseFacts {
        ResponseFacts {
            status,
            cc: cc(c),
            date: 1000,
            ..Default::default()
        }
    }

    const T: Ttls = Ttls {
        min: 0,
        default: 86400,
        max: 31_536_000,
    };

    #[test]
    fn parses_directives() {
        let c = cc("public, max-age=60, s-maxage=\"30\", stale-while-revalidate=5, no-transform");
        assert!(c.public);
        assert_eq!(c.max_age, Some(60));
        assert_eq!(c.s_maxage, Some(30));
        assert_eq!(c.stale_while_revalidate, Some(5));
        let c = cc("max-age=abc");
        assert_eq!(c.max_age, Some(0));
        let c = cc("private=\"a, b\", no-cache");
        assert!(c.private && c.no_cache);
        assert_eq!(cc("max-age=99999999999999999999").max_age, Some(1 << 31));
        assert_eq!(cc("MAX-AGE=5").max_age, Some(5));
        assert_eq!(cc("max-age =5").max_age, None);
        assert_eq!(cc("max-age= 5").max_age, None);
        let sc = |v: &str| CacheControl::parse_surrogate(std::iter::once(v.as_bytes()), "edge");
        assert_eq!(sc("max-age=60;edge").and_then(|c| c.max_age), Some(60));
        assert_eq!(sc("max-age=60;other"), None);
        assert_eq!(
            sc("no-store, max-age=5;other").map(|c| (c.no_store, c.max_age)),
            Some((true, None))
        );
    }

    #[test]
    fn cloudfront_ttls() {
        assert_eq!(ttl(&facts(200, "max-age=60"), T), Some(60));
        assert_eq!(ttl(&facts(200, "max-age=60, s-maxage=10"), T), Some(10));
        assert_eq!(ttl(&facts(200, ""), T), Some(86400));
        assert_eq!(ttl(&facts(302, ""), T), None);
        assert_eq!(ttl(&facts(299, "max-age=5"), T), Some(5));
        assert_eq!(ttl(&facts(299, "max-age=5, must-understand, no-store"), T), None);
        assert_eq!(
            ttl(&facts(200, "max-age=5, must-understand, no-store"), T),
            Some(5)
        );
        assert_eq!(ttl(&facts(206, "max-age=5"), T), None);
        assert_eq!(ttl(&facts(302, "max-age=5"), T), Some(5));
        assert_eq!(ttl(&facts(200, "no-store"), T), None);
        assert_eq!(ttl(&facts(200, "private, max-age=60"), T), None);
        let t = Ttls {
            min: 30,
            default: 60,
            max: 100,
        };
        assert_eq!(ttl(&facts(200, "no-cache"), t), Some(30));
        assert_eq!(ttl(&facts(200, "max-age=5"), t), Some(30));
        assert_eq!(ttl(&facts(200, "max-age=500"), t), Some(100));
        let mut f = facts(200, "");
        f.expires = Some(1100);
        assert_eq!(ttl(&f, T), Some(100));
        f.expires = Some(0);
        assert_eq!(ttl(&f, T), Some(0));
        let mut f = facts(200, "max-age=60");
        f.authorized = true;
        assert_eq!(ttl(&f, T), None);
        f.cc.public = true;
        assert_eq!(ttl(&f, T), Some(60));
        let mut f = facts(200, "max-age=60");
        f.vary_star = true;
        assert_eq!(ttl(&f, T), None);
    }

    fn lines(v: &[&str]) -> Vec<(String, Vec<u8>)> {
        v.iter()
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.to_string(), v.trim().as_bytes().to_vec())
            })
            .collect()
    }

    fn age_of(v: &[&str]) -> Option<u64> {
        let h = lines(v);
        age(crate::proxy::fields::values(&h, "age"))
    }

    #[test]
    fn age_is_the_first_member_and_an_invalid_one_is_ignored() {
        assert_eq!(age_of(&["Age: 30"]), Some(30));
        assert_eq!(age_of(&["Age:  30 "]), Some(30), "whitespace around is no junk");
        assert_eq!(age_of(&[]), None);
        // A list: its first member.
        assert_eq!(age_of(&["Age: 10, 20"]), Some(10));
        assert_eq!(age_of(&["Age: 20,10"]), Some(20));
        assert_eq!(age_of(&["Age: , 7"]), Some(7), "empty list elements do not count");
        // Repeated lines: the first line's.
        assert_eq!(age_of(&["Age: 10", "Age: 20"]), Some(10));
        assert_eq!(age_of(&["Age: 20", "age: 10"]), Some(20));
        // Invalid first members are ignored, not taken as old (nor is the next member used).
        for bad in [
            "abc", "-5", "-0", "1.5", "7200.0", "5x", "x5", "5 5", "+5", "0x10", "", "\"5\"",
        ] {
            assert_eq!(age_of(&[&format!("Age: {bad}")]), None, "{bad:?}");
        }
        assert_eq!(age_of(&["Age: abc", "Age: 5"]), None);
        assert_eq!(age_of(&["Age: -1, 5"]), None);
        // Valid but huge: very old indeed (delta-seconds saturate, RFC 9111 §1.2.2).
        assert_eq!(age_of(&["Age: 2147483648"]), Some(2_147_483_648));
        assert_eq!(age_of(&["Age: 99999999999999999999999"]), Some(1 << 31));
    }

    fn cdn(v: &[&str]) -> Option<CacheControl> {
        CacheControl::parse_targeted(v.iter().map(|l| l.as_bytes()))
    }

    #[test]
    fn cdn_cache_control_is_a_structured_dictionary() {
        let c = cdn(&["max-age=60, s-maxage=30, stale-while-revalidate=5, stale-if-error=9"]).unwrap();
        assert_eq!(
            (c.max_age, c.s_maxage, c.stale_while_revalidate, c.stale_if_error),
            (Some(60), Some(30), Some(5), Some(9))
        );
        let c = cdn(&["no-store, no-cache, private, public, must-revalidate, proxy-revalidate"]).unwrap();
        assert!(c.no_store && c.no_cache && c.private && c.public && c.must_revalidate && c.proxy_revalidate);
        // Lines are joined; the last of a repeated key wins (RFC 8941 §4.2.2).
        let c = cdn(&["max-age=60", "private"]).unwrap();
        assert_eq!((c.max_age, c.private), (Some(60), true));
        assert_eq!(cdn(&["max-age=60, max-age=5"]).unwrap().max_age, Some(5));
        // Parameters and unknown directives (of any type) are ignored.
        assert_eq!(cdn(&["max-age=60;foo=bar"]).unwrap().max_age, Some(60));
        assert_eq!(
            cdn(&["max-age=60, x-ext=(a b), y=\"s\", z=1.5"]).unwrap().max_age,
            Some(60)
        );
        // Field names for private / no-cache: the directive applies to the whole response.
        assert!(cdn(&["private=\"set-cookie\""]).unwrap().private);
        assert!(cdn(&["no-cache=\"a, b\""]).unwrap().no_cache);
        // Boolean false: the directive is off.
        assert!(!cdn(&["no-store=?0, max-age=5"]).unwrap().no_store);
        // Spaces around '=' are not in the grammar (but are after ',').
        assert_eq!(cdn(&["max-age=5,  public"]).unwrap().max_age, Some(5));
    }

    #[test]
    fn an_invalid_cdn_cache_control_is_ignored_whole() {
        for bad in [
            "",
            "   ",
            "max-age=\"60\"",
            "max-age=6.0",
            "max-age=-1",
            "max-age=1e3",
            "max-age=1q",
            "max-age=a100",
            "max-age=(1 2)",
            "max-age=?1",
            "max-age =60",
            "max-age= 60",
            "Max-Age=60",
            "max-age=60,",
            "max-age=60,, public",
            "no-store=1",
            "no-store=\"yes\"",
            "public=tok",
            "private=(a b)",
            "max-age=60, s-maxage=x",
            "max-age=60 private",
            "max-age=@1700000000",
        ] {
            assert_eq!(cdn(&[bad]), None, "{bad:?}");
        }
        // One bad line spoils the field.
        assert_eq!(cdn(&["max-age=60", "s-maxage=\"1\""]), None);
        assert_eq!(cdn(&[]), None);
    }

    #[test]
    fn a_valid_cdn_cache_control_decides_else_the_next_field() {
        let d = |v: &[&str]| directives(&lines(v), "slabfront");
        let x = d(&["Cache-Control: no-store", "CDN-Cache-Control: max-age=60"]);
        assert_eq!(
            (x.cc.max_age, x.cc.no_store, x.from),
            (Some(60), false, Source::Cdn)
        );
        assert!(!x.uses_expires(), "RFC 9213 §2.1: Expires is ignored too");
        let x = d(&["Cache-Control: max-age=5", "CDN-Cache-Control: max-age=\"60\""]);
        assert_eq!((x.cc.max_age, x.from), (Some(5), Source::CacheControl));
        assert!(x.uses_expires());
        let x = d(&["Cache-Control: max-age=5", "CDN-Cache-Control: "]);
        assert_eq!((x.cc.max_age, x.from), (Some(5), Source::CacheControl));
        let x = d(&[
            "Cache-Control: max-age=5",
            "Surrogate-Control: max-age=7;slabfront",
            "CDN-Cache-Control: max-age=-60",
        ]);
        assert_eq!((x.cc.max_age, x.from), (Some(7), Source::Surrogate));
        let x = d(&["Surrogate-Control: max-age=7", "CDN-Cache-Control: no-store"]);
        assert_eq!((x.cc.no_store, x.from), (true, Source::Cdn));
        assert!(consumed_here("surrogate-control"));
        assert!(!consumed_here("cdn-cache-control"), "forwarded to the next cache");
    }

    #[test]
    fn ages() {
        // Date 10 s before the response arrived, Age 3, 1 s of delay.
        assert_eq!(initial_age_ms(Some(3), 100, 109_000, 110_000), 10_000);
        assert_eq!(initial_age_ms(Some(30), 100, 109_000, 110_000), 31_000);
        assert_eq!(initial_age_ms(None, 200, 109_000, 110_000), 1_000);
    }
}
