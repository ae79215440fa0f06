//! The checks of a `[[distributions]]` file: each distribution on its own (through the same
//! checks as a single-distribution file), then the names and addresses they share.

use crate::distribution::Distribution;
use crate::error::ProblemKind;
use crate::schema::{Config, SslSupportMethod};
use crate::validate::{check_distribution, Found};
use std::collections::HashMap;
use std::net::SocketAddr;

/// Keys that belong inside each distribution once a file has `[[distributions]]`.
const PER_DISTRIBUTION: [&str; 9] = [
    "geo_restriction",
    "waf",
    "origins",
    "default_cache_behavior",
    "behaviors",
    "error_responses",
    "logging",
    "default_root_object",
    "root_object",
];

pub(crate) fn check(cfg: &Config, machine: bool, present: &dyn Fn(&str) -> bool) -> Vec<Found> {
    let mut out: Vec<Found> = Vec::new();
    let mut bad = |k: String, m: String| out.push((k, m, ProblemKind::Schema));
    for key in PER_DISTRIBUTION {
        if present(key) {
            bad(
                key.into(),
                format!(
                    "with [[distributions]], `{key}` belongs inside each distribution \
                     (a file without [[distributions]] is one distribution of its own)"
                ),
            );
        }
    }
    for (i, d) in cfg.distributions.iter().enumerate() {
        let at = format!("distributions[{i}]");
        for (k, m, kind) in check_distribution(&cfg.with_distribution(d), machine) {
            let k = if k.is_empty() {
                at.clone()
            } else {
                format!("{at}.{k}")
            };
            out.push((k, m, kind));
        }
        own(&at, d, cfg, machine, &mut out);
    }
    names(cfg, &mut out);
    addresses(cfg, &mut out);
    logs(cfg, &mut out);
    out
}

/// A distribution's keys that a single-distribution file does not have.
fn own(at: &str, d: &Distribution, cfg: &Config, machine: bool, out: &mut Vec<Found>) {
    let mut mine = Vec::new();
    let mut bad = |k: &str, m: String| mine.push((format!("{at}.{k}"), m, ProblemKind::Schema));
    if let Err(m) = host_name(&d.name, false) {
        bad("name", m);
    }
    for (j, a) in d.aliases.iter().enumerate() {
        if let Err(m) = host_name(a, true) {
            bad(&format!("aliases[{j}]"), m);
        }
    }
    if d.comment.chars().count() > 128 {
        bad("comment", "at most 128 characters (CloudFront's limit)".into());
    }
    match d.ssl_support_method {
        SslSupportMethod::SniOnly => {
            for (k, l) in [("listen", &d.listen), ("listen_tls", &d.listen_tls)] {
                if !l.is_empty() {
                    bad(
                        k,
                        "listeners of a distribution's own need ssl_support_method = \"vip\" \
                         (with \"sni-only\" it shares [server] listen and listen_tls)"
                            .into(),
                    );
                }
            }
        }
        SslSupportMethod::Vip => {
            if d.listen.is_empty() && d.listen_tls.is_empty() {
                bad(
                    "ssl_support_method",
                    "\"vip\" needs listen or listen_tls addresses of the distribution's own".into(),
                );
            }
        }
    }
    if !d.listen_tls.is_empty() && d.ssl_certificate.is_none() && cfg.tls.certificates.is_empty() {
        bad(
            "listen_tls",
            "HTTPS listeners need an ssl_certificate (or [[tls.certificates]])".into(),
        );
    }
    out.append(&mut mine);
    if let Some(c) = &d.ssl_certificate {
        for (f, path) in [("cert", &c.cert), ("key", &c.key)] {
            let key = format!("{at}.ssl_certificate.{f}");
            if path.is_empty() {
                out.push((key, "must not be empty".into(), ProblemKind::Schema));
            } else if machine {
                if let Err(e) = std::fs::File::open(path) {
                    out.push((key, format!("{path:?}: {e}"), ProblemKind::Machine));
                }
            }
        }
    }
}

/// A domain name as CloudFront takes one: labels of letters, digits and hyphens; a leading
/// `*.` where wildcards are allowed.
pub(crate) fn host_name(name: &str, wildcard: bool) -> Result<(), String> {
    let rest = match name.strip_prefix("*.") {
        Some(r) if wildcard => r,
        Some(_) => {
            return Err(format!(
                "{name:?}: the name is a domain name; put wildcards in aliases"
            ))
        }
        None => name,
    };
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 253 || !rest.split('.').all(ok_label) {
        let hint = if rest.contains('*') {
            " (a wildcard is allowed only as a leading \"*.\")"
        } else {
            ""
        };
        return Err(format!("{name:?} is not a domain name{hint}"));
    }
    if wildcard && name.starts_with("*.") && !rest.contains('.') {
        return Err(format!(
            "{name:?}: a wildcard needs a domain of at least two labels (e.g. \"*.example.com\")"
        ));
    }
    Ok(())
}

/// Names and aliases claimed twice (exact names, or the same wildcard in two places), each
/// reported where it is claimed again, with where it was claimed first.
fn names(cfg: &Config, out: &mut Vec<Found>) {
    let mut first: HashMap<String, String> = HashMap::new();
    for (i, d) in cfg.distributions.iter().enumerate() {
        let keys = std::iter::once(format!("distributions[{i}].name"))
            .chain((0..d.aliases.len()).map(|j| format!("distributions[{i}].aliases[{j}]")));
        for (name, key) in d.names().zip(keys) {
            if name.is_empty() {
                continue;
            }
            let norm = name.to_ascii_lowercase();
            match first.get(&norm) {
                None => {
                    first.insert(norm, key);
                }
                Some(other) => {
                    let m = if let Some(domain) = norm.strip_prefix("*.") {
                        format!(
                            "wildcard {name:?} overlaps {other} (the same wildcard): every name \
                             under {domain} would have two distributions"
                        )
                    } else {
                        format!("{name:?} is already claimed by {other}")
                    };
                    out.push((key, m, ProblemKind::Schema));
                }
            }
        }
    }
}

/// Listener addresses: each an IP:port, none used twice by the server and the distributions.
fn addresses(cfg: &Config, out: &mut Vec<Found>) {
    let mut seen: HashMap<SocketAddr, String> = HashMap::new();
    for (key, list) in [
        ("server.listen", &cfg.server.listen),
        ("server.listen_tls", &cfg.server.listen_tls),
    ] {
        for (j, a) in list.iter().enumerate() {
            if let Ok(addr) = a.parse::<SocketAddr>() {
                seen.entry(addr).or_insert_with(|| format!("{key}[{j}]"));
            }
        }
    }
    for (i, d) in cfg.distributions.iter().enumerate() {
        for (k, list) in [("listen", &d.listen), ("listen_tls", &d.listen_tls)] {
            for (j, a) in list.iter().enumerate() {
                let key = format!("distributions[{i}].{k}[{j}]");
                match a.parse::<SocketAddr>() {
                    Err(_) => out.push((
                        key,
                        format!("{a:?} is not an IP:port address (e.g. \"192.0.2.10:443\")"),
                        ProblemKind::Schema,
                    )),
                    Ok(addr) if addr.port() == 0 => {}
                    Ok(addr) => match seen.get(&addr) {
                        Some(other) => out.push((
                            key,
                            format!("{a} is already used by {other}"),
                            ProblemKind::Schema,
                        )),
                        None => {
                            seen.insert(addr, key);
                        }
                    },
                }
            }
        }
    }
}

/// Two distributions writing one access log would interleave their lines.
fn logs(cfg: &Config, out: &mut Vec<Found>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, d) in cfg.distributions.iter().enumerate() {
        let Some(l) = d.logging.as_ref().filter(|l| l.enabled && !l.path.is_empty()) else {
            continue;
        };
        if let Some(first) = seen.insert(l.path.as_str(), i) {
            seen.insert(l.path.as_str(), first);
            out.push((
                format!("distributions[{i}].logging.path"),
                format!(
                    "{:?} is also distributions[{first}]'s access log; each distribution writes \
                     its own",
                    l.path
                ),
                ProblemKind::Schema,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn domain_names_and_wildcards() {
        for ok in [
            "example.com",
            "a-b.example.com",
            "xn--bcher-kva.example",
            "localhost",
            "EXAMPLE.com",
        ] {
            assert!(host_name(ok, false).is_ok(), "{ok}");
        }
        for ok in ["*.example.com", "*.a.b.example.com"] {
            assert!(host_name(ok, true).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "example.com.",
            ".example.com",
            "-a.example.com",
            "a_b.example.com",
            "a..b",
            "ex ample.com",
        ] {
            assert!(host_name(bad, true).is_err(), "{bad:?}");
        }
        assert!(host_name(&format!("{}.com", "a".repeat(64)), false).is_err());
        // Wildcards only as a leading "*." of an alias, over at least two labels.
        assert!(host_name("*.example.com", false).unwrap_err().contains("aliases"));
        for bad in ["*example.com", "www.*.com", "*", "*.com", "a.*"] {
            assert!(host_name(bad, true).is_err(), "{bad:?}");
        }
    }
}
