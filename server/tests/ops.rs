#![allow(clippy::unwrap_used)]
//! Running it for real: metrics, access logs and their rotation, sd_notify, live reload, and
//! the systemd unit.

mod util;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::{read_response, TestServer};

fn signal(pid: u32, sig: &str) {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
}

fn http_get(port: u16, path: &str) -> util::Response {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    read_response(&mut c, false).unwrap()
}

/// A site and a config using it, with an admin listener and an access log.
fn setup(extra: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("index.html"), b"<h1>one</h1>").unwrap();
    std::fs::write(site.join("two.html"), b"<h1>two</h1>").unwrap();
    std::fs::write(site.join("a.txt"), b"aaaa").unwrap();
    let cfg = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 2
node_name = "edge-ops"
{extra}

[[origins]]
id = "site"
path = "{site}"

[default_cache_behavior]
target_origin = "site"

[admin]
listen = "127.0.0.1:0"

[logging]
path = "{log}"
"#,
        site = site.display(),
        log = dir.path().join("access.log").display()
    );
    (dir, cfg)
}

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in:\n{text}"))
}

#[test]
fn metrics_count_the_requests_made() {
    let (dir, cfg) = setup("");
    let s = TestServer::start_config(tempfile::tempdir().unwrap(), &cfg);
    for _ in 0..7 {
        assert_eq!(s.get("/a.txt", &[]).status, 200);
    }
    for _ in 0..3 {
        assert_eq!(s.get("/missing", &[]).status, 404);
    }
    // A request is counted just after its response is written: give the last one a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let r = loop {
        let r = http_get(s.admin_port.unwrap(), "/metrics");
        let text = String::from_utf8_lossy(&r.body).to_string();
        if text.contains("slabfront_requests_total{status_class=\"4xx\"} 3\n")
            || std::time::Instant::now() > deadline
        {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(r.body).unwrap();
    // Every sample line is `name{labels} value` under a # TYPE line.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = l.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad value in {l:?}");
        let base = name.split('{').next().unwrap();
        let family = base
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            text.contains(&format!("# TYPE {base} ")) || text.contains(&format!("# TYPE {family} ")),
            "{name} has no TYPE"
        );
    }
    assert_eq!(
        metric(&text, "slabfront_requests_total{status_class=\"2xx\"}"),
        7.0
    );
    assert_eq!(
        metric(&text, "slabfront_requests_total{status_class=\"4xx\"}"),
        3.0
    );
    assert_eq!(
        metric(&text, "slabfront_requests_by_method_total{method=\"GET\"}"),
        10.0
    );
    assert_eq!(metric(&text, "slabfront_connections_total"), 10.0);
    assert!(metric(&text, "slabfront_sent_bytes_total") > 0.0);
    assert_eq!(http_get(s.admin_port.unwrap(), "/healthz").status, 200);
    drop(dir);
}

fn log_lines(path: &std::path::Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines();
    if text.is_empty() {
        return Vec::new();
    }
    assert_eq!(lines.next(), Some("#Version: 1.0"), "{text}");
    let fields = lines
        .next()
        .unwrap()
        .strip_prefix("#Fields: ")
        .unwrap()
        .split(' ')
        .count();
    assert_eq!(fields, 33);
    lines
        .map(|l| {
            let f: Vec<String> = l.split('\t').map(str::to_string).collect();
            assert_eq!(f.len(), fields, "{l:?}");
            f
        })
        .collect()
}

#[test]
fn access_log_has_one_cloudfront_line_per_request_across_a_rotation() {
    let (dir, cfg) = setup("");
    let s = TestServer::start_config(tempfile::tempdir().unwrap(), &cfg);
    let log = dir.path().join("access.log");
    for i in 0..25 {
        let r = s.get(&format!("/a.txt?n={i}"), &[("User-Agent", "test agent/1.0")]);
        assert_eq!(r.status, 200);
    }
    std::thread::sleep(Duration::from_millis(400));
    // logrotate: move the file, then SIGUSR1.
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    signal(s.child.id(), "USR1");
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..15 {
        s.get("/nope", &[]);
    }
    std::thread::sleep(Duration::from_millis(400));
    let before = log_lines(&rotated);
    let after = log_lines(&log);
    assert_eq!(
        before.len() + after.len(),
        40,
        "{} + {}",
        before.len(),
        after.len()
    );
    assert_eq!(after.len(), 15, "lines after the rotation go to the new file");
    // Workers hand over their own blocks: lines are whole, not globally ordered.
    let first = before.iter().find(|f| f[11] == "n=0").unwrap();
    assert_eq!(first[2], "edge-ops");
    assert_eq!(first[5], "GET");
    assert_eq!(first[7], "/a.txt");
    assert_eq!(first[8], "200");
    assert_eq!(first[10], "test%20agent/1.0");
    assert_eq!(first[30], "4");
    assert_eq!(after[0][8], "404");
    assert_eq!(after[0][13], "Error");
    let ids: std::collections::HashSet<&String> = before.iter().chain(after.iter()).map(|f| &f[14]).collect();
    assert_eq!(ids.len(), 40, "request ids are unique");
}

#[test]
fn a_full_disk_turns_log_lines_into_counted_drops() {
    let (dir, cfg) = setup("");
    let cfg = cfg.replace(&dir.path().join("access.log").display().to_string(), "/dev/full");
    let s = TestServer::start_config(tempfile::tempdir().unwrap(), &cfg);
    for _ in 0..20 {
        assert_eq!(s.get("/a.txt", &[]).status, 200);
    }
    std::thread::sleep(Duration::from_millis(400));
    let text = String::from_utf8(http_get(s.admin_port.unwrap(), "/metrics").body).unwrap();
    assert_eq!(
        metric(&text, "slabfront_access_log_dropped_total"),
        20.0,
        "{text}"
    );
    assert_eq!(s.get("/a.txt", &[]).status, 200, "still serving");
}

#[test]
fn sd_notify_messages_arrive_in_order() {
    let (dir, cfg) = setup("");
    let cfg_path = dir.path().join("slabfront.toml");
    std::fs::write(&cfg_path, &cfg).unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .arg("--config")
        .arg(&cfg_path)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let mut buf = [0u8; 256];
    let mut recv = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "no {want}");
            let n = sock.recv(&mut buf).unwrap();
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            if msg == "WATCHDOG=1" && want != "WATCHDOG=1" {
                continue;
            }
            assert!(msg.starts_with(want), "expected {want}, got {msg:?}");
            return;
        }
    };
    recv("READY=1");
    // Serving by then.
    assert_eq!(http_get(port, "/a.txt").status, 200);
    recv("WATCHDOG=1");
    signal(child.id(), "HUP");
    recv("RELOADING=1");
    recv("READY=1");
    signal(child.id(), "TERM");
    recv("STOPPING=1");
    let status = child.wait().unwrap();
    assert!(status.success());
}

#[test]
fn reload_under_load_drops_nothing_and_switches_config() {
    let (dir, cfg) = setup("");
    let cfg_path = dir.path().join("live.toml");
    std::fs::write(&cfg_path, &cfg).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .arg("--config")
        .arg(&cfg_path)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let port: u16 = line
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let saw_two = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for keep_alive in [true, true, false, false] {
        let (stop, ok, failed, saw_two) = (stop.clone(), ok.clone(), failed.clone(), saw_two.clone());
        load.push(std::thread::spawn(move || {
            let mut conn: Option<std::net::TcpStream> = None;
            while !stop.load(Ordering::Acquire) {
                let c = match conn.take() {
                    Some(c) => c,
                    None => std::net::TcpStream::connect(("127.0.0.1", port)).unwrap(),
                };
                let mut c = c;
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let close = if keep_alive { "" } else { "Connection: close\r\n" };
                let res = c
                    .write_all(format!("GET / HTTP/1.1\r\nHost: t\r\n{close}\r\n").as_bytes())
                    .map_err(|e| e.to_string())
                    .and_then(|_| read_response(&mut c, false).map_err(|e| e.to_string()));
                match res {
                    Ok(r) if r.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        if r.body == b"<h1>two</h1>" {
                            saw_two.store(true, Ordering::Relaxed);
                        }
                        if keep_alive && r.header("connection") != Some("close") {
                            conn = Some(c);
                        }
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(300));
    // A broken configuration: refused, the old one keeps serving.
    std::fs::write(&cfg_path, "[server\nbroken").unwrap();
    signal(child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(300));
    // A valid one: a new root object and one more listener.
    let extra_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let new_cfg = cfg
        .replace("[server]\n", "default_root_object = \"two.html\"\n[server]\n")
        .replace(
            "listen = [\"127.0.0.1:0\"]",
            &format!("listen = [\"127.0.0.1:0\", \"127.0.0.1:{extra_port}\"]"),
        );
    std::fs::write(&cfg_path, &new_cfg).unwrap();
    signal(child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::Release);
    for t in load {
        t.join().unwrap();
    }
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(stderr.contains("reload refused"), "{stderr}");
    assert!(stderr.contains("configuration reloaded"), "{stderr}");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during reloads ({} ok)",
        ok.load(Ordering::Relaxed)
    );
    assert!(ok.load(Ordering::Relaxed) > 100);
    assert!(
        saw_two.load(Ordering::Relaxed),
        "the new configuration never answered"
    );
    assert_eq!(http_get(port, "/").body, b"<h1>two</h1>");
    assert_eq!(
        http_get(extra_port, "/").body,
        b"<h1>two</h1>",
        "the added listener serves"
    );
    // Removing the first listener: it stops accepting; the other keeps serving.
    let mut open = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let only_extra = new_cfg.replace(
        &format!("listen = [\"127.0.0.1:0\", \"127.0.0.1:{extra_port}\"]"),
        &format!("listen = [\"127.0.0.1:{extra_port}\"]"),
    );
    std::fs::write(&cfg_path, only_extra).unwrap();
    signal(child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the removed listener still accepts"
    );
    assert_eq!(http_get(extra_port, "/").status, 200);
    // A connection accepted before the removal is still served.
    open.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut open, false).unwrap().status, 200);
    signal(child.id(), "TERM");
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/slabfront.service"
    ))
    .unwrap();
    for want in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/cache/slabfront /var/log/slabfront",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "LimitNOFILE=",
        "LimitMEMLOCK=",
        "User=slabfront",
    ] {
        assert!(unit.contains(want), "unit lacks {want}");
    }
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is required in CI"
        );
        eprintln!("systemd-analyze not installed; only the unit's contents were checked");
        return;
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slabfront.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/slabfront", env!("CARGO_BIN_EXE_slabfront")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success() && err.trim().is_empty(),
        "systemd-analyze verify: {err}"
    );
}
