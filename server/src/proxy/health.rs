//! Origin health, process-wide by origin id (every worker sees the same state).
//!
//! Passive: an origin that fails [`FAILS_TO_DOWN`] times in a row (refused, timed out,
//! reset, or a 5xx its group fails over on) is down for a back-off that starts at
//! [`BACKOFF_BASE`] and doubles with each failed probe up to [`BACKOFF_CAP`]. When the
//! back-off ends, exactly one request (process-wide) is let through as a probe; the others
//! keep being skipped until the probe answers. A success brings the origin up at once.
//!
//! Active (optional, `health_check = { path, interval, timeout }`): a control thread per
//! origin sends `GET path` every interval over plain HTTP and reports the result as a request
//! would. Its state goes to `/metrics` and `/healthz?verbose`.
//!
//! Only origin groups act on the state (a down primary is skipped for the secondary); a lone
//! origin is always tried, since there is nothing else to ask.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Consecutive failures that take an origin down.
pub const FAILS_TO_DOWN: u32 = 3;
/// The first back-off.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The longest back-off.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);

static START: LazyLock<Instant> = LazyLock::new(Instant::now);
static REGISTRY: LazyLock<Mutex<HashMap<String, Arc<Health>>>> = LazyLock::new(Default::default);
/// Bumped when the configuration changes: active checkers of an older one stop.
static GENERATION: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> u64 {
    START.elapsed().as_millis() as u64
}

/// What a request may do with an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Up: go ahead.
    Go,
    /// Down, back-off over: this request is the one probe.
    Probe,
    /// Down: skip it.
    Skip,
}

/// One origin's health.
#[derive(Default)]
pub struct Health {
    id: String,
    fails: AtomicU32,
    down_until_ms: AtomicU64,
    backoff_ms: AtomicU64,
    probing: AtomicBool,
    /// Counters for `/metrics`.
    pub failures: AtomicU64,
    pub skipped: AtomicU64,
    pub failovers: AtomicU64,
}

/// The health of the origin with this id (created on first use; kept across reloads).
pub fn of(id: &str) -> Arc<Health> {
    let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    r.entry(id.to_string())
        .or_insert_with(|| {
            Arc::new(Health {
                id: id.to_string(),
                ..Default::default()
            })
        })
        .clone()
}

impl Health {
    pub fn is_down(&self) -> bool {
        self.fails.load(Ordering::Acquire) >= FAILS_TO_DOWN
    }

    /// Whether a request may go to this origin now.
    pub fn admit(&self) -> Admit {
        if !self.is_down() {
            return Admit::Go;
        }
        if now_ms() < self.down_until_ms.load(Ordering::Acquire) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return Admit::Skip;
        }
        match self
            .probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Admit::Probe,
            Err(_) => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                Admit::Skip
            }
        }
    }

    /// Records the outcome of a request (or probe) to this origin.
    pub fn report(&self, ok: bool) {
        if ok {
            if self.fails.swap(0, Ordering::AcqRel) >= FAILS_TO_DOWN {
                tracing::info!(origin = %self.id, "origin is up again");
            }
            self.backoff_ms.store(0, Ordering::Release);
            self.probing.store(false, Ordering::Release);
            return;
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        let fails = self.fails.fetch_add(1, Ordering::AcqRel) + 1;
        if fails >= FAILS_TO_DOWN {
            let base = BACKOFF_BASE.as_millis() as u64;
            let prev = self.backoff_ms.load(Ordering::Acquire);
            let next = if prev == 0 {
                base
            } else {
                (prev * 2).min(BACKOFF_CAP.as_millis() as u64)
            };
            self.backoff_ms.store(next, Ordering::Release);
            self.down_until_ms.store(now_ms() + next, Ordering::Release);
            self.probing.store(false, Ordering::Release);
            if fails == FAILS_TO_DOWN {
                tracing::warn!(origin = %self.id, backoff_ms = next, "origin is down; skipped until a probe succeeds");
            }
        }
    }
}

/// A metric: name, type, help, and its value for one origin.
type Series = (&'static str, &'static str, &'static str, fn(&Health) -> u64);

/// Prometheus lines for every origin's health.
pub fn prometheus(out: &mut String) {
    use std::fmt::Write;
    let r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let mut all: Vec<&Arc<Health>> = r.values().collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let series: [Series; 4] = [
        (
            "slabfront_origin_healthy",
            "gauge",
            "1 when the origin is up, 0 while it is skipped",
            |h| u64::from(!h.is_down()),
        ),
        (
            "slabfront_origin_failures_total",
            "counter",
            "Failed requests and probes to the origin",
            |h| h.failures.load(Ordering::Relaxed),
        ),
        (
            "slabfront_origin_skipped_total",
            "counter",
            "Requests that skipped the origin while it was down",
            |h| h.skipped.load(Ordering::Relaxed),
        ),
        (
            "slabfront_origin_failovers_total",
            "counter",
            "Requests answered by a group's secondary instead of this origin",
            |h| h.failovers.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} {kind}");
        for h in &all {
            let _ = writeln!(out, "{name}{{origin=\"{}\"}} {}", h.id, get(h));
        }
    }
}

/// One line per origin for `/healthz?verbose`: `id up|down`.
pub fn verbose() -> String {
    let r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let mut lines: Vec<String> = r
        .values()
        .map(|h| format!("{} {}\n", h.id, if h.is_down() { "down" } else { "up" }))
        .collect();
    lines.sort();
    lines.concat()
}

/// Starts an active checker for every origin with a `health_check` (plain HTTP ones; HTTPS
/// and S3 origins are checked passively only, which is logged); checkers of an earlier
/// configuration stop.
pub fn start_checks(cfg: &config::Config) {
    let generation = GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
    for o in &cfg.origins {
        let Some(hc) = &o.health_check else { continue };
        let Some(host) = o.domain_name.clone() else {
            continue;
        };
        if o.protocol != config::OriginProtocol::HttpOnly || o.is_s3() {
            tracing::warn!(origin = %o.id, "active health checks are for plain-HTTP custom origins; this one is checked passively");
            continue;
        }
        let (health, port, path, every, timeout) = (
            of(&o.id),
            o.http_port,
            hc.path.clone(),
            hc.interval.0,
            hc.timeout.0,
        );
        let host_header = o.host_header.clone().unwrap_or_else(|| host.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("health-{}", o.id))
            .spawn(move || {
                while GENERATION.load(Ordering::Acquire) == generation {
                    let ok = check_once(&host, port, &host_header, &path, timeout);
                    // A probe the passive side holds is left to it.
                    if ok || health.admit() != Admit::Skip {
                        health.report(ok);
                    }
                    std::thread::sleep(every);
                }
            });
        if let Err(e) = spawned {
            tracing::error!(origin = %o.id, error = %e, "cannot start the health checker");
        }
    }
}

/// One `GET path`: a 2xx or 3xx status within `timeout` is healthy.
fn check_once(host: &str, port: u16, host_header: &str, path: &str, timeout: Duration) -> bool {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let Some(addr) = (host, port).to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: slabfront-health\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 32];
    let mut n = 0;
    while n < 12 {
        match s.read(&mut buf[n..]) {
            Ok(0) | Err(_) => return false,
            Ok(k) => n += k,
        }
    }
    matches!(
        &buf[..10],
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', _, b' ', b'2' | b'3']
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_after_consecutive_failures_then_one_probe_at_a_time() {
        let h = of("unit-test-origin");
        for _ in 0..FAILS_TO_DOWN - 1 {
            h.report(false);
            assert_eq!(h.admit(), Admit::Go);
        }
        h.report(false);
        assert!(h.is_down());
        assert_eq!(h.admit(), Admit::Skip, "within the back-off");
        // The back-off over: one probe, the rest skipped.
        h.down_until_ms.store(0, Ordering::Release);
        assert_eq!(h.admit(), Admit::Probe);
        assert_eq!(h.admit(), Admit::Skip);
        h.report(false);
        assert_eq!(
            h.backoff_ms.load(Ordering::Acquire),
            2 * BACKOFF_BASE.as_millis() as u64,
            "doubled"
        );
        for _ in 0..20 {
            h.down_until_ms.store(0, Ordering::Release);
            assert_eq!(h.admit(), Admit::Probe);
            h.report(false);
        }
        assert_eq!(
            h.backoff_ms.load(Ordering::Acquire),
            BACKOFF_CAP.as_millis() as u64,
            "capped"
        );
        h.down_until_ms.store(0, Ordering::Release);
        assert_eq!(h.admit(), Admit::Probe);
        h.report(true);
        assert_eq!(h.admit(), Admit::Go);
    }
}
