#![allow(clippy::unwrap_used)]
use config::{Config, Driver};

fn problems(text: &str) -> Vec<config::Problem> {
    match Config::from_toml_str(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.problems().to_vec(),
    }
}

const MINIMAL: &str = r#"
[[origins]]
id = "a"
path = "."
[default_cache_behavior]
target_origin = "a"
"#;

#[test]
fn minimal_config_gets_defaults() {
    let c = Config::from_toml_str(MINIMAL).unwrap();
    assert_eq!(c.server.listen, vec!["127.0.0.1:8080"]);
    assert_eq!(c.server.workers, 0);
    assert_eq!(c.server.driver, Driver::Auto);
    assert_eq!(c.default_root_object, "index.html");
    assert_eq!(c.server.keepalive_timeout.0.as_secs(), 60);
}

#[test]
fn every_unknown_key_is_reported_with_its_line() {
    let text = r#"
[server]
listen = ["127.0.0.1:8080"]
colour = "blue"
workers = 2
flavour = 3

[[origins]]
id = "a"
path = "."
bogus = true

[default_cache_behavior]
target_origin = "a"
"#;
    let p = problems(text);
    let keys: Vec<_> = p.iter().map(|p| (p.key.as_str(), p.line)).collect();
    assert_eq!(
        keys,
        vec![
            ("server.colour", 4),
            ("server.flavour", 6),
            ("origins[0].bogus", 11)
        ],
        "{p:#?}"
    );
    assert!(p[0].message.contains("unknown field"), "{}", p[0].message);
}

#[test]
fn type_errors_and_semantic_errors_are_all_reported() {
    let text = r#"
[server]
listen = ["not-an-address", "127.0.0.1:80"]
keepalive_timeout = "forever"
max_headers = "many"

[[origins]]
id = "a"
path = "/definitely/not/here"

[[origins]]
id = "a"
domain_name = "example.com"

[default_cache_behavior]
target_origin = "nowhere"

[[behaviors]]
path_pattern = "/img/*"
target_origin = "missing"
"#;
    let p = problems(text);
    let rendered: Vec<String> = p.iter().map(|p| p.to_string()).collect();
    let has = |key: &str, line: usize| p.iter().any(|p| p.key == key && p.line == line);
    assert!(has("server.keepalive_timeout", 4), "{rendered:#?}");
    assert!(has("server.max_headers", 5), "{rendered:#?}");
    assert!(has("server.listen[0]", 3), "{rendered:#?}");
    assert!(has("origins[0].path", 9), "{rendered:#?}");
    assert!(has("origins[1].id", 12), "{rendered:#?}");
    assert!(has("default_cache_behavior.target_origin", 16), "{rendered:#?}");
    assert!(has("behaviors[0].target_origin", 20), "{rendered:#?}");
    assert_eq!(p.len(), 7, "{rendered:#?}");
}

#[test]
fn syntax_error_is_located() {
    let p = problems("[server]\nlisten = [\"a\"\nworkers = 1\n");
    assert_eq!(p.len(), 1);
    assert!(p[0].line >= 2, "{:?}", p[0]);
}

#[test]
fn missing_default_behavior_is_reported() {
    let p = problems("[[origins]]\nid = \"a\"\npath = \".\"\n");
    assert!(
        p.iter().any(|p| p.message.contains("default_cache_behavior")),
        "{p:?}"
    );
}

#[test]
fn origin_needs_exactly_one_kind() {
    let text = r#"
[[origins]]
id = "a"
path = "."
domain_name = "example.com"
[[origins]]
id = "b"
[default_cache_behavior]
target_origin = "a"
"#;
    let p = problems(text);
    assert!(p.iter().any(|p| p.key == "origins[0].domain_name"), "{p:?}");
    assert!(p.iter().any(|p| p.key == "origins[1]" && p.line == 6), "{p:?}");
}

#[test]
fn sizes_and_durations_parse() {
    let text = format!(
        "{MINIMAL}\n[cache]\npath = \"/tmp/x\"\nsize = \"1GiB\"\n[server]\nheader_timeout = \"1500ms\"\nmax_body_bytes = 1024\n"
    );
    let c = Config::from_toml_str(&text).unwrap();
    assert_eq!(c.cache.size.0, 1 << 30);
    assert_eq!(c.server.header_timeout.0.as_millis(), 1500);
    assert_eq!(c.server.max_body_bytes.0, 1024);
}

#[test]
fn example_config_is_valid() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/example.toml")).unwrap();
    // The example points at /srv/www; validate it with that path swapped for one that exists.
    let dir = env!("CARGO_MANIFEST_DIR");
    let mut text = text
        .replace("/srv/www", dir)
        .replace("/srv/static", dir)
        .replace("/var/log/slabfront/", &format!("{dir}/"));
    for f in ["edge.pem", "edge.key", "static.pem", "static.key"] {
        text = text.replace(&format!("/etc/slabfront/tls/{f}"), &format!("{dir}/Cargo.toml"));
    }
    let c = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.tls.certificates.len(), 1);
    assert_eq!(c.server.listen_tls.len(), 1);
    assert!(c.admin.is_some());
    let (www, stat) = (&c.distributions[0], &c.distributions[1]);
    assert_eq!(www.behaviors.len(), 2);
    assert!(www.logging.is_some() && stat.logging.is_some());
    assert_eq!(www.error_responses.len(), 1);
    assert!(www.ssl_certificate.is_some() && stat.ssl_certificate.is_some());
}

#[test]
fn fixtures_are_judged() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut n = 0;
    for f in std::fs::read_dir(dir).unwrap() {
        let path = f.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let r = Config::from_file(&path);
        if name.starts_with("bad-") {
            assert!(r.is_err(), "{name} should be rejected");
        } else {
            assert!(r.is_ok(), "{name}: {}", r.err().unwrap());
        }
        n += 1;
    }
    assert!(n >= 2);
}

#[test]
fn cache_behavior_and_proxy_keys_are_checked_together() {
    let text = r#"
[[origins]]
id = "a"
domain_name = "origin.internal"
connect_timeout = "0s"

[default_cache_behavior]
target_origin = "a"
min_ttl = 100
default_ttl = 50
allowed_methods = ["GET", "POST"]
cached_methods = ["GET", "HEAD", "DELETE"]
query_strings = "some"
headers = ["Accept", "bad header"]

[[behaviors]]
target_origin = "a"

[[error_responses]]
error_code = 200
response_code = 404

[admin]
listen = "0.0.0.0:9901"
"#;
    let p = problems(text);
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    for want in [
        "default_cache_behavior.query_strings",
        "default_cache_behavior.default_ttl",
        "default_cache_behavior.allowed_methods",
        "default_cache_behavior.cached_methods",
        "default_cache_behavior.headers[1]",
        "behaviors[0].path_pattern",
        "origins[0].connect_timeout",
        "error_responses[0].error_code",
        "error_responses[0].response_code",
        "admin.listen",
    ] {
        assert!(keys.contains(&want), "{want} not reported: {p:#?}");
    }
    assert!(p.iter().all(|p| p.line > 0 || p.key.is_empty()), "{p:#?}");
}

#[test]
fn key_policies_parse_words_and_lists() {
    let c = Config::from_toml_str(
        r#"
[[origins]]
id = "a"
domain_name = "o"
[default_cache_behavior]
target_origin = "a"
query_strings = "all"
headers = ["Accept"]
cookies = "none"
allowed_methods = ["GET", "HEAD", "OPTIONS"]
cached_methods = ["GET", "HEAD", "OPTIONS"]
[admin]
listen = "127.0.0.1:9901"
"#,
    )
    .unwrap();
    let b = &c.default_cache_behavior;
    assert_eq!(b.query_strings, config::KeyPart::All);
    assert_eq!(b.headers, config::KeyPart::List(vec!["Accept".into()]));
    assert_eq!(b.cookies, config::KeyPart::None);
    assert_eq!(b.default_ttl, 86400);
    assert_eq!(c.origins[0].keepalive, 32);
}

#[test]
fn cipher_suites_default_to_cloudfronts_order_and_are_checked() {
    use config::CipherSuite as C;
    let c = Config::from_toml_str(MINIMAL).unwrap();
    assert_eq!(c.tls.cipher_suites[0], C::TLS_AES_128_GCM_SHA256);
    assert_eq!(c.tls.cipher_suites.len(), 9);

    let p = problems(&format!(
        "{MINIMAL}[tls]\ncipher_suites = [\"TLS_AES_256_GCM_SHA384\", \"TLS_AES_256_GCM_SHA384\"]\n"
    ));
    assert!(
        p.iter()
            .any(|p| p.key == "tls.cipher_suites[1]" && p.message.contains("twice")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|p| p.key == "tls.cipher_suites" && p.message.contains("no TLS 1.2 suite")),
        "{p:?}"
    );
    let p = problems(&format!(
        "{MINIMAL}[tls]\nminimum_protocol_version = \"TLSv1.3\"\n\
         cipher_suites = [\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]\n"
    ));
    assert!(
        p.iter().any(|p| p.message.contains("at least one TLS 1.3 suite")),
        "{p:?}"
    );
    let p = problems(&format!(
        "{MINIMAL}[tls]\ncipher_suites = [\"TLS_RSA_WITH_RC4_128_MD5\"]\n"
    ));
    assert!(
        p.iter()
            .any(|p| p.key.starts_with("tls.cipher_suites") && p.line > 0),
        "{p:?}"
    );

    let c = Config::from_toml_str(&format!(
        "{MINIMAL}[tls]\nminimum_protocol_version = \"TLSv1.3\"\ncipher_suites = [\"TLS_AES_256_GCM_SHA384\"]\n"
    ))
    .unwrap();
    assert_eq!(c.tls.cipher_suites, vec![C::TLS_AES_256_GCM_SHA384]);
}

#[test]
fn functions_stores_and_associations_are_checked_together() {
    let text = r#"
[[origins]]
id = "a"
path = "."
[[key_value_stores]]
id = "kv"
file = "/nonexistent/kv.json"
[[functions]]
name = "one"
runtime = "cloudfront-js-1.0"
code = "function handler(e) { return e.request; }"
key_value_stores = ["kv"]
[[functions]]
name = "one"
runtime = "cloudfront-js-2.0"
code = "function handler(e) { return e.request; }"
code_file = "x.js"
[[functions]]
name = "bad name!"
runtime = "cloudfront-js-3.0"
[default_cache_behavior]
target_origin = "a"
function_associations = [
  { event_type = "viewer-request", function = "one" },
  { event_type = "viewer-request", function = "missing" },
]
"#;
    let found = problems(text);
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "functions[2].runtime",
        "key_value_stores[0].file",
        "functions[0].key_value_stores",
        "functions[1].name",
        "functions[1].code",
        "default_cache_behavior.function_associations[1].function",
        "default_cache_behavior.function_associations[1].event_type",
    ] {
        assert!(keys.contains(&key), "{key} not in {found:#?}");
    }
    assert!(found.iter().all(|p| p.line > 0), "{found:#?}");

    let ok = format!(
        "{MINIMAL}function_associations = [{{ event_type = \"viewer-response\", function = \"h\" }}]\n\
         [[functions]]\nname = \"h\"\nruntime = \"cloudfront-js-2.0\"\ncode = \"function handler(e) {{ return e.response; }}\"\n"
    );
    let c = Config::from_toml_str(&ok).unwrap();
    assert_eq!(
        c.default_cache_behavior
            .function_for(config::EventType::ViewerResponse),
        Some("h")
    );
    assert_eq!(
        c.default_cache_behavior
            .function_for(config::EventType::ViewerRequest),
        None
    );
    assert_eq!(c.function("h").unwrap().runtime, config::FunctionRuntime::Js2);
}

#[test]
fn key_groups_and_response_headers_policies_are_checked_by_key() {
    let text = r#"
[[origins]]
id = "a"
path = "."

[default_cache_behavior]
target_origin = "a"
trusted_key_groups = ["kg", "nosuch"]
response_headers_policy = "NoSuchPolicy"

[[behaviors]]
path_pattern = "/x/*"
target_origin = "a"
response_headers_policy = "Managed-SecurityHeadersPolicy"

[[key_groups]]
id = "kg"
[[key_groups.public_keys]]
id = "K1"
pem = "not a key"
[[key_groups.public_keys]]
id = "K2"

[[response_headers_policies]]
name = "mine"
[response_headers_policies.cors]
access_control_allow_origins = ["*"]
access_control_allow_methods = ["GET", "FETCH"]
access_control_allow_credentials = true
[response_headers_policies.security_headers]
frame_options = { frame_option = "ALLOW" }
"#;
    let p = problems(text);
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    for k in [
        "key_groups[0].public_keys[0].pem",
        "key_groups[0].public_keys[1]",
        "response_headers_policies[0].cors.access_control_allow_methods[1]",
        "response_headers_policies[0].cors.access_control_allow_credentials",
        "response_headers_policies[0].security_headers.frame_options.frame_option",
        "default_cache_behavior.trusted_key_groups[1]",
        "default_cache_behavior.response_headers_policy",
    ] {
        assert!(keys.contains(&k), "no problem at {k}: {p:#?}");
    }
    // The managed policy by its console name is known.
    assert!(!keys.iter().any(|k| k.starts_with("behaviors[0]")), "{p:#?}");
    assert!(p.iter().any(|p| p.message.contains("not PEM")), "{p:#?}");
}
