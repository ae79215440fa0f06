//! A distribution's WAF rules at run time: the client's address (the peer, or the right-most
//! untrusted `X-Forwarded-For` entry behind `trusted_proxies`), then the rules in priority
//! order: IP sets (allow or block) and rate-based rules (counted in the process-wide
//! [`super::rate::TABLE`]; block or count over the limit). The first allow or block decides;
//! `count` only counts. Counters live in a process-wide registry, per distribution and rule,
//! so that every worker and every configuration generation adds to the same ones.

use super::rate::{Count, TABLE};
use crate::router::PathPattern;
use config::waf::{parse_cidr, RuleAction, RuleKind, Waf};
use ipnet::IpNet;
use std::fmt::Write;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex};

/// One rule, compiled.
pub struct RuleRt {
    pub name: String,
    pub action: RuleAction,
    /// What a block answers.
    pub status: u16,
    kind: Kind,
    /// Requests this rule allowed, blocked or counted.
    matched: Arc<AtomicU64>,
}

enum Kind {
    IpSet(Vec<IpNet>),
    Rate {
        id: u64,
        limit: u64,
        window: u64,
        scope: Option<PathPattern>,
    },
}

/// What the rules decided.
pub enum Verdict<'a> {
    /// No rule blocked (an allow rule matched, or none did).
    Pass,
    Block(&'a RuleRt),
}

/// A distribution's rules.
pub struct WafRt {
    trusted: Vec<IpNet>,
    rules: Vec<RuleRt>,
}

impl WafRt {
    /// The rules of a validated `[waf]`; `None` when it has none and trusts no proxy.
    pub fn new(waf: &Waf) -> Result<Option<WafRt>, String> {
        if waf.rules.is_empty() && waf.trusted_proxies.is_empty() {
            return Ok(None);
        }
        let trusted = waf
            .trusted_proxies
            .iter()
            .map(|c| parse_cidr(c))
            .collect::<Result<Vec<_>, _>>()?;
        let mut sorted: Vec<&config::waf::WafRule> = waf.rules.iter().collect();
        sorted.sort_by_key(|r| r.priority);
        let mut rules = Vec::with_capacity(sorted.len());
        for r in sorted {
            let kind = match r.kind {
                RuleKind::IpSet => Kind::IpSet(IpNet::aggregate(
                    &r.addresses
                        .iter()
                        .map(|c| parse_cidr(c))
                        .collect::<Result<Vec<_>, _>>()?,
                )),
                RuleKind::RateBased => {
                    RATE_USED.store(true, Relaxed);
                    Kind::Rate {
                        id: rule_id(&waf.distribution, &r.name, r.evaluation_window_sec),
                        limit: r.limit,
                        window: r.evaluation_window_sec,
                        scope: r.scope_down.as_deref().map(PathPattern::new),
                    }
                }
            };
            rules.push(RuleRt {
                name: r.name.clone(),
                action: r.action,
                status: r.custom_response.unwrap_or(403),
                kind,
                matched: counter(&waf.distribution, &r.name, r.action.as_str()),
            });
        }
        Ok(Some(WafRt { trusted, rules }))
    }

    /// The client: the peer, unless it is a trusted proxy; then the right-most
    /// `X-Forwarded-For` entry that is not one (an entry that is no address stops the walk
    /// at the hop that added it).
    /// `xff` is asked for only when the peer is trusted.
    pub fn client<'v>(&self, peer: IpAddr, xff: impl FnOnce() -> Vec<&'v [u8]>) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusted.iter().any(|n| n.contains(&peer)) {
            return peer;
        }
        client_ip(&self.trusted, peer, &xff())
    }

    /// The rules in priority order, for a request of `client` for `path`.
    pub fn evaluate(&self, client: IpAddr, path: &[u8]) -> Verdict<'_> {
        let client = canonical(client);
        for r in &self.rules {
            let over = match &r.kind {
                Kind::IpSet(nets) => nets.iter().any(|n| n.contains(&client)),
                Kind::Rate {
                    id,
                    limit,
                    window,
                    scope,
                } => {
                    if scope.as_ref().is_some_and(|s| !s.matches(path)) {
                        continue;
                    }
                    matches!(TABLE.hit(*id, client, *limit, *window), Count::Over(_))
                }
            };
            if !over {
                continue;
            }
            r.matched.fetch_add(1, Relaxed);
            match r.action {
                RuleAction::Count => {}
                RuleAction::Allow => return Verdict::Pass,
                RuleAction::Block => return Verdict::Block(r),
            }
        }
        Verdict::Pass
    }
}

/// IPv4-mapped IPv6 addresses are their IPv4 address (a dual-stack listener's peers).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// See [`WafRt::client`].
pub fn client_ip(trusted: &[IpNet], peer: IpAddr, xff: &[&[u8]]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let entries = xff.iter().rev().flat_map(|v| v.rsplit(|&b| b == b','));
    for e in entries {
        let e = std::str::from_utf8(e).unwrap_or("").trim();
        if e.is_empty() {
            continue;
        }
        let Some(ip) = parse_entry(e) else { break };
        client = canonical(ip);
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, `[v6]:port`, or `v4:port`.
fn parse_entry(e: &str) -> Option<IpAddr> {
    if let Ok(ip) = e.parse() {
        return Some(ip);
    }
    if let Ok(sa) = e.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    e.strip_prefix('[')?.split(']').next()?.parse().ok()
}

/// A rate-based rule's key in the shared table: the same rule of the same distribution (and
/// window) keeps its counts across reloads.
fn rule_id(distribution: &str, rule: &str, window: u64) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    (distribution, rule, window).hash(&mut h);
    h.finish()
}

/// A counter of the process-wide registry.
struct Counter {
    family: &'static str,
    distribution: String,
    rule: String,
    action: &'static str,
    n: Arc<AtomicU64>,
}

static COUNTERS: LazyLock<Mutex<Vec<Counter>>> = LazyLock::new(Mutex::default);

fn registered(family: &'static str, distribution: &str, rule: &str, action: &'static str) -> Arc<AtomicU64> {
    let mut all = COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = all.iter().find(|c| {
        c.family == family && c.distribution == distribution && c.rule == rule && c.action == action
    }) {
        return c.n.clone();
    }
    let n = Arc::new(AtomicU64::new(0));
    all.push(Counter {
        family,
        distribution: distribution.into(),
        rule: rule.into(),
        action,
        n: n.clone(),
    });
    n
}

/// A rule's counter (found again by a reload).
pub fn counter(distribution: &str, rule: &str, action: &'static str) -> Arc<AtomicU64> {
    registered(WAF_FAMILY, distribution, rule, action)
}

/// A distribution's count of viewers refused by its geo restriction.
pub fn geo_counter(distribution: &str) -> Arc<AtomicU64> {
    registered(GEO_FAMILY, distribution, "", "block")
}

const WAF_FAMILY: &str = "slabfront_waf_matches_total";
const GEO_FAMILY: &str = "slabfront_geo_blocked_total";

/// Prometheus lines of the edge's counters (appended to `/metrics`).
pub fn prometheus(out: &mut String) {
    let all = COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
    let _ = writeln!(
        out,
        "# HELP {GEO_FAMILY} Requests refused (403) by a distribution's geo restriction.\n# TYPE {GEO_FAMILY} counter"
    );
    for c in all.iter().filter(|c| c.family == GEO_FAMILY) {
        let _ = writeln!(
            out,
            "{GEO_FAMILY}{{distribution=\"{}\"}} {}",
            escape(&c.distribution),
            c.n.load(Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP {WAF_FAMILY} Requests a WAF rule matched, by distribution, rule and action (allow, block, count).\n# TYPE {WAF_FAMILY} counter"
    );
    for c in all.iter().filter(|c| c.family == WAF_FAMILY) {
        let _ = writeln!(
            out,
            "{WAF_FAMILY}{{distribution=\"{}\",rule=\"{}\",action=\"{}\"}} {}",
            escape(&c.distribution),
            escape(&c.rule),
            c.action,
            c.n.load(Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP slabfront_waf_rate_uncounted_total Requests of rate-based rules that found the rate table's neighbourhood full (let through uncounted).\n# TYPE slabfront_waf_rate_uncounted_total counter\nslabfront_waf_rate_uncounted_total {}",
        if rate_table_used() { TABLE.full() } else { 0 }
    );
}

/// Whether any rate-based rule was built (the table is allocated on first use only).
static RATE_USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn rate_table_used() -> bool {
    RATE_USED.load(Relaxed)
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn nets(l: &[&str]) -> Vec<IpNet> {
        l.iter().map(|c| parse_cidr(c).unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_forwarded_entry() {
        let t = nets(&["10.0.0.0/8", "::1"]);
        let xff: [&[u8]; 2] = [b"203.0.113.9, 198.51.100.7", b"10.1.1.1"];
        // An untrusted peer: its own address, whatever it forwards.
        assert_eq!(client_ip(&t, ip("192.0.2.1"), &xff), ip("192.0.2.1"));
        // A trusted peer: the right-most entry that is not trusted.
        assert_eq!(client_ip(&t, ip("10.0.0.2"), &xff), ip("198.51.100.7"));
        assert_eq!(client_ip(&t, ip("::1"), &xff), ip("198.51.100.7"));
        // Every entry trusted: the left-most.
        let all: [&[u8]; 1] = [b"10.9.9.9, 10.1.1.1"];
        assert_eq!(client_ip(&t, ip("10.0.0.2"), &all), ip("10.9.9.9"));
        // Garbage stops the walk at the hop that wrote it.
        let bad: [&[u8]; 1] = [b"198.51.100.7, nonsense, 10.1.1.1"];
        assert_eq!(client_ip(&t, ip("10.0.0.2"), &bad), ip("10.1.1.1"));
        // Ports and brackets as some proxies write them; mapped addresses as IPv4.
        let ported: [&[u8]; 1] = [b"[2001:db8::5]:443"];
        assert_eq!(client_ip(&t, ip("10.0.0.2"), &ported), ip("2001:db8::5"));
        assert_eq!(
            client_ip(&t, ip("::ffff:10.0.0.2"), &[&b"192.0.2.77:1234"[..]]),
            ip("192.0.2.77")
        );
    }
}
