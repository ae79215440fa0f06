//! What a worker keeps to run its behaviors' functions: its [`Engine`], which function each
//! behavior runs on which event, and the per-function counters `/metrics` reads.
//!
//! Built with the worker for every configuration generation (start and SIGHUP). The
//! compiled generation ([`Functions`]) is made once per generation and shared by the
//! workers; the engine (a QuickJS runtime) is the worker's own, so nothing is locked per
//! invocation: the counters are atomics only this worker writes.

use super::{Engine, FnError, Functions, Invocation, LoadError};
use crate::router::Target;
use config::{Config, EventType};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};

/// One function's counters on one worker (only that worker writes them).
#[derive(Debug, Default)]
pub struct Row {
    pub name: String,
    pub invocations: AtomicU64,
    pub errors: AtomicU64,
    pub compute_exceeded: AtomicU64,
    pub compute_ns: AtomicU64,
}

fn add(a: &AtomicU64, n: u64) {
    a.store(a.load(Relaxed) + n, Relaxed);
}

/// Every worker's rows of every generation: `/metrics` sums them by function name, so the
/// counts keep growing across reloads. Locked only when a generation is built and when
/// `/metrics` is read.
static ROWS: Mutex<Vec<Arc<[Row]>>> = Mutex::new(Vec::new());

/// The generation most recently compiled, so that the workers building the same
/// generation compile it once (the key is every function's source and store file).
static LAST: Mutex<Option<(String, Weak<Functions>)>> = Mutex::new(None);

/// The compiled functions of `cfg`, shared with the other workers building the same
/// generation (compiled once; a SIGHUP with changed code compiles anew).
pub fn shared_generation(cfg: &Config) -> Result<Arc<Functions>, LoadError> {
    let mut key = String::new();
    for f in &cfg.functions {
        let source = f.source().map(|(s, _)| s).unwrap_or_default();
        let _ = write!(
            key,
            "{}\0{:?}\0{:?}\0{source}\0",
            f.name, f.runtime, f.key_value_stores
        );
    }
    for s in &cfg.key_value_stores {
        let _ = write!(key, "{}\0{}\0", s.id, s.file);
    }
    for o in &cfg.origins {
        let _ = write!(key, "{}\0", o.id);
    }
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((k, weak)) = last.as_ref() {
        if *k == key {
            if let Some(f) = weak.upgrade() {
                // The same generation again (another worker, or a SIGHUP that changed no
                // function): store files that changed are re-read.
                f.refresh_stores();
                return Ok(f);
            }
        }
    }
    let f = Arc::new(Functions::for_generation(cfg)?);
    if let Err(e) = f.watch_stores(std::time::Duration::from_secs(1)) {
        tracing::warn!(error = %e, "key-value stores will not be re-read when their files change");
    }
    *last = Some((key, Arc::downgrade(&f)));
    Ok(f)
}

/// A worker's functions for one generation.
pub struct EdgeFunctions {
    engine: RefCell<Engine>,
    /// Per behavior (0 = the default behavior): the viewer-request and viewer-response
    /// functions, by index into `names`.
    associations: Vec<[Option<usize>; 2]>,
    names: Vec<String>,
    rows: Arc<[Row]>,
    /// `context.distributionDomainName` and `context.distributionId`.
    pub domain_name: String,
    pub distribution_id: String,
    worker: usize,
    invocations: Cell<u64>,
    /// Origin (and origin group) ids, for `selectRequestOriginById`.
    origins: HashMap<String, Target>,
}

impl EdgeFunctions {
    /// The functions of `cfg` for worker `id`; `None` when no behavior runs any (then the
    /// request path pays nothing for them).
    pub fn for_worker(id: usize, cfg: &Config) -> Result<Option<EdgeFunctions>, LoadError> {
        let behaviors = std::iter::once(&cfg.default_cache_behavior).chain(cfg.behaviors.iter());
        if behaviors.clone().all(|b| b.function_associations.is_empty()) {
            return Ok(None);
        }
        let functions = shared_generation(cfg)?;
        let names: Vec<String> = functions.names().map(String::from).collect();
        let slot = |name: Option<&str>| name.and_then(|n| names.iter().position(|m| m == n));
        let associations = behaviors
            .map(|b| {
                [
                    slot(b.function_for(EventType::ViewerRequest)),
                    slot(b.function_for(EventType::ViewerResponse)),
                ]
            })
            .collect();
        let rows: Arc<[Row]> = names
            .iter()
            .map(|n| Row {
                name: n.clone(),
                ..Row::default()
            })
            .collect();
        ROWS.lock().unwrap_or_else(|e| e.into_inner()).push(rows.clone());
        let domain_name = cfg
            .distributions
            .first()
            .map(|d| d.name.clone())
            .unwrap_or_else(|| "slabfront".into());
        Ok(Some(EdgeFunctions {
            engine: RefCell::new(Engine::new(functions)),
            associations,
            names,
            rows,
            distribution_id: domain_name.clone(),
            domain_name,
            worker: id,
            invocations: Cell::new(0),
            origins: origin_targets(cfg),
        }))
    }

    /// The function behavior `b` runs on `event`, if any.
    pub fn for_behavior(&self, b: usize, event: EventType) -> Option<usize> {
        let i = match event {
            EventType::ViewerRequest => 0,
            EventType::ViewerResponse => 1,
        };
        self.associations.get(b).and_then(|a| a[i])
    }

    /// Where an origin id routes (as the worker's router numbers origins).
    pub fn origin(&self, id: &str) -> Option<Target> {
        self.origins.get(id).copied()
    }

    /// A function's name.
    pub fn name(&self, f: usize) -> &str {
        &self.names[f]
    }

    /// A `context.requestId` unique in this process's life (worker, sequence).
    pub fn request_id(&self) -> String {
        let n = self.invocations.get() + 1;
        self.invocations.set(n);
        format!("{:02x}{:014x}", self.worker, n)
    }

    /// Runs `call` on the engine and counts the invocation; a failure is logged.
    pub fn invoke(&self, f: usize, call: impl FnOnce(&mut Engine, &str) -> Invocation) -> Invocation {
        let name = &self.names[f];
        let inv = match self.engine.try_borrow_mut() {
            Ok(mut engine) => call(&mut engine, name),
            // Invocations never nest on a worker; answer as a failure rather than panic.
            Err(_) => Invocation {
                outcome: super::FnOutcome::Error(FnError::Engine("engine busy".into())),
                compute: std::time::Duration::ZERO,
                utilization: 0,
                logs: Vec::new(),
            },
        };
        let row = &self.rows[f];
        add(&row.invocations, 1);
        add(&row.compute_ns, inv.compute.as_nanos() as u64);
        if let super::FnOutcome::Error(e) = &inv.outcome {
            add(&row.errors, 1);
            if *e == FnError::ComputeExceeded {
                add(&row.compute_exceeded, 1);
            }
            tracing::warn!(function = %name, error = %e, kind = e.as_str(), "function failed: 503");
        }
        inv
    }
}

/// Origin ids to router targets, numbered as `build_worker` numbers them: directory
/// origins in order among themselves, custom origins by their index, groups after them.
fn origin_targets(cfg: &Config) -> HashMap<String, Target> {
    let mut statics = 0;
    let mut out = HashMap::new();
    for (i, o) in cfg.origins.iter().enumerate() {
        let t = match o.path {
            Some(_) => {
                statics += 1;
                Target::Static(statics - 1)
            }
            None => Target::Custom(i),
        };
        out.insert(o.id.clone(), t);
    }
    for (gi, g) in cfg.origin_groups.iter().enumerate() {
        out.insert(g.id.clone(), Target::Custom(cfg.origins.len() + gi));
    }
    out
}

/// The functions' counters, summed over workers and generations by name, in the Prometheus
/// text format (nothing when no function ever ran in this process's configurations).
pub fn prometheus(out: &mut String) {
    let rows = ROWS.lock().unwrap_or_else(|e| e.into_inner());
    let mut sums: Vec<(&str, [u64; 4])> = Vec::new();
    for row in rows.iter().flat_map(|r| r.iter()) {
        let v = [
            row.invocations.load(Relaxed),
            row.errors.load(Relaxed),
            row.compute_exceeded.load(Relaxed),
            row.compute_ns.load(Relaxed),
        ];
        match sums.iter_mut().find(|(n, _)| *n == row.name) {
            Some((_, s)) => (0..4).for_each(|i| s[i] += v[i]),
            None => sums.push((&row.name, v)),
        }
    }
    if sums.is_empty() {
        return;
    }
    let metrics = [
        ("slabfront_function_invocations_total", "counter", "CloudFront Function invocations, by function."),
        ("slabfront_function_errors_total", "counter", "Function invocations that gave the viewer a 503 (threw, exceeded a limit, returned something invalid), by function."),
        ("slabfront_function_compute_exceeded_total", "counter", "Function invocations stopped by the compute budget, by function."),
        ("slabfront_function_compute_seconds_total", "counter", "CPU time spent in functions, by function."),
    ];
    for (i, (name, kind, help)) in metrics.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (f, v) in &sums {
            let f = f.replace('\\', "\\\\").replace('"', "\\\"");
            if i == 3 {
                let _ = writeln!(out, "{name}{{function=\"{f}\"}} {:.9}", v[3] as f64 / 1e9);
            } else {
                let _ = writeln!(out, "{name}{{function=\"{f}\"}} {}", v[i]);
            }
        }
    }
}
