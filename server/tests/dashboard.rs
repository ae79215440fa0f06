#![allow(clippy::unwrap_used)]
//! The dashboard's API on a real server: `/stats` per distribution (two, chosen by Host),
//! the same numbers as `/metrics`, and the token rule (bearer, or the login cookie for GETs
//! only). The page itself is checked in a browser by `scripts/dashboard-test.sh`.

mod util;

use std::io::{Read, Write};
use std::time::Duration;
use util::TestServer;

const TOKEN: &str = "t0ken";

fn admin(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    c.write_all(req.as_bytes()).unwrap();
    let mut all = String::new();
    c.read_to_string(&mut all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head.to_string(), body.to_string())
}

/// A GET with this Host (`TestServer::get` sends its own).
fn get(s: &TestServer, host: &str, path: &str) -> u16 {
    let mut c = s.connect();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    util::read_response(&mut c, false).unwrap().status
}

fn two_distributions() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    for (d, f) in [("a", "x.txt"), ("b", "y.txt")] {
        std::fs::create_dir(dir.path().join(d)).unwrap();
        std::fs::write(dir.path().join(d).join(f), b"hello").unwrap();
    }
    let cfg = format!(
        r#"[server]
listen = ["127.0.0.1:0"]
workers = 2

[admin]
listen = "127.0.0.1:0"
token = "{TOKEN}"

[[distributions]]
name = "a.test"
[[distributions.origins]]
id = "files"
path = "{a}"
[distributions.default_cache_behavior]
target_origin = "files"

[[distributions]]
name = "b.test"
[[distributions.origins]]
id = "files"
path = "{b}"
[distributions.default_cache_behavior]
target_origin = "files"
"#,
        a = dir.path().join("a").display(),
        b = dir.path().join("b").display()
    );
    TestServer::start_config(dir, &cfg)
}

#[test]
fn stats_are_kept_per_distribution_and_agree_with_metrics() {
    let s = two_distributions();
    for _ in 0..3 {
        assert_eq!(get(&s, "a.test", "/x.txt"), 200);
    }
    assert_eq!(get(&s, "a.test", "/missing"), 404);
    assert_eq!(get(&s, "b.test", "/y.txt"), 200);
    let port = s.admin_port.unwrap();
    let bearer = format!("Bearer {TOKEN}");
    // Finished seconds of top URLs are handed over on the workers' next tick.
    std::thread::sleep(Duration::from_millis(1300));
    let (status, head, body) = admin(port, "GET", "/stats", &[("Authorization", &bearer)], "");
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("Cache-Control: no-store"), "{head}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let d = v["distributions"].as_array().unwrap();
    assert_eq!(
        (d[0]["name"].as_str(), d[1]["name"].as_str()),
        (Some("a.test"), Some("b.test"))
    );
    assert_eq!(d[0]["totals"]["requests"], 4);
    assert_eq!(d[0]["totals"]["status"]["4xx"], 1);
    assert_eq!(d[0]["totals"]["results"]["Local"], 4);
    assert_eq!(d[1]["totals"]["requests"], 1);
    assert_eq!(d[0]["top_urls"]["by_requests"][0]["url"], "/x.txt");
    assert_eq!(d[0]["top_urls"]["by_requests"][0]["count"], 3);
    assert_eq!(d[1]["top_urls"]["by_requests"][0]["url"], "/y.txt");
    assert!(d[0]["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    let (_, _, metrics) = admin(port, "GET", "/metrics", &[("Authorization", &bearer)], "");
    let total: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("slabfront_requests_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 5, "{metrics}");
}

#[test]
fn the_token_is_given_once_and_kept_in_a_strict_http_only_cookie() {
    let s = two_distributions();
    let port = s.admin_port.unwrap();
    assert_eq!(admin(port, "GET", "/stats", &[], "").0, 401);
    // The page without a token is the login form.
    let (status, _, body) = admin(port, "GET", "/", &[], "");
    assert_eq!(status, 401);
    assert!(body.contains("name=\"token\""), "{body}");
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, _, body) = admin(port, "POST", "/login", &form, "token=wrong");
    assert_eq!(status, 401);
    assert!(body.contains("not valid"));
    let (status, head, _) = admin(port, "POST", "/login", &form, &format!("token={TOKEN}"));
    assert_eq!(status, 302, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let (status, head, page) = admin(port, "GET", "/", &[("Cookie", &pair)], "");
    assert_eq!(status, 200);
    assert!(
        head.contains("Content-Security-Policy: default-src 'none'"),
        "{head}"
    );
    assert!(page.contains("<canvas id=\"chart-rps\""));
    assert_eq!(admin(port, "GET", "/stats", &[("Cookie", &pair)], "").0, 200);
    assert_eq!(admin(port, "GET", "/metrics", &[("Cookie", &pair)], "").0, 200);
    // Changes still need the bearer token.
    let body = r#"{"paths": ["/x.txt"]}"#;
    assert_eq!(
        admin(
            port,
            "POST",
            "/distributions/a.test/invalidations",
            &[("Cookie", &pair)],
            body
        )
        .0,
        401
    );
    assert_eq!(
        admin(port, "GET", "/stats", &[("Cookie", "slabfront_admin=wrong")], "").0,
        401
    );
}
