//! A signed URL's custom policy: the JSON statement CloudFront's signers produce, read with
//! serde_json, and the two matches it asks for (a `Resource` with `*` and `?` wildcards
//! against the full URL, an `IpAddress` in CIDR form against the viewer's address).

use serde::Deserialize;
use std::net::IpAddr;

#[derive(Deserialize)]
struct Doc {
    #[serde(rename = "Statement")]
    statement: Vec<Statement>,
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "Resource")]
    resource: Option<String>,
    #[serde(rename = "Condition")]
    condition: Condition,
}

#[derive(Deserialize)]
struct Condition {
    #[serde(rename = "DateLessThan")]
    date_less_than: Epoch,
    #[serde(rename = "DateGreaterThan")]
    date_greater_than: Option<Epoch>,
    #[serde(rename = "IpAddress")]
    ip_address: Option<SourceIp>,
}

#[derive(Deserialize)]
struct Epoch {
    #[serde(rename = "AWS:EpochTime")]
    epoch: u64,
}

#[derive(Deserialize)]
struct SourceIp {
    #[serde(rename = "AWS:SourceIp")]
    source_ip: String,
}

/// A custom policy as verification uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomPolicy {
    /// `None`: every URL (CloudFront allows the `Resource` to be left out).
    pub resource: Option<String>,
    pub date_less_than: u64,
    pub date_greater_than: Option<u64>,
    pub ip: Option<Cidr>,
}

impl CustomPolicy {
    /// The policy of a JSON document with one statement, or `None` when it is not one.
    pub fn parse(json: &[u8]) -> Option<CustomPolicy> {
        let doc: Doc = serde_json::from_slice(json).ok()?;
        let [s] = <[Statement; 1]>::try_from(doc.statement).ok()?;
        let ip = match s.condition.ip_address {
            Some(a) => Some(Cidr::parse(&a.source_ip)?),
            None => None,
        };
        Some(CustomPolicy {
            resource: s.resource,
            date_less_than: s.condition.date_less_than.epoch,
            date_greater_than: s.condition.date_greater_than.map(|e| e.epoch),
            ip,
        })
    }

    /// Whether the policy's `Resource` covers `url`.
    pub fn covers(&self, url: &str) -> bool {
        self.resource
            .as_deref()
            .is_none_or(|r| wildcard_match(r.as_bytes(), url.as_bytes()))
    }
}

/// `*` matches any run of bytes, `?` exactly one (CloudFront's policy wildcards).
pub fn wildcard_match(pattern: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < pattern.len() && (pattern[pi] == b'?' || pattern[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < pattern.len() && pattern[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    pattern[pi..].iter().all(|&b| b == b'*')
}

/// An address block in CIDR form (an address alone is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (
                a.trim().parse::<IpAddr>().ok()?,
                Some(b.trim().parse::<u8>().ok()?),
            ),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { net: addr, bits })
    }

    /// Whether `ip` is inside the block (an IPv4-mapped IPv6 viewer counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_custom_policy_reads_its_conditions() {
        let p = CustomPolicy::parse(
            br#"{"Statement":[{"Resource":"http://h/a/*","Condition":{"DateLessThan":{"AWS:EpochTime":20},"DateGreaterThan":{"AWS:EpochTime":5},"IpAddress":{"AWS:SourceIp":"10.0.0.0/8"}}}]}"#,
        )
        .unwrap();
        assert_eq!(p.date_less_than, 20);
        assert_eq!(p.date_greater_than, Some(5));
        assert!(p.covers("http://h/a/b?c=1"));
        assert!(!p.covers("http://h/b"));
        assert!(p.ip.unwrap().contains("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn policies_without_an_expiry_or_with_two_statements_are_refused() {
        assert!(CustomPolicy::parse(br#"{"Statement":[{"Resource":"x","Condition":{}}]}"#).is_none());
        let one = r#"{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":1}}}"#;
        assert!(CustomPolicy::parse(format!(r#"{{"Statement":[{one},{one}]}}"#).as_bytes()).is_none());
        assert!(CustomPolicy::parse(format!(r#"{{"Statement":[{one}]}}"#).as_bytes()).is_some());
    }

    #[test]
    fn wildcards_match_as_cloudfront_documents() {
        assert!(wildcard_match(b"*", b"anything"));
        assert!(wildcard_match(b"http://h/*.jpg", b"http://h/a/b.jpg"));
        assert!(!wildcard_match(b"http://h/*.jpg", b"http://h/a/b.png"));
        assert!(wildcard_match(b"http://h/?.txt", b"http://h/a.txt"));
        assert!(!wildcard_match(b"http://h/?.txt", b"http://h/ab.txt"));
    }

    #[test]
    fn cidr_blocks_cover_their_prefix_only() {
        let c = Cidr::parse("192.0.2.0/25").unwrap();
        assert!(c.contains("192.0.2.127".parse().unwrap()));
        assert!(!c.contains("192.0.2.128".parse().unwrap()));
        assert!(c.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(Cidr::parse("2001:db8::/32")
            .unwrap()
            .contains("2001:db8:1::1".parse().unwrap()));
        assert!(Cidr::parse("1.2.3.4/33").is_none());
        assert!(Cidr::parse("1.2.3.4")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
    }
}
