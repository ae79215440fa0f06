#![allow(clippy::unwrap_used)]
//! Response headers policies: security headers on every kind of response a behavior gives
//! (hits, misses, origin errors, files, refusals, HTTP/2), CORS preflights answered at the
//! edge, and a cross-origin `fetch` from headless Chromium that succeeds against a CORS
//! policy and fails without one.

mod util;

use std::process::Command;
use util::origin::{Origin, Reply, Seen};
use util::{Response, TestServer};

/// slabfront in front of `origin` (and a dead origin for `/down/*`); `/static/*` is a
/// directory origin; `/cors/*` uses the managed CORS-With-Preflight policy; `/plain/*` has
/// no policy; everything else the `strict` policy below.
fn start(origin: &Origin) -> TestServer {
    let site = util::site();
    std::fs::create_dir_all(site.path().join("static")).unwrap();
    std::fs::write(site.path().join("static/s.txt"), "static\n").unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 2
h2c = true

[[origins]]
id = "app"
domain_name = "127.0.0.1"
http_port = {port}
protocol = "http-only"

[[origins]]
id = "dead"
domain_name = "127.0.0.1"
http_port = {dead_port}
protocol = "http-only"
connect_timeout = "1s"

[[origins]]
id = "files"
path = {site:?}

[default_cache_behavior]
target_origin = "app"
response_headers_policy = "strict"

[[behaviors]]
path_pattern = "/down/*"
target_origin = "dead"
response_headers_policy = "strict"

[[behaviors]]
path_pattern = "/static/*"
target_origin = "files"
response_headers_policy = "strict"

[[behaviors]]
path_pattern = "/cors/*"
target_origin = "app"
response_headers_policy = "CORS-With-Preflight"

[[behaviors]]
path_pattern = "/plain/*"
target_origin = "app"

[[response_headers_policies]]
name = "strict"
remove_headers = ["X-Powered-By"]
server_timing = {{ enabled = true, sampling_rate = 100 }}
[response_headers_policies.security_headers]
strict_transport_security = {{ access_control_max_age_sec = 63072000, include_subdomains = true, preload = true }}
content_type_options = {{}}
frame_options = {{ frame_option = "DENY" }}
referrer_policy = {{ referrer_policy = "same-origin" }}
content_security_policy = {{ content_security_policy = "default-src 'self'" }}
[[response_headers_policies.custom_headers]]
header = "X-Served-By"
value = "slabfront"

[cache]
path = "{slab}"
size = "64MiB"
"#,
        port = origin.port,
        site = site.path(),
        slab = dir.path().join("slab").display(),
    );
    std::mem::forget(site);
    TestServer::start_config(dir, &cfg)
}

fn app() -> Origin {
    Origin::start(|r: &Seen| {
        Reply::ok(
            format!("body of {}\n", r.target).as_bytes(),
            &[
                ("Cache-Control", "max-age=600"),
                ("X-Powered-By", "php"),
                ("X-Frame-Options", "SAMEORIGIN"),
            ],
        )
    })
}

fn strict_headers(r: &Response, what: &str) {
    for (name, value) in [
        (
            "strict-transport-security",
            "max-age=63072000; includeSubDomains; preload",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("content-security-policy", "default-src 'self'"),
        ("x-served-by", "slabfront"),
    ] {
        assert_eq!(r.header(name), Some(value), "{what}: {name} in {:?}", r.headers);
    }
    assert_eq!(r.header("x-powered-by"), None, "{what}");
}

#[test]
fn security_headers_are_on_misses_hits_errors_files_and_http2() {
    let origin = app();
    let s = start(&origin);
    let miss = s.get("/a", &[]);
    assert_eq!(miss.header("x-cache"), Some("Miss from slabfront"));
    strict_headers(&miss, "miss");
    assert_eq!(
        miss.header("server-timing").unwrap().split(',').next(),
        Some("cdn-cache-miss")
    );
    let hit = s.get("/a", &[]);
    assert_eq!(hit.header("x-cache"), Some("Hit from slabfront"));
    strict_headers(&hit, "hit");
    assert!(hit.header("server-timing").unwrap().starts_with("cdn-cache-hit"));
    let down = s.get("/down/x", &[]);
    assert_eq!(down.status, 502);
    strict_headers(&down, "origin error");
    let file = s.get("/static/s.txt", &[]);
    assert_eq!((file.status, &file.body[..]), (200, &b"static\n"[..]));
    strict_headers(&file, "static file");
    // No policy: the origin's headers as they are.
    let plain = s.get("/plain/a", &[]);
    assert_eq!(plain.header("x-powered-by"), Some("php"));
    assert_eq!(plain.header("strict-transport-security"), None);
    // HTTP/2 (h2c) goes through the same respond step.
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "--http2-prior-knowledge"])
        .arg(format!("http://127.0.0.1:{}/a", s.port))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(head.starts_with("http/2 200"), "{head}");
    assert!(head.contains("x-frame-options: deny"), "{head}");
    assert!(
        head.contains("strict-transport-security: max-age=63072000"),
        "{head}"
    );
}

#[test]
fn cors_preflights_are_answered_at_the_edge() {
    let origin = app();
    let s = start(&origin);
    let pre = "OPTIONS /cors/data HTTP/1.1\r\nHost: test\r\nOrigin: http://app.test\r\nAccess-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: x-test\r\nConnection: close\r\n\r\n";
    let r = util::parse_all(&s.raw(pre.as_bytes())).remove(0);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-headers"), Some("x-test"));
    assert!(r.header("access-control-allow-methods").unwrap().contains("PUT"));
    assert_eq!(origin.count(), 0, "the preflight never reached the origin");
    // Without a policy the OPTIONS is the behavior's: not allowed here.
    let r = util::parse_all(&s.raw(pre.replace("/cors/", "/plain/").as_bytes())).remove(0);
    assert_eq!(r.status, 403);
    assert_eq!(r.header("access-control-allow-origin"), None);
    // A simple request gets Access-Control-Allow-Origin only with an Origin.
    let r = s.get("/cors/data", &[("Origin", "http://app.test")]);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-expose-headers"), Some("*"));
    assert_eq!(
        s.get("/cors/data", &[]).header("access-control-allow-origin"),
        None
    );
}

/// Chromium's result of `fetch(url)` with a non-simple header (so a preflight comes first),
/// from a page of another origin.
fn browser_fetch(page_server: &TestServer, page: &str) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("http://127.0.0.1:{}/{page}", page_server.port))
        .output()
        .expect("chromium (Debian's chromium package) runs");
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    let title = dom
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .unwrap_or_default();
    title.to_string()
}

#[test]
fn a_cross_origin_fetch_from_chromium_needs_the_cors_policy() {
    if Command::new("chromium").arg("--version").output().is_err() {
        panic!("chromium is not installed (apt-get install chromium; .ci/run installs it)");
    }
    let origin = app();
    let api = start(&origin);
    let pages = util::site();
    let script = |path: &str| {
        format!(
            r#"<!doctype html><title>pending</title><script>
fetch("http://localhost:{port}{path}", {{headers: {{"X-Test": "1"}}}})
  .then(r => r.text()).then(t => {{ document.title = "ok " + t.trim(); }})
  .catch(e => {{ document.title = "failed"; }});
</script>"#,
            port = api.port
        )
    };
    std::fs::write(pages.path().join("with.html"), script("/cors/data")).unwrap();
    std::fs::write(pages.path().join("without.html"), script("/plain/data")).unwrap();
    let page_server = TestServer::start(pages.path(), "");
    assert_eq!(browser_fetch(&page_server, "with.html"), "ok body of /cors/data");
    assert_eq!(browser_fetch(&page_server, "without.html"), "failed");
}
