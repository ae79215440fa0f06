//! slabfront: a CDN edge server. Thread-per-core monoio runtimes on io_uring, each pinned to
//! a core with its own `SO_REUSEPORT` listeners; HTTP/1.1 with httparse; directory origins
//! served from memory; a memory-mapped slab cache (crate `cache-store`).
//!
//! This crate turns a validated [`config::Config`] into running workers: [`Server::start`]
//! binds, spawns and returns a handle; [`Server::wait`] blocks until a stop signal and drains.

pub mod admin;
pub mod cfapi;
pub mod cluster;
pub mod conn;
pub mod conn_h2;
pub mod context;
pub mod edge;
pub mod error;
pub mod exchange;
pub mod functions;
pub mod http;
pub mod notify;
pub mod observe;
pub mod proxy;
pub mod router;
pub mod runtime;
pub mod sites;
pub mod static_files;
pub mod stats;
pub mod tls;

use crate::context::{Settings, Worker};
use crate::http::codec::Limits;
use crate::router::{PathPattern, Router, Target};
use crate::static_files::{StaticOptions, StaticOrigin};
use config::{Config, Driver};
pub use error::StartError;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which monoio driver the workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    IoUring,
    Epoll,
}

impl DriverKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DriverKind::IoUring => "io_uring",
            DriverKind::Epoll => "epoll",
        }
    }
}

/// A running server.
pub struct Server {
    /// The proxy's shared state (the slab), when there are custom origins.
    pub shared: Option<Arc<proxy::Shared>>,
    /// The fleet's control plane (`[cluster]`).
    pub cluster: Option<Arc<cluster::Handle>>,
    /// The HTTPS listeners.
    pub tls_addrs: Vec<SocketAddr>,
    /// Every worker's counters, summed by `/metrics`.
    pub metrics: Vec<Arc<observe::WorkerMetrics>>,
    /// The access-log writer (SIGUSR1 reopens its file).
    pub log_sink: Option<Arc<observe::LogSink>>,
    /// The distributions' own access-log writers, with several distributions.
    pub site_sinks: sites::LogSinks,
    names: Arc<std::sync::RwLock<Vec<String>>>,
    /// Every worker's dashboard statistics (`GET /stats`).
    pub stats: Arc<stats::Stats>,
    pub addrs: Vec<SocketAddr>,
    /// The configuration running now, and each configured listen address with its socket
    /// address (port 0 resolved).
    config: Config,
    configured: Vec<(String, SocketAddr)>,
    reload: Arc<runtime::worker::ReloadBox>,
    node: String,
    pub driver: DriverKind,
    pub workers: usize,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    grace: Duration,
}

fn choose_driver(wanted: Driver) -> Result<DriverKind, StartError> {
    let forced_legacy = std::env::var_os("MONOIO_FORCE_LEGACY_DRIVER").is_some_and(|v| v == "1");
    match wanted {
        Driver::Epoll => Ok(DriverKind::Epoll),
        _ if forced_legacy => Ok(DriverKind::Epoll),
        Driver::IoUring if monoio::utils::detect_uring() => Ok(DriverKind::IoUring),
        Driver::IoUring => Err(StartError::NoIoUring),
        Driver::Auto if monoio::utils::detect_uring() => Ok(DriverKind::IoUring),
        Driver::Auto => {
            tracing::warn!("io_uring is not available here (kernel.io_uring_disabled, seccomp or an old kernel); falling back to the epoll driver");
            Ok(DriverKind::Epoll)
        }
    }
}

/// Every listen address of a configuration as a key: `ADDR` (HTTP) or `tls:ADDR` (HTTPS).
fn listen_keys(cfg: &Config) -> Vec<String> {
    cfg.server
        .listen
        .iter()
        .cloned()
        .chain(cfg.server.listen_tls.iter().map(|a| format!("tls:{a}")))
        .collect()
}

fn key_addr(key: &str) -> Option<(SocketAddr, bool)> {
    match key.strip_prefix("tls:") {
        Some(a) => Some((a.parse().ok()?, true)),
        None => Some((key.parse().ok()?, false)),
    }
}

/// (HTTPS, HTTP) socket addresses of the configured listeners.
fn split_addrs(configured: &[(String, SocketAddr)]) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
    let tls = configured
        .iter()
        .filter(|(k, _)| k.starts_with("tls:"))
        .map(|(_, a)| *a)
        .collect();
    let plain = configured
        .iter()
        .filter(|(k, _)| !k.starts_with("tls:"))
        .map(|(_, a)| *a)
        .collect();
    (tls, plain)
}

/// The request-path settings of a configuration.
pub(crate) fn settings_of(cfg: &Config) -> Arc<Settings> {
    let s = &cfg.server;
    Arc::new(Settings {
        limits: Limits {
            max_header_bytes: s.max_header_bytes,
            max_headers: s.max_headers.min(http::codec::HEADER_ARRAY),
            max_uri_bytes: s.max_uri_bytes,
        },
        header_timeout: s.header_timeout.0,
        keepalive_timeout: s.keepalive_timeout.0,
        body_timeout: s.body_timeout.0,
        max_body_bytes: s.max_body_bytes.0,
        max_connections: s.max_connections,
        shutdown_grace: s.shutdown_grace.0,
        h2c: s.h2c,
        http2: s.http2.clone(),
    })
}

impl Server {
    /// Binds every listener, starts every worker, and returns once all are accepting.
    pub fn start(cfg: &Config) -> Result<Server, StartError> {
        let workers = match cfg.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let driver = choose_driver(cfg.server.driver)?;
        // Listeners, certificates, directories and the slab are the process's, for every
        // distribution at once.
        let view = sites::process_view(cfg);
        let keys = listen_keys(&view);
        let parsed: Vec<(SocketAddr, bool)> = keys.iter().filter_map(|k| key_addr(k)).collect();
        let addrs: Vec<SocketAddr> = parsed.iter().map(|(a, _)| *a).collect();
        let bound = runtime::listener::bind_all(&addrs, workers).map_err(StartError::Listen)?;
        let viewer_tls = tls::server_config(&view).map_err(StartError::ViewerTls)?;

        check_directories(&view)?;
        edge::geo::prepare(cfg, false).map_err(StartError::Geo)?;

        let node = cfg.node_name().unwrap_or_else(host_name);
        let proxy = open_proxy(&view, &node)?;
        // Before any worker serves: caught up with the fleet's invalidations.
        let cluster = cluster::start(cfg, &node, proxy.as_ref().map(|p| p.0.clone()));
        let site_sinks = sites::LogSinks::for_config(cfg, &sites::LogSinks::default())?;
        proxy::health::start_checks(&view);
        let metrics: Vec<Arc<observe::WorkerMetrics>> = (0..workers).map(|_| Arc::default()).collect();
        // Custom origins only: directory origins have no exchanges to count.
        let stats = Arc::new(stats::Stats::for_config(workers, cfg));
        let log_sink = match cfg.logging.as_ref().filter(|l| l.enabled) {
            Some(l) => Some(
                observe::LogSink::start(l.path.clone().into()).map_err(|e| StartError::Log {
                    path: l.path.clone(),
                    source: e,
                })?,
            ),
            None => None,
        };

        let s = &cfg.server;
        let settings = settings_of(cfg);
        let stop = Arc::new(AtomicBool::new(false));
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<usize, StartError>>();
        let mut threads = Vec::with_capacity(workers);
        let reload = Arc::new(runtime::worker::ReloadBox::default());
        let resolved = bound.addrs.clone();
        let configured: Vec<(String, SocketAddr)> = keys.into_iter().zip(resolved.iter().copied()).collect();
        // What the workers build from: `vip` listeners named by the addresses they got.
        let bound_cfg = sites::bound_view(cfg, &configured);
        for (id, listeners) in bound.per_worker.into_iter().enumerate() {
            let listeners = with_tls_flags(&resolved, listeners, &parsed);
            let reload = reload.clone();
            let cfg = bound_cfg.clone();
            let settings = settings.clone();
            let proxy = proxy.clone();
            let extras = (
                metrics[id].clone(),
                log_sink.clone(),
                cfg.logging.as_ref().is_some_and(|l| l.include_cookies),
                node.clone(),
                viewer_tls.clone(),
                stats.clone(),
            );
            let stop = stop.clone();
            let ready = ready_tx.clone();
            let sinks = site_sinks.clone();
            let core = if cores.is_empty() {
                None
            } else {
                Some(cores[id % cores.len()])
            };
            let t = std::thread::Builder::new()
                .name(format!("slabfront-w{id}"))
                .spawn(move || {
                    if let Some(core) = core {
                        if !core_affinity::set_for_current(core) {
                            tracing::warn!(worker = id, core = core.id, "cannot pin worker to its core");
                        }
                    }
                    let w = match sites::build(id, &cfg, settings, proxy.as_ref(), extras, &sinks) {
                        Ok(w) => Rc::new(w),
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    let legacy = driver == DriverKind::Epoll;
                    let main = async move {
                        let up = move || {
                            let _ = ready.send(Ok(id));
                        };
                        runtime::worker::run(w, listeners, stop, reload, legacy, up).await;
                    };
                    let built = match driver {
                        DriverKind::IoUring => runtime::ring::build(4096).map(|(mut rt, setup)| {
                            if id == 0 {
                                tracing::debug!(setup, "io_uring ring");
                            }
                            rt.block_on(main)
                        }),
                        DriverKind::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                            .enable_timer()
                            .build()
                            .map(|mut rt| rt.block_on(main)),
                    };
                    if let Err(e) = built {
                        tracing::error!(worker = id, error = %e, "cannot build runtime");
                    }
                })
                .map_err(|e| StartError::Worker(id, e.to_string()))?;
            threads.push(t);
        }
        drop(ready_tx);
        for _ in 0..workers {
            match ready_rx.recv_timeout(Duration::from_secs(10)) {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    stop.store(true, Ordering::Release);
                    return Err(e);
                }
                Err(_) => {
                    stop.store(true, Ordering::Release);
                    return Err(StartError::Worker(
                        0,
                        "a worker did not start (runtime could not be built)".into(),
                    ));
                }
            }
        }
        let (tls_addrs, plain_addrs) = split_addrs(&configured);
        Ok(Server {
            configured,
            tls_addrs,
            config: cfg.clone(),
            reload,
            node,
            shared: proxy.map(|p| p.0),
            cluster,
            metrics,
            log_sink,
            site_sinks,
            names: Arc::new(std::sync::RwLock::new(names_of(cfg))),
            stats,
            addrs: plain_addrs,
            driver,
            workers,
            stop,
            threads,
            grace: s.shutdown_grace.0,
        })
    }

    /// Switches every worker to a new (validated) configuration: new requests use it,
    /// in-flight ones finish on the old one; listeners and the slab stay open, listen
    /// addresses are added and removed. Settings that need a restart (workers, driver, the
    /// slab, logging) are kept, with a warning.
    pub fn reload(&mut self, new: Config) -> Result<(), String> {
        let old = &self.config;
        let mut new = new;
        if new.server.workers != old.server.workers || new.server.driver != old.server.driver {
            tracing::warn!(
                "server.workers and server.driver change only on restart; keeping the running values"
            );
            new.server.workers = old.server.workers;
            new.server.driver = old.server.driver;
        }
        if self.shared.is_some() && (new.cache.path != old.cache.path || new.cache.size != old.cache.size) {
            tracing::warn!("the [cache] slab changes only on restart; keeping the open one");
            new.cache = old.cache.clone();
        }
        if new
            .logging
            .as_ref()
            .map(|l| (&l.path, l.enabled, l.include_cookies))
            != old
                .logging
                .as_ref()
                .map(|l| (&l.path, l.enabled, l.include_cookies))
        {
            tracing::warn!("[logging] changes only on restart; keeping the running access log");
            new.logging = old.logging.clone();
        }
        let view = sites::process_view(&new);
        check_directories(&view).map_err(|e| e.to_string())?;
        // A function that no longer compiles keeps the running generation.
        if let Some(e) = functions::Functions::check(&new).into_iter().next() {
            return Err(e.to_string());
        }
        edge::geo::prepare(&new, true)?;
        // The slab: kept open; opened now if the new configuration is the first with a
        // custom origin.
        let proxy: Option<ProxyParts> =
            match (&self.shared, view.origins.iter().any(|o| o.domain_name.is_some())) {
                (_, false) => None,
                (Some(shared), true) => Some((shared.clone(), origin_tls(&view).map_err(|e| e.to_string())?)),
                (None, true) => open_proxy(&view, &self.node).map_err(|e| e.to_string())?,
            };
        let viewer_tls = tls::server_config(&view)?;
        let sinks = sites::LogSinks::for_config(&new, &self.site_sinks).map_err(|e| e.to_string())?;
        self.forget_removed(&new);
        // Listeners: bind the added addresses for every worker; retire the removed ones.
        let new_keys = listen_keys(&view);
        let added_keys: Vec<String> = new_keys
            .iter()
            .filter(|k| !self.configured.iter().any(|(c, _)| c == *k))
            .cloned()
            .collect();
        let added: Vec<(SocketAddr, bool)> = added_keys.iter().filter_map(|k| key_addr(k)).collect();
        let removed: Vec<(String, SocketAddr)> = self
            .configured
            .iter()
            .filter(|(c, _)| !new_keys.contains(c))
            .cloned()
            .collect();
        let added_addrs: Vec<SocketAddr> = added.iter().map(|(a, _)| *a).collect();
        let bound = runtime::listener::bind_all(&added_addrs, self.workers).map_err(|e| e.to_string())?;
        let settings = settings_of(&new);
        let mut configured = self.configured.clone();
        configured.retain(|(c, _)| new_keys.contains(c));
        configured.extend(added_keys.iter().cloned().zip(bound.addrs.iter().copied()));
        let cfg = Arc::new(sites::bound_view(&new, &configured));
        {
            let mut slots = self.reload.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.clear();
            for (id, listeners) in bound.per_worker.into_iter().enumerate() {
                let (cfg, settings, proxy, sinks) =
                    (cfg.clone(), settings.clone(), proxy.clone(), sinks.clone());
                let extras = (
                    self.metrics[id].clone(),
                    None,
                    false,
                    new.server.node_name.clone().unwrap_or_else(|| self.node.clone()),
                    viewer_tls.clone(),
                    self.stats.clone(),
                );
                slots.push(Some(runtime::worker::WorkerReload {
                    build: Box::new(move || {
                        sites::build(id, &cfg, settings, proxy.as_ref(), extras, &sinks)
                            .map_err(|e| e.to_string())
                    }),
                    add: with_tls_flags(&bound.addrs, listeners, &added),
                    remove: removed.iter().map(|(_, a)| *a).collect(),
                }));
            }
        }
        self.reload.applied.store(0, Ordering::Release);
        self.reload.generation.fetch_add(1, Ordering::AcqRel);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.reload.applied.load(Ordering::Acquire) < self.workers {
            if Instant::now() > deadline {
                return Err("workers did not take the new configuration within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.configured = configured;
        let (tls_addrs, plain_addrs) = split_addrs(&self.configured);
        self.addrs = plain_addrs;
        self.tls_addrs = tls_addrs;
        if self.shared.is_none() {
            self.shared = proxy.map(|p| p.0);
        }
        self.site_sinks = sinks;
        *self.names.write().unwrap_or_else(|e| e.into_inner()) = names_of(&new);
        proxy::health::start_checks(&sites::process_view(&new));
        self.config = new;
        Ok(())
    }

    /// A distribution the new configuration no longer has: its cached objects are
    /// invalidated (its names may come back later for other content).
    fn forget_removed(&self, new: &Config) {
        let Some(shared) = &self.shared else { return };
        for d in &self.config.distributions {
            if !new
                .distributions
                .iter()
                .any(|n| n.name.eq_ignore_ascii_case(&d.name))
            {
                let prefix = sites::key_prefix(&d.name);
                if !prefix.is_empty() {
                    let removed = shared.invalidate_prefix(&prefix);
                    tracing::info!(distribution = %d.name, removed, "distribution removed; its objects are invalidated");
                }
            }
        }
    }

    /// The names of the distributions served now (kept current across reloads), for the
    /// admin listener's per-distribution invalidations.
    pub fn distribution_names(&self) -> Arc<std::sync::RwLock<Vec<String>>> {
        self.names.clone()
    }

    /// Set once the server is stopping (health checks report draining).
    pub fn draining(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Asks every worker to stop accepting and drain.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Waits for the workers to finish draining (at most the grace period plus a little).
    pub fn join(&mut self) {
        let deadline = Instant::now() + self.grace + Duration::from_secs(1);
        for t in std::mem::take(&mut self.threads) {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// A worker's counters, the log sink, whether cookies are logged, and the node name.
pub(crate) type WorkerExtras = (
    Arc<observe::WorkerMetrics>,
    Option<Arc<observe::LogSink>>,
    bool,
    String,
    Option<Arc<rustls::ServerConfig>>,
    Arc<stats::Stats>,
);

/// Shared proxy state and per-origin TLS configurations.
pub(crate) type ProxyParts = (Arc<proxy::Shared>, Arc<Vec<Option<Arc<rustls::ClientConfig>>>>);

/// Every directory origin must exist before workers use it.
fn check_directories(cfg: &Config) -> Result<(), StartError> {
    for o in &cfg.origins {
        if let Some(p) = &o.path {
            std::fs::canonicalize(p).map_err(|e| StartError::Origin {
                id: o.id.clone(),
                path: p.clone(),
                source: e,
            })?;
        }
    }
    Ok(())
}

/// The rustls client configuration of every custom origin that may be reached over HTTPS.
pub(crate) fn origin_tls(cfg: &Config) -> Result<Arc<Vec<Option<Arc<rustls::ClientConfig>>>>, StartError> {
    let mut tls = Vec::with_capacity(cfg.origins.len());
    for o in &cfg.origins {
        let needs_tls = o.domain_name.is_some() && o.protocol != config::OriginProtocol::HttpOnly;
        tls.push(if needs_tls {
            Some(
                proxy::upstream::tls_config(o).map_err(|message| StartError::OriginTls {
                    id: o.id.clone(),
                    message,
                })?,
            )
        } else {
            None
        });
    }
    Ok(Arc::new(tls))
}

/// One worker's sockets with their addresses and whether each is HTTPS.
fn with_tls_flags(
    addrs: &[SocketAddr],
    sockets: Vec<std::net::TcpListener>,
    parsed: &[(SocketAddr, bool)],
) -> Vec<(SocketAddr, std::net::TcpListener, bool)> {
    addrs
        .iter()
        .copied()
        .zip(sockets)
        .zip(parsed.iter().map(|(_, tls)| *tls))
        .map(|((a, l), tls)| (a, l, tls))
        .collect()
}

/// Opens the slab and prepares TLS to origins, when any origin is a custom one.
pub(crate) fn open_proxy(cfg: &Config, node: &str) -> Result<Option<ProxyParts>, StartError> {
    if cfg.origins.iter().all(|o| o.domain_name.is_none()) {
        return Ok(None);
    }
    let tls = origin_tls(cfg)?;
    let path = std::path::Path::new(&cfg.cache.path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StartError::Cache {
            path: cfg.cache.path.clone(),
            message: format!("cannot create {}: {e}", dir.display()),
        })?;
    }
    let store =
        cache_store::Store::open(&cache_store::StoreOptions::new(path, cfg.cache.size.0)).map_err(|e| {
            StartError::Cache {
                path: cfg.cache.path.clone(),
                message: e.to_string(),
            }
        })?;
    let st = store.stats();
    tracing::info!(
        path = %cfg.cache.path,
        size = cfg.cache.size.0,
        objects = st.objects,
        bytes_used = st.bytes_used,
        corrupt_skipped = st.corrupt_skipped,
        "cache slab open"
    );
    let shared = proxy::Shared::new(store, node.to_string()).map_err(|e| StartError::Cache {
        path: cfg.cache.path.clone(),
        message: format!("cannot start the prefetch thread: {e}"),
    })?;
    Ok(Some((Arc::new(shared), tls)))
}

fn names_of(cfg: &Config) -> Vec<String> {
    cfg.distributions.iter().map(|d| d.name.clone()).collect()
}

/// This machine's host name (for `Via`), or "slabfront".
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "slabfront".into())
}

pub(crate) fn build_worker(
    id: usize,
    cfg: &Config,
    settings: Arc<Settings>,
    proxy: Option<&ProxyParts>,
    extras: WorkerExtras,
) -> Result<Worker, StartError> {
    let mut statics = Vec::new();
    let mut target_of = ahash::AHashMap::new();
    for (i, o) in cfg.origins.iter().enumerate() {
        match &o.path {
            Some(p) => {
                let origin = StaticOrigin::new(StaticOptions {
                    root: p.into(),
                    default_root_object: cfg.default_root_object.clone(),
                    cache_bytes: cfg.server.file_cache_bytes.0,
                    max_cached_file: cfg.server.file_cache_max_file.0,
                    revalidate: cfg.server.file_cache_revalidate.0,
                })
                .map_err(|e| StartError::Origin {
                    id: o.id.clone(),
                    path: p.clone(),
                    source: e,
                })?;
                target_of.insert(o.id.clone(), Target::Static(statics.len()));
                statics.push(origin);
            }
            None => {
                target_of.insert(o.id.clone(), Target::Custom(i));
            }
        }
    }
    // Groups follow the origins in the proxy's clients (see `proxy::ProxyWorker::new`).
    for (gi, g) in cfg.origin_groups.iter().enumerate() {
        target_of.insert(g.id.clone(), Target::Custom(cfg.origins.len() + gi));
    }
    // The configuration was validated: every target names an origin.
    let target = |id: &str| target_of.get(id).copied().unwrap_or(Target::Custom(usize::MAX));
    let behaviors = cfg
        .behaviors
        .iter()
        .map(|b| (PathPattern::new(&b.path_pattern), target(&b.target_origin)))
        .collect();
    let router = Router::new(behaviors, target(&cfg.default_cache_behavior.target_origin));
    let proxy = match proxy {
        Some((shared, tls)) => {
            Some(proxy::ProxyWorker::new(cfg, shared.clone(), tls).map_err(|e| StartError::Worker(id, e))?)
        }
        None => None,
    };
    let (metrics, sink, include_cookies, edge, viewer_tls, stats) = extras;
    let policies = std::iter::once(&cfg.default_cache_behavior)
        .chain(cfg.behaviors.iter())
        .map(|b| b.viewer_protocol_policy)
        .collect();
    let extras = context::Extras {
        proxy,
        metrics,
        log: sink.map(|s| Rc::new(observe::LogBuffer::new(s, include_cookies))),
        stats: Rc::new(stats::Recorder::new(stats, id)),
        controls: edge::Controls::build(cfg, &edge)
            .map_err(|e| StartError::Worker(id, e))?
            .map(Rc::new),
        edge,
        tls: viewer_tls,
        policies,
        functions: functions::edge::EdgeFunctions::for_worker(id, cfg)
            .map_err(|e| StartError::Worker(id, e.to_string()))?
            .map(Rc::new),
    };
    Ok(Worker::new(id, settings, router, statics, extras))
}
