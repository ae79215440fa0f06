//! CloudFront's own REST API (version 2020-05-31) on the admin listener, so boto3, the AWS
//! CLI and other SDK-based tools manage slabfront's distributions as they manage
//! CloudFront's: create, read, update, list and delete distributions; create, read and list
//! invalidations.
//!
//! - Requests are authenticated with AWS Signature Version 4 against `[[admin.access_keys]]`
//!   ([`sigv4`]).
//! - Bodies are CloudFront's XML, turned into the shapes' JSON ([`xml`]) and mapped onto the
//!   configuration model by the same mapping `slabfront import` uses
//!   (`config::cloudfront::api`).
//! - Distributions made here live in `[admin] state_dir` ([`state`]), written durably before
//!   the API answers; those of the configuration file are listed and readable, not writable.
//! - A change is applied like a SIGHUP reload, by a thread of its own ([`Api::attach`]): the
//!   distribution is `InProgress` until every worker serves it, then `Deployed`.
//!
//! Handlers run on the admin listener's threads, never on a worker's.

mod ops;
pub mod sigv4;
pub mod state;
pub mod xml;

pub use ops::{Request, Response};

use crate::Server;
use config::{Config, Distribution};
use state::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// The CloudFront API of one process.
pub struct Api {
    keys: Vec<(String, String)>,
    domain: String,
    inner: Mutex<Inner>,
    /// The configuration file's configuration, as last loaded (start, SIGHUP).
    file: Mutex<Config>,
    server: OnceLock<Arc<Mutex<Server>>>,
    /// The slab, once there is one (kept here so invalidations never wait for a reload,
    /// which holds the server).
    shared: Mutex<Option<Arc<crate::proxy::Shared>>>,
    /// The generation of the last change asked for, and of the last one every worker serves.
    wanted: AtomicU64,
    deployed: AtomicU64,
    kick: (Mutex<()>, Condvar),
    started: String,
}

struct Inner {
    store: Store,
    /// Each API distribution mapped onto the configuration model, by id.
    mapped: HashMap<String, Distribution>,
    /// The generation of each distribution's last change, by id (0: loaded at start).
    changed: HashMap<String, u64>,
}

/// Reads every key's secret; the error names the key, never the secret.
fn secrets(admin: &config::Admin) -> Result<Vec<(String, String)>, String> {
    admin
        .access_keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            k.read_secret()
                .map(|s| (k.id.clone(), s))
                .map_err(|e| format!("admin.access_keys[{i}] ({}): {e}", k.id))
        })
        .collect()
}

/// Maps every stored distribution; an error names the state file.
fn map_all(store: &Store) -> Result<HashMap<String, Distribution>, String> {
    let mut mapped = HashMap::new();
    for r in store.records.values() {
        let m = config::cloudfront::api::distribution_from_json(&r.distribution_config, &r.domain_name)
            .map_err(|e| {
                format!(
                    "{}: {}",
                    store.dir().join(format!("{}.json", r.id)).display(),
                    e.0
                )
            })?;
        mapped.insert(r.id.clone(), m.distribution);
    }
    Ok(mapped)
}

/// Names claimed twice by the file's and the state's distributions.
fn clashes(file: &Config, mapped: &HashMap<String, Distribution>) -> Vec<String> {
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    let file_ds = file.distributions.iter().filter(|d| !d.implicit);
    let mut api: Vec<&Distribution> = mapped.values().collect();
    api.sort_by(|a, b| a.name.cmp(&b.name));
    for d in file_ds.chain(api) {
        for n in d.names() {
            let key = n.to_ascii_lowercase();
            if let Some(other) = seen.insert(key, d.name.clone()) {
                out.push(format!("{n:?} is claimed by {other} and {}", d.name));
            }
        }
    }
    out
}

/// `slabfront check`: the state directory can be read, every distribution in it maps onto
/// the configuration model, and none claims a name the file (or another) claims. The number
/// of distributions on success.
pub fn check_state(admin: &config::Admin, file: &Config) -> Result<usize, String> {
    let dir = admin.state_dir(&file.cache.path);
    if !dir.exists() {
        return Ok(0);
    }
    let store = Store::open(&dir)?;
    let mapped = map_all(&store)?;
    let problems = clashes(file, &mapped);
    if !problems.is_empty() {
        return Err(format!("{}: {}", dir.display(), problems.join("; ")));
    }
    Ok(mapped.len())
}

impl Api {
    /// Reads the keys and the state directory; [`Api::merged`] is then what to start with.
    pub fn open(admin: &config::Admin, file: &Config) -> Result<Arc<Api>, String> {
        let keys = secrets(admin)?;
        let dir = admin.state_dir(&file.cache.path);
        let store = Store::open(&dir)?;
        let mapped = map_all(&store)?;
        let problems = clashes(file, &mapped);
        if !problems.is_empty() {
            return Err(format!("{}: {}", dir.display(), problems.join("; ")));
        }
        tracing::info!(state_dir = %dir.display(), distributions = mapped.len(), keys = keys.len(), "CloudFront API state loaded");
        Ok(Arc::new(Api {
            keys,
            domain: admin.distribution_domain.clone(),
            inner: Mutex::new(Inner {
                store,
                changed: mapped.keys().map(|k| (k.clone(), 0)).collect(),
                mapped,
            }),
            file: Mutex::new(file.clone()),
            server: OnceLock::new(),
            shared: Mutex::new(None),
            wanted: AtomicU64::new(0),
            deployed: AtomicU64::new(0),
            kick: (Mutex::new(()), Condvar::new()),
            started: ops::now_iso(),
        }))
    }

    /// The configuration file's distributions followed by the API's (in id order).
    pub fn merged(&self) -> Config {
        let mut cfg = self.file.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<&String> = inner.mapped.keys().collect();
        ids.sort();
        cfg.distributions
            .extend(ids.into_iter().filter_map(|id| inner.mapped.get(id).cloned()));
        cfg
    }

    /// Starts applying changes to `server` (a thread of its own).
    pub fn attach(self: &Arc<Self>, server: Arc<Mutex<Server>>) -> std::io::Result<()> {
        *self.shared.lock().unwrap_or_else(|e| e.into_inner()) =
            server.lock().unwrap_or_else(|e| e.into_inner()).shared.clone();
        let _ = self.server.set(server);
        let api = self.clone();
        std::thread::Builder::new()
            .name("slabfront-cfapi-deploy".into())
            .spawn(move || api.deploy_loop())?;
        Ok(())
    }

    /// SIGHUP: the file's new configuration, applied with the API's distributions.
    pub fn reload_file(&self, cfg: Config) {
        let clashes = {
            let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            clashes(&cfg, &inner.mapped)
        };
        for c in clashes {
            tracing::warn!("configuration file and CloudFront API state: {c}");
        }
        *self.file.lock().unwrap_or_else(|e| e.into_inner()) = cfg;
        self.bump();
    }

    /// A new generation to deploy; returns it.
    fn bump(&self) -> u64 {
        let g = self.wanted.fetch_add(1, Ordering::AcqRel) + 1;
        let _guard = self.kick.0.lock().unwrap_or_else(|e| e.into_inner());
        self.kick.1.notify_all();
        g
    }

    fn deploy_loop(&self) {
        let Some(server) = self.server.get() else { return };
        let mut done = self.deployed.load(Ordering::Acquire);
        loop {
            {
                let mut g = self.kick.0.lock().unwrap_or_else(|e| e.into_inner());
                while self.wanted.load(Ordering::Acquire) == done {
                    g = self.kick.1.wait(g).unwrap_or_else(|e| e.into_inner());
                }
            }
            let target = self.wanted.load(Ordering::Acquire);
            let cfg = self.merged();
            let n = cfg.distributions.len();
            let started = std::time::Instant::now();
            let result = {
                let mut s = server.lock().unwrap_or_else(|e| e.into_inner());
                let r = s.reload(cfg);
                // The first custom origin opens the slab.
                *self.shared.lock().unwrap_or_else(|e| e.into_inner()) = s.shared.clone();
                r
            };
            match result {
                Ok(()) => {
                    self.deployed.store(target, Ordering::Release);
                    tracing::info!(
                        generation = target,
                        distributions = n,
                        ms = started.elapsed().as_millis() as u64,
                        "configuration deployed to every worker"
                    );
                }
                Err(e) => {
                    tracing::error!(error = %e, "deploying the configuration failed; the running one stays")
                }
            }
            done = target;
        }
    }

    fn status(&self, generation: u64) -> &'static str {
        if generation <= self.deployed.load(Ordering::Acquire) {
            "Deployed"
        } else {
            "InProgress"
        }
    }
}
