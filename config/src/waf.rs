//! A distribution's WAF rules, in AWS WAF's terms: `[waf]` (`[[distributions.waf.rules]]` in a
//! file of many) with IP set rules (CIDR lists, allow or block) and rate-based rules (a limit
//! per client IP over 1, 2, 5 or 10 minutes, block or count, optionally scoped down to a path
//! pattern), evaluated in `priority` order; `trusted_proxies` says whose `X-Forwarded-For`
//! names the client.

use crate::schema::Config;
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::HashSet;

/// `[waf]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waf {
    /// Proxies (CIDRs) in front of the edge: when the peer is one, the client is the
    /// right-most `X-Forwarded-For` entry that is not.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// `[[waf.rules]]`.
    #[serde(default)]
    pub rules: Vec<WafRule>,
    /// The distribution's name (set when the configuration is loaded): counters and rate
    /// limits are kept per distribution and rule.
    #[serde(skip)]
    pub distribution: String,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WafRule {
    /// Logged and counted under this name.
    pub name: String,
    /// Lower first; unique within the distribution.
    pub priority: u32,
    pub kind: RuleKind,
    /// `allow` or `block` (ip_set), `block` or `count` (rate_based).
    pub action: RuleAction,
    /// ip_set: the addresses, IPv4 and IPv6 CIDRs (a bare address is one host).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// rate_based: requests per client IP allowed within the window.
    #[serde(default)]
    pub limit: u64,
    /// rate_based: the window in seconds, 60, 120, 300 or 600 (AWS WAF's
    /// `EvaluationWindowSec`).
    #[serde(default = "default_window", alias = "window")]
    pub evaluation_window_sec: u64,
    /// rate_based: only requests whose path matches this pattern (CloudFront wildcards)
    /// are counted and limited.
    #[serde(default)]
    pub scope_down: Option<String>,
    /// The status a `block` answers instead of 403.
    #[serde(default)]
    pub custom_response: Option<u16>,
}

fn default_window() -> u64 {
    300
}

/// AWS WAF's windows for rate-based rules.
pub const WINDOWS: [u64; 4] = [60, 120, 300, 600];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    IpSet,
    RateBased,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Allow,
    Block,
    Count,
}

impl RuleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Allow => "allow",
            RuleAction::Block => "block",
            RuleAction::Count => "count",
        }
    }
}

/// A CIDR, or a bare address as a host route.
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    s.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s:?} is not an IP address or CIDR (e.g. \"192.0.2.0/24\", \"2001:db8::/32\")"))
}

/// The checks of one distribution's `[waf]` (read from the top-level keys).
pub(crate) fn check(cfg: &Config, bad: &mut impl FnMut(String, String)) {
    let waf = &cfg.waf;
    for (i, p) in waf.trusted_proxies.iter().enumerate() {
        if let Err(m) = parse_cidr(p) {
            bad(format!("waf.trusted_proxies[{i}]"), m);
        }
    }
    let mut names = HashSet::new();
    let mut priorities = HashSet::new();
    for (i, r) in waf.rules.iter().enumerate() {
        let k = |f: &str| format!("waf.rules[{i}].{f}");
        if r.name.is_empty()
            || r.name.len() > 128
            || !r
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            bad(
                k("name"),
                "1 to 128 letters, digits, '-' or '_' (AWS WAF's rule names)".into(),
            );
        } else if !names.insert(r.name.as_str()) {
            bad(k("name"), format!("rule {:?} is defined twice", r.name));
        }
        if !priorities.insert(r.priority) {
            bad(
                k("priority"),
                format!("priority {} is used by another rule", r.priority),
            );
        }
        if let Some(s) = r.custom_response {
            if !(200..=599).contains(&s) {
                bad(k("custom_response"), "must be a status code, 200-599".into());
            } else if r.action != RuleAction::Block {
                bad(
                    k("custom_response"),
                    "only a block action sends a custom response".into(),
                );
            }
        }
        match r.kind {
            RuleKind::IpSet => {
                if r.action == RuleAction::Count {
                    bad(k("action"), "an ip_set rule allows or blocks".into());
                }
                if r.addresses.is_empty() {
                    bad(k("addresses"), "an ip_set rule needs at least one address".into());
                }
                for (j, a) in r.addresses.iter().enumerate() {
                    if let Err(m) = parse_cidr(a) {
                        bad(format!("waf.rules[{i}].addresses[{j}]"), m);
                    }
                }
                for (f, set) in [("limit", r.limit != 0), ("scope_down", r.scope_down.is_some())] {
                    if set {
                        bad(k(f), "belongs to rate_based rules".into());
                    }
                }
            }
            RuleKind::RateBased => {
                if r.action == RuleAction::Allow {
                    bad(k("action"), "a rate_based rule blocks or counts".into());
                }
                if !(10..=2_000_000_000).contains(&r.limit) {
                    bad(k("limit"), "must be 10 to 2,000,000,000 (AWS WAF's range)".into());
                }
                if !WINDOWS.contains(&r.evaluation_window_sec) {
                    bad(
                        k("evaluation_window_sec"),
                        "must be 60, 120, 300 or 600 seconds".into(),
                    );
                }
                if !r.addresses.is_empty() {
                    bad(k("addresses"), "belongs to ip_set rules".into());
                }
                if let Some(p) = &r.scope_down {
                    if p.is_empty() || p.chars().any(|c| c.is_ascii_control() || c.is_whitespace()) {
                        bad(k("scope_down"), format!("{p:?} is not a path pattern"));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_hosts() {
        assert_eq!(parse_cidr("192.0.2.7/24").unwrap().to_string(), "192.0.2.0/24");
        assert_eq!(parse_cidr("2001:db8::1").unwrap().to_string(), "2001:db8::1/128");
        assert!(parse_cidr("192.0.2.0/33").is_err());
        assert!(parse_cidr("example.com").is_err());
    }
}
