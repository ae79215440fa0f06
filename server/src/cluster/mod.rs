//! The fleet's control plane on etcd (`[cluster]`): invalidations posted to any node reach
//! every node, and complete only once every live node has applied them.
//!
//! Keys, under `cluster.prefix` (`P`):
//! - `P/invalidations/<id>`: an invalidation (JSON [`Record`]), written by the node it was
//!   posted to; never applied there directly: every node, that one included, applies it from
//!   its watch of `P/invalidations/`.
//! - `P/nodes/<node>`: this node is alive (a key on this node's lease: it disappears when the
//!   node stops renewing it, after `cluster.lease_ttl`).
//! - `P/acks/<id>/<node>`: this node has applied invalidation `<id>` (on the same lease).
//!
//! `GET /invalidations/<id>` is `Completed` once every node under `P/nodes/` has its ack
//! under `P/acks/<id>/`. A node killed mid-way stops holding invalidations back once its
//! lease expires.
//!
//! **Catching up.** The etcd revision last applied, and when, is kept in the slab's
//! directory (`<slab>.cluster-revision`). On start, before any worker serves, the node reads every
//! invalidation written since that revision and applies it. If etcd has compacted its history
//! past that revision, records deleted meanwhile cannot be known: the node then removes
//! everything stored (a superset of "everything older than the last applied time"), so it
//! never serves what should have been removed. If etcd cannot be reached at start, the node
//! serves what it has and catches up as soon as etcd answers (logged as a warning).
//!
//! **etcd down.** Nodes keep serving; `POST` of an invalidation answers 503 with the reason
//! and creates nothing (nothing is lost: the caller retries); `GET` of its state answers 503.
//!
//! All of it runs on one control thread with its own small current-thread tokio runtime
//! (etcd's client is gRPC over tonic); workers never wait on it. The admin listener's threads
//! talk to it through a channel.

mod control;

use crate::proxy::Shared;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// An invalidation as it is kept in etcd.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// The distribution's name (its cache keys' prefix is derived from it).
    pub distribution: String,
    pub paths: Vec<String>,
    /// Seconds since the epoch.
    pub created: u64,
    /// The node it was posted to.
    pub node: String,
}

/// An invalidation's state across the fleet.
#[derive(Debug, Clone)]
pub struct Progress {
    pub record: Record,
    /// Nodes alive now.
    pub live: Vec<String>,
    /// Nodes that have applied it.
    pub acked: Vec<String>,
}

impl Progress {
    /// Every live node has applied it.
    pub fn completed(&self) -> bool {
        self.live.iter().all(|n| self.acked.contains(n))
    }
}

type Reply<T> = mpsc::Sender<Result<T, String>>;

/// What the admin listener asks of the control thread.
pub(crate) enum Cmd {
    Create(Record, Reply<()>),
    Progress(String, Reply<Option<Progress>>),
}

/// The admin listener's handle on the control plane.
pub struct Handle {
    tx: tokio::sync::mpsc::UnboundedSender<Cmd>,
    timeout: Duration,
    node: String,
    seq: std::sync::atomic::AtomicU32,
}

/// What callers are told when etcd does not answer.
fn unreachable(why: &str) -> String {
    format!("the control plane (etcd) is unreachable: {why}")
}

impl Handle {
    fn ask<T>(&self, cmd: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, String> {
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(cmd(tx))
            .map_err(|_| unreachable("the control thread has stopped"))?;
        match rx.recv_timeout(self.timeout * 2 + Duration::from_secs(1)) {
            Ok(r) => r.map_err(|e| unreachable(&e)),
            Err(_) => Err(unreachable("no answer in time")),
        }
    }

    /// Writes a new invalidation to etcd; every node applies it from its watch.
    pub fn create(&self, distribution: &str, paths: Vec<String>) -> Result<Record, String> {
        let now = crate::proxy::now_ms();
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let salt = xxhash_rust::xxh3::xxh3_64(format!("{}/{seq}", self.node).as_bytes()) as u32;
        let record = Record {
            id: format!("I{now:X}{salt:08X}"),
            distribution: distribution.to_string(),
            paths,
            created: now / 1000,
            node: self.node.clone(),
        };
        self.ask(|r| Cmd::Create(record.clone(), r))?;
        Ok(record)
    }

    /// The state of an invalidation across the fleet (`None`: no such invalidation).
    pub fn progress(&self, id: &str) -> Result<Option<Progress>, String> {
        self.ask(|r| Cmd::Progress(id.to_string(), r))
    }
}

/// The last applied revision and when it was applied (milliseconds since the epoch), kept in
/// the slab's directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub revision: i64,
    pub at_ms: u64,
}

impl Applied {
    fn read(path: &Path) -> Applied {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut it = text.split_whitespace().map(str::parse::<u64>);
        match (it.next(), it.next()) {
            (Some(Ok(r)), Some(Ok(at))) => Applied {
                revision: r as i64,
                at_ms: at,
            },
            _ => Applied::default(),
        }
    }

    /// Written to a temporary file, synced and renamed: a crash leaves the old or the new.
    fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{} {}", self.revision, self.at_ms)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    }
}

/// Where the last applied revision is kept: in the slab's directory (`<slab>.cluster-revision`).
fn state_path(cache_path: &str) -> PathBuf {
    let p = Path::new(cache_path);
    if p.is_dir() {
        p.join("cluster-revision")
    } else {
        // Next to the slab file, named after it (two nodes may share a directory).
        let mut name = p.file_name().unwrap_or_default().to_os_string();
        name.push(".cluster-revision");
        p.with_file_name(name)
    }
}

/// Starts the control thread when the configuration has `[cluster]`, and waits (at most a
/// few etcd timeouts) for it to catch up on the invalidations this node missed.
pub fn start(cfg: &config::Config, node: &str, shared: Option<Arc<Shared>>) -> Option<Arc<Handle>> {
    let c = cfg.cluster.as_ref()?;
    let Some(shared) = shared else {
        tracing::warn!("[cluster] is set but nothing is cached here (no custom origins): not joining");
        return None;
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let ctl = control::Control {
        endpoints: c.etcd.clone(),
        prefix: c.prefix.clone(),
        node: node.to_string(),
        lease_ttl: c.lease_ttl.0,
        timeout: c.timeout.0,
        shared,
        state: state_path(&cfg.cache.path),
    };
    let spawned = std::thread::Builder::new()
        .name("slabfront-cluster".into())
        .spawn(move || control::run(ctl, rx, ready_tx));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the cluster control thread");
        return None;
    }
    match ready_rx.recv_timeout(c.timeout.0 * 3) {
        Ok(()) => tracing::info!(node, "caught up with the fleet's invalidations"),
        Err(_) => tracing::warn!(
            node,
            "etcd did not answer in time: serving without catching up on invalidations; \
             they are applied as soon as etcd answers"
        ),
    }
    Some(Arc::new(Handle {
        tx,
        timeout: c.timeout.0,
        node: node.to_string(),
        seq: Default::default(),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_applied_revision_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cluster-revision");
        assert_eq!(Applied::read(&p), Applied::default(), "none yet");
        let a = Applied {
            revision: 42,
            at_ms: 1_700_000_000_000,
        };
        a.write(&p).unwrap();
        assert_eq!(Applied::read(&p), a);
        std::fs::write(&p, "garbage").unwrap();
        assert_eq!(Applied::read(&p), Applied::default());
    }

    #[test]
    fn completed_once_every_live_node_acked() {
        let record = Record {
            id: "I1".into(),
            distribution: "d".into(),
            paths: vec!["/*".into()],
            created: 0,
            node: "a".into(),
        };
        let mut p = Progress {
            record,
            live: vec!["a".into(), "b".into()],
            acked: vec!["a".into()],
        };
        assert!(!p.completed());
        p.acked.push("b".into());
        assert!(p.completed());
        p.live.retain(|n| n == "a");
        p.acked.retain(|n| n == "a");
        assert!(p.completed(), "a node gone no longer holds it back");
    }
}
