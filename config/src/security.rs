//! Edge security: `[[key_groups]]` (the public keys that verify signed URLs and cookies,
//! named by a behavior's `trusted_key_groups`) and `[[response_headers_policies]]` (CORS,
//! security and custom headers a behavior names with `response_headers_policy`), in
//! CloudFront's terms.
//!
//! Public keys are parsed here, at load, so that a bad PEM is a configuration error naming
//! its key, never a request-time surprise; the server takes the parsed key
//! ([`PublicKey::material`]) as its verifier needs it.

use crate::schema::{yes, Config};
use serde::Deserialize;
use std::collections::HashSet;

/// `[[key_groups]]`: CloudFront's key group, a set of public keys a behavior trusts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyGroup {
    /// What `trusted_key_groups` names.
    pub id: String,
    #[serde(default)]
    pub comment: String,
    /// `[[key_groups.public_keys]]`.
    #[serde(default)]
    pub public_keys: Vec<PublicKey>,
}

/// One public key of a key group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKey {
    /// The value viewers send as `Key-Pair-Id` (CloudFront's public key id).
    pub id: String,
    /// A PEM file holding a `PUBLIC KEY` block (RSA-2048 or ECDSA P-256).
    #[serde(default)]
    pub pem_file: Option<String>,
    /// The PEM text itself, instead of `pem_file`.
    #[serde(default)]
    pub pem: Option<String>,
}

/// The signature scheme a key verifies, as CloudFront uses each kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA-2048, PKCS#1 v1.5 signatures over SHA-1.
    RsaSha1,
    /// ECDSA on P-256, ASN.1 (DER) signatures over SHA-256.
    EcdsaP256Sha256,
}

/// A parsed public key: its scheme and the key as verifiers take it (PKCS#1
/// `RSAPublicKey` DER for RSA, the uncompressed point for ECDSA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMaterial {
    pub algorithm: KeyAlgorithm,
    pub key: Vec<u8>,
}

impl PublicKey {
    /// The PEM text (read from `pem_file` when that is how it was given).
    pub fn pem_text(&self) -> Result<String, String> {
        match (&self.pem, &self.pem_file) {
            (Some(p), None) => Ok(p.clone()),
            (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| format!("{f:?}: {e}")),
            (Some(_), Some(_)) => Err("give either pem or pem_file, not both".into()),
            (None, None) => Err("needs pem or pem_file".into()),
        }
    }

    /// The key, parsed and checked: RSA-2048 or ECDSA P-256, as CloudFront accepts.
    pub fn material(&self) -> Result<KeyMaterial, String> {
        parse_public_key(&self.pem_text()?)
    }
}

/// Parses a `PUBLIC KEY` PEM block (SubjectPublicKeyInfo).
pub fn parse_public_key(pem: &str) -> Result<KeyMaterial, String> {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey as Parsed;
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.trim_start().as_bytes())
        .map_err(|_| "is not PEM text (-----BEGIN PUBLIC KEY----- ...)".to_string())?;
    if block.label != "PUBLIC KEY" {
        return Err(format!(
            "holds a {:?} block; a \"PUBLIC KEY\" block is needed (openssl pkey -pubout)",
            block.label
        ));
    }
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&block.contents)
        .map_err(|e| format!("the public key cannot be read: {e}"))?;
    let key = spki.subject_public_key.data.to_vec();
    match spki.parsed() {
        Ok(Parsed::RSA(rsa)) if rsa.key_size() == 2048 => Ok(KeyMaterial {
            algorithm: KeyAlgorithm::RsaSha1,
            key,
        }),
        Ok(Parsed::RSA(rsa)) => Err(format!(
            "is an RSA key of {} bits; CloudFront keys are RSA-2048 or ECDSA P-256",
            rsa.key_size()
        )),
        Ok(Parsed::EC(_)) => {
            let p256 = x509_parser::oid_registry::OID_EC_P256;
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
            if curve.as_ref() == Some(&p256) {
                Ok(KeyMaterial {
                    algorithm: KeyAlgorithm::EcdsaP256Sha256,
                    key,
                })
            } else {
                Err("is an EC key on another curve than P-256 (prime256v1)".into())
            }
        }
        _ => Err("is neither an RSA nor an EC public key".into()),
    }
}

/// `[[response_headers_policies]]`: CloudFront's response headers policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseHeadersPolicy {
    /// What a behavior's `response_headers_policy` names.
    pub name: String,
    #[serde(default)]
    pub comment: String,
    #[serde(default)]
    pub cors: Option<Cors>,
    #[serde(default)]
    pub security_headers: SecurityHeaders,
    #[serde(default)]
    pub custom_headers: Vec<CustomHeader>,
    /// Header names removed from every response.
    #[serde(default)]
    pub remove_headers: Vec<String>,
    #[serde(default)]
    pub server_timing: Option<ServerTiming>,
}

/// CORS: the `Access-Control-*` headers, and whether preflights are answered here (when
/// `access_control_allow_methods` lists `OPTIONS` or `ALL`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// Origins allowed (`https://app.example.com`, `*`; `https://*.example.com` wildcards).
    pub access_control_allow_origins: Vec<String>,
    /// Request headers allowed in preflights (`*` for any).
    #[serde(default)]
    pub access_control_allow_headers: Vec<String>,
    /// `GET`, `POST`, `OPTIONS`, `PUT`, `DELETE`, `PATCH`, `HEAD` or `ALL`.
    #[serde(default)]
    pub access_control_allow_methods: Vec<String>,
    #[serde(default)]
    pub access_control_expose_headers: Vec<String>,
    #[serde(default)]
    pub access_control_max_age_sec: Option<u64>,
    #[serde(default)]
    pub access_control_allow_credentials: bool,
    /// The policy's headers replace the origin's.
    #[serde(default = "yes")]
    pub origin_override: bool,
}

/// The security headers, each with its `override`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityHeaders {
    #[serde(default)]
    pub strict_transport_security: Option<StrictTransportSecurity>,
    #[serde(default)]
    pub content_type_options: Option<ContentTypeOptions>,
    #[serde(default)]
    pub frame_options: Option<FrameOptions>,
    #[serde(default)]
    pub referrer_policy: Option<ReferrerPolicy>,
    #[serde(default)]
    pub content_security_policy: Option<ContentSecurityPolicy>,
    #[serde(default)]
    pub xss_protection: Option<XssProtection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrictTransportSecurity {
    pub access_control_max_age_sec: u64,
    #[serde(default)]
    pub include_subdomains: bool,
    #[serde(default)]
    pub preload: bool,
    #[serde(default = "yes", rename = "override")]
    pub override_origin: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentTypeOptions {
    #[serde(default = "yes", rename = "override")]
    pub override_origin: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameOptions {
    /// `DENY` or `SAMEORIGIN`.
    pub frame_option: String,
    #[serde(default = "yes", rename = "override")]
    pub override_origin: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferrerPolicy {
    pub referrer_policy: String,
    #[serde(default = "yes", rename = "override")]
    pub override_origin: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentSecurityPolicy {
    pub content_security_policy: String,
    #[serde(default = "yes", rename = "override")]
    pub override_origin: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XssProtection {
    pub protection: bool,
    #[serde(default)]
    pub mode_block: bool,
    #[serde(default)]
    pub report_uri: Option<String>,
    #[serde(default = "yes", rename = "override")]
    pub override_origin: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomHeader {
    pub header: String,
    pub value: String,
    #[serde(default = "yes", rename = "override")]
    pub override_origin: bool,
}

/// `Server-Timing` on a share of responses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTiming {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Percent of responses (0-100) that get the header.
    #[serde(default = "hundred")]
    pub sampling_rate: f64,
}

fn hundred() -> f64 {
    100.0
}

/// CloudFront's managed response headers policies: (name, published id).
pub const MANAGED_POLICIES: [(&str, &str); 5] = [
    ("SimpleCORS", "60669652-455b-4ae9-85a4-c4c02393f86c"),
    ("CORS-With-Preflight", "5cc3b908-e619-4b99-88e5-2cf7f45965bd"),
    ("SecurityHeadersPolicy", "67f7725c-6f97-4210-82d7-5512b31e9d03"),
    (
        "CORS-and-SecurityHeadersPolicy",
        "e61eb60c-9c35-4d20-a928-2b84e02af89c",
    ),
    (
        "CORS-With-Preflight-And-SecurityHeadersPolicy",
        "eaab4381-ed33-4a86-88ca-d9558dc6cd63",
    ),
];

/// A managed policy by name (also with the console's `Managed-` prefix), as CloudFront
/// publishes it.
pub fn managed_policy(name: &str) -> Option<ResponseHeadersPolicy> {
    let name = name.strip_prefix("Managed-").unwrap_or(name);
    let (canonical, _) = MANAGED_POLICIES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))?;
    let simple = Cors {
        access_control_allow_origins: vec!["*".into()],
        access_control_allow_headers: Vec::new(),
        access_control_allow_methods: vec!["GET".into(), "HEAD".into()],
        origin_override: false,
        ..Cors::default()
    };
    let preflight = Cors {
        access_control_allow_origins: vec!["*".into()],
        access_control_allow_headers: vec!["*".into()],
        access_control_allow_methods: ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
            .map(String::from)
            .to_vec(),
        access_control_expose_headers: vec!["*".into()],
        origin_override: false,
        ..Cors::default()
    };
    let security = SecurityHeaders {
        strict_transport_security: Some(StrictTransportSecurity {
            access_control_max_age_sec: 31_536_000,
            include_subdomains: false,
            preload: false,
            override_origin: false,
        }),
        content_type_options: Some(ContentTypeOptions {
            override_origin: true,
        }),
        frame_options: Some(FrameOptions {
            frame_option: "SAMEORIGIN".into(),
            override_origin: false,
        }),
        referrer_policy: Some(ReferrerPolicy {
            referrer_policy: "strict-origin-when-cross-origin".into(),
            override_origin: false,
        }),
        content_security_policy: None,
        xss_protection: Some(XssProtection {
            protection: true,
            mode_block: true,
            report_uri: None,
            override_origin: false,
        }),
    };
    let (cors, security_headers) = match *canonical {
        "SimpleCORS" => (Some(simple), SecurityHeaders::default()),
        "CORS-With-Preflight" => (Some(preflight), SecurityHeaders::default()),
        "SecurityHeadersPolicy" => (None, security),
        "CORS-and-SecurityHeadersPolicy" => (Some(simple), security),
        _ => (Some(preflight), security),
    };
    Some(ResponseHeadersPolicy {
        name: (*canonical).into(),
        cors,
        security_headers,
        ..ResponseHeadersPolicy::default()
    })
}

impl Config {
    /// The key group with this id.
    pub fn key_group(&self, id: &str) -> Option<&KeyGroup> {
        self.key_groups.iter().find(|g| g.id == id)
    }

    /// The response headers policy with this name: a `[[response_headers_policies]]` entry,
    /// else a managed policy.
    pub fn response_headers_policy(&self, name: &str) -> Option<ResponseHeadersPolicy> {
        self.response_headers_policies
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .or_else(|| managed_policy(name))
    }
}

/// A header name as HTTP allows it (a token).
fn valid_header_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value without control characters.
fn valid_header_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (b' '..0x7f).contains(&b))
}

/// The checks of `[[key_groups]]` and `[[response_headers_policies]]` (shared by every
/// distribution).
pub(crate) fn check_definitions(
    cfg: &Config,
    bad: &impl Fn(String, String),
    machine: &impl Fn(String, String),
) {
    let mut groups = HashSet::new();
    let mut key_ids = HashSet::new();
    for (i, g) in cfg.key_groups.iter().enumerate() {
        let k = |f: &str| format!("key_groups[{i}].{f}");
        if g.id.is_empty() {
            bad(k("id"), "must not be empty".into());
        } else if !groups.insert(g.id.as_str()) {
            bad(k("id"), format!("key group {:?} is defined twice", g.id));
        }
        if g.public_keys.is_empty() {
            bad(
                k("public_keys"),
                "a key group needs at least one public key".into(),
            );
        }
        for (j, p) in g.public_keys.iter().enumerate() {
            let k = |f: &str| format!("key_groups[{i}].public_keys[{j}].{f}");
            if p.id.is_empty() || !p.id.bytes().all(|b| b.is_ascii_graphic()) {
                bad(k("id"), "must be a non-empty key pair id without spaces".into());
            } else if !key_ids.insert(p.id.as_str()) {
                bad(k("id"), format!("public key id {:?} is used twice", p.id));
            }
            match (&p.pem, &p.pem_file) {
                (Some(_), Some(_)) => bad(k("pem"), "give either pem or pem_file, not both".into()),
                (None, None) => bad(
                    format!("key_groups[{i}].public_keys[{j}]"),
                    "needs pem or pem_file".into(),
                ),
                (Some(text), None) => {
                    if let Err(e) = parse_public_key(text) {
                        bad(k("pem"), e);
                    }
                }
                (None, Some(file)) => match std::fs::read_to_string(file) {
                    Err(e) => machine(k("pem_file"), format!("{file:?}: {e}")),
                    Ok(text) => {
                        if let Err(e) = parse_public_key(&text) {
                            bad(k("pem_file"), format!("{file:?} {e}"));
                        }
                    }
                },
            }
        }
    }
    let mut names = HashSet::new();
    for (i, p) in cfg.response_headers_policies.iter().enumerate() {
        check_policy(i, p, &mut names, bad);
    }
}

fn check_policy<'a>(
    i: usize,
    p: &'a ResponseHeadersPolicy,
    names: &mut HashSet<&'a str>,
    bad: &impl Fn(String, String),
) {
    let k = |f: &str| format!("response_headers_policies[{i}].{f}");
    if p.name.is_empty() {
        bad(k("name"), "must not be empty".into());
    } else if managed_policy(&p.name).is_some() {
        bad(
            k("name"),
            format!(
                "{:?} is the name of a managed policy; name yours otherwise",
                p.name
            ),
        );
    } else if !names.insert(p.name.as_str()) {
        bad(k("name"), format!("policy {:?} is defined twice", p.name));
    }
    if let Some(c) = &p.cors {
        if c.access_control_allow_origins.is_empty() {
            bad(
                k("cors.access_control_allow_origins"),
                "needs at least one origin".into(),
            );
        }
        const METHODS: [&str; 8] = ["GET", "POST", "OPTIONS", "PUT", "DELETE", "PATCH", "HEAD", "ALL"];
        for (j, m) in c.access_control_allow_methods.iter().enumerate() {
            if !METHODS.contains(&m.as_str()) {
                bad(
                    format!("{}[{j}]", k("cors.access_control_allow_methods")),
                    format!("{m:?} is not one of {}", METHODS.join(", ")),
                );
            }
        }
        for (field, list) in [
            ("access_control_allow_headers", &c.access_control_allow_headers),
            ("access_control_expose_headers", &c.access_control_expose_headers),
        ] {
            for (j, h) in list.iter().enumerate() {
                if h != "*" && !valid_header_name(h) {
                    bad(
                        format!("{}[{j}]", k(&format!("cors.{field}"))),
                        format!("{h:?} is not a header name"),
                    );
                }
            }
        }
        if c.access_control_allow_credentials && c.access_control_allow_origins.iter().any(|o| o == "*") {
            bad(
                k("cors.access_control_allow_credentials"),
                "cannot be true when access_control_allow_origins has \"*\" (browsers refuse it)".into(),
            );
        }
    }
    let s = &p.security_headers;
    if let Some(f) = &s.frame_options {
        if f.frame_option != "DENY" && f.frame_option != "SAMEORIGIN" {
            bad(
                k("security_headers.frame_options.frame_option"),
                "must be \"DENY\" or \"SAMEORIGIN\"".into(),
            );
        }
    }
    if let Some(r) = &s.referrer_policy {
        const POLICIES: [&str; 8] = [
            "no-referrer",
            "no-referrer-when-downgrade",
            "origin",
            "origin-when-cross-origin",
            "same-origin",
            "strict-origin",
            "strict-origin-when-cross-origin",
            "unsafe-url",
        ];
        if !POLICIES.contains(&r.referrer_policy.as_str()) {
            bad(
                k("security_headers.referrer_policy.referrer_policy"),
                format!("must be one of {}", POLICIES.join(", ")),
            );
        }
    }
    if let Some(c) = &s.content_security_policy {
        if c.content_security_policy.is_empty() || !valid_header_value(&c.content_security_policy) {
            bad(
                k("security_headers.content_security_policy.content_security_policy"),
                "must be a non-empty header value".into(),
            );
        }
    }
    for (j, h) in p.custom_headers.iter().enumerate() {
        if !valid_header_name(&h.header) {
            bad(
                format!("{}[{j}].header", k("custom_headers")),
                format!("{:?} is not a header name", h.header),
            );
        }
        if !valid_header_value(&h.value) {
            bad(
                format!("{}[{j}].value", k("custom_headers")),
                "has control characters".into(),
            );
        }
    }
    for (j, h) in p.remove_headers.iter().enumerate() {
        if !valid_header_name(h) {
            bad(
                format!("{}[{j}]", k("remove_headers")),
                format!("{h:?} is not a header name"),
            );
        }
    }
    if let Some(t) = &p.server_timing {
        if !(0.0..=100.0).contains(&t.sampling_rate) {
            bad(
                k("server_timing.sampling_rate"),
                "must be between 0 and 100 (percent)".into(),
            );
        }
    }
}

/// The checks of a distribution's behaviors' `trusted_key_groups` and
/// `response_headers_policy`.
pub(crate) fn check_references(cfg: &Config, bad: &mut impl FnMut(String, String)) {
    let behaviors = std::iter::once(("default_cache_behavior".to_string(), &cfg.default_cache_behavior))
        .chain(
            cfg.behaviors
                .iter()
                .enumerate()
                .map(|(i, b)| (format!("behaviors[{i}]"), b)),
        );
    for (at, b) in behaviors {
        for (j, g) in b.trusted_key_groups.iter().enumerate() {
            if cfg.key_group(g).is_none() {
                bad(
                    format!("{at}.trusted_key_groups[{j}]"),
                    format!("no [[key_groups]] has id {g:?}"),
                );
            }
        }
        if let Some(p) = &b.response_headers_policy {
            if cfg.response_headers_policy(p).is_none() {
                bad(
                    format!("{at}.response_headers_policy"),
                    format!(
                        "no [[response_headers_policies]] is named {p:?}, and it is no managed policy ({})",
                        MANAGED_POLICIES.map(|(n, _)| n).join(", ")
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn managed_policies_are_known_by_name_and_prefix() {
        for (name, _) in MANAGED_POLICIES {
            assert_eq!(managed_policy(name).unwrap().name, name);
        }
        assert!(managed_policy("Managed-SecurityHeadersPolicy").is_some());
        assert!(managed_policy("NoSuch").is_none());
        let p = managed_policy("CORS-With-Preflight").unwrap();
        assert!(p
            .cors
            .unwrap()
            .access_control_allow_methods
            .contains(&"OPTIONS".into()));
    }

    #[test]
    fn non_pem_and_private_keys_are_refused_with_reasons() {
        assert!(parse_public_key("hello").unwrap_err().contains("not PEM"));
        let private = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(parse_public_key(private).unwrap_err().contains("PUBLIC KEY"));
    }
}
