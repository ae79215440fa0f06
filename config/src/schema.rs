//! The configuration's serde types. Every struct rejects unknown keys; every key has a default
//! except the ones a distribution cannot do without (an origin and the default behavior's
//! target).

use serde::{Deserialize, Deserializer};
use std::fmt;

pub use crate::distribution::*;

/// A whole slabfront distribution.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listeners, workers and the HTTP limits.
    #[serde(default)]
    pub server: Server,
    /// The object served for a request of `/` (CloudFront's default root object).
    /// An empty string turns it off.
    #[serde(default = "default_root_object", alias = "root_object")]
    pub default_root_object: String,
    /// Where content comes from.
    #[serde(default)]
    pub origins: Vec<Origin>,
    /// Failover pairs of origins (CloudFront's origin groups); behaviors may target them.
    #[serde(default)]
    pub origin_groups: Vec<crate::origins::OriginGroup>,
    /// The behavior used when no `[[behaviors]]` path pattern matches. Required unless the
    /// file has `[[distributions]]` (validation says so; serde does not, so that every other
    /// problem is still reported).
    #[serde(default = "unset_behavior")]
    pub default_cache_behavior: CacheBehavior,
    /// Path-pattern behaviors, checked in order; the first match wins.
    #[serde(default)]
    pub behaviors: Vec<Behavior>,
    /// The on-disk slab cache.
    #[serde(default)]
    pub cache: Cache,
    /// Custom error pages and how long errors are cached (CloudFront's error responses).
    #[serde(default)]
    pub error_responses: Vec<ErrorResponse>,
    /// The admin listener (invalidations, metrics, health). Off when absent.
    #[serde(default)]
    pub admin: Option<Admin>,
    /// Access logs in CloudFront's standard format. Off when absent.
    #[serde(default)]
    pub logging: Option<Logging>,
    /// Certificates and protocol versions for `server.listen_tls`.
    #[serde(default)]
    pub tls: Tls,
    /// The distributions this edge serves. After loading there is always at least one: a
    /// file without `[[distributions]]` gets one implicit distribution built from the
    /// top-level keys above ([`Distribution::implicit`]). When there is exactly one, the
    /// top-level keys (origins, behaviors, error responses, logging, root object, its
    /// certificate and listeners) are also that distribution's, so code that reads them
    /// serves it unchanged.
    #[serde(default)]
    pub distributions: Vec<Distribution>,
    /// CloudFront Functions (see `functions.rs`).
    #[serde(default)]
    pub functions: Vec<crate::functions::Function>,
    /// Key-value stores functions read.
    #[serde(default)]
    pub key_value_stores: Vec<crate::functions::KeyValueStore>,
    /// Named sets of parents (shield nodes) origins are fetched through (`fleet.rs`).
    #[serde(default)]
    pub parent_pools: Vec<crate::fleet::ParentPool>,
    /// This node's fleet and its etcd control plane. Off when absent.
    #[serde(default)]
    pub cluster: Option<crate::fleet::Cluster>,
    /// Public keys that verify signed URLs and cookies (`trusted_key_groups` names them).
    #[serde(default)]
    pub key_groups: Vec<crate::security::KeyGroup>,
    /// Headers added to and removed from responses (`response_headers_policy` names them).
    #[serde(default)]
    pub response_headers_policies: Vec<crate::security::ResponseHeadersPolicy>,
    /// The country database geo restriction reads.
    #[serde(default)]
    pub geo: crate::geo::Geo,
    /// This distribution's geo restriction (a single-distribution file).
    #[serde(default)]
    pub geo_restriction: crate::geo::GeoRestriction,
    /// This distribution's WAF rules (a single-distribution file).
    #[serde(default)]
    pub waf: crate::waf::Waf,
}

/// `[tls]`: HTTPS for viewers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// `"TLSv1.2"` (TLS 1.2 and 1.3) or `"TLSv1.3"` (1.3 only).
    #[serde(default)]
    pub minimum_protocol_version: TlsVersion,
    /// The cipher suites offered, in the server's order of preference (the first one the
    /// viewer also supports is chosen, whatever the viewer's own order).
    #[serde(default = "default_cipher_suites")]
    pub cipher_suites: Vec<CipherSuite>,
    /// Certificates, chosen by SNI against the names each holds (wildcards too); the first
    /// is the default.
    #[serde(default)]
    pub certificates: Vec<Certificate>,
}

impl Default for Tls {
    fn default() -> Tls {
        Tls {
            minimum_protocol_version: TlsVersion::default(),
            cipher_suites: default_cipher_suites(),
            certificates: Vec::new(),
        }
    }
}

/// A cipher suite, by its IANA name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum CipherSuite {
    TLS_AES_128_GCM_SHA256,
    TLS_AES_256_GCM_SHA384,
    TLS_CHACHA20_POLY1305_SHA256,
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

impl CipherSuite {
    /// Whether the suite belongs to TLS 1.3 (else TLS 1.2).
    pub fn is_tls13(self) -> bool {
        matches!(
            self,
            CipherSuite::TLS_AES_128_GCM_SHA256
                | CipherSuite::TLS_AES_256_GCM_SHA384
                | CipherSuite::TLS_CHACHA20_POLY1305_SHA256
        )
    }
}

/// CloudFront's order (its TLSv1.2_2021 security policy): AES-128-GCM, then AES-256-GCM,
/// then ChaCha20-Poly1305, for each protocol version. AES-128-GCM first is also what Go's TLS
/// stack chooses on CPUs with AES instructions; it costs about 15% less per byte here.
fn default_cipher_suites() -> Vec<CipherSuite> {
    use CipherSuite::*;
    vec![
        TLS_AES_128_GCM_SHA256,
        TLS_AES_256_GCM_SHA384,
        TLS_CHACHA20_POLY1305_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]
}

/// The oldest TLS version viewers may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum TlsVersion {
    #[default]
    #[serde(rename = "TLSv1.2")]
    Tls12,
    #[serde(rename = "TLSv1.3")]
    Tls13,
}

/// `[[tls.certificates]]`: a PEM chain and its private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// The certificate chain (PEM), leaf first.
    pub cert: String,
    /// The private key (PEM: PKCS#8, RSA or EC).
    pub key: String,
}

/// The placeholder for a `default_cache_behavior` the file does not have: no target, which
/// validation reports when the file has no `[[distributions]]` either.
fn unset_behavior() -> CacheBehavior {
    CacheBehavior {
        path_pattern: String::new(),
        target_origin: String::new(),
        min_ttl: 0,
        default_ttl: default_default_ttl(),
        max_ttl: default_max_ttl(),
        allowed_methods: get_head(),
        cached_methods: get_head(),
        query_strings: KeyPart::None,
        headers: KeyPart::None,
        cookies: KeyPart::None,
        viewer_protocol_policy: ViewerProtocolPolicy::AllowAll,
        function_associations: Vec::new(),
        compress: false,
        trusted_key_groups: Vec::new(),
        response_headers_policy: None,
    }
}

pub(crate) fn default_root_object() -> String {
    "index.html".into()
}

/// `[server]`: listeners, workers and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Addresses to listen on for plain HTTP, e.g. `["127.0.0.1:8080"]`.
    pub listen: Vec<String>,
    /// Addresses to listen on for HTTPS, e.g. `["0.0.0.0:443"]` (needs `[[tls.certificates]]`).
    pub listen_tls: Vec<String>,
    /// Worker threads, each a runtime pinned to a core; 0 = one per core.
    pub workers: usize,
    /// Which I/O driver: `auto` (io_uring, else epoll), `io_uring`, or `epoll`.
    pub driver: Driver,
    /// Open connections per worker; beyond it new connections are refused.
    pub max_connections: usize,
    /// Largest request head (request line and headers) in bytes.
    pub max_header_bytes: usize,
    /// Most header fields in one request.
    pub max_headers: usize,
    /// Longest request target in bytes.
    pub max_uri_bytes: usize,
    /// Largest request body accepted, in bytes (answered 413 beyond).
    pub max_body_bytes: Size,
    /// Time allowed to receive a whole request head once it has started.
    pub header_timeout: Duration,
    /// How long an idle keep-alive connection is kept open.
    pub keepalive_timeout: Duration,
    /// Longest wait for the next piece of a request body.
    pub body_timeout: Duration,
    /// On SIGTERM/SIGINT, how long in-flight responses get to finish.
    pub shutdown_grace: Duration,
    /// On SIGTERM/SIGINT, how long `/healthz` answers 503 before the listeners close, so a
    /// load balancer withdraws this node first (`docs/fleet.md`). 0: close at once.
    pub drain_delay: Duration,
    /// Per-worker memory for hot static files.
    pub file_cache_bytes: Size,
    /// Files up to this size are kept in memory; larger ones are streamed from disk.
    pub file_cache_max_file: Size,
    /// How often a cached static file is checked against the disk.
    pub file_cache_revalidate: Duration,
    /// This edge's name in `Via` and `Cache-Status` (default: the host name).
    pub node_name: Option<String>,
    /// Plain listeners also take HTTP/2 with prior knowledge (h2c), told apart from
    /// HTTP/1.1 by the connection preface.
    pub h2c: bool,
    /// `[server.http2]`: HTTP/2 limits.
    pub http2: crate::http2::Http2,
    /// `[server.compression]`: the levels of compression at the edge.
    pub compression: crate::compression::Compression,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: vec!["127.0.0.1:8080".into()],
            listen_tls: Vec::new(),
            workers: 0,
            driver: Driver::Auto,
            max_connections: 16384,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_uri_bytes: 8 * 1024,
            max_body_bytes: Size(1 << 30),
            header_timeout: Duration::secs(10),
            keepalive_timeout: Duration::secs(60),
            body_timeout: Duration::secs(30),
            shutdown_grace: Duration::secs(10),
            drain_delay: Duration::secs(0),
            file_cache_bytes: Size(256 << 20),
            file_cache_max_file: Size(16 << 20),
            file_cache_revalidate: Duration::secs(1),
            node_name: None,
            h2c: false,
            http2: crate::http2::Http2::default(),
            compression: crate::compression::Compression::default(),
        }
    }
}

/// The I/O driver of the worker runtimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    /// io_uring when the kernel allows it, else epoll (logged).
    Auto,
    /// io_uring only; startup fails without it.
    IoUring,
    /// The epoll ("legacy") driver.
    Epoll,
}

/// `[[origins]]`: a local directory (`path`) or a custom origin (`domain_name`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// The name behaviors refer to.
    pub id: String,
    /// A local directory served as a bucket.
    #[serde(default)]
    pub path: Option<String>,
    /// A custom (HTTP) origin's host name or address.
    #[serde(default)]
    pub domain_name: Option<String>,
    /// Port for `http-only` (and `match-viewer` over HTTP).
    #[serde(default = "default_http_port")]
    pub http_port: u16,
    /// Port for `https-only` (and `match-viewer` over HTTPS).
    #[serde(default = "default_https_port")]
    pub https_port: u16,
    /// How slabfront talks to a custom origin.
    #[serde(default)]
    pub protocol: OriginProtocol,
    /// Time allowed to connect (and finish the TLS handshake) to a custom origin; CloudFront's
    /// name `connection_timeout` is accepted too.
    #[serde(default = "default_connect_timeout", alias = "connection_timeout")]
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of an origin's response (504 before the head);
    /// CloudFront's name `response_timeout` is accepted too.
    #[serde(default = "default_read_timeout", alias = "response_timeout")]
    pub read_timeout: Duration,
    /// Idle keep-alive connections kept per worker for this origin.
    #[serde(default = "default_keepalive")]
    pub keepalive: usize,
    /// Extra trust roots (PEM) for HTTPS to this origin, added to the system's roots.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// The `Host` header sent to the origin (default: `domain_name`).
    #[serde(default)]
    pub host_header: Option<String>,
    /// An S3 bucket (or S3-compatible server's bucket) as the origin, instead of `path` or
    /// `domain_name`.
    #[serde(default)]
    pub s3_bucket: Option<String>,
    /// The bucket's region (signs the requests; names the AWS endpoint).
    #[serde(default = "crate::origins::default_region")]
    pub s3_region: String,
    /// The S3 endpoint URL, e.g. `"http://127.0.0.1:9000"` (default: the AWS regional
    /// endpoint `https://s3.<s3_region>.amazonaws.com`).
    #[serde(default)]
    pub s3_endpoint: Option<String>,
    /// `virtual-host` (`<bucket>.<endpoint host>`) or `path` (`<endpoint>/<bucket>/...`).
    #[serde(default)]
    pub s3_addressing_style: crate::origins::AddressingStyle,
    /// Whether origin requests are signed (CloudFront's Origin Access Control).
    #[serde(default)]
    pub signing_behavior: crate::origins::SigningBehavior,
    /// A shared credentials file (INI, as `~/.aws/credentials`) read before the default one.
    #[serde(default)]
    pub credentials_file: Option<String>,
    /// The profile read from credentials files (default: `AWS_PROFILE`, else `default`).
    #[serde(default)]
    pub credentials_profile: Option<String>,
    /// A prefix added to the path of every origin request, e.g. `"/production"`.
    #[serde(default)]
    pub origin_path: String,
    /// Headers added to every origin request (e.g. a shared secret the origin checks).
    #[serde(default)]
    pub custom_headers: std::collections::BTreeMap<String, String>,
    /// How long an idle connection to the origin is kept for reuse (CloudFront: 5s, 1-60s).
    #[serde(default = "crate::origins::default_keepalive_timeout")]
    pub origin_keepalive_timeout: Duration,
    /// TLS versions offered to an HTTPS origin: `"TLSv1.2"`, `"TLSv1.3"`.
    #[serde(default = "crate::origins::default_ssl_protocols")]
    pub ssl_protocols: Vec<String>,
    /// Connection attempts before the origin counts as unreachable (CloudFront: 3, 1-3).
    #[serde(default = "crate::origins::default_connection_attempts")]
    pub connection_attempts: u32,
    /// Active health checks (off when absent; failures are noticed passively anyway).
    #[serde(default)]
    pub health_check: Option<crate::origins::HealthCheck>,
    /// Parents (`"host:port"` of shield nodes) this origin is fetched through (`fleet.rs`).
    #[serde(default)]
    pub parents: Vec<String>,
    /// A `[[parent_pools]]` id, instead of `parents`.
    #[serde(default)]
    pub parent_pool: Option<String>,
    /// When every parent fails, fetch from the origin itself (else the error is answered).
    #[serde(default = "crate::origins::default_true")]
    pub parent_fallback_to_origin: bool,
}

fn default_connect_timeout() -> Duration {
    Duration::secs(10)
}
fn default_read_timeout() -> Duration {
    Duration::secs(30)
}
fn default_keepalive() -> usize {
    32
}

fn default_http_port() -> u16 {
    80
}
fn default_https_port() -> u16 {
    443
}

/// The origin protocol policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OriginProtocol {
    /// Always plain HTTP.
    HttpOnly,
    /// Always HTTPS.
    #[default]
    HttpsOnly,
    /// The viewer's scheme.
    MatchViewer,
}

/// `[default_cache_behavior]` and each `[[behaviors]]`: where requests go and how their
/// responses are cached.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheBehavior {
    /// `[[behaviors]]` only. CloudFront wildcards: `*` any run of characters, `?` exactly
    /// one; case-sensitive.
    #[serde(default)]
    pub path_pattern: String,
    /// The origin id requests go to.
    pub target_origin: String,
    /// Shortest time an object stays cached, in seconds, whatever the origin says.
    #[serde(default)]
    pub min_ttl: u64,
    /// Time an object stays cached when the origin gives no s-maxage, max-age or Expires.
    #[serde(default = "default_default_ttl")]
    pub default_ttl: u64,
    /// Longest time an object stays cached, in seconds.
    #[serde(default = "default_max_ttl")]
    pub max_ttl: u64,
    /// Methods passed to the origin: `["GET","HEAD"]`, those plus `"OPTIONS"`, or all seven.
    #[serde(default = "get_head")]
    pub allowed_methods: Vec<String>,
    /// Methods whose responses are cached: `["GET","HEAD"]` or those plus `"OPTIONS"`.
    #[serde(default = "get_head")]
    pub cached_methods: Vec<String>,
    /// Query string parameters in the cache key (and forwarded): "none", "all" or a list.
    #[serde(default, alias = "forward_query_string")]
    pub query_strings: KeyPart,
    /// Viewer headers in the cache key (and forwarded): "none", a list, or "all" (every
    /// header forwarded; the key then varies only as the origin's `Vary` says).
    #[serde(default, alias = "forward_headers")]
    pub headers: KeyPart,
    /// Cookies in the cache key (and forwarded): "none", "all" or a list of names.
    #[serde(default, alias = "forward_cookies")]
    pub cookies: KeyPart,
    /// What plain-HTTP viewers get: served (`allow-all`), redirected (`redirect-to-https`:
    /// 301 for GET/HEAD, 307 otherwise) or refused (`https-only`: 403).
    #[serde(default)]
    pub viewer_protocol_policy: ViewerProtocolPolicy,
    /// Functions run on this behavior's viewer requests and responses.
    #[serde(default)]
    pub function_associations: Vec<crate::functions::FunctionAssociation>,
    /// Compress objects at the edge (CloudFront's "Compress objects automatically"): Brotli,
    /// gzip or zstd, as the viewer accepts, for compressible types of 1,000 to 10,000,000
    /// bytes the origin sent uncompressed (`docs/compression.md`).
    #[serde(default)]
    pub compress: bool,
    /// Key groups whose keys sign this behavior's URLs and cookies: when not empty, only
    /// requests with a valid signed URL or signed cookies are served.
    #[serde(default)]
    pub trusted_key_groups: Vec<String>,
    /// A `[[response_headers_policies]]` name or a managed policy's name.
    #[serde(default)]
    pub response_headers_policy: Option<String>,
}

/// CloudFront's viewer protocol policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViewerProtocolPolicy {
    #[default]
    AllowAll,
    RedirectToHttps,
    HttpsOnly,
}

/// `[[behaviors]]` entries have the same keys as the default behavior plus `path_pattern`.
pub type Behavior = CacheBehavior;

pub(crate) fn default_default_ttl() -> u64 {
    86400
}
pub(crate) fn default_max_ttl() -> u64 {
    31_536_000
}
pub(crate) fn get_head() -> Vec<String> {
    vec!["GET".into(), "HEAD".into()]
}

/// One part of a cache key policy: nothing, everything, or the listed names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeyPart {
    #[default]
    None,
    All,
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for KeyPart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<String>),
        }
        match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected \"none\", \"all\" or a list of names"))?
        {
            Raw::Word(w) if w == "none" => Ok(KeyPart::None),
            Raw::Word(w) if w == "all" => Ok(KeyPart::All),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "{w:?}: expected \"none\", \"all\" or a list of names"
            ))),
            Raw::List(l) => Ok(KeyPart::List(l)),
        }
    }
}

/// `[[error_responses]]`: what viewers get when the origin answers with an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorResponse {
    /// The origin's status code (400-599) this entry applies to.
    pub error_code: u16,
    /// A path (served through its own behavior) whose body replaces the error's.
    #[serde(default)]
    pub response_page_path: Option<String>,
    /// The status sent to the viewer (default: the origin's).
    #[serde(default)]
    pub response_code: Option<u16>,
    /// How long the error is cached, in seconds; 0 = not cached.
    #[serde(default = "default_error_ttl", alias = "min_ttl")]
    pub error_caching_min_ttl: u64,
}

fn default_error_ttl() -> u64 {
    10
}

/// `[logging]`: access logs, one tab-separated line per request in CloudFront's standard
/// log format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    /// Whether to write access logs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The log file (appended to; reopened on SIGUSR1).
    pub path: String,
    /// Log the `Cookie` header (cs(Cookie)); off by default, as in CloudFront.
    #[serde(default)]
    pub include_cookies: bool,
}

pub(crate) fn yes() -> bool {
    true
}

pub use crate::admin::{AccessKey, Admin};

/// `[cache]`: the slab file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cache {
    /// The slab file (created and preallocated when missing).
    pub path: String,
    /// The slab's size.
    pub size: Size,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            path: "/var/cache/slabfront/slab".into(),
            size: Size(8 << 30),
        }
    }
}

/// A duration written like `"10s"`, `"500ms"` or `"2m 30s"`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// Whole seconds.
    pub const fn secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(s.trim()).map(Duration).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?}: {e} (write e.g. \"10s\", \"500ms\")"
            ))
        })
    }
}

/// A size in bytes, written as an integer or like `"8GiB"`, `"256MiB"`, `"64KB"`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Debug for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", bytesize::ByteSize(self.0).to_string_as(true))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(Size(n)),
            Raw::Text(s) => s
                .trim()
                .parse::<bytesize::ByteSize>()
                .map(|b| Size(b.0))
                .map_err(|e| {
                    serde::de::Error::custom(format!("invalid size {s:?}: {e} (write e.g. \"8GiB\")"))
                }),
        }
    }
}
