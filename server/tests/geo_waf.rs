#![allow(clippy::unwrap_used)]
//! Geo restriction and WAF rules, with viewers on distinct loopback addresses: a country
//! database written by PyPI's mmdb-writer maps 127.0.0.0/24 to US, 127.0.1.0/24 to FR and
//! 127.0.2.0/24 to DE. Blocked viewers get 403 (or the rule's status), never reach the
//! origin, and are counted in `/metrics`; the origin gets `CloudFront-Viewer-Country` and
//! `CloudFront-Viewer-Address` when the behavior forwards them (and never the viewer's own).

mod util;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use util::origin::{Origin, Reply, Seen};
use util::{read_response, Response, TestServer};

/// One request from `src` (a loopback address) on a new connection.
fn get_from(src: &str, port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let src: Ipv4Addr = src.parse().unwrap();
    sock.bind(&SocketAddr::from((src, 0)).into()).unwrap();
    sock.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let mut s: std::net::TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        req.push_str("Host: test\r\n");
    }
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    read_response(&mut s, false).unwrap()
}

fn admin_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The value of one sample line of `/metrics`.
fn sample(scrape: &str, line_start: &str) -> Option<u64> {
    scrape
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn echo_origin() -> Origin {
    Origin::start(|r: &Seen| {
        Reply::ok(
            format!("body of {}\n", r.target).as_bytes(),
            &[("Cache-Control", "max-age=600")],
        )
    })
}

const NETWORKS: [(&str, &str); 3] = [
    ("127.0.0.0/24", "US"),
    ("127.0.1.0/24", "FR"),
    ("127.0.2.0/24", "DE"),
];

/// slabfront (two workers, admin on) in front of `origin`, with `distribution` keys after
/// the origin and behaviors; the country database is `db`.
fn start(origin: &Origin, db: &std::path::Path, top: &str, behavior: &str) -> TestServer {
    start_h2c(origin, db, top, behavior, false)
}

fn start_h2c(origin: &Origin, db: &std::path::Path, top: &str, behavior: &str, h2c: bool) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let site = util::site();
    std::fs::create_dir_all(site.path().join("errors")).unwrap();
    std::fs::write(site.path().join("errors/403.html"), "<h1>not from here</h1>\n").unwrap();
    let cfg = format!(
        r#"{top}
[server]
listen = ["127.0.0.1:0"]
workers = 2
h2c = {h2c}

[admin]
listen = "127.0.0.1:0"

[geo]
database = {db:?}

[[origins]]
id = "app"
domain_name = "127.0.0.1"
http_port = {port}
protocol = "http-only"

[[origins]]
id = "files"
path = {site:?}

[default_cache_behavior]
target_origin = "app"
{behavior}

[[behaviors]]
path_pattern = "/errors/*"
target_origin = "files"

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

#[test]
fn a_whitelist_serves_its_countries_only_and_tells_the_origin_where_viewers_are() {
    let dbdir = tempfile::tempdir().unwrap();
    let db = dbdir.path().join("country.mmdb");
    util::mmdb::write(&db, &NETWORKS);
    let origin = echo_origin();
    let s = start(
        &origin,
        &db,
        "geo_restriction = { restriction_type = \"whitelist\", locations = [\"US\", \"FR\"] }",
        "headers = [\"CloudFront-Viewer-Country\", \"CloudFront-Viewer-Address\"]\n\
         [[behaviors]]\npath_pattern = \"/by-country/*\"\ntarget_origin = \"app\"\n\
         headers = [\"CloudFront-Viewer-Country\"]",
    );
    // A viewer in the US: served; the origin learns its country and address, not the
    // country it claims.
    let r = get_from("127.0.0.7", s.port, "/a", &[("CloudFront-Viewer-Country", "DE")]);
    assert_eq!(r.status, 200, "{}", s.stderr());
    let seen = origin.requests().pop().unwrap();
    assert_eq!(seen.header("cloudfront-viewer-country"), Some("US"));
    let address = seen.header("cloudfront-viewer-address").unwrap();
    assert!(address.starts_with("127.0.0.7:"), "{address}");
    assert!(address.rsplit(':').next().unwrap().parse::<u16>().unwrap() > 0);
    // The country is part of the key: a viewer in France gets a copy of its own, and a
    // second US viewer the US copy.
    assert_eq!(get_from("127.0.0.7", s.port, "/by-country/a", &[]).status, 200);
    let seen = origin.requests().pop().unwrap();
    assert_eq!(seen.header("cloudfront-viewer-country"), Some("US"));
    assert_eq!(seen.header("cloudfront-viewer-address"), None);
    assert_eq!(get_from("127.0.1.3", s.port, "/by-country/a", &[]).status, 200);
    assert_eq!(
        origin
            .requests()
            .pop()
            .unwrap()
            .header("cloudfront-viewer-country"),
        Some("FR")
    );
    assert_eq!(origin.count(), 3);
    let r = get_from("127.0.0.8", s.port, "/by-country/a", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(origin.count(), 3, "a hit");
    // Germany and unknown addresses: 403, and the origin never sees them.
    for src in ["127.0.2.5", "127.0.3.1"] {
        let r = get_from(src, s.port, "/b", &[]);
        assert_eq!(r.status, 403, "{src}");
        assert!(String::from_utf8_lossy(&r.body).contains("block access from your country"));
    }
    assert_eq!(origin.count(), 3);
    let scrape = admin_get(s.admin_port.unwrap(), "/metrics");
    assert_eq!(
        sample(&scrape, "slabfront_geo_blocked_total{distribution=\"default\"}"),
        Some(2),
        "{scrape}"
    );
    assert!(s.stderr().contains("request blocked by the geo restriction"));
}

#[test]
fn a_blacklist_refuses_its_countries_with_the_error_page() {
    let dbdir = tempfile::tempdir().unwrap();
    let db = dbdir.path().join("country.mmdb");
    util::mmdb::write(&db, &NETWORKS);
    let origin = echo_origin();
    let s = start(
        &origin,
        &db,
        "geo_restriction = { restriction_type = \"blacklist\", locations = [\"FR\"] }\n\
         [[error_responses]]\nerror_code = 403\nresponse_page_path = \"/errors/403.html\"",
        "",
    );
    assert_eq!(
        get_from("127.0.0.1", s.port, "/x", &[]).status,
        200,
        "{}",
        s.stderr()
    );
    // No behavior forwards the viewer fields: the origin gets neither ours nor the viewer's.
    let r = get_from("127.0.2.1", s.port, "/y", &[("CloudFront-Viewer-Country", "US")]);
    assert_eq!(r.status, 200);
    let seen = origin.requests().pop().unwrap();
    assert_eq!(seen.header("cloudfront-viewer-country"), None);
    let r = get_from("127.0.1.1", s.port, "/x", &[]);
    assert_eq!(r.status, 403);
    assert_eq!(String::from_utf8_lossy(&r.body), "<h1>not from here</h1>\n");
    assert_eq!(origin.count(), 2);
}

#[test]
fn the_database_is_read_again_when_the_file_changes() {
    let dbdir = tempfile::tempdir().unwrap();
    let db = dbdir.path().join("country.mmdb");
    util::mmdb::write(&db, &NETWORKS);
    let origin = echo_origin();
    let s = start(
        &origin,
        &db,
        "geo_restriction = { restriction_type = \"whitelist\", locations = [\"US\"] }",
        "",
    );
    assert_eq!(get_from("127.0.2.9", s.port, "/z", &[]).status, 403);
    // 127.0.2.0/24 moves to the US: within a few seconds it is served.
    util::mmdb::write(&db, &[("127.0.0.0/24", "US"), ("127.0.2.0/24", "US")]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get_from("127.0.2.9", s.port, "/z", &[]).status != 200 {
        assert!(
            Instant::now() < deadline,
            "the new database was not read: {}",
            s.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // SIGHUP reads it again too.
    std::process::Command::new("kill")
        .args(["-HUP", &s.child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.stderr().contains("geo database read again") {
        assert!(Instant::now() < deadline, "no re-read on SIGHUP: {}", s.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get_from("127.0.2.9", s.port, "/z", &[]).status, 200);
}

#[test]
fn a_database_that_cannot_be_read_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("country.mmdb");
    std::fs::write(&db, b"this is not a MaxMind database").unwrap();
    let cfg = dir.path().join("slabfront.toml");
    std::fs::write(
        &cfg,
        format!(
            "geo_restriction = {{ restriction_type = \"whitelist\", locations = [\"US\"] }}\n\
             [server]\nlisten = [\"127.0.0.1:0\"]\n[geo]\ndatabase = {db:?}\n\
             [[origins]]\nid = \"f\"\npath = {:?}\n[default_cache_behavior]\ntarget_origin = \"f\"\n",
            dir.path()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("geo database") && err.contains("country.mmdb"),
        "{err}"
    );
}

const RULES: &str = r#"
[waf]
trusted_proxies = ["127.0.4.0/24"]
[[waf.rules]]
name = "friends"
priority = 0
kind = "ip_set"
action = "allow"
addresses = ["127.0.5.0/24", "::ffff:127.0.6.0/120"]
[[waf.rules]]
name = "bad-nets"
priority = 1
kind = "ip_set"
action = "block"
addresses = ["127.0.1.0/24", "2001:db8::/32"]
custom_response = 429
[[waf.rules]]
name = "api-rate"
priority = 2
kind = "rate_based"
action = "block"
limit = 20
evaluation_window_sec = 60
scope_down = "/api/*"
[[waf.rules]]
name = "watch"
priority = 3
kind = "rate_based"
action = "count"
limit = 10
evaluation_window_sec = 60
scope_down = "/watched/*"
"#;

fn waf_server(origin: &Origin) -> TestServer {
    start(origin, std::path::Path::new("/nonexistent.mmdb"), RULES, "")
}

#[test]
fn ip_sets_allow_and_block_in_priority_order() {
    let origin = echo_origin();
    let s = waf_server(&origin);
    let r = get_from("127.0.1.8", s.port, "/a", &[]);
    assert_eq!(r.status, 429, "the rule's custom_response: {}", s.stderr());
    assert_eq!(String::from_utf8_lossy(&r.body), "Request blocked.\n");
    assert_eq!(origin.count(), 0);
    assert_eq!(get_from("127.0.0.8", s.port, "/a", &[]).status, 200);
    let log = s.stderr();
    assert!(
        log.contains("request blocked by a WAF rule") && log.contains("rule=bad-nets"),
        "{log}"
    );
    let scrape = admin_get(s.admin_port.unwrap(), "/metrics");
    let blocked = "slabfront_waf_matches_total{distribution=\"default\",rule=\"bad-nets\",action=\"block\"}";
    assert_eq!(sample(&scrape, blocked), Some(1), "{scrape}");
}

#[test]
fn a_rate_based_rule_blocks_the_client_over_its_limit_and_never_the_other() {
    let origin = echo_origin();
    let s = waf_server(&origin);
    let port = s.port;
    let heavy = std::sync::atomic::AtomicUsize::new(0);
    let blocked = std::sync::atomic::AtomicUsize::new(0);
    let light = std::sync::atomic::AtomicUsize::new(0);
    // Two clients at once: the heavy one from three threads, each request on a connection
    // of its own (spread over both workers), the light one alongside.
    std::thread::scope(|sc| {
        for t in 0..3 {
            let (heavy, blocked) = (&heavy, &blocked);
            sc.spawn(move || {
                for i in 0..20 {
                    match get_from("127.0.3.1", port, &format!("/api/h{t}-{}", i % 5), &[]).status {
                        200 => heavy.fetch_add(1, Relaxed),
                        403 => blocked.fetch_add(1, Relaxed),
                        other => panic!("status {other}"),
                    };
                }
            });
        }
        sc.spawn(|| {
            for i in 0..15 {
                let r = get_from("127.0.3.2", port, &format!("/api/l{i}"), &[]);
                assert_eq!(r.status, 200, "the light client is never blocked");
                light.fetch_add(1, Relaxed);
            }
        });
    });
    let (heavy_ok, heavy_blocked, light_ok) = (heavy.into_inner(), blocked.into_inner(), light.into_inner());
    // Exactly the limit across both workers, then blocked for the rest of the window.
    assert_eq!(heavy_ok, 20, "{}", s.stderr());
    assert_eq!(heavy_blocked, 40);
    assert_eq!(light_ok, 15);
    // Outside the scope-down path the heavy client is not limited; an allowed network
    // never is.
    assert_eq!(get_from("127.0.3.1", s.port, "/other", &[]).status, 200);
    for i in 0..30 {
        assert_eq!(
            get_from("127.0.5.1", s.port, &format!("/api/f{i}"), &[]).status,
            200
        );
    }
    let scrape = admin_get(s.admin_port.unwrap(), "/metrics");
    let m = |rule: &str, action: &str| {
        sample(
            &scrape,
            &format!(
                "slabfront_waf_matches_total{{distribution=\"default\",rule=\"{rule}\",action=\"{action}\"}}"
            ),
        )
    };
    assert_eq!(m("api-rate", "block"), Some(40), "{scrape}");
    assert_eq!(m("friends", "allow"), Some(30), "{scrape}");
}

#[test]
fn a_count_action_counts_and_lets_requests_through() {
    let origin = echo_origin();
    let s = waf_server(&origin);
    for i in 0..15 {
        assert_eq!(
            get_from("127.0.3.5", s.port, &format!("/watched/{i}"), &[]).status,
            200
        );
    }
    let scrape = admin_get(s.admin_port.unwrap(), "/metrics");
    let counted = "slabfront_waf_matches_total{distribution=\"default\",rule=\"watch\",action=\"count\"}";
    assert_eq!(sample(&scrape, counted), Some(5), "{scrape}");
}

#[test]
fn behind_a_trusted_proxy_the_client_is_the_right_most_untrusted_forwarded_address() {
    let origin = echo_origin();
    let s = waf_server(&origin);
    // The proxy forwards a client in a blocked network: blocked.
    let r = get_from("127.0.4.1", s.port, "/p", &[("X-Forwarded-For", "127.0.1.9")]);
    assert_eq!(r.status, 429);
    // A blocked address the client wrote itself, left of the one the proxy saw: not it.
    let r = get_from(
        "127.0.4.1",
        s.port,
        "/p",
        &[("X-Forwarded-For", "127.0.1.9, 198.51.100.7, 127.0.4.3")],
    );
    assert_eq!(r.status, 200);
    // An untrusted peer's X-Forwarded-For is not believed.
    let r = get_from("127.0.3.9", s.port, "/p", &[("X-Forwarded-For", "127.0.1.9")]);
    assert_eq!(r.status, 200);
    let r = get_from("127.0.1.2", s.port, "/p", &[("X-Forwarded-For", "127.0.0.1")]);
    assert_eq!(r.status, 429);
}

#[test]
fn each_distribution_has_its_own_restriction_and_rules() {
    let dbdir = tempfile::tempdir().unwrap();
    let db = dbdir.path().join("country.mmdb");
    util::mmdb::write(&db, &NETWORKS);
    let origin = echo_origin();
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"[server]
listen = ["127.0.0.1:0"]
workers = 2
[geo]
database = {db:?}
[cache]
path = "{slab}"
size = "64MiB"

[[distributions]]
name = "closed.example"
geo_restriction = {{ restriction_type = "blacklist", locations = ["FR"] }}
[[distributions.origins]]
id = "app"
domain_name = "127.0.0.1"
http_port = {port}
protocol = "http-only"
[distributions.default_cache_behavior]
target_origin = "app"
[[distributions.waf.rules]]
name = "no-de"
priority = 0
kind = "ip_set"
action = "block"
addresses = ["127.0.2.0/24"]

[[distributions]]
name = "open.example"
[[distributions.origins]]
id = "app"
domain_name = "127.0.0.1"
http_port = {port}
protocol = "http-only"
[distributions.default_cache_behavior]
target_origin = "app"
"#,
        port = origin.port,
        slab = dir.path().join("slab").display(),
    );
    let s = TestServer::start_config(dir, &cfg);
    let at = |src: &str, name: &str| get_from(src, s.port, "/p", &[("Host", name)]).status;
    assert_eq!(at("127.0.1.1", "closed.example"), 403, "{}", s.stderr());
    assert_eq!(at("127.0.2.1", "closed.example"), 403);
    assert_eq!(at("127.0.0.1", "closed.example"), 200);
    assert_eq!(at("127.0.1.1", "open.example"), 200);
    assert_eq!(at("127.0.2.1", "open.example"), 200);
}

#[test]
fn http2_viewers_are_checked_alike() {
    let dbdir = tempfile::tempdir().unwrap();
    let db = dbdir.path().join("country.mmdb");
    util::mmdb::write(&db, &NETWORKS);
    let origin = echo_origin();
    let s = start_h2c(
        &origin,
        &db,
        &format!("geo_restriction = {{ restriction_type = \"whitelist\", locations = [\"US\"] }}\n{RULES}"),
        "headers = [\"CloudFront-Viewer-Country\"]",
        true,
    );
    // curl over HTTP/2 with prior knowledge, from a chosen loopback address.
    let h2 = |src: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--http2-prior-knowledge",
                "--max-time",
                "20",
                "-o",
                "/dev/null",
            ])
            .args(["-w", "%{http_version} %{http_code}", "--interface", src])
            .arg(format!("http://127.0.0.1:{}/h2", s.port))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(h2("127.0.0.3"), "2 200", "{}", s.stderr());
    assert_eq!(
        origin
            .requests()
            .pop()
            .unwrap()
            .header("cloudfront-viewer-country"),
        Some("US")
    );
    assert_eq!(h2("127.0.2.3"), "2 403");
    assert_eq!(
        h2("127.0.1.3"),
        "2 429",
        "the WAF rule before the geo restriction"
    );
}
