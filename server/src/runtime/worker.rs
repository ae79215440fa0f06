//! A worker: one thread, one monoio runtime, pinned to one core, with its own listeners and
//! its own copy of everything the request path touches.

use crate::http::codec::Limits;
use crate::router::Router;
use crate::runtime::wait::Waits;
use crate::static_files::StaticOrigin;
use monoio::net::TcpListener;
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

/// Per-worker state. Lives on one thread; nothing in it is locked.
pub struct Worker {
    pub id: usize,
    pub settings: Arc<Settings>,
    pub router: Router,
    pub statics: Vec<StaticOrigin>,
    pub active: Cell<usize>,
    /// Idle deadlines and shutdown, swept by the worker's ticker.
    pub waits: Rc<Waits>,
    /// The caching proxy, when the distribution has custom origins.
    pub proxy: Option<crate::proxy::ProxyWorker>,
    bufs: RefCell<Vec<Vec<u8>>>,
}

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
        proxy: Option<crate::proxy::ProxyWorker>,
    ) -> Self {
        Worker {
            id,
            settings,
            router,
            statics,
            proxy,
            active: Cell::new(0),
            waits: Rc::new(Waits::default()),
            bufs: RefCell::new(Vec::new()),
        }
    }

    /// The custom origin a path is routed to, if any.
    pub fn router_origin(&self, path: &[u8]) -> Option<usize> {
        match self.router.route(path) {
            crate::router::Target::Custom(i) => Some(i),
            crate::router::Target::Static(_) => None,
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
struct Active(Rc<Worker>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.set(self.0.active.get() - 1);
    }
}

/// The worker's main task: accept on every listener until shutdown, then drain.
pub async fn run(w: Rc<Worker>, listeners: Vec<std::net::TcpListener>, stop: Arc<AtomicBool>) {
    // Ticker: the Date header once a second, and the process-wide stop flag.
    let ticker = {
        let w = w.clone();
        monoio::spawn(async move {
            loop {
                crate::http::date::refresh();
                if stop.load(Ordering::Acquire) {
                    w.waits.shut_down();
                    return;
                }
                w.waits.sweep(Instant::now());
                monoio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut accepts = Vec::new();
    for l in listeners {
        match TcpListener::from_std(l) {
            Ok(l) => accepts.push(monoio::spawn(accept_loop(w.clone(), l))),
            Err(e) => tracing::error!(worker = w.id, error = %e, "cannot register listener"),
        }
    }
    ticker.await;
    for a in accepts {
        a.await;
    }
    // Draining: in-flight exchanges finish, idle connections have been told to close.
    let deadline = Instant::now() + w.settings.shutdown_grace;
    while w.active.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    if w.active.get() > 0 {
        tracing::warn!(
            worker = w.id,
            open = w.active.get(),
            "grace period over; closing remaining connections"
        );
    }
}

async fn accept_loop(w: Rc<Worker>, listener: TcpListener) {
    let mut last_error_log: Option<Instant> = None;
    loop {
        let shutdown = w.waits.until_shutdown();
        let accepted = monoio::select! {
            r = listener.accept() => r,
            _ = shutdown => return,
        };
        match accepted {
            Ok((stream, _peer)) => {
                if w.active.get() >= w.settings.max_connections {
                    monoio::spawn(refuse(stream));
                    continue;
                }
                w.active.set(w.active.get() + 1);
                let guard = Active(w.clone());
                monoio::spawn(async move {
                    crate::conn::serve(guard.0.clone(), stream).await;
                    drop(guard);
                });
            }
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
}

/// Over `max_connections`: a short 503 and close.
async fn refuse(mut stream: monoio::net::TcpStream) {
    use monoio::io::AsyncWriteRentExt;
    const MSG: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\ntoo many connections";
    let _ = monoio::time::timeout(Duration::from_secs(1), stream.write_all(MSG)).await;
}
