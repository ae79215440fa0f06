//! A worker's application context: everything the request path touches, for one
//! configuration generation (settings, router, origins, proxy, TLS, metrics, log buffer),
//! one copy per worker thread. The runtime plumbing that carries it (listeners, accept
//! loops, ticks, reloads) is `runtime::worker`.

use crate::http::codec::Limits;
use crate::router::Router;
use crate::runtime::wait::Waits;
use crate::static_files::StaticOrigin;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Runtime settings derived from the validated configuration (shared, immutable).
#[derive(Debug, Clone)]
pub struct Settings {
    pub limits: Limits,
    pub header_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub body_timeout: Duration,
    pub max_body_bytes: u64,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    /// Plain listeners also take HTTP/2 with prior knowledge.
    pub h2c: bool,
    pub http2: config::Http2,
}

/// Per-worker state for one configuration generation. Lives on one thread; nothing in it is
/// locked. A reload builds a new one; connections move to it between requests.
pub struct Worker {
    pub id: usize,
    pub settings: Arc<Settings>,
    pub router: Router,
    pub statics: Vec<StaticOrigin>,
    /// Open connections (shared by every generation of this worker).
    pub active: Rc<Cell<usize>>,
    /// Idle deadlines and shutdown, swept by the worker's ticker.
    pub waits: Rc<Waits>,
    /// The caching proxy, when the distribution has custom origins.
    pub proxy: Option<crate::proxy::ProxyWorker>,
    /// This worker's counters (read by the admin listener).
    pub metrics: Arc<crate::observe::WorkerMetrics>,
    /// This worker's access-log buffer, when logging is on.
    pub log: Option<Rc<crate::observe::LogBuffer>>,
    /// This worker's dashboard statistics.
    pub stats: Rc<crate::stats::Recorder>,
    /// The edge location written in logs (the node name).
    pub edge: String,
    /// The viewer TLS configuration (certificates), when there are HTTPS listeners.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Viewer protocol policy per behavior (0 = the default behavior).
    pub policies: Vec<config::ViewerProtocolPolicy>,
    /// Signed URLs and response headers policies per behavior, when any behavior has one.
    pub controls: Option<Rc<crate::edge::Controls>>,
    /// With several distributions: which one answers a Host (each a worker of its own for
    /// its routes, origins, cache keys and log, sharing this one's connections and counters).
    pub hosts: Option<Rc<Hosts>>,
    /// The behaviors' CloudFront Functions and this worker's engine; `None` when no
    /// behavior runs one.
    pub functions: Option<Rc<crate::functions::edge::EdgeFunctions>>,
    requests: Rc<Cell<u64>>,
    bufs: RefCell<Vec<Vec<u8>>>,
    /// The generation that replaced this one, after a reload.
    next: RefCell<Option<Rc<Worker>>>,
}

/// What a worker is given besides its configuration.
pub struct Extras {
    pub proxy: Option<crate::proxy::ProxyWorker>,
    pub metrics: Arc<crate::observe::WorkerMetrics>,
    pub log: Option<Rc<crate::observe::LogBuffer>>,
    pub stats: Rc<crate::stats::Recorder>,
    pub edge: String,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub policies: Vec<config::ViewerProtocolPolicy>,
    pub functions: Option<Rc<crate::functions::edge::EdgeFunctions>>,
    pub controls: Option<Rc<crate::edge::Controls>>,
}

/// Process start time, hex: makes request ids unique across restarts.
static START_ID: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:x}", t.as_micros())
});

/// Spare buffers kept per worker.
const POOL: usize = 1024;
/// Pooled buffers larger than this are freed instead (after a big pipelined burst).
const POOL_MAX_CAP: usize = 64 * 1024;

impl Worker {
    pub fn new(
        id: usize,
        settings: Arc<Settings>,
        router: Router,
        statics: Vec<StaticOrigin>,
        extras: Extras,
    ) -> Self {
        Worker {
            id,
            settings,
            router,
            statics,
            proxy: extras.proxy,
            metrics: extras.metrics,
            log: extras.log,
            stats: extras.stats,
            edge: extras.edge,
            tls: extras.tls,
            policies: extras.policies,
            controls: extras.controls,
            hosts: None,
            functions: extras.functions,
            requests: Rc::new(Cell::new(0)),
            next: RefCell::new(None),
            active: Rc::new(Cell::new(0)),
            waits: Rc::new(Waits::default()),
            bufs: RefCell::new(Vec::new()),
        }
    }

    /// A new generation of this worker: the state that lives across reloads (connection
    /// count, waits, counters, log buffer, request ids) carries over.
    pub fn succeed(&self, mut next: Worker) -> Rc<Worker> {
        next.active = self.active.clone();
        next.waits = self.waits.clone();
        next.requests = self.requests.clone();
        next.metrics = self.metrics.clone();
        next.log = self.log.clone();
        next.stats = self.stats.clone();
        // The distributions' workers were built sharing the new front's state: they share
        // this one's instead, as the front does (the new generation is not shared yet).
        if let Some(h) = next.hosts.as_mut().and_then(Rc::get_mut) {
            for s in h.sites.iter_mut().filter_map(Rc::get_mut) {
                self.adopt(s);
            }
        }
        let next = Rc::new(next);
        *self.next.borrow_mut() = Some(next.clone());
        next
    }

    /// The newest generation, if a reload replaced this one.
    pub fn newest(&self) -> Option<Rc<Worker>> {
        let mut cur = self.next.borrow().clone()?;
        loop {
            let n = cur.next.borrow().clone();
            match n {
                Some(n) => cur = n,
                None => return Some(cur),
            }
        }
    }

    /// The custom origin a path is routed to, if any.
    pub fn router_origin(&self, path: &[u8]) -> Option<usize> {
        match self.router.route(path) {
            crate::router::Target::Custom(i) => Some(i),
            crate::router::Target::Static(_) => None,
        }
    }

    /// A request id for the access log: unique per process (worker, sequence, start time).
    pub fn request_id(&self) -> String {
        let n = self.requests.get() + 1;
        self.requests.set(n);
        format!("{}{:02x}{:010x}", *START_ID, self.id, n)
    }

    /// Hands buffered log lines to the log thread (every distribution's).
    pub fn flush_log(&self) {
        if let Some(l) = &self.log {
            l.flush(&self.metrics);
        }
        if let Some(h) = &self.hosts {
            for s in &h.sites {
                if let Some(l) = &s.log {
                    l.flush(&self.metrics);
                }
            }
        }
    }

    /// Whether any access log is written (this worker's, or a distribution's).
    pub fn logging(&self) -> bool {
        self.log.is_some()
            || self
                .hosts
                .as_ref()
                .is_some_and(|h| h.sites.iter().any(|s| s.log.is_some()))
    }

    /// Makes `site` (a distribution's worker) share this worker's connection count, waits,
    /// request ids and counters: it serves the same connections.
    pub fn adopt(&self, site: &mut Worker) {
        site.stats = Rc::new(self.stats.for_distribution(site.stats.dist()));
        site.active = self.active.clone();
        site.waits = self.waits.clone();
        site.requests = self.requests.clone();
        site.metrics = self.metrics.clone();
    }

    /// The distribution's worker that answers a request with this Host (`None`: no
    /// distribution does, or it is disabled). Without several distributions, this one.
    pub fn site_for(self: &Rc<Self>, host: Option<&[u8]>) -> Option<Rc<Worker>> {
        match &self.hosts {
            None => Some(self.clone()),
            Some(h) => h.find(host.unwrap_or_default()),
        }
    }

    /// A cleared buffer from the pool (or a new one).
    pub fn take_buf(&self) -> Vec<u8> {
        self.bufs
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(8 * 1024))
    }

    /// Returns a buffer to the pool.
    pub fn put_buf(&self, mut b: Vec<u8>) {
        if b.capacity() == 0 || b.capacity() > POOL_MAX_CAP {
            return;
        }
        b.clear();
        let mut pool = self.bufs.borrow_mut();
        if pool.len() < POOL {
            pool.push(b);
        }
    }
}

/// Counts a connection for as long as it lives.
pub struct Active(pub Rc<Worker>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.set(self.0.active.get() - 1);
        let m = &self.0.metrics;
        m.connections_active
            .store(self.0.active.get() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Which distribution answers which Host: exact names in a hash, wildcards (`*.example.com`)
/// in a hash of their suffixes, tried from the longest suffix of the Host down, so a lookup
/// costs a few hash probes whatever the number of names.
pub struct Hosts {
    pub sites: Vec<Rc<Worker>>,
    /// Distribution names, by site.
    pub names: Vec<String>,
    exact: ahash::AHashMap<String, usize>,
    /// `.example.com` for `*.example.com`.
    wildcard: ahash::AHashMap<String, usize>,
    /// Disabled distributions answer nothing (their names still resolve, to a refusal).
    enabled: Vec<bool>,
    /// The listeners of `vip` distributions (bound addresses), and whose they are.
    pub vips: Vec<(std::net::SocketAddr, usize)>,
}

impl Hosts {
    /// Builds the table; `names[i]` are site `i`'s names (its name, then its aliases).
    pub fn new(sites: Vec<Rc<Worker>>, names: Vec<(String, Vec<String>, bool)>) -> Hosts {
        let mut exact = ahash::AHashMap::new();
        let mut wildcard = ahash::AHashMap::new();
        let mut enabled = Vec::with_capacity(names.len());
        let mut primary = Vec::with_capacity(names.len());
        for (i, (name, aliases, on)) in names.into_iter().enumerate() {
            for n in std::iter::once(&name).chain(aliases.iter()) {
                let n = n.to_ascii_lowercase();
                match n.strip_prefix('*') {
                    Some(suffix) => wildcard.insert(suffix.to_string(), i),
                    None => exact.insert(n, i),
                };
            }
            enabled.push(on);
            primary.push(name);
        }
        Hosts {
            sites,
            names: primary,
            exact,
            wildcard,
            enabled,
            vips: Vec::new(),
        }
    }

    /// The site a connection accepted on `listener` belongs to whatever its Host says: an
    /// enabled `vip` distribution's, on a listener of its own.
    pub fn pinned(&self, listener: std::net::SocketAddr) -> Option<Rc<Worker>> {
        let &(_, i) = self.vips.iter().find(|(a, _)| *a == listener)?;
        self.enabled[i].then(|| self.sites[i].clone())
    }

    /// The site for a Host value (port and a trailing dot ignored, case-insensitive).
    pub fn find(&self, host: &[u8]) -> Option<Rc<Worker>> {
        let i = self.index(host)?;
        self.enabled[i].then(|| self.sites[i].clone())
    }

    fn index(&self, host: &[u8]) -> Option<usize> {
        let host = std::str::from_utf8(host).ok()?;
        let host = if host.starts_with('[') {
            host.split_inclusive(']').next().unwrap_or(host)
        } else {
            match host.rsplit_once(':') {
                Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
                _ => host,
            }
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if let Some(&i) = self.exact.get(&host) {
            return Some(i);
        }
        // The longest wildcard first: `.a.example.com` before `.example.com`.
        let mut at = 0;
        while let Some(dot) = host[at..].find('.') {
            let suffix = &host[at + dot..];
            if let Some(&i) = self.wildcard.get(suffix) {
                return Some(i);
            }
            at += dot + 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn table() -> Hosts {
        Hosts::new(
            Vec::new(),
            vec![
                (
                    "www.example.com".into(),
                    vec!["example.com".into(), "*.cdn.example.com".into()],
                    true,
                ),
                ("static.example.com".into(), vec!["*.example.com".into()], true),
                ("old.example.com".into(), vec![], false),
            ],
        )
    }

    #[test]
    fn exact_names_first_then_the_longest_wildcard() {
        let h = table();
        assert_eq!(h.index(b"www.example.com"), Some(0));
        assert_eq!(h.index(b"EXAMPLE.com:8080"), Some(0));
        assert_eq!(h.index(b"static.example.com."), Some(1));
        assert_eq!(
            h.index(b"img.cdn.example.com"),
            Some(0),
            "the longer wildcard wins"
        );
        assert_eq!(h.index(b"a.b.cdn.example.com"), Some(0));
        assert_eq!(h.index(b"anything.example.com"), Some(1));
        assert_eq!(
            h.index(b"cdn.example.com"),
            Some(1),
            "a wildcard does not match its own domain"
        );
        assert_eq!(h.index(b"example.org"), None);
        assert_eq!(h.index(b""), None);
        assert_eq!(h.index(b"old.example.com"), Some(2));
        assert!(!h.enabled[2] && h.find(b"old.example.com").is_none());
    }
}
