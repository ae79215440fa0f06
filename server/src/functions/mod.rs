//! CloudFront Functions: JavaScript run on viewer requests and viewer responses, unchanged
//! from what runs on CloudFront (`cloudfront-js-1.0` and `cloudfront-js-2.0`).
//!
//! This module is protocol-neutral: its input is a plain [`FnRequest`] (and, for viewer
//! responses, an [`FnResponse`]) with the [`FnContext`] of the exchange, its output an
//! [`FnOutcome`]. It knows nothing of sockets, HTTP/1.1 bytes or the cache.
//!
//! * [`Functions::for_generation`] compiles every `[[functions]]` of a configuration and
//!   loads its key-value stores, once per configuration generation (on the control thread;
//!   the result is `Send + Sync` and shared read-only by the workers).
//! * Each worker owns one [`Engine`] (a QuickJS runtime, see `engine.rs`): nothing is shared
//!   or locked per request. An invocation gets a fresh context, so nothing a viewer's
//!   invocation leaves behind is seen by the next one.
//! * [`Engine::run_viewer_request`] and [`Engine::run_viewer_response`] run a function by
//!   name; [`Engine::counters`] are the per-function counters for `/metrics`.
//!
//! ```
//! use slabfront::functions::{Engine, FnContext, FnOutcome, FnRequest, Functions};
//! let cfg = config::Config::from_toml_str(r#"
//! [[origins]]
//! id = "site"
//! path = "."
//! [[functions]]
//! name = "spa"
//! runtime = "cloudfront-js-2.0"
//! code = "function handler(event) { event.request.uri += 'index.html'; return event.request; }"
//! [default_cache_behavior]
//! target_origin = "site"
//! function_associations = [{ event_type = "viewer-request", function = "spa" }]
//! "#).unwrap();
//! let functions = std::sync::Arc::new(Functions::for_generation(&cfg).unwrap());
//! let mut engine = Engine::new(functions);
//! let request = FnRequest { method: "GET".into(), uri: "/docs/".into(), ..Default::default() };
//! match engine.run_viewer_request("spa", &FnContext::default(), &request).outcome {
//!     FnOutcome::Continue { request, .. } => assert_eq!(request.uri, "/docs/index.html"),
//!     other => panic!("{other:?}"),
//! }
//! ```

pub mod edge;
mod engine;
mod event;
mod event_js;
mod kvs;
mod limits;
mod modules;
pub mod test_event;

pub use engine::{Counters, Engine, Invocation};
pub use kvs::Store;
pub use limits::Limits;

use config::{Config, FunctionRuntime};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The key-value stores of a generation. Engines keep their own copy of the map and take
/// the lock only when `version` says a file was re-read: never per request otherwise.
#[derive(Debug)]
pub(crate) struct Stores {
    pub version: AtomicU64,
    pub current: Mutex<HashMap<String, Arc<Store>>>,
    files: HashMap<String, std::path::PathBuf>,
}

impl Stores {
    /// A copy of the current map and its version.
    pub(crate) fn snapshot(&self) -> (u64, HashMap<String, Arc<Store>>) {
        let current = match self.current.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        (self.version.load(Ordering::Acquire), current.clone())
    }
}

/// Whether CloudFront keeps a header away from functions (hop-by-hop fields, its own):
/// not in the event, and kept as they were around what a function returns.
pub fn hidden(lower_name: &str) -> bool {
    event::disallowed(lower_name)
}

/// The exchange a function runs for: CloudFront's `event.context` and `event.viewer`.
#[derive(Debug, Clone, Default)]
pub struct FnContext {
    /// `context.distributionDomainName`.
    pub distribution_domain_name: String,
    /// `context.distributionId`.
    pub distribution_id: String,
    /// `context.requestId`.
    pub request_id: String,
    /// `viewer.ip`.
    pub viewer_ip: String,
}

/// A viewer request as a function sees it and may change it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FnRequest {
    /// The method (read-only for the function).
    pub method: String,
    /// The path, starting with `/`, without the query string.
    pub uri: String,
    /// Query parameters in order, as they appear in the target (not percent-decoded); a
    /// parameter without `=` has an empty value.
    pub querystring: Vec<(String, String)>,
    /// Header fields in order, names lower-case, one entry per value. `cookie` is not here
    /// (see `cookies`); fields CloudFront does not expose to functions (hop-by-hop fields
    /// such as `connection`) are left out of the event and never come back.
    pub headers: Vec<(String, String)>,
    /// The `Cookie` header's pairs, in order.
    pub cookies: Vec<(String, String)>,
}

/// A response as a function sees it (viewer response) or generates it (viewer request).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FnResponse {
    /// The status code.
    pub status: u16,
    /// The reason phrase (may be empty).
    pub status_description: String,
    /// Header fields in order, names lower-case, one entry per value; `set-cookie` is not
    /// here (see `cookies`).
    pub headers: Vec<(String, String)>,
    /// `Set-Cookie` fields.
    pub cookies: Vec<SetCookie>,
    /// A body, only on responses generated by a viewer-request function (never cached).
    pub body: Option<Vec<u8>>,
}

/// One `Set-Cookie` field: `name=value; attributes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// Everything after the first `;`, e.g. `Path=/; Secure` (may be empty).
    pub attributes: String,
}

impl SetCookie {
    /// The field value as sent: `name=value; attributes`.
    pub fn to_field(&self) -> String {
        if self.attributes.is_empty() {
            format!("{}={}", self.name, self.value)
        } else {
            format!("{}={}; {}", self.name, self.value, self.attributes)
        }
    }

    /// Parses a `Set-Cookie` value.
    pub fn parse(field: &str) -> SetCookie {
        let (pair, attributes) = field.split_once(';').unwrap_or((field, ""));
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        SetCookie {
            name: name.trim().to_string(),
            value: value.trim().to_string(),
            attributes: attributes.trim().to_string(),
        }
    }
}

/// Where a viewer-request function sent the request (`cloudfront.updateRequestOrigin`,
/// `cloudfront.selectRequestOriginById`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginChoice {
    /// One of this distribution's `[[origins]]`, by id.
    ById(String),
    /// The behavior's origin with these fields changed (CloudFront's parameters, as given;
    /// `domainName`, `originPath`, `customOriginConfig.port`, `.protocol`, timeouts...).
    Update(serde_json::Value),
}

/// What running a function gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FnOutcome {
    /// Viewer request: go on with this request (possibly changed); it is what the cache
    /// key, the behavior's origin and the origin request see.
    Continue {
        request: FnRequest,
        origin: Option<OriginChoice>,
    },
    /// Viewer request: answer with this response, generated at the edge and never cached.
    Respond(FnResponse),
    /// Viewer response: send this response (possibly changed; the body is the origin's).
    Response(FnResponse),
    /// The function failed: the viewer gets CloudFront's 503 (see [`FnError::status`]).
    Error(FnError),
}

/// Why a function failed. Every one gives the viewer a 503, as CloudFront does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FnError {
    /// No function of that name in this generation.
    #[error("no function named {0:?}")]
    Unknown(String),
    /// The code threw (or failed to load).
    #[error("the function threw: {0}")]
    Threw(String),
    /// The compute budget ran out (the engine's interrupt stopped it).
    #[error("the function exceeded its compute budget")]
    ComputeExceeded,
    /// The memory limit was reached.
    #[error("the function exceeded its memory limit")]
    MemoryExceeded,
    /// The returned value is not what the event type allows.
    #[error("invalid return value: {0}")]
    InvalidReturn(String),
    /// A read-only field or header was changed, or a header CloudFront forbids was added.
    #[error("forbidden change: {0}")]
    Forbidden(String),
    /// A size limit was exceeded by what the function returned.
    #[error("size limit exceeded: {0}")]
    TooLarge(String),
    /// The engine could not be set up (out of memory on the worker).
    #[error("engine failure: {0}")]
    Engine(String),
}

impl FnError {
    /// The status the viewer gets: 503, CloudFront's answer to a failed function.
    pub fn status(&self) -> u16 {
        503
    }

    /// A short fixed name for logs and metrics labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            FnError::Unknown(_) => "unknown",
            FnError::Threw(_) => "exception",
            FnError::ComputeExceeded => "compute",
            FnError::MemoryExceeded => "memory",
            FnError::InvalidReturn(_) => "invalid_return",
            FnError::Forbidden(_) => "forbidden",
            FnError::TooLarge(_) => "too_large",
            FnError::Engine(_) => "engine",
        }
    }
}

/// Why a configuration's functions could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A function does not compile: `file:line: message`.
    #[error("function {name:?}: {file}:{line}: {message}")]
    Compile {
        name: String,
        file: String,
        line: u32,
        message: String,
    },
    /// A function's code could not be read.
    #[error("function {name:?}: {message}")]
    Code { name: String, message: String },
    /// A key-value store file could not be read or is not in CloudFront's import format.
    #[error("key-value store {id:?}: {message}")]
    Store { id: String, message: String },
}

/// One compiled function.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub name: String,
    pub runtime: FunctionRuntime,
    /// The QuickJS bytecode of the code (wrapped, imports turned into `require`), produced
    /// once here and loaded once per worker.
    pub bytecode: Vec<u8>,
    /// The store `cloudfront.kvs()` opens, if the function has one.
    pub store: Option<String>,
}

/// Every function of one configuration generation, compiled, with its key-value stores.
/// Built once per generation; read-only and shared by the workers.
#[derive(Debug)]
pub struct Functions {
    pub(crate) functions: Vec<Compiled>,
    pub(crate) by_name: HashMap<String, usize>,
    pub(crate) stores: Stores,
    /// The distribution's origin ids (`selectRequestOriginById` checks against them).
    pub(crate) origins: Vec<String>,
    pub(crate) limits: Limits,
}

impl Functions {
    /// Compiles every function of `cfg` and loads its key-value stores. Fails with the first
    /// function that does not compile (file and line) or the first unreadable store; use
    /// [`Functions::check`] to get every problem.
    pub fn for_generation(cfg: &Config) -> Result<Functions, LoadError> {
        Self::build(cfg, Limits::default()).map_err(|mut e| e.remove(0))
    }

    /// Every problem with the functions and stores of `cfg` (empty when all compile).
    pub fn check(cfg: &Config) -> Vec<LoadError> {
        Self::build(cfg, Limits::default()).err().unwrap_or_default()
    }

    /// As [`Functions::for_generation`], with other limits (tests, `slabfront function test`).
    pub fn with_limits(cfg: &Config, limits: Limits) -> Result<Functions, LoadError> {
        Self::build(cfg, limits).map_err(|mut e| e.remove(0))
    }

    fn build(cfg: &Config, limits: Limits) -> Result<Functions, Vec<LoadError>> {
        let mut problems = Vec::new();
        let mut stores = HashMap::new();
        let mut files = HashMap::new();
        for s in &cfg.key_value_stores {
            files.insert(s.id.clone(), std::path::PathBuf::from(&s.file));
            match Store::load(std::path::Path::new(&s.file)) {
                Ok(store) => {
                    stores.insert(s.id.clone(), Arc::new(store));
                }
                Err(message) => problems.push(LoadError::Store {
                    id: s.id.clone(),
                    message,
                }),
            }
        }
        let mut functions = Vec::new();
        let mut by_name = HashMap::new();
        for f in &cfg.functions {
            let (source, file) = match f.source() {
                Ok(s) => s,
                Err(e) => {
                    problems.push(LoadError::Code {
                        name: f.name.clone(),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            if source.len() > config::MAX_FUNCTION_BYTES {
                problems.push(LoadError::Code {
                    name: f.name.clone(),
                    message: format!(
                        "{file}: the code is {} bytes; CloudFront's limit is {}",
                        source.len(),
                        config::MAX_FUNCTION_BYTES
                    ),
                });
                continue;
            }
            let code = modules::rewrite_imports(&source);
            match engine::compile(&modules::wrap(&code), &file, &limits) {
                Ok(bytecode) => {
                    by_name.insert(f.name.clone(), functions.len());
                    functions.push(Compiled {
                        name: f.name.clone(),
                        runtime: f.runtime,
                        bytecode,
                        store: f.key_value_stores.first().cloned(),
                    });
                }
                Err((line, message)) => problems.push(LoadError::Compile {
                    name: f.name.clone(),
                    file,
                    line,
                    message,
                }),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Functions {
            functions,
            by_name,
            stores: Stores {
                version: AtomicU64::new(0),
                current: Mutex::new(stores),
                files,
            },
            origins: cfg.origins.iter().map(|o| o.id.clone()).collect(),
            limits,
        })
    }

    /// The names of the functions, in configuration order (the index is the function's
    /// slot in [`Engine::counters`]).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.functions.iter().map(|f| f.name.as_str())
    }

    /// Re-reads the key-value store files that changed since they were read (modification
    /// time or size); a file that no longer reads keeps its previous entries (logged).
    /// Returns the ids reloaded. Engines pick the new entries up at their next invocation.
    pub fn refresh_stores(&self) -> Vec<String> {
        let mut reloaded = Vec::new();
        let mut current = match self.stores.current.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (id, path) in &self.stores.files {
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            let same = current
                .get(id)
                .is_some_and(|s| s.modified == meta.modified().ok() && s.size == meta.len());
            if same {
                continue;
            }
            match Store::load(path) {
                Ok(store) => {
                    current.insert(id.clone(), Arc::new(store));
                    reloaded.push(id.clone());
                }
                Err(e) => tracing::warn!(store = %id, error = %e, "key-value store not reloaded"),
            }
        }
        if !reloaded.is_empty() {
            self.stores.version.fetch_add(1, Ordering::Release);
            tracing::info!(stores = ?reloaded, "key-value stores reloaded");
        }
        reloaded
    }

    /// Starts a thread that calls [`Functions::refresh_stores`] every `every` for as long
    /// as this generation is alive (it holds only a weak reference).
    pub fn watch_stores(self: &Arc<Self>, every: std::time::Duration) -> std::io::Result<()> {
        if self.stores.files.is_empty() {
            return Ok(());
        }
        let weak = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("slabfront-kvs".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                match weak.upgrade() {
                    Some(f) => {
                        f.refresh_stores();
                    }
                    None => return,
                }
            })
            .map(drop)
    }

    /// The limits every invocation runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}
