//! `[[distributions]]`: many sites on one edge, each shaped like one CloudFront distribution.

use crate::schema::{
    default_root_object, yes, Behavior, CacheBehavior, Certificate, Config, ErrorResponse, Logging, Origin,
    TlsVersion,
};
use serde::{Deserialize, Deserializer};

/// The name given to the implicit distribution of a file without `[[distributions]]`.
pub const IMPLICIT_NAME: &str = "default";

/// `[[distributions]]`: one site, with its own names, origins, behaviors, error pages, logs
/// and certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    /// The primary domain name, e.g. `www.example.com`; also how the distribution is named
    /// elsewhere (logs, metrics, invalidations).
    pub name: String,
    /// Alternate domain names (CloudFront's CNAMEs); a leading `*.` is a wildcard for any
    /// name below that domain.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A disabled distribution is kept but answers no request.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Free text for operators.
    #[serde(default)]
    pub comment: String,
    /// The object served for `/`; an empty string turns it off.
    #[serde(default = "default_root_object", alias = "root_object")]
    pub default_root_object: String,
    /// Where this distribution's content comes from.
    #[serde(default)]
    pub origins: Vec<Origin>,
    /// Its origin groups (CloudFront's origin failover), of its own origins.
    #[serde(default)]
    pub origin_groups: Vec<crate::origins::OriginGroup>,
    /// The behavior used when no path pattern matches.
    pub default_cache_behavior: CacheBehavior,
    /// Path-pattern behaviors, checked in order; the first match wins.
    #[serde(default)]
    pub behaviors: Vec<Behavior>,
    /// Custom error pages and how long errors are cached.
    #[serde(default)]
    pub error_responses: Vec<ErrorResponse>,
    /// This distribution's access log.
    #[serde(default)]
    pub logging: Option<Logging>,
    /// The certificate presented for this distribution's names.
    #[serde(default)]
    pub ssl_certificate: Option<Certificate>,
    /// `sni-only` (the default: shared listeners, the certificate chosen by SNI) or `vip`
    /// (listeners of its own: `listen` / `listen_tls` below).
    #[serde(default)]
    pub ssl_support_method: SslSupportMethod,
    /// `vip` only: plain-HTTP addresses of this distribution alone.
    #[serde(default)]
    pub listen: Vec<String>,
    /// `vip` only: HTTPS addresses of this distribution alone.
    #[serde(default)]
    pub listen_tls: Vec<String>,
    /// CloudFront's security policy name (`TLSv1.2_2021`, …) or `TLSv1.2` / `TLSv1.3`.
    #[serde(default)]
    pub ssl_minimum_protocol_version: Option<SecurityPolicy>,
    /// `PriceClass_100`, `PriceClass_200` or `PriceClass_All`: accepted and validated for
    /// compatibility; one box has no edge locations to choose from, so it has no effect.
    #[serde(default)]
    pub price_class: Option<PriceClass>,
    /// Countries served or refused (CloudFront's `GeoRestriction`).
    #[serde(default)]
    pub geo_restriction: crate::geo::GeoRestriction,
    /// IP set and rate-based rules (`[[distributions.waf.rules]]`).
    #[serde(default)]
    pub waf: crate::waf::Waf,
    /// True for the distribution made from a file's top-level keys (no `[[distributions]]`):
    /// it answers every Host.
    #[serde(skip)]
    pub implicit: bool,
}

impl Distribution {
    /// The implicit distribution of a file without `[[distributions]]`.
    pub(crate) fn from_top_level(cfg: &Config) -> Distribution {
        Distribution {
            name: IMPLICIT_NAME.into(),
            aliases: Vec::new(),
            enabled: true,
            comment: String::new(),
            default_root_object: cfg.default_root_object.clone(),
            origins: cfg.origins.clone(),
            origin_groups: cfg.origin_groups.clone(),
            default_cache_behavior: cfg.default_cache_behavior.clone(),
            behaviors: cfg.behaviors.clone(),
            error_responses: cfg.error_responses.clone(),
            logging: cfg.logging.clone(),
            ssl_certificate: None,
            ssl_support_method: SslSupportMethod::SniOnly,
            listen: Vec::new(),
            listen_tls: Vec::new(),
            ssl_minimum_protocol_version: None,
            price_class: None,
            geo_restriction: cfg.geo_restriction.clone(),
            waf: cfg.waf.clone(),
            implicit: true,
        }
    }

    /// The origin with this id.
    pub fn origin(&self, id: &str) -> Option<&Origin> {
        self.origins.iter().find(|o| o.id == id)
    }

    /// Every name this distribution answers to: its name, then its aliases.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

impl Config {
    /// Fills `distributions` after validation: the implicit one for a file without
    /// `[[distributions]]`; the top-level keys from the only one for a file with one.
    pub(crate) fn normalise(&mut self) {
        if self.distributions.is_empty() {
            self.waf.distribution = IMPLICIT_NAME.into();
            self.distributions.push(Distribution::from_top_level(self));
            return;
        }
        if let [d] = self.distributions.as_slice() {
            let d = d.clone();
            self.default_root_object = d.default_root_object;
            self.origins = d.origins;
            self.origin_groups = d.origin_groups;
            self.default_cache_behavior = d.default_cache_behavior;
            self.behaviors = d.behaviors;
            self.error_responses = d.error_responses;
            self.logging = d.logging;
            self.geo_restriction = d.geo_restriction;
            self.waf = d.waf;
            self.waf.distribution = d.name;
            if let Some(c) = d.ssl_certificate {
                self.tls.certificates.insert(0, c);
            }
            if let Some(p) = d.ssl_minimum_protocol_version {
                self.tls.minimum_protocol_version = p.version;
            }
            self.server.listen.extend(d.listen);
            self.server.listen_tls.extend(d.listen_tls);
        }
    }

    /// This configuration with its top-level distribution keys replaced by `d`'s, the view
    /// one distribution is checked (and, while there is only one, served) through.
    pub fn with_distribution(&self, d: &Distribution) -> Config {
        // Everything but the other distributions: a view per distribution of an edge with
        // thousands must not copy all of them each time. Destructured so that a new field
        // cannot be forgotten here.
        let Config {
            server,
            default_root_object,
            origins,
            origin_groups,
            default_cache_behavior,
            behaviors,
            cache,
            error_responses,
            admin,
            logging,
            tls,
            distributions: _,
            functions,
            key_value_stores,
            parent_pools,
            cluster,
            key_groups,
            response_headers_policies,
            geo,
            geo_restriction,
            waf,
        } = self;
        let mut view = Config {
            server: server.clone(),
            default_root_object: default_root_object.clone(),
            origins: origins.clone(),
            origin_groups: origin_groups.clone(),
            default_cache_behavior: default_cache_behavior.clone(),
            behaviors: behaviors.clone(),
            cache: cache.clone(),
            error_responses: error_responses.clone(),
            admin: admin.clone(),
            logging: logging.clone(),
            tls: tls.clone(),
            distributions: vec![d.clone()],
            functions: functions.clone(),
            key_value_stores: key_value_stores.clone(),
            parent_pools: parent_pools.clone(),
            cluster: cluster.clone(),
            key_groups: key_groups.clone(),
            response_headers_policies: response_headers_policies.clone(),
            geo: geo.clone(),
            geo_restriction: geo_restriction.clone(),
            waf: waf.clone(),
        };
        view.normalise();
        view.distributions.clear();
        view
    }

    /// The one enabled distribution of a file of one, or why there is none (several, or the
    /// one disabled).
    pub fn single_distribution(&self) -> Result<&Distribution, String> {
        match self.distributions.as_slice() {
            [d] if d.enabled => Ok(d),
            [d] => Err(format!(
                "distribution {:?} is disabled (enabled = false): there is nothing to serve",
                d.name
            )),
            many => Err(format!(
                "this configuration has {} distributions ({})",
                many.len(),
                many.iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// How viewers reach a distribution over HTTPS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslSupportMethod {
    /// Shared listeners; the certificate is chosen by the viewer's SNI.
    #[default]
    SniOnly,
    /// Listeners of the distribution's own (`listen` / `listen_tls`).
    Vip,
}

/// A minimum TLS version, by CloudFront security policy name or by version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityPolicy {
    /// As written, e.g. `TLSv1.2_2021`.
    pub name: String,
    /// The oldest protocol version it allows.
    pub version: TlsVersion,
}

/// CloudFront's security policies that allow nothing older than TLS 1.2, and the two plain
/// version names.
pub const SECURITY_POLICIES: [(&str, TlsVersion); 7] = [
    ("TLSv1.2", TlsVersion::Tls12),
    ("TLSv1.3", TlsVersion::Tls13),
    ("TLSv1.2_2018", TlsVersion::Tls12),
    ("TLSv1.2_2019", TlsVersion::Tls12),
    ("TLSv1.2_2021", TlsVersion::Tls12),
    ("TLSv1.2_2025", TlsVersion::Tls12),
    ("TLSv1.3_2025", TlsVersion::Tls13),
];

/// CloudFront's policies that allow TLS 1.0 or 1.1 (or SSLv3), which slabfront does not speak.
pub const LEGACY_SECURITY_POLICIES: [&str; 4] = ["SSLv3", "TLSv1", "TLSv1_2016", "TLSv1.1_2016"];

impl SecurityPolicy {
    /// The policy of this name, or why it is not accepted.
    pub fn parse(name: &str) -> Result<SecurityPolicy, String> {
        if let Some((_, v)) = SECURITY_POLICIES.iter().find(|(n, _)| *n == name) {
            return Ok(SecurityPolicy {
                name: name.into(),
                version: *v,
            });
        }
        if LEGACY_SECURITY_POLICIES.contains(&name) {
            return Err(format!(
                "{name:?} allows TLS older than 1.2, which slabfront does not speak; use \
                 \"TLSv1.2_2021\" (or \"TLSv1.2\")"
            ));
        }
        let known: Vec<&str> = SECURITY_POLICIES.iter().map(|(n, _)| *n).collect();
        Err(format!("{name:?}: expected one of {}", known.join(", ")))
    }
}

impl<'de> Deserialize<'de> for SecurityPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SecurityPolicy::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// CloudFront's price classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PriceClass {
    #[serde(rename = "PriceClass_100")]
    PriceClass100,
    #[serde(rename = "PriceClass_200")]
    PriceClass200,
    #[serde(rename = "PriceClass_All")]
    PriceClassAll,
}

impl PriceClass {
    /// CloudFront's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PriceClass::PriceClass100 => "PriceClass_100",
            PriceClass::PriceClass200 => "PriceClass_200",
            PriceClass::PriceClassAll => "PriceClass_All",
        }
    }
}
