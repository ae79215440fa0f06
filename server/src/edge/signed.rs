//! Signed URLs and signed cookies, verified as CloudFront verifies them.
//!
//! A request to a behavior with `trusted_key_groups` carries a canned policy (`Expires`,
//! `Signature`, `Key-Pair-Id`) or a custom one (`Policy`, `Signature`, `Key-Pair-Id`) in its
//! query, or the same as `CloudFront-*` cookies. The signature is RSA PKCS#1 v1.5 over SHA-1
//! (RSA-2048 keys) or ECDSA over SHA-256 (P-256 keys), over the policy's JSON: for a canned
//! policy the statement CloudFront's signers build from the URL and `Expires`, for a custom
//! one the JSON the `Policy` value carries. Values use CloudFront's URL-safe base64
//! (`+` → `-`, `=` → `_`, `/` → `~`). The crypto is `ring`'s (the one rustls links); the
//! policy JSON is read with serde_json.

use super::policy::{Cidr, CustomPolicy};
use ahash::AHashMap;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, VerificationAlgorithm};
use std::net::IpAddr;

/// Why a signed request was refused: the log's and the counters' reason, and the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Key-Pair-Id` (or no signing parameters at all).
    Missing,
    /// A `Key-Pair-Id` no trusted key group holds.
    UnknownKey,
    /// The signature, policy or expiry cannot be decoded.
    Malformed,
    /// The signature does not verify.
    BadSignature,
    /// `DateLessThan` / `Expires` is past.
    Expired,
    /// `DateGreaterThan` is still ahead.
    NotYetValid,
    /// The viewer's address is outside the policy's `IpAddress`.
    WrongIp,
    /// The policy's `Resource` does not cover this URL.
    WrongResource,
}

/// Every reason, in the counters' order.
pub const REASONS: [Refusal; 8] = [
    Refusal::Missing,
    Refusal::UnknownKey,
    Refusal::Malformed,
    Refusal::BadSignature,
    Refusal::Expired,
    Refusal::NotYetValid,
    Refusal::WrongIp,
    Refusal::WrongResource,
];

impl Refusal {
    /// The reason's name in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing_key_pair_id",
            Refusal::UnknownKey => "unknown_key",
            Refusal::Malformed => "malformed",
            Refusal::BadSignature => "bad_signature",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::WrongIp => "wrong_ip",
            Refusal::WrongResource => "resource_mismatch",
        }
    }

    /// The index of the reason in [`REASONS`].
    pub fn index(self) -> usize {
        REASONS.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// CloudFront's error code and short message for the reason.
    pub fn code_and_message(self) -> (&'static str, &'static str) {
        match self {
            Refusal::Missing => (
                "MissingKey",
                "Missing Key-Pair-Id query parameter or cookie value",
            ),
            Refusal::UnknownKey => ("InvalidKey", "Unknown Key"),
            Refusal::Malformed => ("MalformedSignature", "Malformed signature or policy"),
            Refusal::BadSignature => ("AccessDenied", "Access denied"),
            Refusal::Expired | Refusal::NotYetValid => ("AccessDenied", "Access denied"),
            Refusal::WrongIp | Refusal::WrongResource => ("AccessDenied", "Access denied"),
        }
    }

    /// The 403 body, CloudFront's XML.
    pub fn body(self) -> String {
        let (code, message) = self.code_and_message();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        )
    }
}

/// One trusted public key.
pub struct Key {
    algorithm: &'static dyn VerificationAlgorithm,
    key: Vec<u8>,
}

impl Key {
    pub fn new(m: &config::KeyMaterial) -> Key {
        let algorithm: &'static dyn VerificationAlgorithm = match m.algorithm {
            config::KeyAlgorithm::RsaSha1 => &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            config::KeyAlgorithm::EcdsaP256Sha256 => &ring::signature::ECDSA_P256_SHA256_ASN1,
        };
        Key {
            algorithm,
            key: m.key.clone(),
        }
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(self.algorithm, &self.key)
            .verify(message, signature)
            .is_ok()
    }
}

/// The keys of a behavior's trusted key groups, by key pair id.
#[derive(Default)]
pub struct Trusted {
    keys: AHashMap<String, Key>,
}

impl Trusted {
    /// The keys of the named groups (the configuration was validated: every group exists,
    /// every key parses).
    pub fn new(cfg: &config::Config, groups: &[String]) -> Result<Trusted, String> {
        let mut keys = AHashMap::new();
        for g in groups.iter().filter_map(|g| cfg.key_group(g)) {
            for k in &g.public_keys {
                let m = k.material().map_err(|e| format!("public key {:?}: {e}", k.id))?;
                keys.insert(k.id.clone(), Key::new(&m));
            }
        }
        Ok(Trusted { keys })
    }
}

/// The signing values a request carries, from its query or its cookies.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Material {
    pub expires: Option<Vec<u8>>,
    pub policy: Option<Vec<u8>>,
    pub signature: Option<Vec<u8>>,
    pub key_pair_id: Option<Vec<u8>>,
}

impl Material {
    fn set(&mut self, name: &[u8], value: &[u8]) -> bool {
        let slot = match name {
            b"Expires" => &mut self.expires,
            b"Policy" => &mut self.policy,
            b"Signature" => &mut self.signature,
            b"Key-Pair-Id" => &mut self.key_pair_id,
            _ => return false,
        };
        let v: Vec<u8> = percent_encoding::percent_decode(value).collect();
        *slot = Some(v);
        true
    }
}

/// The query's signing parameters, and the query without them (order kept): what the cache
/// key and the origin request use.
pub fn split_query(query: &[u8]) -> (Material, Vec<u8>) {
    let mut m = Material::default();
    let mut rest = Vec::with_capacity(query.len());
    for pair in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        if !m.set(name, value) {
            if !rest.is_empty() {
                rest.push(b'&');
            }
            rest.extend_from_slice(pair);
        }
    }
    (m, rest)
}

/// The `CloudFront-*` signing cookies of a request's `Cookie` fields.
pub fn cookie_material<'a>(cookies: impl Iterator<Item = &'a [u8]>) -> Material {
    let mut m = Material::default();
    for c in cookies.flat_map(|v| v.split(|&b| b == b';')) {
        let c = c.trim_ascii();
        let Some(i) = c.iter().position(|&b| b == b'=') else {
            continue;
        };
        if let Some(name) = c[..i].strip_prefix(b"CloudFront-") {
            m.set(name, &c[i + 1..]);
        }
    }
    m
}

/// The query without its signing parameters (order kept), without decoding anything.
pub fn strip_query(query: &[u8]) -> Vec<u8> {
    let mut rest = Vec::with_capacity(query.len());
    for pair in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
        if !matches!(name, b"Expires" | b"Policy" | b"Signature" | b"Key-Pair-Id") {
            if !rest.is_empty() {
                rest.push(b'&');
            }
            rest.extend_from_slice(pair);
        }
    }
    rest
}

/// Whether a `name=value` cookie pair is one of CloudFront's signing cookies.
pub fn is_signing_cookie(pair: &[u8]) -> bool {
    let name = pair.split(|&b| b == b'=').next().unwrap_or_default().trim_ascii();
    matches!(
        name,
        b"CloudFront-Expires" | b"CloudFront-Policy" | b"CloudFront-Signature" | b"CloudFront-Key-Pair-Id"
    )
}

/// Whether a query has any signing parameter (cheap: no allocation).
pub fn query_has_material(query: &[u8]) -> bool {
    query.split(|&b| b == b'&').any(|p| {
        let name = p.split(|&b| b == b'=').next().unwrap_or_default();
        matches!(name, b"Expires" | b"Policy" | b"Signature" | b"Key-Pair-Id")
    })
}

/// What a verified signature allows; kept per worker for repeats of the same URL or cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Epoch second from which the signature is no longer valid (`DateLessThan`).
    pub until: u64,
    /// Epoch second before which it is not yet valid (`DateGreaterThan`; 0 for none).
    pub not_before: u64,
    pub ip: Option<Cidr>,
}

impl Grant {
    /// Whether the grant holds now for this viewer.
    pub fn check(&self, now: u64, peer: Option<IpAddr>) -> Result<(), Refusal> {
        if now >= self.until {
            return Err(Refusal::Expired);
        }
        if now <= self.not_before && self.not_before != 0 {
            return Err(Refusal::NotYetValid);
        }
        if let Some(net) = &self.ip {
            if !peer.is_some_and(|p| net.contains(p)) {
                return Err(Refusal::WrongIp);
            }
        }
        Ok(())
    }
}

/// CloudFront's URL-safe base64 decoded.
pub fn decode_b64(v: &[u8]) -> Option<Vec<u8>> {
    let std: Vec<u8> = v
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|&b| match b {
            b'-' => b'+',
            b'_' => b'=',
            b'~' => b'/',
            b => b,
        })
        .collect();
    base64::engine::general_purpose::STANDARD.decode(std).ok()
}

/// The canned policy statement CloudFront's signers sign for `url` and `expires`.
pub fn canned_policy(url: &str, expires: u64) -> String {
    format!(
        "{{\"Statement\":[{{\"Resource\":\"{url}\",\"Condition\":{{\"DateLessThan\":{{\"AWS:EpochTime\":{expires}}}}}}}]}}"
    )
}

/// Verifies signing material for the resource `url` (`scheme://host/path?query` without the
/// signing parameters), at `now` (epoch seconds), for the viewer at `peer`.
pub fn verify(
    trusted: &Trusted,
    m: &Material,
    url: &str,
    now: u64,
    peer: Option<IpAddr>,
) -> Result<Grant, Refusal> {
    let Some(id) = m.key_pair_id.as_deref() else {
        return Err(Refusal::Missing);
    };
    let key = std::str::from_utf8(id)
        .ok()
        .and_then(|id| trusted.keys.get(id))
        .ok_or(Refusal::UnknownKey)?;
    let signature = m
        .signature
        .as_deref()
        .and_then(decode_b64)
        .ok_or(Refusal::Malformed)?;
    let grant = match (&m.policy, &m.expires) {
        (Some(p), _) => {
            let json = decode_b64(p).ok_or(Refusal::Malformed)?;
            if !key.verify(&json, &signature) {
                return Err(Refusal::BadSignature);
            }
            let policy = CustomPolicy::parse(&json).ok_or(Refusal::Malformed)?;
            if !policy.covers(url) {
                return Err(Refusal::WrongResource);
            }
            Grant {
                until: policy.date_less_than,
                not_before: policy.date_greater_than.unwrap_or(0),
                ip: policy.ip,
            }
        }
        (None, Some(e)) => {
            let expires: u64 = std::str::from_utf8(e)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse().ok())
                .ok_or(Refusal::Malformed)?;
            if !key.verify(canned_policy(url, expires).as_bytes(), &signature) {
                return Err(Refusal::BadSignature);
            }
            Grant {
                until: expires,
                not_before: 0,
                ip: None,
            }
        }
        (None, None) => return Err(Refusal::Malformed),
    };
    grant.check(now, peer)?;
    Ok(grant)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signing_parameters_leave_the_query_in_order() {
        let (m, rest) = split_query(b"a=1&Expires=10&b=2&Signature=x-y_&Key-Pair-Id=K1&c");
        assert_eq!(rest, b"a=1&b=2&c");
        assert_eq!(
            strip_query(b"a=1&Expires=10&b=2&Signature=x-y_&Key-Pair-Id=K1&c"),
            rest
        );
        assert_eq!(m.expires.as_deref(), Some(&b"10"[..]));
        assert_eq!(m.signature.as_deref(), Some(&b"x-y_"[..]));
        assert_eq!(m.key_pair_id.as_deref(), Some(&b"K1"[..]));
        assert!(query_has_material(b"x=1&Policy=abc"));
        assert!(!query_has_material(b"Expiresx=1&signature=2"));
    }

    #[test]
    fn cookies_are_read_by_their_cloudfront_names() {
        let m = cookie_material(
            [
                &b"a=b; CloudFront-Policy=eyJ; CloudFront-Signature=s~"[..],
                b"CloudFront-Key-Pair-Id=K",
            ]
            .into_iter(),
        );
        assert_eq!(m.policy.as_deref(), Some(&b"eyJ"[..]));
        assert_eq!(m.signature.as_deref(), Some(&b"s~"[..]));
        assert_eq!(m.key_pair_id.as_deref(), Some(&b"K"[..]));
    }

    #[test]
    fn cloudfront_base64_maps_its_three_characters() {
        // "??>" is "Pz8+" in standard base64; "?" alone is "Pw==".
        assert_eq!(decode_b64(b"Pz8-").unwrap(), b"??>");
        assert_eq!(decode_b64(b"Pw__").unwrap(), b"?");
        assert_eq!(decode_b64(b"_w~~").unwrap_or_default().len(), 0);
    }

    #[test]
    fn canned_policy_is_the_signers_exact_text() {
        assert_eq!(
            canned_policy("https://d.example/a?b=1", 1700000000),
            r#"{"Statement":[{"Resource":"https://d.example/a?b=1","Condition":{"DateLessThan":{"AWS:EpochTime":1700000000}}}]}"#
        );
    }

    #[test]
    fn grants_end_at_expiry_and_hold_to_their_network() {
        let g = Grant {
            until: 100,
            not_before: 10,
            ip: Some(Cidr::parse("127.0.0.0/8").unwrap()),
        };
        let lo: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(g.check(50, Some(lo)), Ok(()));
        assert_eq!(g.check(100, Some(lo)), Err(Refusal::Expired));
        assert_eq!(g.check(5, Some(lo)), Err(Refusal::NotYetValid));
        assert_eq!(
            g.check(50, Some("10.0.0.1".parse().unwrap())),
            Err(Refusal::WrongIp)
        );
    }

    #[test]
    fn unknown_and_missing_keys_are_told_apart() {
        let t = Trusted::default();
        let m = Material::default();
        assert_eq!(verify(&t, &m, "http://h/", 0, None), Err(Refusal::Missing));
        let m = Material {
            key_pair_id: Some(b"K".to_vec()),
            ..Material::default()
        };
        assert_eq!(verify(&t, &m, "http://h/", 0, None), Err(Refusal::UnknownKey));
    }
}
