#![allow(clippy::unwrap_used)]
//! `[[distributions]]`: the schema, the checks across distributions, and the key aliases.

use config::{Config, PriceClass, ProblemKind, SslSupportMethod, TlsVersion};

fn problems(text: &str) -> Vec<config::Problem> {
    match Config::from_toml_str(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.problems().to_vec(),
    }
}

const TWO: &str = r#"
[server]
listen = ["127.0.0.1:8080"]

[[distributions]]
name = "www.example.com"
aliases = ["example.com", "*.example.net"]
comment = "the main site"
default_root_object = "index.html"
price_class = "PriceClass_100"
ssl_minimum_protocol_version = "TLSv1.2_2021"
[[distributions.origins]]
id = "site"
path = "."
[distributions.default_cache_behavior]
target_origin = "site"

[[distributions]]
name = "static.example.com"
enabled = false
root_object = ""
[[distributions.origins]]
id = "cdn"
domain_name = "cdn.example.internal"
[distributions.default_cache_behavior]
target_origin = "cdn"
"#;

#[test]
fn two_distributions_load_with_their_own_keys() {
    let c = Config::from_toml_str(TWO).unwrap();
    assert_eq!(c.distributions.len(), 2);
    let (a, b) = (&c.distributions[0], &c.distributions[1]);
    assert_eq!(a.name, "www.example.com");
    assert_eq!(
        a.names().collect::<Vec<_>>(),
        ["www.example.com", "example.com", "*.example.net"]
    );
    assert!(a.enabled && !b.enabled);
    assert_eq!(a.price_class, Some(PriceClass::PriceClass100));
    let p = a.ssl_minimum_protocol_version.as_ref().unwrap();
    assert_eq!((p.name.as_str(), p.version), ("TLSv1.2_2021", TlsVersion::Tls12));
    assert_eq!(a.ssl_support_method, SslSupportMethod::SniOnly);
    assert_eq!(b.default_root_object, "", "root_object is an alias");
    assert_eq!(
        b.origin("cdn").unwrap().domain_name.as_deref(),
        Some("cdn.example.internal")
    );
    assert!(!a.implicit && !b.implicit);
    assert!(c.single_distribution().unwrap_err().contains("2 distributions"));
}

#[test]
fn a_single_distribution_file_is_one_implicit_distribution() {
    let c = Config::from_toml_str(
        "[[origins]]\nid = \"a\"\npath = \".\"\n[default_cache_behavior]\ntarget_origin = \"a\"\n",
    )
    .unwrap();
    assert_eq!(c.distributions.len(), 1);
    let d = c.single_distribution().unwrap();
    assert!(d.implicit);
    assert_eq!(d.name, config::IMPLICIT_NAME);
    assert_eq!(d.origins[0].id, "a");
    assert_eq!(d.default_cache_behavior.target_origin, "a");
}

#[test]
fn one_explicit_distribution_is_also_the_top_level() {
    let text = r#"
[[distributions]]
name = "www.example.com"
ssl_minimum_protocol_version = "TLSv1.3"
ssl_certificate = { cert = "Cargo.toml", key = "Cargo.toml" }
[[distributions.origins]]
id = "site"
path = "."
[distributions.default_cache_behavior]
target_origin = "site"
default_ttl = 60
"#;
    let c = Config::from_toml_str(text).unwrap();
    assert_eq!(c.origins[0].id, "site");
    assert_eq!(c.default_cache_behavior.default_ttl, 60);
    assert_eq!(c.tls.certificates[0].cert, "Cargo.toml");
    assert_eq!(c.tls.minimum_protocol_version, TlsVersion::Tls13);
    assert_eq!(c.single_distribution().unwrap().name, "www.example.com");
}

#[test]
fn problems_across_distributions_are_all_reported_with_their_lines() {
    let text = r#"
[[distributions]]
name = "www.example.com"
aliases = ["*.example.net", "shop.example.com"]
[[distributions.origins]]
id = "site"
path = "."
[distributions.default_cache_behavior]
target_origin = "site"

[[distributions]]
name = "WWW.example.com"
aliases = ["*.EXAMPLE.net", "bad_name.example.com", "www.*.com"]
[[distributions.origins]]
id = "api"
domain_name = "api.internal"
[distributions.default_cache_behavior]
target_origin = "site"
[[distributions.behaviors]]
path_pattern = "/img/*"
target_origin = "nowhere"

[[distributions]]
name = "*.example.org"
[[distributions.origins]]
id = "x"
domain_name = "x.internal"
[distributions.default_cache_behavior]
target_origin = "x"
"#;
    let p = problems(text);
    let at = |key: &str| {
        p.iter()
            .find(|p| p.key == key)
            .unwrap_or_else(|| panic!("no problem at {key} in {p:#?}"))
    };
    let name = at("distributions[1].name");
    assert_eq!((name.line, name.column), (12, 1), "{name:?}");
    assert!(
        name.message.contains("already claimed by distributions[0].name"),
        "{name:?}"
    );
    let wild = at("distributions[1].aliases[0]");
    assert!(
        wild.message.contains("overlaps distributions[0].aliases[0]"),
        "{wild:?}"
    );
    assert_eq!(wild.line, 13);
    assert!(at("distributions[1].aliases[1]")
        .message
        .contains("not a domain name"));
    assert!(at("distributions[1].aliases[2]").message.contains("leading"));
    let target = at("distributions[1].default_cache_behavior.target_origin");
    assert!(target.message.contains("no origin has id \"site\""), "{target:?}");
    assert_eq!(target.line, 18);
    let behavior = at("distributions[1].behaviors[0].target_origin");
    assert_eq!(behavior.line, 21);
    assert!(at("distributions[2].name")
        .message
        .contains("wildcards in aliases"));
    assert!(p.iter().all(|p| p.kind == ProblemKind::Schema), "{p:#?}");
    assert_eq!(p.len(), 7, "{p:#?}");
}

#[test]
fn top_level_distribution_keys_are_refused_beside_distributions() {
    let text = r#"
[[origins]]
id = "a"
path = "."
[[distributions]]
name = "a.example"
[[distributions.origins]]
id = "a"
path = "."
[distributions.default_cache_behavior]
target_origin = "a"
"#;
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!((p[0].key.as_str(), p[0].line), ("origins", 2));
    assert!(p[0].message.contains("inside each distribution"));
}

#[test]
fn vip_listeners_price_class_and_policies_are_checked() {
    let text = r#"
[server]
listen = ["127.0.0.1:8080"]
[[distributions]]
name = "a.example"
listen = ["127.0.0.1:8081"]
ssl_minimum_protocol_version = "TLSv1"
price_class = "PriceClass_300"
[[distributions.origins]]
id = "a"
path = "."
[distributions.default_cache_behavior]
target_origin = "a"
[[distributions]]
name = "b.example"
ssl_support_method = "vip"
listen = ["127.0.0.1:8080"]
[[distributions.origins]]
id = "a"
path = "."
[distributions.default_cache_behavior]
target_origin = "a"
"#;
    let p = problems(text);
    let msg = |key: &str| {
        p.iter()
            .find(|p| p.key == key)
            .map(|p| p.message.clone())
            .unwrap_or_else(|| panic!("no problem at {key} in {p:#?}"))
    };
    assert!(msg("distributions[0].ssl_minimum_protocol_version").contains("TLSv1.2_2021"));
    assert!(msg("distributions[0].price_class").contains("PriceClass_100"));
    assert!(msg("distributions[0].listen").contains("vip"));
    assert!(msg("distributions[1].listen[0]").contains("already used by server.listen[0]"));
}

#[test]
fn seed_spellings_are_aliases() {
    let text = r#"
root_object = "home.html"
[[origins]]
id = "a"
path = "."
[default_cache_behavior]
target_origin = "a"
forward_query_string = "all"
forward_headers = ["Accept"]
forward_cookies = ["session"]
[[error_responses]]
error_code = 404
min_ttl = 5
"#;
    let c = Config::from_toml_str(text).unwrap();
    assert_eq!(c.default_root_object, "home.html");
    let b = &c.default_cache_behavior;
    assert_eq!(b.query_strings, config::KeyPart::All);
    assert_eq!(b.headers, config::KeyPart::List(vec!["Accept".into()]));
    assert_eq!(b.cookies, config::KeyPart::List(vec!["session".into()]));
    assert_eq!(c.error_responses[0].error_caching_min_ttl, 5);
    // Both spellings at once is an error, not a silent choice.
    let p = problems(&text.replace("min_ttl = 5", "min_ttl = 5\nerror_caching_min_ttl = 6"));
    assert!(p.iter().any(|p| p.message.contains("duplicate")), "{p:#?}");
}

#[test]
fn machine_problems_are_told_apart_and_skipped_by_schema_only() {
    let text = r#"
[[distributions]]
name = "a.example"
ssl_certificate = { cert = "/no/such/cert.pem", key = "/no/such/key.pem" }
logging = { path = "/no/such/dir/access.log" }
[[distributions.origins]]
id = "a"
path = "/no/such/root"
[distributions.default_cache_behavior]
target_origin = "b"
"#;
    let e = Config::from_toml_str(text).unwrap_err();
    let kinds: Vec<_> = e.problems().iter().map(|p| (p.key.as_str(), p.kind)).collect();
    assert!(
        kinds.contains(&("distributions[0].origins[0].path", ProblemKind::Machine)),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("distributions[0].ssl_certificate.cert", ProblemKind::Machine)));
    assert!(kinds.contains(&("distributions[0].logging.path", ProblemKind::Machine)));
    assert!(kinds.contains(&(
        "distributions[0].default_cache_behavior.target_origin",
        ProblemKind::Schema
    )));
    let shown = e.to_string();
    assert!(
        shown.contains("schema errors") && shown.contains("on this machine"),
        "{shown}"
    );
    let e = Config::from_toml_str_schema_only(text).unwrap_err();
    assert_eq!(e.problems().len(), 1, "{e}");
    let ok = text.replace("target_origin = \"b\"", "target_origin = \"a\"");
    Config::from_toml_str_schema_only(&ok).unwrap();
}

#[test]
fn the_example_has_two_distributions_and_passes_the_schema() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/example.toml")).unwrap();
    let c = Config::from_toml_str_schema_only(&text).unwrap();
    assert_eq!(c.distributions.len(), 2);
}
