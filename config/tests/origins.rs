#![allow(clippy::unwrap_used)]
//! S3 origins, origin groups and per-origin settings: defaults, what an S3 origin becomes,
//! and every bad value reported at its line and column.
use config::{AddressingStyle, Config, OriginProtocol, SigningBehavior};

fn problems(text: &str) -> Vec<(String, usize, usize, String)> {
    match Config::from_toml_str(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e
            .problems()
            .iter()
            .map(|p| (p.key.clone(), p.line, p.column, p.message.clone()))
            .collect(),
    }
}

#[test]
fn an_s3_origin_becomes_a_custom_origin_to_its_endpoint() {
    let c = Config::from_toml_str(
        r#"
[[origins]]
id = "bucket"
s3_bucket = "my-bucket"
s3_region = "eu-west-1"
origin_path = "/prod"

[[origins]]
id = "local"
s3_bucket = "media"
s3_endpoint = "http://127.0.0.1:9000"
s3_addressing_style = "path"
signing_behavior = "no-override"

[default_cache_behavior]
target_origin = "bucket"
"#,
    )
    .unwrap();
    let (a, b) = (&c.origins[0], &c.origins[1]);
    assert_eq!(a.domain_name.as_deref(), Some("s3.eu-west-1.amazonaws.com"));
    assert_eq!(
        a.host_header.as_deref(),
        Some("my-bucket.s3.eu-west-1.amazonaws.com")
    );
    assert_eq!((a.protocol, a.https_port), (OriginProtocol::HttpsOnly, 443));
    assert_eq!(a.s3_addressing_style, AddressingStyle::VirtualHost);
    assert_eq!(a.signing_behavior, SigningBehavior::Always);
    assert_eq!(a.request_prefix(), "/prod");
    assert_eq!(b.domain_name.as_deref(), Some("127.0.0.1"));
    assert_eq!(b.host_header.as_deref(), Some("127.0.0.1:9000"));
    assert_eq!((b.protocol, b.http_port), (OriginProtocol::HttpOnly, 9000));
    assert_eq!(b.request_prefix(), "/media");
    assert_eq!(b.signing_behavior, SigningBehavior::NoOverride);
    // CloudFront's defaults.
    assert_eq!(a.origin_keepalive_timeout.0.as_secs(), 5);
    assert_eq!(a.connection_attempts, 3);
    assert_eq!(a.connect_timeout.0.as_secs(), 10);
    assert_eq!(a.read_timeout.0.as_secs(), 30);
    assert_eq!(a.ssl_protocols, vec!["TLSv1.2", "TLSv1.3"]);
}

#[test]
fn cloudfront_timeout_names_are_accepted() {
    let c = Config::from_toml_str(
        r#"
[[origins]]
id = "o"
domain_name = "example.com"
connection_timeout = "2s"
response_timeout = "7s"
connection_attempts = 1
custom_headers = { X-Origin-Secret = "s3cr3t" }
health_check = { path = "/health", interval = "5s", timeout = "1s" }
[default_cache_behavior]
target_origin = "o"
"#,
    )
    .unwrap();
    let o = &c.origins[0];
    assert_eq!(
        (o.connect_timeout.0.as_secs(), o.read_timeout.0.as_secs()),
        (2, 7)
    );
    assert_eq!(o.custom_headers["X-Origin-Secret"], "s3cr3t");
    assert_eq!(o.health_check.as_ref().unwrap().interval.0.as_secs(), 5);
}

#[test]
fn bad_origin_settings_are_each_reported_at_their_key() {
    let text = r#"
[[origins]]
id = "b"
s3_bucket = "Bad_Bucket"
s3_region = "EU"
s3_endpoint = "ftp://x"
host_header = "x"
origin_path = "/trailing/"
ssl_protocols = ["TLSv1.2", "TLSv1.1", "SSLv3", "TLSv1.2"]
connection_attempts = 4
origin_keepalive_timeout = "90s"
custom_headers = { Host = "x", "bad name" = "y", X-Amz-Date = "z", X-Ok = "a\u0001b" }
health_check = { path = "health", interval = "500ms", timeout = "1s" }

[[origins]]
id = "c"
domain_name = "example.com"
credentials_file = "/nonexistent"

[default_cache_behavior]
target_origin = "b"
headers = ["Host"]
"#;
    let p = problems(text);
    let got: Vec<(&str, usize, usize)> = p.iter().map(|(k, l, c, _)| (k.as_str(), *l, *c)).collect();
    for want in [
        ("origins[0].s3_bucket", 4, 1),
        ("origins[0].s3_region", 5, 1),
        ("origins[0].s3_endpoint", 6, 1),
        ("origins[0].host_header", 7, 1),
        ("origins[0].origin_path", 8, 1),
        ("origins[0].ssl_protocols[1]", 9, 29),
        ("origins[0].ssl_protocols[2]", 9, 40),
        ("origins[0].ssl_protocols[3]", 9, 49),
        ("origins[0].connection_attempts", 10, 1),
        ("origins[0].origin_keepalive_timeout", 11, 1),
        ("origins[0].custom_headers.Host", 12, 20),
        ("origins[0].custom_headers.bad name", 12, 32),
        ("origins[0].custom_headers.X-Amz-Date", 12, 50),
        ("origins[0].custom_headers.X-Ok", 12, 68),
        ("origins[0].health_check.path", 13, 18),
        ("origins[0].health_check.interval", 13, 35),
        ("origins[1].credentials_file", 18, 1),
        ("default_cache_behavior.headers", 22, 1),
    ] {
        assert!(got.contains(&want), "missing {want:?} in {p:#?}");
    }
    let msg = |k: &str| p.iter().find(|x| x.0 == k).unwrap().3.clone();
    assert!(msg("origins[0].ssl_protocols[1]").contains("TLS 1.2 and 1.3 only"));
    assert!(msg("default_cache_behavior.headers").contains("do not forward Host"));
}

#[test]
fn origin_groups_are_checked_and_targetable() {
    let good = r#"
[[origins]]
id = "a"
domain_name = "a.example"
[[origins]]
id = "b"
s3_bucket = "bucket-b"
[[origin_groups]]
id = "g"
members = ["a", "b"]
failover_status_codes = [500, 503, 404]
[default_cache_behavior]
target_origin = "g"
"#;
    let c = Config::from_toml_str(good).unwrap();
    assert_eq!(c.origin_groups[0].members, vec!["a", "b"]);
    let bad = r#"
[[origins]]
id = "a"
domain_name = "a.example"
[[origins]]
id = "d"
path = "."
[[origin_groups]]
id = "a"
members = ["a", "d", "x"]
failover_status_codes = [500, 418, 500]
[[origin_groups]]
id = "h"
members = []
failover_status_codes = []
[default_cache_behavior]
target_origin = "nowhere"
"#;
    let p = problems(bad);
    let got: Vec<(&str, usize)> = p.iter().map(|(k, l, _, _)| (k.as_str(), *l)).collect();
    for want in [
        ("origin_groups[0].id", 9),
        ("origin_groups[0].members", 10),
        ("origin_groups[0].members[1]", 10),
        ("origin_groups[0].members[2]", 10),
        ("origin_groups[0].failover_status_codes[1]", 11),
        ("origin_groups[0].failover_status_codes[2]", 11),
        ("origin_groups[1].members", 14),
        ("origin_groups[1].failover_status_codes", 15),
        ("default_cache_behavior.target_origin", 17),
    ] {
        assert!(got.contains(&want), "missing {want:?} in {p:#?}");
    }
}
