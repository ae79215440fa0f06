#![allow(clippy::unwrap_used)]
//! What ships for Prometheus and Grafana users, checked against the real thing: the alert
//! rules with `promtool check rules` and their unit tests with `promtool test rules`; a live
//! `/metrics` scrape with `promtool check metrics`; and every series the Grafana dashboard and
//! the alerts name is one that scrape exports.
//!
//! promtool comes from Debian's `prometheus` package (installed here when missing and
//! possible; otherwise these tests say so loudly and return).

mod util;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use util::origin::{Origin, Reply, Seen};
use util::TestServer;

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging")
}

fn promtool() -> Option<&'static str> {
    static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        let present = || {
            Command::new("promtool")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if present() {
            return true;
        }
        eprintln!("promtool missing: installing Debian's prometheus package");
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-q", "prometheus"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        present()
    });
    if !found {
        eprintln!("\n!!!!! SKIPPED: promtool is not installed and could not be (apt-get install prometheus) !!!!!\n");
    }
    found.then_some("promtool")
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Every `slabfront_*` name in a text.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("slabfront_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

fn admin_get(port: u16, path: &str) -> String {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut all = String::new();
    c.read_to_string(&mut all).unwrap();
    assert!(all.starts_with("HTTP/1.1 200"), "{all}");
    all.split_once("\r\n\r\n").unwrap().1.to_string()
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let Some(promtool) = promtool() else { return };
    let (ok, text) = run(Command::new(promtool)
        .args(["check", "rules", "prometheus-alerts.yml"])
        .current_dir(packaging()));
    assert!(ok && text.contains("SUCCESS: 5 rules found"), "{text}");
    let (ok, text) = run(Command::new(promtool)
        .args(["test", "rules", "prometheus-alerts.test.yml"])
        .current_dir(packaging()));
    assert!(ok && text.contains("SUCCESS"), "{text}");
}

/// A scrape from a caching proxy that has served hits, misses and an origin failure.
fn live_scrape() -> String {
    let origin = Origin::start(|r: &Seen| {
        if r.target.starts_with("/down") {
            Reply::status(503, &[])
        } else {
            Reply::ok(b"hello", &[("Cache-Control", "max-age=60")])
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"[server]
listen = ["127.0.0.1:0"]
workers = 2

[[origins]]
id = "origin"
domain_name = "127.0.0.1"
http_port = {port}
protocol = "http-only"

[[origins]]
id = "nowhere"
domain_name = "127.0.0.1"
http_port = 9
protocol = "http-only"
connect_timeout = "1s"

[default_cache_behavior]
target_origin = "origin"

[[behaviors]]
path_pattern = "/gone/*"
target_origin = "nowhere"

[admin]
listen = "127.0.0.1:0"

[cache]
path = "{slab}"
size = "64MiB"
"#,
        port = origin.port,
        slab = dir.path().join("slab").display()
    );
    let s = TestServer::start_config(dir, &cfg);
    for p in ["/a", "/a", "/a", "/b", "/down", "/gone/x"] {
        s.get(p, &[]);
    }
    let admin = s.admin_port.unwrap();
    // The sampler runs once a second: let it see the failure.
    std::thread::sleep(Duration::from_millis(1500));
    admin_get(admin, "/metrics")
}

#[test]
fn a_live_scrape_passes_promtool_and_exports_every_series_the_dashboard_and_alerts_name() {
    let scrape = live_scrape();
    let exported: BTreeSet<String> = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect();
    assert!(exported.contains("slabfront_slab_used_bytes"), "{scrape}");
    assert!(
        scrape.contains("slabfront_origin_up{origin=\"nowhere\"} 0\n"),
        "{scrape}"
    );
    assert!(
        scrape.contains("slabfront_origin_up{origin=\"origin\"} 1\n"),
        "{scrape}"
    );

    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(packaging().join("grafana-dashboard.json")).unwrap())
            .unwrap();
    let mut queries = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&dashboard, &mut queries);
    assert!(queries.len() >= 20, "{queries:?}");
    let mut named = BTreeSet::new();
    for q in &queries {
        let n = names_in(q);
        assert!(!n.is_empty(), "a dashboard query names no slabfront series: {q}");
        named.extend(n);
    }
    let alerts = std::fs::read_to_string(packaging().join("prometheus-alerts.yml")).unwrap();
    named.extend(names_in(&alerts));
    let missing: Vec<&String> = named.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "named but not exported: {missing:?}\n{scrape}"
    );

    let Some(promtool) = promtool() else { return };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(scrape.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim().is_empty(),
        "promtool check metrics:\n{text}"
    );
}
