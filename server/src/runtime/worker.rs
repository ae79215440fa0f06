//! A worker's runtime plumbing: one thread, one monoio runtime, pinned to one core, with its
//! own listeners, accept loops and ticker (Date, log hand-over, idle sweeps, reloads, stop).
//! The application context it carries is `crate::context::Worker`.

use crate::context::{Active, Worker};
use crate::runtime::accept::Acceptor;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
            let task = monoio::spawn(accept_loop(slot.clone(), l, retire.clone(), addr, tls));
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
        cur.stats.tick();
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
    addr: std::net::SocketAddr,
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
            Ok(stream) => take(&slot, stream, addr, tls),
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
        take(&slot, stream, addr, tls);
    }
}

/// A connection just accepted on `listener`: served by the newest generation (by its `vip`
/// distribution on a listener of one's own), or refused when the worker is at
/// `max_connections`.
fn take(
    slot: &Rc<RefCell<Rc<Worker>>>,
    stream: std::net::TcpStream,
    listener: std::net::SocketAddr,
    tls: bool,
) {
    let front = slot.borrow().clone();
    let w = match front.hosts.as_ref().filter(|h| !h.vips.is_empty()) {
        Some(h) => h.pinned(listener).unwrap_or(front),
        None => front,
    };
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
                let _open = w.stats.tls_connection();
                let Some(config) = w.tls.clone() else { return };
                let deadline = Instant::now() + w.settings.header_timeout;
                // The handshake's flights go out at once, not after delayed ACKs.
                let _ = stream.set_nodelay(true);
                match crate::runtime::viewer::TlsConn::accept(stream, config, deadline).await {
                    Ok(t) => {
                        w.metrics.add(&w.metrics.tls_handshakes, 1);
                        let viewer = crate::runtime::viewer::Viewer::Tls(Box::new(t));
                        if viewer.is_h2() {
                            Box::pin(crate::conn_h2::serve(guard, viewer)).await;
                        } else {
                            crate::conn::serve(guard, viewer).await;
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
                }
            });
        } else if w.settings.h2c {
            // HTTP/2 with prior knowledge, told apart from HTTP/1.1 by its preface.
            monoio::spawn(async move {
                let timeout = guard.0.settings.header_timeout;
                let viewer = crate::runtime::viewer::Viewer::Plain(stream);
                if crate::conn_h2::is_preface(viewer.tcp(), timeout).await {
                    Box::pin(crate::conn_h2::serve(guard, viewer)).await;
                } else {
                    crate::conn::serve(guard, viewer).await;
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
    let msg = crate::conn::error_bytes(crate::exchange::ExchangeError::Overloaded);
    let _ = monoio::time::timeout(Duration::from_secs(1), stream.write_all(msg)).await;
}
