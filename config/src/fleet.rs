//! A fleet of edges: parents (a shield tier in front of an origin) and the control plane
//! (`[cluster]`, etcd).
//!
//! An origin with `parents = ["10.0.0.5:8080", ...]` or `parent_pool = "<id>"` (a
//! `[[parent_pools]]` entry) is fetched through those parents: ordinary slabfront nodes that
//! serve the same distributions. Which parent gets a key is the server's business
//! (rendezvous hashing); this module only defines and checks the keys.

use crate::schema::{Config, Duration, Origin};
use serde::Deserialize;

/// `[[parent_pools]]`: a named set of parents several origins can share.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentPool {
    /// The name origins refer to (as `parent_pool`).
    pub id: String,
    /// `"host:port"` of each parent (a slabfront node's plain HTTP listener).
    pub parents: Vec<String>,
    /// When every parent is down or failing, fetch from the origin itself (else 502).
    #[serde(default = "yes")]
    pub fallback_to_origin: bool,
}

/// `[cluster]`: this node is one of a fleet coordinated through etcd. Absent: nothing of it
/// runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// etcd endpoints, e.g. `["http://127.0.0.1:2379"]`.
    pub etcd: Vec<String>,
    /// This node's name in the fleet (acknowledgements, `Via`, `Cache-Status`); default
    /// `server.node_name`, else the host name.
    #[serde(default)]
    pub node_name: Option<String>,
    /// The key prefix of this fleet in etcd.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Lifetime of this node's liveness lease: a node silent this long counts as gone and no
    /// longer holds invalidations back.
    #[serde(default = "default_lease")]
    pub lease_ttl: Duration,
    /// Time allowed for one etcd request.
    #[serde(default = "default_etcd_timeout")]
    pub timeout: Duration,
}

fn yes() -> bool {
    true
}
fn default_prefix() -> String {
    "/slabfront".into()
}
fn default_lease() -> Duration {
    Duration::secs(10)
}
fn default_etcd_timeout() -> Duration {
    Duration::secs(2)
}

/// A parent's address, parsed: `(host, port)`.
pub fn parse_parent(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = match addr.strip_prefix('[') {
        Some(v6) => {
            let (h, rest) = v6
                .split_once(']')
                .ok_or_else(|| format!("{addr:?}: unclosed '['"))?;
            (h, rest.strip_prefix(':').unwrap_or(""))
        }
        None => addr.rsplit_once(':').unwrap_or((addr, "")),
    };
    if host.is_empty() || host.contains(['/', ' ', '@', '?', '#']) {
        return Err(format!("{addr:?}: expected \"host:port\""));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("{addr:?}: needs a port (1-65535), e.g. \"10.0.0.5:8080\""))?;
    Ok((host.to_string(), port))
}

impl Config {
    /// The parents an origin is fetched through and whether the origin itself is the last
    /// resort; `None` for an origin without parents.
    pub fn parents_of(&self, o: &Origin) -> Option<(Vec<String>, bool)> {
        if !o.parents.is_empty() {
            return Some((o.parents.clone(), o.parent_fallback_to_origin));
        }
        let id = o.parent_pool.as_ref()?;
        let p = self.parent_pools.iter().find(|p| &p.id == id)?;
        Some((
            p.parents.clone(),
            p.fallback_to_origin && o.parent_fallback_to_origin,
        ))
    }

    /// This node's name: `cluster.node_name`, else `server.node_name`.
    pub fn node_name(&self) -> Option<String> {
        self.cluster
            .as_ref()
            .and_then(|c| c.node_name.clone())
            .or_else(|| self.server.node_name.clone())
    }
}

fn check_list(at: &str, list: &[String], bad: &mut impl FnMut(String, String)) {
    if list.is_empty() {
        bad(at.to_string(), "needs at least one \"host:port\"".into());
    }
    for (j, p) in list.iter().enumerate() {
        if let Err(m) = parse_parent(p) {
            bad(format!("{at}[{j}]"), m);
        } else if list[..j].contains(p) {
            bad(format!("{at}[{j}]"), format!("{p:?} is listed twice"));
        }
    }
}

/// The checks of one origin's parent keys.
pub(crate) fn check_origin(cfg: &Config, i: usize, o: &Origin, bad: &mut impl FnMut(String, String)) {
    let k = |f: &str| format!("origins[{i}].{f}");
    if !o.parents.is_empty() || o.parent_pool.is_some() {
        if !o.is_network() {
            bad(
                k("parents"),
                "a directory origin is served here; only custom and S3 origins have parents".into(),
            );
        }
        if !o.parents.is_empty() && o.parent_pool.is_some() {
            bad(
                k("parent_pool"),
                "set `parents` or `parent_pool`, not both".into(),
            );
        }
    }
    if !o.parents.is_empty() {
        check_list(&k("parents"), &o.parents, bad);
    }
    if let Some(id) = &o.parent_pool {
        if !cfg.parent_pools.iter().any(|p| &p.id == id) {
            bad(
                k("parent_pool"),
                format!("no [[parent_pools]] entry has id {id:?}"),
            );
        }
    }
}

/// The checks of `[[parent_pools]]` and `[cluster]`.
pub(crate) fn check(cfg: &Config, bad: &mut impl FnMut(String, String)) {
    for (i, p) in cfg.parent_pools.iter().enumerate() {
        let k = |f: &str| format!("parent_pools[{i}].{f}");
        if p.id.is_empty() {
            bad(k("id"), "must not be empty".into());
        } else if cfg.parent_pools[..i].iter().any(|q| q.id == p.id) {
            bad(k("id"), format!("id {:?} is used twice", p.id));
        }
        check_list(&k("parents"), &p.parents, bad);
    }
    let Some(c) = &cfg.cluster else { return };
    if c.etcd.is_empty() {
        bad(
            "cluster.etcd".into(),
            "needs at least one endpoint, e.g. \"http://127.0.0.1:2379\"".into(),
        );
    }
    for (j, e) in c.etcd.iter().enumerate() {
        if let Err(m) = crate::origins::parse_endpoint(e) {
            bad(format!("cluster.etcd[{j}]"), m);
        } else if e.starts_with("https://") {
            bad(
                format!("cluster.etcd[{j}]"),
                "only plain http:// endpoints are supported (keep etcd on a private network)".into(),
            );
        }
    }
    if !c.prefix.starts_with('/') || c.prefix.len() < 2 || c.prefix.ends_with('/') {
        bad(
            "cluster.prefix".into(),
            "must start with '/' and not end with '/' (e.g. \"/slabfront\")".into(),
        );
    }
    if let Some(n) = &c.node_name {
        let ok = |ch: char| ch.is_ascii_alphanumeric() || "-_.".contains(ch);
        if n.is_empty() || n.len() > 64 || !n.chars().all(ok) {
            bad(
                "cluster.node_name".into(),
                format!("{n:?}: 1-64 of a-z, A-Z, 0-9, '-', '_', '.'"),
            );
        }
        if cfg.server.node_name.as_ref().is_some_and(|s| s != n) {
            bad(
                "cluster.node_name".into(),
                "differs from server.node_name: set one of them".into(),
            );
        }
    }
    if c.lease_ttl.0 < std::time::Duration::from_secs(2) {
        bad("cluster.lease_ttl".into(), "must be at least 2s".into());
    }
    if c.timeout.0.is_zero() {
        bad("cluster.timeout".into(), "must be longer than 0".into());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::Config;

    const BASE: &str =
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[default_cache_behavior]\ntarget_origin = \"app\"\n";

    fn problems(extra: &str) -> Vec<(String, String)> {
        match Config::from_toml_str_schema_only(&format!("{BASE}{extra}")) {
            Ok(_) => Vec::new(),
            Err(crate::ConfigError::Invalid { problems, .. }) => {
                problems.into_iter().map(|p| (p.key, p.message)).collect()
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn parents_and_pools_are_checked_at_their_keys() {
        let origin = "[[origins]]\nid = \"app\"\ndomain_name = \"o\"\n";
        assert!(problems(&format!("{origin}parents = [\"10.0.0.5:8080\", \"s2:80\"]")).is_empty());
        let p = problems(&format!("{origin}parents = [\"10.0.0.5\"]"));
        assert_eq!(p[0].0, "origins[0].parents[0]", "{p:?}");
        let p = problems(&format!("{origin}parent_pool = \"nope\""));
        assert_eq!(p[0].0, "origins[0].parent_pool", "{p:?}");
        let pool = "[[parent_pools]]\nid = \"shields\"\nparents = [\"a:1\", \"a:1\"]\n";
        let p = problems(&format!("{origin}parent_pool = \"shields\"\n{pool}"));
        assert_eq!(p[0].0, "parent_pools[0].parents[1]", "{p:?}");
        let cfg = Config::from_toml_str_schema_only(&format!(
            "{BASE}{origin}parent_pool = \"s\"\n[[parent_pools]]\nid = \"s\"\nparents = [\"a:1\"]\nfallback_to_origin = false\n"
        ))
        .unwrap();
        assert_eq!(
            cfg.parents_of(&cfg.origins[0]),
            Some((vec!["a:1".to_string()], false))
        );
    }

    #[test]
    fn cluster_is_checked_at_its_keys() {
        let origin = "[[origins]]\nid = \"app\"\ndomain_name = \"o\"\n";
        let ok = "[cluster]\netcd = [\"http://127.0.0.1:2379\"]\nnode_name = \"edge-1\"\n";
        assert!(problems(&format!("{origin}{ok}")).is_empty());
        let p = problems(&format!("{origin}[cluster]\netcd = []\nprefix = \"x/\"\n"));
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["cluster.etcd", "cluster.prefix"], "{p:?}");
    }
}
