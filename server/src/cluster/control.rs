//! The control thread: one etcd session at a time (lease, liveness key, catch-up, watch,
//! the admin listener's requests), and a new one after a failure.

use super::{Applied, Cmd, Progress, Record};
use crate::proxy::{Invalidation, Shared};
use etcd_client::{Client, EventType, GetOptions, PutOptions, SortOrder, SortTarget, WatchOptions};
use std::future::Future;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// Wait between sessions.
const RETRY: Duration = Duration::from_secs(1);

pub(super) struct Control {
    pub endpoints: Vec<String>,
    pub prefix: String,
    pub node: String,
    pub lease_ttl: Duration,
    pub timeout: Duration,
    pub shared: Arc<Shared>,
    /// The file the last applied revision is kept in.
    pub state: PathBuf,
}

type Fail = String;

/// Runs `f` within the etcd timeout.
async fn within<T, E: std::fmt::Display>(
    t: Duration,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, Fail> {
    match tokio::time::timeout(t, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {t:?}")),
    }
}

pub(super) fn run(ctl: Control, mut rx: UnboundedReceiver<Cmd>, ready: mpsc::Sender<()>) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the cluster runtime");
            return;
        }
    };
    rt.block_on(async move {
        let mut ready = Some(ready);
        loop {
            let why = match session(&ctl, &mut rx, &mut ready).await {
                Ok(()) => return,
                Err(why) => why,
            };
            tracing::warn!(error = %why, "etcd session ended; serving on, retrying");
            // Meanwhile the admin listener is told at once that etcd is not there.
            let until = tokio::time::Instant::now() + RETRY;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    cmd = rx.recv() => match cmd {
                        Some(cmd) => refuse(cmd, &why),
                        None => return,
                    },
                }
            }
        }
    });
}

fn refuse(cmd: Cmd, why: &str) {
    match cmd {
        Cmd::Create(_, r) => drop(r.send(Err(why.to_string()))),
        Cmd::Progress(_, r) => drop(r.send(Err(why.to_string()))),
    }
}

impl Control {
    fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.prefix)
    }

    /// Applies one invalidation here, durably, then acknowledges it on `lease`.
    async fn apply(&self, c: &mut Client, lease: i64, r: &Record) -> Result<(), Fail> {
        let prefix = crate::sites::key_prefix(&r.distribution);
        let removed = self.shared.invalidate_in(&prefix, &r.paths);
        let _ = self.shared.store.flush();
        {
            let mut list = self
                .shared
                .invalidations
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            list.retain(|i| i.id != r.id);
            list.push(Invalidation {
                id: r.id.clone(),
                paths: r.paths.clone(),
                created: r.created,
                completed: true,
                removed,
            });
        }
        tracing::info!(id = %r.id, distribution = %r.distribution, removed, "invalidation applied");
        let ack = self.key(&format!("acks/{}/{}", r.id, self.node));
        within(
            self.timeout,
            c.put(ack, "", Some(PutOptions::new().with_lease(lease))),
        )
        .await?;
        Ok(())
    }

    fn save(&self, revision: i64) {
        let a = Applied {
            revision,
            at_ms: crate::proxy::now_ms(),
        };
        if let Err(e) = a.write(&self.state) {
            tracing::warn!(path = %self.state.display(), error = %e, "cannot keep the applied revision");
        }
    }

    /// Everything stored goes: what was invalidated while this node was away can no longer
    /// be known.
    fn conservative(&self, why: &str) {
        let removed = self.shared.invalidate_prefix(b"");
        let _ = self.shared.store.flush();
        tracing::warn!(removed, why, "etcd history compacted past this node's last applied revision: everything stored was invalidated");
    }

    /// Applies every invalidation written after the last applied revision; returns the
    /// revision the watch goes on from.
    async fn catch_up(&self, c: &mut Client, lease: i64) -> Result<i64, Fail> {
        let last = Applied::read(&self.state).revision;
        let inv = self.key("invalidations/");
        if last > 0 {
            let probe = GetOptions::new()
                .with_prefix()
                .with_keys_only()
                .with_limit(1)
                .with_revision(last);
            if let Err(e) = within(self.timeout, c.get(inv.clone(), Some(probe))).await {
                if !e.contains("compacted") {
                    return Err(e);
                }
                self.conservative(&e);
            }
        }
        let opts = GetOptions::new()
            .with_prefix()
            .with_min_mod_revision(last + 1)
            .with_sort(SortTarget::Mod, SortOrder::Ascend);
        let resp = within(self.timeout, c.get(inv, Some(opts))).await?;
        let now = resp.header().map_or(last, |h| h.revision());
        for kv in resp.kvs() {
            if let Ok(r) = serde_json::from_slice::<Record>(kv.value()) {
                self.apply(c, lease, &r).await?;
            }
        }
        self.save(now);
        Ok(now)
    }

    async fn progress(&self, c: &mut Client, id: &str) -> Result<Option<Progress>, Fail> {
        let rec = within(
            self.timeout,
            c.get(self.key(&format!("invalidations/{id}")), None),
        )
        .await?;
        let Some(record) = rec
            .kvs()
            .first()
            .and_then(|kv| serde_json::from_slice::<Record>(kv.value()).ok())
        else {
            return Ok(None);
        };
        let names = |resp: etcd_client::GetResponse, under: String| -> Vec<String> {
            resp.kvs()
                .iter()
                .filter_map(|kv| kv.key_str().ok()?.strip_prefix(&under).map(str::to_string))
                .collect()
        };
        let keys = || GetOptions::new().with_prefix().with_keys_only();
        let nodes = self.key("nodes/");
        let live = names(
            within(self.timeout, c.get(nodes.clone(), Some(keys()))).await?,
            nodes,
        );
        let acks = self.key(&format!("acks/{id}/"));
        let acked = names(
            within(self.timeout, c.get(acks.clone(), Some(keys()))).await?,
            acks,
        );
        Ok(Some(Progress { record, live, acked }))
    }

    async fn command(&self, c: &mut Client, cmd: Cmd) {
        match cmd {
            Cmd::Create(r, reply) => {
                let key = self.key(&format!("invalidations/{}", r.id));
                let res = match serde_json::to_vec(&r) {
                    Ok(v) => within(self.timeout, c.put(key, v, None)).await.map(drop),
                    Err(e) => Err(e.to_string()),
                };
                let _ = reply.send(res);
            }
            Cmd::Progress(id, reply) => {
                let _ = reply.send(self.progress(c, &id).await);
            }
        }
    }
}

/// One session: returns only on failure (or when the server is gone: `Ok`).
async fn session(
    ctl: &Control,
    rx: &mut UnboundedReceiver<Cmd>,
    ready: &mut Option<mpsc::Sender<()>>,
) -> Result<(), Fail> {
    let t = ctl.timeout;
    let opts = etcd_client::ConnectOptions::new().with_connect_timeout(t);
    let mut c = within(t, Client::connect(&ctl.endpoints, Some(opts))).await?;
    let ttl = ctl.lease_ttl.as_secs().max(2) as i64;
    let lease = within(t, c.lease_grant(ttl, None)).await?.id();
    let (mut keeper, mut alive) = within(t, c.lease_keep_alive(lease)).await?;
    let me = ctl.key(&format!("nodes/{}", ctl.node));
    within(t, c.put(me, "", Some(PutOptions::new().with_lease(lease)))).await?;
    let from = ctl.catch_up(&mut c, lease).await?;
    if let Some(r) = ready.take() {
        let _ = r.send(());
    }
    let watch_opts = WatchOptions::new().with_prefix().with_start_revision(from + 1);
    let mut watch = within(t, c.watch(ctl.key("invalidations/"), Some(watch_opts))).await?;
    let mut tick = tokio::time::interval(ctl.lease_ttl / 3);
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if renewed.elapsed() > ctl.lease_ttl {
                    return Err("the lease was not renewed in time".into());
                }
                within(t, keeper.keep_alive()).await?;
            }
            m = alive.message() => match m {
                Ok(Some(r)) if r.ttl() > 0 => renewed = Instant::now(),
                Ok(Some(_)) => return Err("the lease expired".into()),
                Ok(None) => return Err("the lease stream ended".into()),
                Err(e) => return Err(e.to_string()),
            },
            m = watch.message() => {
                let r = match m {
                    Ok(Some(r)) => r,
                    Ok(None) => return Err("the watch ended".into()),
                    Err(e) => return Err(e.to_string()),
                };
                if r.canceled() {
                    if r.compact_revision() > 0 {
                        ctl.conservative("the watch fell behind a compaction");
                        // Everything is gone: the next session reads every record again.
                        ctl.save(0);
                    }
                    return Err(format!("the watch was canceled: {}", r.cancel_reason()));
                }
                for ev in r.events() {
                    let Some(kv) = ev.kv().filter(|_| ev.event_type() == EventType::Put) else {
                        continue;
                    };
                    if let Ok(rec) = serde_json::from_slice::<Record>(kv.value()) {
                        ctl.apply(&mut c, lease, &rec).await?;
                    }
                    ctl.save(kv.mod_revision());
                }
            }
            cmd = rx.recv() => match cmd {
                Some(cmd) => ctl.command(&mut c, cmd).await,
                None => return Ok(()),
            },
        }
    }
}
