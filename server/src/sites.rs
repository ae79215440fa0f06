//! Several distributions in one process: each is served by a worker of its own (its routes,
//! origins, cache behaviors, error pages, access log, and a cache-key prefix, so the same
//! path on two distributions never shares an object), built from the configuration's view of
//! that distribution, behind a front worker whose `Hosts` table picks one per request.

use crate::context::{Hosts, Settings, Worker};
use crate::{build_worker, observe, ProxyParts, StartError, WorkerExtras};
use config::{Config, Distribution};
use std::rc::Rc;
use std::sync::Arc;

/// The cache-key prefix of a distribution: empty for the implicit one (a file without
/// `[[distributions]]`, whose keys stay as they always were), else its name and a separator
/// no path contains.
pub fn key_prefix(name: &str) -> Vec<u8> {
    if name == config::IMPLICIT_NAME {
        return Vec::new();
    }
    let mut p = name.to_ascii_lowercase().into_bytes();
    p.push(0x1f);
    p
}

/// What the whole process serves, as one configuration for the parts that are not per
/// distribution: every distribution's origins (for the directory checks and whether a slab
/// is needed), certificates (chosen by SNI) and `vip` listeners.
pub fn process_view(cfg: &Config) -> Config {
    if cfg.distributions.len() <= 1 {
        return cfg.clone();
    }
    let mut flat = cfg.clone();
    flat.origins.clear();
    for d in &cfg.distributions {
        flat.origins.extend(d.origins.iter().cloned());
        flat.tls.certificates.extend(d.ssl_certificate.iter().cloned());
        flat.server.listen.extend(d.listen.iter().cloned());
        flat.server.listen_tls.extend(d.listen_tls.iter().cloned());
    }
    flat
}

/// Access-log writers by file, one per distribution that logs (distributions of a
/// single-distribution file log through the process's own writer).
#[derive(Default, Clone)]
pub struct LogSinks(pub Vec<(String, Arc<observe::LogSink>)>);

impl LogSinks {
    /// Starts a writer for every distribution's log not running yet (those of `running` are
    /// kept: a reload reuses them).
    pub fn for_config(cfg: &Config, running: &LogSinks) -> Result<LogSinks, StartError> {
        let mut sinks = LogSinks::default();
        if cfg.distributions.len() <= 1 {
            return Ok(sinks);
        }
        for l in cfg.distributions.iter().filter_map(|d| d.logging.as_ref()) {
            if !l.enabled || sinks.get(&l.path).is_some() {
                continue;
            }
            let sink = match running.get(&l.path) {
                Some(s) => s,
                None => observe::LogSink::start(l.path.clone().into()).map_err(|e| StartError::Log {
                    path: l.path.clone(),
                    source: e,
                })?,
            };
            sinks.0.push((l.path.clone(), sink));
        }
        Ok(sinks)
    }

    fn get(&self, path: &str) -> Option<Arc<observe::LogSink>> {
        self.0.iter().find(|(p, _)| p == path).map(|(_, s)| s.clone())
    }
}

/// A worker for the configuration: for one distribution, that distribution's; for several,
/// a front whose `hosts` holds one worker per distribution.
pub fn build(
    id: usize,
    cfg: &Config,
    settings: Arc<Settings>,
    proxy: Option<&ProxyParts>,
    extras: WorkerExtras,
    sinks: &LogSinks,
) -> Result<Worker, StartError> {
    let [first, ..] = cfg.distributions.as_slice() else {
        return build_worker(id, cfg, settings, proxy, extras);
    };
    if cfg.distributions.len() == 1 {
        let mut w = build_worker(id, cfg, settings, proxy, extras)?;
        if let Some(px) = w.proxy.as_mut() {
            px.key_prefix = key_prefix(&first.name);
        }
        return Ok(w);
    }
    let front_view = cfg.with_distribution(first);
    let mut front_extras = extras.clone();
    front_extras.1 = None;
    let mut front = build_worker(id, &front_view, settings.clone(), None, front_extras)?;
    let mut sites = Vec::with_capacity(cfg.distributions.len());
    let mut names = Vec::with_capacity(cfg.distributions.len());
    for d in &cfg.distributions {
        let mut site = build_site(id, cfg, d, settings.clone(), proxy, &extras, sinks)?;
        // Counted under its name, in the front's statistics (`adopt`).
        site.stats = Rc::new(site.stats.for_distribution(extras.5.dist_index(&d.name)));
        front.adopt(&mut site);
        sites.push(Rc::new(site));
        names.push((d.name.clone(), d.aliases.clone(), d.enabled));
    }
    let mut hosts = Hosts::new(sites, names);
    hosts.vips = vip_listeners(cfg);
    front.hosts = Some(Rc::new(hosts));
    Ok(front)
}

/// Each `vip` distribution's own listen addresses, by distribution index (the addresses as
/// bound: [`bound_view`] has put them in the configuration).
fn vip_listeners(cfg: &Config) -> Vec<(std::net::SocketAddr, usize)> {
    cfg.distributions
        .iter()
        .enumerate()
        .flat_map(|(i, d)| d.listen.iter().chain(&d.listen_tls).map(move |a| (a, i)))
        .filter_map(|(a, i)| Some((a.parse().ok()?, i)))
        .collect()
}

/// The configuration as the workers get it: every distribution's own listen addresses
/// replaced by the address bound for it (`configured`: listen key → bound address), so a
/// `vip` listener asked for on port 0 is found by the port it got.
pub fn bound_view(cfg: &Config, configured: &[(String, std::net::SocketAddr)]) -> Config {
    let mut out = cfg.clone();
    let bound = |key: String| {
        configured.iter().find(|(k, _)| *k == key).map_or_else(
            || key.trim_start_matches("tls:").to_string(),
            |(_, a)| a.to_string(),
        )
    };
    for d in &mut out.distributions {
        d.listen = d.listen.iter().map(|a| bound(a.clone())).collect();
        d.listen_tls = d.listen_tls.iter().map(|a| bound(format!("tls:{a}"))).collect();
    }
    out
}

fn build_site(
    id: usize,
    cfg: &Config,
    d: &Distribution,
    settings: Arc<Settings>,
    proxy: Option<&ProxyParts>,
    extras: &WorkerExtras,
    sinks: &LogSinks,
) -> Result<Worker, StartError> {
    let view = cfg.with_distribution(d);
    // Origins are numbered within the distribution: their TLS settings are its own.
    let parts = match proxy {
        Some((shared, _)) if view.origins.iter().any(|o| o.domain_name.is_some()) => {
            Some((shared.clone(), crate::origin_tls(&view)?))
        }
        _ => None,
    };
    let mut e = extras.clone();
    let logging = d.logging.as_ref().filter(|l| l.enabled);
    e.1 = logging.and_then(|l| sinks.get(&l.path));
    e.2 = logging.is_some_and(|l| l.include_cookies);
    let mut site = build_worker(id, &view, settings, parts.as_ref(), e)?;
    if let Some(px) = site.proxy.as_mut() {
        px.key_prefix = key_prefix(&d.name);
    }
    Ok(site)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_prefixes_keep_distributions_apart_and_the_implicit_one_as_it_was() {
        assert!(key_prefix(config::IMPLICIT_NAME).is_empty());
        assert_eq!(key_prefix("WWW.example.com"), b"www.example.com\x1f");
        assert_ne!(key_prefix("a.example.com"), key_prefix("b.example.com"));
    }
}
