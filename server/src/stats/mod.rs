//! Live statistics for the operator's dashboard (`GET /` and `GET /stats` on the admin
//! listener): per distribution, per origin, per worker, merged when asked for.
//!
//! Three parts, by who touches them:
//! - the request path writes this worker's [`WorkerStats`] (relaxed atomics only this worker
//!   writes, no read-modify-write instruction, as `observe::WorkerMetrics`) and its own
//!   [`Recorder`]'s top-URL sketch (thread-local `RefCell`): no lock, no shared cache line;
//! - the worker's ticker hands each finished second's sketch to [`WorkerStats`] (a mutex
//!   the worker takes once a second, off the request path, and the admin thread when asked);
//! - the admin side ([`view`]) samples the counters once a second into a five-minute ring
//!   (thread `slabfront-stats`) and renders `/stats` from it, merging the workers' sketches.
//!
//! Distributions are keyed by name (a configuration without `[[distributions]]` is one,
//! named [`DEFAULT_DISTRIBUTION`]); origins by their `id` (prefixed `distribution/` when
//! there are several distributions). A worker's distributions share its recorder's core, each
//! through a [`Recorder`] that knows its index. It knows nothing of sockets or HTTP
//! parsing: callers hand it a path, a status, a cache result, bytes and a start time.
//!
//! ```
//! use std::sync::Arc;
//! let stats = Arc::new(slabfront::stats::Stats::new(1, &[], &[(0, "site".to_string())]));
//! let rec = slabfront::stats::Recorder::new(stats.clone(), 0);
//! let t0 = std::time::Instant::now();
//! rec.record(b"/index.html?x=1", 200, "Hit", false, 1024, t0);
//! assert_eq!(stats.workers[0].dist(0).unwrap().requests(), 1);
//! ```

pub mod sketch;
pub mod view;

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The name of the only distribution a configuration describes today.
pub const DEFAULT_DISTRIBUTION: &str = config::IMPLICIT_NAME;
/// Cache results, in the dashboard's order (Local: directory origins, no cache).
pub const RESULTS: [&str; 5] = ["Hit", "RefreshHit", "Miss", "Error", "Local"];
/// Status classes.
pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Origins tracked per worker; origins beyond this (added by reloads) are not counted.
pub const MAX_ORIGINS: usize = 64;
/// Distributions tracked (every name a configuration generation has had since start);
/// counters are allocated when a name is first registered, so an unused slot costs a
/// pointer per worker. Distributions beyond this are served but not counted.
pub const MAX_DISTRIBUTIONS: usize = 4096;
/// Latency histogram buckets (log-linear in microseconds, 8 per power of two: at most 6%
/// off; the last bucket holds everything from about 134 s on).
pub const LATENCY_BUCKETS: usize = 200;
/// Finished seconds of top-URL sketches kept per worker.
pub const SKETCH_SECONDS: u64 = 60;

/// Adds to a counter only this worker writes (no read-modify-write instruction needed).
fn add(a: &AtomicU64, n: u64) {
    a.store(a.load(Relaxed).wrapping_add(n), Relaxed);
}

/// The latency bucket of a duration in microseconds.
pub fn latency_bucket(us: u64) -> usize {
    if us < 8 {
        return us as usize;
    }
    let e = 63 - us.leading_zeros() as usize; // >= 3
    let sub = ((us >> (e - 3)) & 7) as usize;
    (8 + (e - 3) * 8 + sub).min(LATENCY_BUCKETS - 1)
}

/// The smallest latency (microseconds) that falls in bucket `i`.
pub fn bucket_floor(i: usize) -> u64 {
    if i < 8 {
        return i as u64;
    }
    let e = (i - 8) / 8 + 3;
    let sub = ((i - 8) % 8) as u64;
    (8 + sub) << (e - 3)
}

/// One distribution's counters on one worker.
pub struct DistCounters {
    pub status: [AtomicU64; 5],
    pub results: [AtomicU64; 5],
    /// Bytes sent to viewers, by cache result.
    pub result_bytes: [AtomicU64; 5],
    /// Requests that came over TLS.
    pub tls_requests: AtomicU64,
    pub latency: [AtomicU64; LATENCY_BUCKETS],
}

impl Default for DistCounters {
    fn default() -> Self {
        DistCounters {
            status: Default::default(),
            results: Default::default(),
            result_bytes: Default::default(),
            tls_requests: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl DistCounters {
    /// Requests answered (every status class).
    pub fn requests(&self) -> u64 {
        self.status.iter().map(|a| a.load(Relaxed)).sum()
    }
}

/// One origin's counters on one worker.
#[derive(Default)]
pub struct OriginCounters {
    pub ok: AtomicU64,
    pub errors: AtomicU64,
    /// Sum of the successful exchanges' latencies, microseconds.
    pub latency_us: AtomicU64,
}

/// A finished second of one worker's top URLs, per distribution.
pub struct Window {
    /// Seconds since [`Stats::epoch`].
    pub sec: u64,
    pub dists: Vec<Option<sketch::TopUrls>>,
}

/// One worker's share, readable by the admin thread.
pub struct WorkerStats {
    /// By distribution index; set when the name is registered ([`Stats::dist_index`]).
    pub dists: Box<[OnceLock<Box<DistCounters>>]>,
    pub origins: Vec<OriginCounters>,
    /// Open viewer connections that came over TLS.
    pub tls_active: AtomicU64,
    /// The last [`SKETCH_SECONDS`] finished seconds of top URLs, oldest first.
    pub windows: Mutex<std::collections::VecDeque<Window>>,
}

impl WorkerStats {
    /// Distribution `i`'s counters, once its name is registered.
    pub fn dist(&self, i: usize) -> Option<&DistCounters> {
        self.dists.get(i).and_then(OnceLock::get).map(|b| &**b)
    }
}

/// Everything the dashboard reads: names, and every worker's share.
pub struct Stats {
    /// Distribution names, by index: those of the first configuration, then any a reload
    /// (or the CloudFront API) added. Taken by the control side only, never per request.
    dist_names: Mutex<Vec<String>>,
    /// Origin ids, by slot (registered at start and by reloads).
    pub origin_names: Mutex<Vec<String>>,
    pub workers: Vec<Arc<WorkerStats>>,
    /// Seconds in sketches count from here.
    pub epoch: Instant,
}

impl Stats {
    /// Counters for a configuration's distributions and custom origins.
    pub fn for_config(workers: usize, cfg: &config::Config) -> Stats {
        let dists: Vec<String> = cfg.distributions.iter().map(|d| d.name.clone()).collect();
        let custom = |c: &config::Config| -> Vec<String> {
            c.origins
                .iter()
                .filter(|o| o.domain_name.is_some())
                .map(|o| o.id.clone())
                .collect()
        };
        let origins: Vec<(usize, String)> = if cfg.distributions.is_empty() {
            custom(cfg).into_iter().map(|o| (0, o)).collect()
        } else {
            cfg.distributions
                .iter()
                .enumerate()
                .flat_map(|(i, d)| custom(&cfg.with_distribution(d)).into_iter().map(move |o| (i, o)))
                .collect()
        };
        Stats::new(workers, &dists, &origins)
    }

    /// Counters for `workers` workers, the named distributions (none: one, the default),
    /// and the given origins (distribution index, id).
    pub fn new(workers: usize, dists: &[String], origins: &[(usize, String)]) -> Stats {
        let dist_names = if dists.is_empty() {
            vec![DEFAULT_DISTRIBUTION.to_string()]
        } else {
            dists.to_vec()
        };
        let workers = (0..workers)
            .map(|_| {
                Arc::new(WorkerStats {
                    dists: (0..MAX_DISTRIBUTIONS).map(|_| OnceLock::new()).collect(),
                    origins: (0..MAX_ORIGINS).map(|_| OriginCounters::default()).collect(),
                    tls_active: AtomicU64::new(0),
                    windows: Mutex::new(std::collections::VecDeque::new()),
                })
            })
            .collect();
        let stats = Stats {
            dist_names: Mutex::new(Vec::new()),
            origin_names: Mutex::new(Vec::new()),
            workers,
            epoch: Instant::now(),
        };
        for name in &dist_names {
            stats.dist_index(name);
        }
        for (d, o) in origins {
            stats.origin_slot(*d, o);
        }
        stats
    }

    /// A distribution's index by name, registering it (and allocating its counters on every
    /// worker) if new: `usize::MAX`, counted nowhere, once [`MAX_DISTRIBUTIONS`] are taken.
    /// Called when a configuration generation is built, never per request.
    pub fn dist_index(&self, name: &str) -> usize {
        let mut names = self.dist_names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = names.iter().position(|n| n == name) {
            return i;
        }
        if names.len() >= MAX_DISTRIBUTIONS {
            return usize::MAX;
        }
        let i = names.len();
        for w in &self.workers {
            let _ = w.dists[i].set(Box::default());
        }
        names.push(name.to_string());
        i
    }

    /// Every registered distribution's name, by index.
    pub fn dist_names(&self) -> Vec<String> {
        self.dist_names.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How an origin is named: its id, prefixed with its distribution's name when there are
    /// several.
    fn origin_name(&self, dist: usize, id: &str) -> String {
        let names = self.dist_names.lock().unwrap_or_else(|e| e.into_inner());
        match names.get(dist) {
            Some(d) if names.len() > 1 => format!("{d}/{id}"),
            _ => id.to_string(),
        }
    }

    /// The slot of an origin, registering it if new (None when every slot is taken).
    pub fn origin_slot(&self, dist: usize, id: &str) -> Option<usize> {
        let id = self.origin_name(dist, id);
        let mut names = self.origin_names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = names.iter().position(|n| *n == id) {
            return Some(i);
        }
        if names.len() >= MAX_ORIGINS {
            return None;
        }
        names.push(id);
        Some(names.len() - 1)
    }

    fn now_sec(&self) -> u64 {
        self.epoch.elapsed().as_secs()
    }
}

/// An origin a worker has seen: (distribution, id, slot).
type KnownOrigin = (usize, Box<str>, Option<usize>);

/// What a worker's distributions share: its counters, its current second of top URLs, the
/// origins it knows. Lives on the worker's thread (carried across reloads).
struct Core {
    stats: Arc<Stats>,
    mine: Arc<WorkerStats>,
    /// (distribution, origin id) → slot, as this worker has seen them (filled without a lock
    /// after the first exchange with each origin).
    origins: RefCell<Vec<KnownOrigin>>,
    /// The second being filled, and its sketches per distribution.
    current: RefCell<Window>,
    tls_open: Cell<u64>,
}

/// A worker's recorder for one of its distributions.
pub struct Recorder {
    core: std::rc::Rc<Core>,
    dist: usize,
}

impl Recorder {
    /// Worker `worker`'s recorder, for the first distribution.
    pub fn new(stats: Arc<Stats>, worker: usize) -> Recorder {
        let mine = stats.workers[worker.min(stats.workers.len().saturating_sub(1))].clone();
        let current = Window {
            sec: stats.now_sec(),
            dists: Vec::new(),
        };
        let core = Core {
            stats,
            mine,
            origins: RefCell::new(Vec::new()),
            current: RefCell::new(current),
            tls_open: Cell::new(0),
        };
        Recorder {
            core: std::rc::Rc::new(core),
            dist: 0,
        }
    }

    /// The same worker's recorder for distribution `dist` (by index in the configuration).
    pub fn for_distribution(&self, dist: usize) -> Recorder {
        Recorder {
            core: self.core.clone(),
            dist,
        }
    }

    /// The distribution this recorder counts for.
    pub fn dist(&self) -> usize {
        self.dist
    }

    /// One exchange with a viewer, answered: `target` is the request target (the query is
    /// left out), `result` the cache result (`""` for local content), `bytes` what was sent.
    pub fn record(&self, target: &[u8], status: u16, result: &str, tls: bool, bytes: u64, started: Instant) {
        let dist = self.dist;
        let Some(d) = self.core.mine.dist(dist) else {
            return;
        };
        let class = (status / 100).clamp(1, 5) as usize - 1;
        add(&d.status[class], 1);
        let r = match result {
            "Hit" => 0,
            "RefreshHit" => 1,
            "Miss" => 2,
            "Error" => 3,
            _ => 4,
        };
        add(&d.results[r], 1);
        add(&d.result_bytes[r], bytes);
        if tls {
            add(&d.tls_requests, 1);
        }
        let us = started.elapsed().as_micros().min(u64::MAX as u128) as u64;
        add(&d.latency[latency_bucket(us)], 1);
        let path = target.split(|&b| b == b'?').next().unwrap_or_default();
        let mut cur = self.core.current.borrow_mut();
        if cur.dists.len() <= dist {
            cur.dists.resize_with(dist + 1, || None);
        }
        cur.dists[dist]
            .get_or_insert_with(sketch::TopUrls::new)
            .add(path, bytes);
    }

    /// One exchange with an origin: its latency, or a failure.
    pub fn origin(&self, id: &str, outcome: Result<Duration, ()>) {
        let c = &self.core;
        let slot = {
            let mut known = c.origins.borrow_mut();
            match known.iter().find(|(d, n, _)| *d == self.dist && &**n == id) {
                Some((_, _, s)) => *s,
                None => {
                    // Once per origin and worker: the registry's lock is taken here.
                    let s = c.stats.origin_slot(self.dist, id);
                    known.push((self.dist, id.into(), s));
                    s
                }
            }
        };
        let Some(o) = slot.and_then(|s| c.mine.origins.get(s)) else {
            return;
        };
        match outcome {
            Ok(latency) => {
                add(&o.ok, 1);
                add(&o.latency_us, latency.as_micros().min(u64::MAX as u128) as u64);
            }
            Err(()) => add(&o.errors, 1),
        }
    }

    /// A TLS viewer connection: counted open until the guard drops.
    pub fn tls_connection(&self) -> TlsOpen {
        let c = &self.core;
        c.tls_open.set(c.tls_open.get() + 1);
        c.mine.tls_active.store(c.tls_open.get(), Relaxed);
        TlsOpen(c.clone())
    }

    /// The worker's tick: a finished second's sketches are handed to the admin side.
    pub fn tick(&self) {
        let c = &self.core;
        let now = c.stats.now_sec();
        let finished = {
            let mut cur = c.current.borrow_mut();
            if cur.sec == now {
                return;
            }
            let fresh = Window {
                sec: now,
                dists: Vec::new(),
            };
            std::mem::replace(&mut *cur, fresh)
        };
        let mut windows = c.mine.windows.lock().unwrap_or_else(|e| e.into_inner());
        while windows
            .front()
            .is_some_and(|w| w.sec.saturating_add(SKETCH_SECONDS) <= now)
        {
            windows.pop_front();
        }
        if finished.dists.iter().any(Option::is_some) {
            let mut finished = finished;
            for s in finished.dists.iter_mut().flatten() {
                s.prune();
            }
            windows.push_back(finished);
        }
    }
}

/// Counts an open TLS connection (see [`Recorder::tls_connection`]).
pub struct TlsOpen(std::rc::Rc<Core>);

impl Drop for TlsOpen {
    fn drop(&mut self) {
        let r = &self.0;
        r.tls_open.set(r.tls_open.get().saturating_sub(1));
        r.mine.tls_active.store(r.tls_open.get(), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_ordered_and_tight() {
        let mut last = 0;
        for us in [0u64, 1, 7, 8, 9, 15, 16, 100, 1000, 12_345, 1_000_000, 60_000_000] {
            let b = latency_bucket(us);
            assert!(b >= last, "{us}");
            last = b;
            let lo = bucket_floor(b);
            let hi = bucket_floor(b + 1);
            assert!(lo <= us && us < hi, "{us} in [{lo}, {hi})");
            assert!(
                (hi - lo) as f64 <= (lo as f64 / 8.0).max(1.0),
                "{us}: [{lo}, {hi})"
            );
        }
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
    }

    #[test]
    fn records_per_distribution_and_origin() {
        let stats = Arc::new(Stats::new(2, &[], &[(0, "a".into()), (0, "b".into())]));
        let rec = Recorder::new(stats.clone(), 1);
        let t0 = Instant::now();
        rec.record(b"/x?q=1", 200, "Hit", true, 10, t0);
        rec.record(b"/x", 503, "Error", false, 5, t0);
        rec.for_distribution(7).record(b"/y", 200, "Hit", false, 5, t0); // no such distribution: ignored
        rec.origin("b", Ok(Duration::from_millis(2)));
        rec.origin("b", Err(()));
        rec.origin("new", Err(()));
        let w = &stats.workers[1];
        assert_eq!(w.dist(0).unwrap().requests(), 2);
        assert_eq!(w.dist(0).unwrap().status[4].load(Relaxed), 1);
        assert_eq!(w.dist(0).unwrap().result_bytes[0].load(Relaxed), 10);
        assert_eq!(w.dist(0).unwrap().tls_requests.load(Relaxed), 1);
        assert_eq!(w.origins[1].ok.load(Relaxed), 1);
        assert_eq!(w.origins[1].errors.load(Relaxed), 1);
        assert_eq!(w.origins[2].errors.load(Relaxed), 1);
        assert_eq!(stats.origin_names.lock().unwrap()[2], "new");
        assert_eq!(stats.workers[0].dist(0).unwrap().requests(), 0);
        {
            let g = rec.tls_connection();
            assert_eq!(w.tls_active.load(Relaxed), 1);
            drop(g);
        }
        assert_eq!(w.tls_active.load(Relaxed), 0);
        let top = rec.core.current.borrow().dists[0]
            .as_ref()
            .unwrap()
            .top_requests(1);
        assert_eq!((top[0].url.as_str(), top[0].count), ("/x", 2));
    }

    #[test]
    fn distributions_share_a_worker_and_keep_their_own_counts() {
        let stats = Arc::new(Stats::new(1, &["a".into(), "b".into()], &[(1, "o".into())]));
        let a = Recorder::new(stats.clone(), 0);
        let b = a.for_distribution(1);
        a.record(b"/x", 200, "Hit", false, 1, Instant::now());
        b.record(b"/y", 404, "Miss", false, 1, Instant::now());
        b.record(b"/y", 200, "Miss", false, 1, Instant::now());
        b.origin("o", Err(()));
        let w = &stats.workers[0];
        assert_eq!(
            (w.dist(0).unwrap().requests(), w.dist(1).unwrap().requests()),
            (1, 2)
        );
        assert_eq!(stats.origin_names.lock().unwrap()[0], "b/o");
        assert_eq!(w.origins[0].errors.load(Relaxed), 1);
        let cur = a.core.current.borrow();
        assert_eq!(cur.dists[1].as_ref().unwrap().top_requests(1)[0].url, "/y");
    }

    #[test]
    fn a_finished_second_is_handed_over_at_the_tick() {
        let stats = Arc::new(Stats::new(1, &[], &[]));
        let rec = Recorder::new(stats.clone(), 0);
        rec.record(b"/a", 200, "Miss", false, 1, Instant::now());
        rec.core.current.borrow_mut().sec = stats.now_sec() + 1;
        rec.tick();
        assert_eq!(stats.workers[0].windows.lock().unwrap().len(), 1);
        // An idle second hands nothing over.
        rec.core.current.borrow_mut().sec = stats.now_sec() + 1;
        rec.tick();
        assert_eq!(stats.workers[0].windows.lock().unwrap().len(), 1);
    }
}
