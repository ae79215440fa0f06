//! The configuration's serde types. Every struct rejects unknown keys; every key has a default
//! except the ones a distribution cannot do without (an origin and the default behavior's
//! target).

use serde::{Deserialize, Deserializer};
use std::fmt;

/// A whole slabfront distribution.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listeners, workers and the HTTP limits.
    #[serde(default)]
    pub server: Server,
    /// The object served for a request of `/` (CloudFront's default root object).
    /// An empty string turns it off.
    #[serde(default = "default_root_object")]
    pub default_root_object: String,
    /// Where content comes from.
    #[serde(default)]
    pub origins: Vec<Origin>,
    /// The behavior used when no `[[behaviors]]` path pattern matches.
    pub default_cache_behavior: CacheBehavior,
    /// Path-pattern behaviors, checked in order; the first match wins.
    #[serde(default)]
    pub behaviors: Vec<Behavior>,
    /// The on-disk slab cache.
    #[serde(default)]
    pub cache: Cache,
}

fn default_root_object() -> String {
    "index.html".into()
}

/// `[server]`: listeners, workers and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Addresses to listen on for plain HTTP, e.g. `["127.0.0.1:8080"]`.
    pub listen: Vec<String>,
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
    /// Per-worker memory for hot static files.
    pub file_cache_bytes: Size,
    /// Files up to this size are kept in memory; larger ones are streamed from disk.
    pub file_cache_max_file: Size,
    /// How often a cached static file is checked against the disk.
    pub file_cache_revalidate: Duration,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: vec!["127.0.0.1:8080".into()],
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
            file_cache_bytes: Size(256 << 20),
            file_cache_max_file: Size(16 << 20),
            file_cache_revalidate: Duration::secs(1),
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

/// `[default_cache_behavior]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheBehavior {
    /// The origin id requests go to.
    pub target_origin: String,
}

/// `[[behaviors]]`: a cache behavior selected by path pattern.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behavior {
    /// CloudFront wildcards: `*` any run of characters, `?` exactly one; case-sensitive.
    pub path_pattern: String,
    /// The origin id requests go to.
    pub target_origin: String,
}

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
