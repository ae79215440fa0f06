//! `geo_restriction`, `[geo]` and `[waf]`: accepted shapes, and every bad value reported with
//! its key.
#![allow(clippy::unwrap_used)]
use config::geo::RestrictionType;
use config::waf::{RuleAction, RuleKind};
use config::Config;

fn problems(text: &str) -> Vec<(String, String)> {
    match Config::from_toml_str(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e
            .problems()
            .iter()
            .map(|p| (p.key.clone(), p.message.clone()))
            .collect(),
    }
}

fn has(ps: &[(String, String)], key: &str, words: &str) -> bool {
    ps.iter().any(|(k, m)| k == key && m.contains(words))
}

const SITE: &str = r#"
[[origins]]
id = "a"
path = "."
[default_cache_behavior]
target_origin = "a"
"#;

/// A file that exists (the machine check opens the database; the server reads it).
fn db() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")
}

#[test]
fn a_single_distribution_file_takes_geo_and_waf_at_the_top_level() {
    let f = db();
    let text = format!(
        r#"geo_restriction = {{ restriction_type = "whitelist", locations = ["US", "FR"] }}
[geo]
database = {:?}
[waf]
trusted_proxies = ["10.0.0.0/8", "::1"]
[[waf.rules]]
name = "bad-nets"
priority = 1
kind = "ip_set"
action = "block"
addresses = ["192.0.2.0/24", "2001:db8::/32"]
custom_response = 429
[[waf.rules]]
name = "api-rate"
priority = 2
kind = "rate_based"
action = "count"
limit = 100
evaluation_window_sec = 60
scope_down = "/api/*"
{SITE}"#,
        f.display().to_string()
    );
    let c = Config::from_toml_str(&text).unwrap();
    let d = &c.distributions[0];
    assert_eq!(d.geo_restriction.restriction_type, RestrictionType::Whitelist);
    assert_eq!(d.waf.rules.len(), 2);
    assert_eq!(c.waf.rules[1].kind, RuleKind::RateBased);
    assert_eq!(c.waf.rules[1].action, RuleAction::Count);
    assert_eq!(c.waf.distribution, "default");
}

#[test]
fn geo_restriction_problems_name_their_key() {
    let ps = problems(&format!(
        "geo_restriction = {{ restriction_type = \"blacklist\", locations = [\"us\", \"XX\", \"FR\", \"FR\"] }}\n{SITE}"
    ));
    assert!(has(&ps, "geo_restriction.locations[0]", "upper case"), "{ps:?}");
    assert!(has(&ps, "geo_restriction.locations[1]", "ISO 3166-1"), "{ps:?}");
    assert!(has(&ps, "geo_restriction.locations[3]", "twice"), "{ps:?}");
    assert!(has(&ps, "geo_restriction", "[geo] database"), "{ps:?}");
    let ps = problems(&format!(
        "geo_restriction = {{ restriction_type = \"whitelist\" }}\n[geo]\ndatabase = \"/nonexistent/c.mmdb\"\n{SITE}"
    ));
    assert!(has(&ps, "geo_restriction.locations", "at least one"), "{ps:?}");
    assert!(has(&ps, "geo.database", "/nonexistent/c.mmdb"), "{ps:?}");
    let ps = problems(&format!(
        "geo_restriction = {{ restriction_type = \"allowlist\", locations = [\"US\"] }}\n{SITE}"
    ));
    assert!(ps.iter().any(|(k, _)| k.starts_with("geo_restriction")), "{ps:?}");
}

#[test]
fn forwarding_the_viewer_country_needs_the_database() {
    let text = SITE.replace(
        "target_origin = \"a\"",
        "target_origin = \"a\"\nheaders = [\"CloudFront-Viewer-Country\"]",
    );
    let ps = problems(&text);
    assert!(
        has(&ps, "default_cache_behavior.headers", "[geo] database"),
        "{ps:?}"
    );
}

#[test]
fn waf_rule_problems_name_their_key() {
    let text = format!(
        r#"[waf]
trusted_proxies = ["10.0.0.0/33"]
[[waf.rules]]
name = "a"
priority = 1
kind = "ip_set"
action = "count"
addresses = ["nope"]
[[waf.rules]]
name = "a"
priority = 1
kind = "rate_based"
action = "allow"
limit = 5
evaluation_window_sec = 30
[[waf.rules]]
name = "b c"
priority = 2
kind = "rate_based"
action = "count"
limit = 100
custom_response = 429
{SITE}"#
    );
    let ps = problems(&text);
    for (key, words) in [
        ("waf.trusted_proxies[0]", "CIDR"),
        ("waf.rules[0].action", "allows or blocks"),
        ("waf.rules[0].addresses[0]", "CIDR"),
        ("waf.rules[1].name", "twice"),
        ("waf.rules[1].priority", "another rule"),
        ("waf.rules[1].action", "blocks or counts"),
        ("waf.rules[1].limit", "10 to"),
        ("waf.rules[1].evaluation_window_sec", "60, 120, 300 or 600"),
        ("waf.rules[2].name", "letters"),
        ("waf.rules[2].custom_response", "block"),
    ] {
        assert!(has(&ps, key, words), "{key}: {ps:?}");
    }
    let ps = problems(&format!(
        "[[waf.rules]]\nname = \"x\"\npriority = 1\nkind = \"geo\"\naction = \"block\"\n{SITE}"
    ));
    assert!(ps.iter().any(|(k, _)| k.starts_with("waf.rules")), "{ps:?}");
}

#[test]
fn with_distributions_geo_and_waf_belong_inside_each() {
    let text = r#"
geo_restriction = { restriction_type = "blacklist", locations = ["US"] }
[[distributions]]
name = "a.example"
[[distributions.origins]]
id = "a"
path = "."
[distributions.default_cache_behavior]
target_origin = "a"
[[distributions.waf.rules]]
name = "r"
priority = 0
kind = "rate_based"
action = "block"
limit = 3
"#;
    let ps = problems(text);
    assert!(has(&ps, "geo_restriction", "inside each distribution"), "{ps:?}");
    assert!(has(&ps, "distributions[0].waf.rules[0].limit", "10 to"), "{ps:?}");
    let ok = text
        .replace(
            "geo_restriction = { restriction_type = \"blacklist\", locations = [\"US\"] }",
            "",
        )
        .replace("limit = 3", "limit = 30");
    let c = Config::from_toml_str(&ok).unwrap();
    assert_eq!(c.waf.distribution, "a.example");
    assert_eq!(c.distributions[0].waf.rules[0].limit, 30);
}
