//! A worker: one thread, one monoio runtime, pinned to one core, with its own listeners and
//! its own copy of everything the request path touches.

use crate::http::codec::Limits;
use crate::router::Router;
use crate::runtime::accept::Acceptor;
use crate::runtime::wait::Waits;
use crate::static_files::StaticOrigin;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// A configuration change for one worker, handed over by a reload.
pub struct WorkerReload {
    /// The new generation, built by the worker from the new configuration.
    pub build: Box<dyn FnOnce() -> Result<Worker, String> + Send>,
    /// Listeners for addresses the new configuration adds (this worker's sockets), and
    /// whether each is HTTPS.
    pub add: Vec<(std::net::SocketAddr, std::net::TcpListener, bool)>,
    /// Addresses the new configuration no longer listens on.
    pub remove: Vec<std::net::SocketAddr>,
}

/// Where reloads wait for the workers: one slot per worker, a generation counter, and a
/// count of workers done with the latest one.
#[derive(Default)]
pub struct ReloadBox {
    pub generation: std::sync::atomic::AtomicU64,
    pub slots: std::sync::Mutex<Vec<Option<WorkerReload>>>,
    pub applied: std::sync::atomic::AtomicUsize,
}

impl ReloadBox {
    fn take(&self, id: usize) -> Option<WorkerReload> {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(id)
            .and_then(Option::take)
    }
}

/// A listener's accept task and the event that retires it.
struct Accepting {
    addr: std::net::SocketAddr,
    retire: Rc<event_listener::Event>,
    task: monoio::task::JoinHandle<()>,
}

/// The worker's main task: accept on every listener until shutdown (applying reloads as they
/// come), then drain.
///
/// The listeners start listening here, on the worker's thread, once the runtime is up;
/// `ready` is called after that. `legacy`: the runtime runs the epoll driver.
pub async fn run(
    w: Rc<Worker>,
    listeners: Vec<(std::net::SocketAddr, std::net::TcpListener, bool)>,
    stop: Arc<AtomicBool>,
    reload: Arc<ReloadBox>,
    legacy: bool,
    ready: impl FnOnce(),
) {
    let slot = Rc::new(RefCell::new(w.clone()));
    let mut accepts: Vec<Accepting> = Vec::new();
    let listen = |accepts: &mut Vec<Accepting>, addr, l: std::net::TcpListener, tls: bool| match Acceptor::new(
        l, legacy,
    ) {
        Ok(l) => {
            let retire = Rc::new(event_listener::Event::new());
            let task = monoio::spawn(accept_loop(slot.clone(), l, retire.clone(), tls));
            accepts.push(Accepting { addr, retire, task });
        }
        Err(e) => tracing::error!(worker = w.id, error = %e, "cannot register listener"),
    };
    for (addr, l, tls) in listeners {
        listen(&mut accepts, addr, l, tls);
    }
    ready();
    let mut seen = reload.generation.load(Ordering::Acquire);
    // Ticks: the Date header once a second, log hand-over, idle deadlines, reloads, stop.
    loop {
        let cur = slot.borrow().clone();
        crate::http::date::refresh();
        cur.flush_log();
        if stop.load(Ordering::Acquire) {
            cur.waits.shut_down();
            break;
        }
        let generation = reload.generation.load(Ordering::Acquire);
        if generation != seen {
            seen = generation;
            if let Some(r) = reload.take(cur.id) {
                match (r.build)() {
                    Ok(next) => {
                        let next = cur.succeed(next);
                        *slot.borrow_mut() = next;
                        for addr in &r.remove {
                            for a in accepts.iter().filter(|a| a.addr == *addr) {
                                a.retire.notify(usize::MAX);
                            }
                        }
                        accepts.retain(|a| !r.remove.contains(&a.addr));
                        for (addr, l, tls) in r.add {
                            listen(&mut accepts, addr, l, tls);
                        }
                    }
                    Err(e) => tracing::error!(worker = cur.id, error = %e, "reload failed on this worker"),
                }
            }
            reload.applied.fetch_add(1, Ordering::AcqRel);
        }
        cur.waits.sweep(Instant::now());
        monoio::time::sleep(Duration::from_millis(100)).await;
    }
    for a in accepts {
        a.task.await;
    }
    // Draining: in-flight exchanges finish, idle connections have been told to close.
    let w = slot.borrow().clone();
    let deadline = Instant::now() + w.settings.shutdown_grace;
    while w.active.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    w.flush_log();
    if w.active.get() > 0 {
        tracing::warn!(
            worker = w.id,
            open = w.active.get(),
            "grace period over; closing remaining connections"
        );
    }
}

async fn accept_loop(
    slot: Rc<RefCell<Rc<Worker>>>,
    listener: Acceptor,
    retire: Rc<event_listener::Event>,
    tls: bool,
) {
    let mut last_error_log: Option<Instant> = None;
    loop {
        let w = slot.borrow().clone();
        let shutdown = w.waits.until_shutdown();
        let retired = retire.listen();
        let accepted = monoio::select! {
            r = listener.accept() => r,
            _ = shutdown => break,
            _ = retired => break,
        };
        match accepted {
            Ok(stream) => take(&slot, stream, tls),
            Err(e) => {
                // EMFILE and friends: log at most once a second and back off a little.
                if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    tracing::warn!(worker = w.id, error = %e, "accept failed");
                    last_error_log = Some(Instant::now());
                }
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    // The listener closes when this returns: the connections queued on it are served
    // rather than reset by the close.
    for stream in listener.drain() {
        take(&slot, stream, tls);
    }
}

/// A connection just accepted: served by the newest generation, or refused when the worker
/// is at `max_connections`.
fn take(slot: &Rc<RefCell<Rc<Worker>>>, stream: std::net::TcpStream, tls: bool) {
    let w = slot.borrow().clone();
    let stream = match monoio::net::TcpStream::from_std(stream) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(worker = w.id, error = %e, "cannot register an accepted connection");
            return;
        }
    };
    if w.active.get() >= w.settings.max_connections {
        monoio::spawn(refuse(stream));
        return;
    }
    w.active.set(w.active.get() + 1);
    let m = &w.metrics;
    m.add(&m.connections_total, 1);
    m.connections_active
        .store(w.active.get() as u64, std::sync::atomic::Ordering::Relaxed);
    let guard = Active(w.clone());
    {
        if tls {
            monoio::spawn(async move {
                let w = guard.0.clone();
                let Some(config) = w.tls.clone() else { return };
                let deadline = Instant::now() + w.settings.header_timeout;
                // The handshake's flights go out at once, not after delayed ACKs.
                let _ = stream.set_nodelay(true);
                match crate::runtime::viewer::TlsConn::accept(stream, config, deadline).await {
                    Ok(t) => {
                        w.metrics.add(&w.metrics.tls_handshakes, 1);
                        crate::conn::serve(guard, crate::runtime::viewer::Viewer::Tls(Box::new(t))).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
                }
            });
        } else {
            // The connection's future is the task itself: wrapping it in another
            // async block would store it twice (argument and awaited future).
            monoio::spawn(crate::conn::serve(
                guard,
                crate::runtime::viewer::Viewer::Plain(stream),
            ));
        }
    }
}

/// Over `max_connections`: a short 503 and close.
async fn refuse(mut stream: monoio::net::TcpStream) {
    use monoio::io::AsyncWriteRentExt;
    const MSG: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\ntoo many connections";
    let _ = monoio::time::timeout(Duration::from_secs(1), stream.write_all(MSG)).await;
}
