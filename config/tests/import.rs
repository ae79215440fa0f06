#![allow(clippy::unwrap_used)]
//! `slabfront import`'s mapping: five DistributionConfig documents shaped as AWS's API
//! reference shapes them, each imported and validated; what has no counterpart is a comment
//! and a warning, never silently gone.

use config::cloudfront::{from_json, Imported, Options};
use config::{Config, KeyPart, OriginProtocol, ViewerProtocolPolicy};

fn import(name: &str) -> (Imported, Config) {
    let path = format!("{}/tests/fixtures/cloudfront/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let imported = from_json(&text, &Options::default()).unwrap();
    let cfg = Config::from_toml_str_schema_only(&imported.toml)
        .unwrap_or_else(|e| panic!("{name}: {e}\n{}", imported.toml));
    (imported, cfg)
}

fn warned(i: &Imported, needle: &str) -> bool {
    i.warnings.iter().any(|w| w.contains(needle))
}

fn list(v: &[&str]) -> KeyPart {
    KeyPart::List(v.iter().map(|s| s.to_string()).collect())
}

#[test]
fn static_site_on_s3() {
    let (i, c) = import("static-site-s3.json");
    let d = &c.distributions[0];
    assert_eq!(d.name, "www.example.com");
    assert_eq!(d.aliases, ["example.com"]);
    assert_eq!(d.default_root_object, "index.html");
    assert_eq!(d.comment, "www.example.com single-page app");
    assert_eq!(d.price_class.unwrap().as_str(), "PriceClass_100");
    assert_eq!(
        d.ssl_minimum_protocol_version.as_ref().unwrap().name,
        "TLSv1.2_2021"
    );
    assert_eq!(
        d.ssl_certificate.as_ref().unwrap().cert,
        "/etc/slabfront/tls/www.example.com.pem"
    );
    assert_eq!(c.server.listen_tls, ["0.0.0.0:443"]);
    // The bucket behind origin access control: an S3 origin whose requests are signed.
    let o = &d.origins[0];
    assert_eq!(o.s3_bucket.as_deref(), Some("example-site-bucket"));
    assert_eq!(o.s3_region, "eu-west-1");
    assert_eq!(o.signing_behavior, config::SigningBehavior::Always);
    let b = &d.default_cache_behavior;
    assert_eq!(
        (b.min_ttl, b.default_ttl, b.max_ttl),
        (1, 86400, 31_536_000),
        "CachingOptimized"
    );
    assert_eq!(
        (&b.query_strings, &b.headers, &b.cookies),
        (&KeyPart::None, &KeyPart::None, &KeyPart::None)
    );
    assert_eq!(b.viewer_protocol_policy, ViewerProtocolPolicy::RedirectToHttps);
    assert!(b.compress, "Compress = true is imported as compress = true");
    assert_eq!(d.error_responses.len(), 2);
    assert_eq!(d.error_responses[1].response_code, Some(200));
    assert_eq!(
        d.error_responses[1].response_page_path.as_deref(),
        Some("/index.html")
    );
    let log = d.logging.as_ref().unwrap();
    assert_eq!(
        (log.path.as_str(), log.include_cookies),
        ("/var/log/slabfront/www.example.com.log", false)
    );
    assert!(
        i.toml
            .contains("s3_bucket = \"example-site-bucket\"\ns3_region = \"eu-west-1\"\n"),
        "{}",
        i.toml
    );
    assert_eq!(o.connection_attempts, 3);
    for needle in ["ACM certificate", "IsIPV6Enabled", "HttpVersion"] {
        assert!(warned(&i, needle), "no warning about {needle}: {:#?}", i.warnings);
    }
}

#[test]
fn api_behind_a_load_balancer_with_caching_disabled() {
    let (i, c) = import("api-alb-caching-disabled.json");
    let d = &c.distributions[0];
    assert_eq!(d.name, "api.example.com");
    assert!(d.aliases.is_empty());
    assert_eq!(d.default_root_object, "");
    let o = &d.origins[0];
    assert_eq!((o.protocol, o.https_port), (OriginProtocol::HttpsOnly, 443));
    assert_eq!(
        (o.connect_timeout.0.as_secs(), o.read_timeout.0.as_secs()),
        (10, 60)
    );
    let b = &d.default_cache_behavior;
    assert_eq!(
        (b.min_ttl, b.default_ttl, b.max_ttl),
        (0, 0, 0),
        "CachingDisabled"
    );
    assert_eq!(b.allowed_methods.len(), 7);
    assert_eq!(b.viewer_protocol_policy, ViewerProtocolPolicy::HttpsOnly);
    let o = &d.origins[0];
    assert!(
        o.custom_headers.contains_key("X-Origin-Verify"),
        "custom header mapped: {:?}",
        o.custom_headers
    );
    assert!(o.origin_keepalive_timeout.0.as_secs() > 0);
    for needle in ["WebACLId", "OriginRequestPolicyId"] {
        assert!(warned(&i, needle), "no warning about {needle}: {:#?}", i.warnings);
    }
    assert!(i.toml.contains("(AllViewerExceptHostHeader)"), "{}", i.toml);
}

#[test]
fn multi_behavior_site() {
    let (i, c) = import("multi-behavior-site.json");
    let d = &c.distributions[0];
    assert_eq!(
        d.names().collect::<Vec<_>>(),
        ["shop.example.com", "*.shop.example.com"]
    );
    assert_eq!(d.origins.len(), 2);
    assert_eq!(d.origins[1].http_port, 8080);
    assert_eq!(d.origins[1].protocol, OriginProtocol::MatchViewer);
    assert_eq!(d.origins[1].connect_timeout.0.as_secs(), 5);
    let b = &d.default_cache_behavior;
    assert_eq!((b.min_ttl, b.default_ttl), (0, 0), "UseOriginCacheControlHeaders");
    assert_eq!(b.cookies, KeyPart::All);
    assert_eq!(
        b.headers,
        list(&[
            "Host",
            "Origin",
            "X-HTTP-Method-Override",
            "X-HTTP-Method",
            "X-Method-Override"
        ])
    );
    assert_eq!(b.cached_methods.len(), 3);
    let pats: Vec<_> = d
        .behaviors
        .iter()
        .map(|b| (b.path_pattern.as_str(), b.target_origin.as_str()))
        .collect();
    assert_eq!(
        pats,
        [
            ("/static/*", "assets-bucket"),
            ("api/*", "app"),
            ("/search*", "app")
        ]
    );
    assert_eq!(
        d.behaviors[0].default_ttl, 86400,
        "CachingOptimizedForUncompressedObjects"
    );
    assert_eq!(d.behaviors[1].max_ttl, 0, "CachingDisabled");
    assert_eq!(
        d.behaviors[2].query_strings,
        KeyPart::All,
        "UseOriginCacheControlHeaders-QueryStrings"
    );
    assert_eq!(d.error_responses[0].error_caching_min_ttl, 30);
    assert!(d.logging.as_ref().unwrap().include_cookies);
    assert_eq!(
        d.ssl_minimum_protocol_version.as_ref().unwrap().name,
        "TLSv1.2_2019"
    );
    for needle in [
        "Lambda@Edge",
        "CloudFront Functions",
        "GeoRestriction",
        "IAM certificate",
    ] {
        assert!(warned(&i, needle), "no warning about {needle}: {:#?}", i.warnings);
    }
    // Restrictions.GeoRestriction becomes geo_restriction, with the database it needs.
    assert_eq!(
        d.geo_restriction.restriction_type,
        config::geo::RestrictionType::Blacklist
    );
    assert!(!d.geo_restriction.locations.is_empty());
    assert!(i.toml.contains("[geo]\ndatabase = "), "{}", i.toml);
    // The managed SecurityHeadersPolicy, by its published id.
    assert_eq!(
        b.response_headers_policy.as_deref(),
        Some("SecurityHeadersPolicy")
    );
    assert!(i.toml.contains("origin_path = \"/prod\""));
    assert!(i.toml.contains("auth-at-edge"));
}

#[test]
fn origin_groups() {
    let (i, c) = import("origin-groups.json");
    let d = &c.distributions[0];
    // The group is imported as one, and behaviors that targeted it still do.
    assert_eq!(d.default_cache_behavior.target_origin, "downloads-group");
    let g = &d.origin_groups[0];
    assert_eq!(g.id, "downloads-group");
    assert_eq!(g.members, ["downloads-primary", "downloads-replica"]);
    assert_eq!(g.failover_status_codes, [500, 502, 503, 504]);
    assert_eq!(d.origins[0].read_timeout.0.as_secs(), 30);
    assert!(
        i.toml.contains(
            "[[distributions.origin_groups]]\nid = \"downloads-group\"\nmembers = [\"downloads-primary\", \"downloads-replica\"]\n\
             failover_status_codes = [500, 502, 503, 504]"
        ),
        "{}",
        i.toml
    );
    assert!(!warned(&i, "OriginGroups[0] (downloads-group)"));
    assert!(warned(&i, "OriginShield"));
    assert!(i.toml.contains("s3_region = \"us-west-2\""));
}

#[test]
fn legacy_forwarded_values() {
    let (i, c) = import("legacy-forwarded-values.json");
    let d = &c.distributions[0];
    assert_eq!(d.default_root_object, "index.php");
    assert_eq!(d.origins[0].protocol, OriginProtocol::HttpOnly);
    let b = &d.default_cache_behavior;
    assert_eq!((b.min_ttl, b.default_ttl, b.max_ttl), (0, 300, 31_536_000));
    assert_eq!(b.query_strings, KeyPart::All);
    assert_eq!(b.cookies, list(&["PHPSESSID", "wordpress_logged_in_*"]));
    assert_eq!(b.headers, list(&["Host", "CloudFront-Is-Mobile-Viewer"]));
    let w = &d.behaviors[0];
    assert_eq!(w.path_pattern, "wp-content/*");
    assert_eq!(w.query_strings, list(&["ver"]));
    assert_eq!((w.min_ttl, w.cookies.clone()), (3600, KeyPart::None));
    let e = &d.error_responses[0];
    assert_eq!(
        (e.error_code, e.response_code, e.error_caching_min_ttl),
        (502, None, 0)
    );
    // TLSv1 is raised to what slabfront speaks, and said so.
    assert_eq!(
        d.ssl_minimum_protocol_version.as_ref().unwrap().name,
        "TLSv1.2_2021"
    );
    assert!(c.server.listen_tls.is_empty());
    for needle in [
        "MinimumProtocolVersion",
        "CloudFrontDefaultCertificate",
        "SSLSupportMethod",
        "OriginSslProtocols",
    ] {
        assert!(warned(&i, needle), "no warning about {needle}: {:#?}", i.warnings);
    }
}

#[test]
fn every_warning_has_its_comment() {
    for f in [
        "static-site-s3.json",
        "api-alb-caching-disabled.json",
        "multi-behavior-site.json",
        "origin-groups.json",
        "legacy-forwarded-values.json",
    ] {
        let (i, _) = import(f);
        let comments = i.toml.matches("# not imported").count();
        let certs = i
            .warnings
            .iter()
            .filter(|w| w.contains("cannot be exported"))
            .count();
        assert_eq!(
            comments + certs,
            i.warnings.len(),
            "{f}: {:#?}\n{}",
            i.warnings,
            i.toml
        );
    }
}

#[test]
fn unknown_members_are_reported_not_dropped() {
    let text = r#"{"CallerReference": "x", "Aliases": {"Quantity": 1, "Items": ["a.example"]},
      "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "o.example",
        "ResponseCompletionTimeout": 90,
        "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only",
          "IpAddressType": "dualstack"}}]},
      "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
        "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
      "AnycastIpListId": "aip-1", "Comment": "", "Enabled": true}"#;
    let i = from_json(text, &Options::default()).unwrap();
    Config::from_toml_str_schema_only(&i.toml).unwrap();
    for needle in ["ResponseCompletionTimeout", "IpAddressType", "AnycastIpListId"] {
        assert!(warned(&i, needle), "{needle}: {:#?}", i.warnings);
        assert!(i.toml.contains(needle));
    }
}

#[test]
fn bad_json_is_located() {
    let e = from_json("{\n  \"Origins\": [1,\n", &Options::default()).unwrap_err();
    assert!(e.to_string().starts_with("line 3"), "{e}");
    let e = from_json("{\"Origins\": {\"Quantity\": 0}}", &Options::default()).unwrap_err();
    assert!(e.to_string().contains("DefaultCacheBehavior"), "{e}");
}

#[test]
fn a_custom_cache_policy_is_named_and_the_name_can_be_given() {
    let text = r#"{"Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "o.example",
        "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only"}}]},
      "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
        "CachePolicyId": "0e1f2a3b-custom"}, "Enabled": false}"#;
    let i = from_json(
        text,
        &Options {
            name: Some("cdn.example.net".into()),
        },
    )
    .unwrap();
    let c = Config::from_toml_str_schema_only(&i.toml).unwrap();
    assert_eq!(c.distributions[0].name, "cdn.example.net");
    assert!(!c.distributions[0].enabled);
    assert!(warned(&i, "custom cache policy"));
    let i = from_json(text, &Options::default()).unwrap();
    assert!(warned(&i, "--name"), "{:#?}", i.warnings);
    Config::from_toml_str_schema_only(&i.toml).unwrap();
}

#[test]
fn the_three_forms_the_aws_cli_prints_give_one_result() {
    let path = format!(
        "{}/tests/fixtures/cloudfront/origin-groups.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let wrapped: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let bare = wrapped["DistributionConfig"].clone();
    let get_distribution = serde_json::json!({
        "ETag": "E3UN6WX5RRO2AG",
        "Distribution": {"Id": "E1ABCDEF", "DistributionConfig": bare.clone()}
    });
    let a = from_json(&wrapped.to_string(), &Options::default()).unwrap();
    let b = from_json(&bare.to_string(), &Options::default()).unwrap();
    let c = from_json(&get_distribution.to_string(), &Options::default()).unwrap();
    assert_eq!(a.toml, b.toml);
    assert_eq!(a.toml, c.toml);
    assert_eq!(a.warnings, c.warnings);
}

#[test]
fn trusted_key_groups_response_headers_policies_and_web_acls() {
    let path = format!(
        "{}/tests/fixtures/cloudfront/static-site-s3.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let dc = v
        .get_mut("DistributionConfig")
        .unwrap_or_else(|| panic!("fixture shape"));
    dc["WebACLId"] = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/x/1".into();
    let b = &mut dc["DefaultCacheBehavior"];
    b["TrustedKeyGroups"] = serde_json::json!({"Enabled": true, "Quantity": 1, "Items": ["kg-1"]});
    b["ResponseHeadersPolicyId"] = "5cc3b908-e619-4b99-88e5-2cf7f45965bd".into();
    let i = from_json(&v.to_string(), &Options::default()).unwrap();
    let c = Config::from_toml_str_schema_only(&i.toml).unwrap_or_else(|e| panic!("{e}\n{}", i.toml));
    let b = &c.distributions[0].default_cache_behavior;
    assert_eq!(b.trusted_key_groups, ["kg-1"]);
    assert_eq!(b.response_headers_policy.as_deref(), Some("CORS-With-Preflight"));
    assert_eq!(c.key_groups[0].id, "kg-1");
    assert_eq!(
        c.key_groups[0].public_keys[0].pem_file.as_deref(),
        Some("/etc/slabfront/key-groups/kg-1.pem")
    );
    assert!(
        warned(&i, "key group kg-1's public keys must be configured"),
        "{:#?}",
        i.warnings
    );
    assert!(warned(&i, "WebACLId"));
    assert!(
        i.toml.contains("rules are configured in slabfront's own keys"),
        "{}",
        i.toml
    );
    // On this machine the placeholder key is missing: a machine problem naming the key.
    let e = Config::from_toml_str(&i.toml).unwrap_err().to_string();
    assert!(e.contains("key_groups[0].public_keys[0].pem_file"), "{e}");

    // A custom policy: its settings are elsewhere, so a warning.
    v["DistributionConfig"]["DefaultCacheBehavior"]["ResponseHeadersPolicyId"] = "0000-custom".into();
    let i = from_json(&v.to_string(), &Options::default()).unwrap();
    assert!(warned(&i, "ResponseHeadersPolicyId"), "{:#?}", i.warnings);
}
