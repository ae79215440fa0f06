//! Parents: a shield tier between this edge and an origin (CloudFront's regional edge caches
//! and Origin Shield). An origin with `parents` (or a `parent_pool`) is fetched through one
//! of them: ordinary slabfront nodes serving the same distributions, which cache the object
//! and fetch it from the origin themselves, so a fleet of edges makes one origin fetch per
//! object.
//!
//! **Which parent**: rendezvous (highest random weight) hashing of the cache key over the
//! parents: each parent's score for a key is a hash of the key seeded by the parent's
//! address, and the parents are tried from the highest score down. Every edge ranks the
//! parents of a key alike, so each object has one home shield; a parent that goes away
//! moves only the keys it was home to (each to its next-ranked parent), and coming back
//! moves them home again.
//!
//! **Failures**: a parent that cannot be reached (refused, reset, timed out) counts against
//! its health (process-wide, `health`, as `parent:<host:port>`) and the next parent is
//! tried; a parent that is down is skipped until its back-off ends. When every parent failed,
//! the origin itself is asked if `parent_fallback_to_origin` (and the pool's
//! `fallback_to_origin`) allow, else the failure is answered (502/504). An answer from a
//! parent, whatever its status, is the answer: a 5xx from a shield is the origin's trouble
//! seen through it, and asking another shield would only double the origin's load.
//!
//! **Which requests**: fills and revalidations of cacheable requests. Requests the behavior
//! does not cache go straight to the origin (nothing to share).
//!
//! A parent is a client of its own in the worker's origin list (after the origins and the
//! groups), so its connections are pooled apart from the origin's: a connection to a shield
//! never serves a request meant for the origin, or the reverse.

use super::failover;
use super::health::Admit;
use super::upstream::{Head, OriginClient, UpConn, UpstreamError};
use super::ProxyWorker;
use crate::http::Method;
use config::{Config, OriginProtocol};
use std::collections::HashMap;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// The parents an origin is fetched through.
pub struct ParentLink {
    /// Each parent's index in the worker's origins and its rendezvous seed.
    parents: Vec<(usize, u64)>,
    /// Whether the origin is asked when every parent failed.
    to_origin: bool,
}

impl ParentLink {
    /// The parents' indexes for `key`, best first (rendezvous order).
    pub fn order(&self, key: &[u8]) -> Vec<usize> {
        let mut scored: Vec<(u64, usize)> = self
            .parents
            .iter()
            .map(|&(i, seed)| (xxh3_64_with_seed(key, seed), i))
            .collect();
        scored.sort_unstable_by(|a, b| b.cmp(a));
        scored.into_iter().map(|(_, i)| i).collect()
    }
}

/// The id a parent's client and health go by.
pub fn parent_id(addr: &str) -> String {
    format!("parent:{addr}")
}

/// Adds a client for every parent named by the configuration's origins to `origins` (after
/// the origins and groups already there) and links each origin (and each group of a primary
/// with parents) to its parents.
pub fn attach(cfg: &Config, origins: &mut Vec<Option<OriginClient>>) -> Result<(), String> {
    let mut made: HashMap<String, usize> = HashMap::new();
    let mut links: Vec<(usize, ParentLink)> = Vec::new();
    for (i, o) in cfg.origins.iter().enumerate() {
        let Some((list, to_origin)) = cfg.parents_of(o).filter(|_| o.is_network()) else {
            continue;
        };
        let mut parents = Vec::with_capacity(list.len());
        for addr in &list {
            let index = match made.get(addr) {
                Some(&index) => index,
                None => {
                    let (host, port) = config::parse_parent(addr)?;
                    let mut p = o.clone();
                    p.id = parent_id(addr);
                    p.domain_name = Some(host);
                    p.http_port = port;
                    p.protocol = OriginProtocol::HttpOnly;
                    p.host_header = None;
                    p.origin_path.clear();
                    p.custom_headers.clear();
                    p.s3_bucket = None;
                    p.health_check = None;
                    p.parents.clear();
                    p.parent_pool = None;
                    let mut c = OriginClient::new(&p, None)?;
                    c.parent = true;
                    origins.push(Some(c));
                    made.insert(addr.clone(), origins.len() - 1);
                    origins.len() - 1
                }
            };
            parents.push((index, xxh3_64(addr.as_bytes())));
        }
        links.push((i, ParentLink { parents, to_origin }));
    }
    for (i, link) in links {
        // A group whose primary has parents is fetched through them too.
        for (g, group) in cfg.origin_groups.iter().enumerate() {
            if group.members.first() == Some(&cfg.origins[i].id) {
                if let Some(Some(c)) = origins.get_mut(cfg.origins.len() + g) {
                    c.parents = Some(ParentLink {
                        parents: link.parents.clone(),
                        to_origin: link.to_origin,
                    });
                }
            }
        }
        if let Some(Some(c)) = origins.get_mut(i) {
            c.parents = Some(link);
        }
    }
    Ok(())
}

type Answer = Result<(UpConn, Head), UpstreamError>;

/// One exchange for `key`: through the origin's parents as the module docs say, else (no
/// parents, or every parent failed and the origin is the fallback) with the origin or its
/// group (`failover::exchange`). Returns the client that answered and its index.
pub async fn exchange<'a, F>(
    px: &'a ProxyWorker,
    index: usize,
    client: &'a OriginClient,
    key: &[u8],
    method: Method,
    mut attempt: F,
) -> (usize, &'a OriginClient, Answer)
where
    F: AsyncFnMut(&'a OriginClient) -> Answer,
{
    let Some(link) = client.parents.as_ref() else {
        return failover::exchange(px, index, client, method, attempt).await;
    };
    let mut last: Option<(usize, &'a OriginClient, UpstreamError)> = None;
    for i in link.order(key) {
        let Some(parent) = px.origins.get(i).and_then(Option::as_ref) else {
            continue;
        };
        if parent.health.admit() == Admit::Skip {
            continue;
        }
        match attempt(parent).await {
            Ok(answer) => {
                parent.health.report(true);
                return (i, parent, Ok(answer));
            }
            Err(e) => {
                parent.health.report(false);
                tracing::warn!(parent = %parent.id, error = %e, "parent failed; trying the next");
                last = Some((i, parent, e));
            }
        }
    }
    if link.to_origin {
        tracing::info!(origin = %client.id, "no parent answered; asking the origin");
        return failover::exchange(px, index, client, method, attempt).await;
    }
    match last {
        Some((i, parent, e)) => (i, parent, Err(e)),
        None => (index, client, Err(UpstreamError::Down)),
    }
}

/// Whether a `Via` field value names the node whose `Via` entry is `ours`
/// (`1.1 <node> (slabfront)`): the request has passed this node already.
pub fn via_names(via: &[u8], ours: &str) -> bool {
    let Some(node) = ours.split_ascii_whitespace().nth(1) else {
        return false;
    };
    via.split(|&b| b == b',').any(|entry| {
        let entry = String::from_utf8_lossy(entry);
        let mut parts = entry.split_ascii_whitespace();
        let _protocol = parts.next();
        parts.next().is_some_and(|by| by.eq_ignore_ascii_case(node)) && entry.contains("(slabfront)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(n: usize) -> ParentLink {
        ParentLink {
            parents: (0..n)
                .map(|i| (i, xxh3_64(format!("127.0.0.{}:80", 11 + i).as_bytes())))
                .collect(),
            to_origin: true,
        }
    }

    #[test]
    fn losing_a_parent_moves_only_its_keys() {
        let three = link(3);
        let two = ParentLink {
            parents: three.parents[..2].to_vec(),
            to_origin: true,
        };
        let mut homes = [0usize; 3];
        for k in 0..3000u32 {
            let key = format!("/object/{k}\0\0");
            let before = three.order(key.as_bytes());
            let after = two.order(key.as_bytes());
            homes[before[0]] += 1;
            if before[0] != 2 {
                assert_eq!(before[0], after[0], "a key not at parent 2 stays home");
            } else {
                assert_eq!(after[0], before[1], "parent 2's keys go to their second choice");
            }
        }
        for h in homes {
            assert!((800..1200).contains(&h), "spread evenly: {homes:?}");
        }
    }

    #[test]
    fn via_names_this_node_only() {
        let ours = "1.1 edge-1 (slabfront)";
        assert!(via_names(b"1.1 edge-1 (slabfront)", ours));
        assert!(via_names(
            b"1.1 cdn.example (squid), 1.1 EDGE-1 (slabfront)",
            ours
        ));
        assert!(!via_names(b"1.1 edge-10 (slabfront)", ours));
        assert!(!via_names(b"1.1 edge-1", ours), "another proxy named alike");
        assert!(!via_names(b"", ours));
    }
}
