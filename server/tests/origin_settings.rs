#![allow(clippy::unwrap_used)]
//! CloudFront's per-origin settings on a custom origin: `origin_path`, `custom_headers`, the
//! Host rule, and `connection_attempts`.

mod util;

use util::origin::{Origin, Reply, Seen};
use util::TestServer;

fn start(origin_lines: &str, behavior: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 1

[[origins]]
id = "app"
domain_name = "127.0.0.1"
protocol = "http-only"
{origin_lines}

[default_cache_behavior]
target_origin = "app"
query_strings = "all"
{behavior}

[cache]
path = "{slab}"
size = "64MiB"
"#,
        slab = dir.path().join("slab").display()
    );
    TestServer::start_config(dir, &cfg)
}

#[test]
fn origin_path_custom_headers_and_host_reach_the_origin() {
    let origin = Origin::start(|r: &Seen| Reply::ok(r.target.as_bytes(), &[("Cache-Control", "max-age=60")]));
    let s = start(
        &format!(
            "http_port = {}\norigin_path = \"/v2/static\"\nhost_header = \"assets.internal\"\ncustom_headers = {{ X-Origin-Verify = \"s3cr3t\", X-Edge = \"1\" }}",
            origin.port
        ),
        "",
    );
    let r = s.get("/img/a.png?w=10", &[("X-Origin-Verify", "forged")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"/v2/static/img/a.png?w=10");
    let seen = origin.requests().pop().unwrap();
    assert_eq!(seen.header("host"), Some("assets.internal"));
    let verify: Vec<&str> = seen
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-origin-verify"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(verify.contains(&"s3cr3t"), "{:?}", seen.headers);
    assert_eq!(seen.header("x-edge"), Some("1"));
    // The custom header is not sent back to viewers.
    assert!(r.header("x-origin-verify").is_none());
}

#[test]
fn a_forwarded_host_wins_over_host_header_for_a_custom_origin() {
    let origin = Origin::start(|_: &Seen| Reply::ok(b"ok", &[]));
    let s = start(
        &format!("http_port = {}\nhost_header = \"assets.internal\"", origin.port),
        "headers = [\"Host\"]",
    );
    assert_eq!(s.get("/x", &[]).status, 200);
    assert_eq!(origin.requests().pop().unwrap().header("host"), Some("test"));
}

#[test]
fn a_refused_origin_is_a_502_after_its_connection_attempts() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = start(
        &format!("http_port = {port}\nconnection_attempts = 2\nconnection_timeout = \"1s\""),
        "",
    );
    let r = s.get("/x", &[]);
    assert_eq!(r.status, 502);
}
