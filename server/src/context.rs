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
    /// The edge location written in logs (the node name).
    pub edge: String,
    /// The viewer TLS configuration (certificates), when there are HTTPS listeners.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Viewer protocol policy per behavior (0 = the default behavior).
    pub policies: Vec<config::ViewerProtocolPolicy>,
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
    pub edge: String,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub policies: Vec<config::ViewerProtocolPolicy>,
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
            edge: extras.edge,
            tls: extras.tls,
            policies: extras.policies,
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

    /// Hands buffered log lines to the log thread.
    pub fn flush_log(&self) {
        if let Some(l) = &self.log {
            l.flush(&self.metrics);
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
