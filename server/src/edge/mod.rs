//! Security controls at the edge, per behavior: signed URLs and cookies (`trusted_key_groups`)
//! and response headers policies (`response_headers_policy`). Built once per configuration
//! generation and worker ([`Controls::build`]); the exchange's **viewer checks** phase
//! (`exchange/viewer_checks.rs`) and its respond step use them. Per distribution, before
//! those: WAF rules and geo restriction ([`gate::Gate`]).
//!
//! Nothing here does I/O: verification is CPU work, and a worker remembers what it verified
//! in a bounded map ([`Verified`]), never past a signature's expiry.

pub mod gate;
pub mod geo;
pub mod headers;
pub mod policy;
pub mod rate;
pub mod signed;
pub mod waf;

use ahash::AHashMap;
use std::cell::RefCell;
use std::rc::Rc;

/// A worker's controls for one distribution, indexed by behavior (0 = the default).
pub struct Controls {
    pub signed: Vec<Option<Rc<signed::Trusted>>>,
    pub headers: Vec<Option<Rc<headers::HeadersRt>>>,
    pub verified: RefCell<Verified>,
    /// The distribution's WAF rules and geo restriction.
    pub gate: Option<gate::Gate>,
}

impl Controls {
    /// The controls of a distribution's behaviors, or `None` when no behavior has any (the
    /// request path then checks nothing).
    pub fn build(cfg: &config::Config, edge: &str) -> Result<Option<Controls>, String> {
        let behaviors: Vec<&config::CacheBehavior> = std::iter::once(&cfg.default_cache_behavior)
            .chain(cfg.behaviors.iter())
            .collect();
        let gate = gate::Gate::build(cfg)?;
        if gate.is_none()
            && behaviors
                .iter()
                .all(|b| b.trusted_key_groups.is_empty() && b.response_headers_policy.is_none())
        {
            return Ok(None);
        }
        let mut signed = Vec::with_capacity(behaviors.len());
        let mut headers = Vec::with_capacity(behaviors.len());
        // Behaviors naming the same policy or groups share one runtime copy.
        let mut by_policy: AHashMap<&str, Rc<headers::HeadersRt>> = AHashMap::new();
        for b in behaviors {
            signed.push(if b.trusted_key_groups.is_empty() {
                None
            } else {
                Some(Rc::new(signed::Trusted::new(cfg, &b.trusted_key_groups)?))
            });
            headers.push(match b.response_headers_policy.as_deref() {
                None => None,
                Some(name) => match by_policy.get(name) {
                    Some(rt) => Some(rt.clone()),
                    None => {
                        let p = cfg
                            .response_headers_policy(name)
                            .ok_or_else(|| format!("no response headers policy is named {name:?}"))?;
                        let rt = Rc::new(headers::HeadersRt::new(&p, edge));
                        by_policy.insert(name, rt.clone());
                        Some(rt)
                    }
                },
            });
        }
        Ok(Some(Controls {
            signed,
            headers,
            verified: RefCell::new(Verified::new(VERIFIED_ENTRIES)),
            gate,
        }))
    }
}

/// Verified signatures a worker remembers.
pub const VERIFIED_ENTRIES: usize = 4096;

/// Verified signatures, keyed by the exact request that carried them (scheme, Host, target
/// and signing cookies): a repeat is checked against the remembered grant (expiry, start,
/// network) without verifying the signature again. Bounded: when full, expired entries go,
/// and if none has, everything does.
pub struct Verified {
    map: AHashMap<Box<[u8]>, signed::Grant>,
    cap: usize,
}

impl Verified {
    pub fn new(cap: usize) -> Verified {
        Verified {
            map: AHashMap::with_capacity(cap.min(1024)),
            cap,
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<signed::Grant> {
        self.map.get(key).copied()
    }

    pub fn insert(&mut self, key: Box<[u8]>, grant: signed::Grant, now: u64) {
        if self.map.len() >= self.cap {
            self.map.retain(|_, g| g.until > now);
            if self.map.len() >= self.cap {
                self.map.clear();
            }
        }
        self.map.insert(key, grant);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verified_map_stays_within_its_bound() {
        let mut v = Verified::new(4);
        let g = |until| signed::Grant {
            until,
            not_before: 0,
            ip: None,
        };
        for i in 0..4u8 {
            v.insert(Box::new([i]), g(if i < 2 { 10 } else { 100 }), 5);
        }
        assert_eq!(v.len(), 4);
        // At 50 the first two have expired: they make room.
        v.insert(Box::new([9]), g(100), 50);
        assert_eq!(v.len(), 3);
        assert!(v.get(&[0]).is_none() && v.get(&[9]).is_some());
    }
}
