#![allow(clippy::unwrap_used)]
//! Origin groups and origin health: a primary killed under load, a primary that stalls, a
//! flapping primary, listed statuses, and the state in /metrics and /healthz?verbose.

mod util;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::origin::{Origin, Reply, Seen};
use util::TestServer;

fn config(dir: &std::path::Path, primary: u16, secondary: u16, primary_extra: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 2

[[origins]]
id = "primary"
domain_name = "127.0.0.1"
http_port = {primary}
protocol = "http-only"
connection_timeout = "1s"
connection_attempts = 1
response_timeout = "1s"
{primary_extra}

[[origins]]
id = "secondary"
domain_name = "127.0.0.1"
http_port = {secondary}
protocol = "http-only"

[[origin_groups]]
id = "group"
members = ["primary", "secondary"]
failover_status_codes = [500, 502, 503, 504, 404]

[default_cache_behavior]
target_origin = "group"

[admin]
listen = "127.0.0.1:0"

[logging]
path = "{log}"

[cache]
path = "{slab}"
size = "64MiB"
"#,
        slab = dir.join("slab").display(),
        log = dir.join("access.log").display()
    )
}

fn start(primary: u16, secondary: u16, primary_extra: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), primary, secondary, primary_extra);
    TestServer::start_config(dir, &cfg)
}

fn named(name: &'static str) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    move |r: &Seen| {
        Reply::ok(
            format!("{name} {}", r.target).as_bytes(),
            &[("Cache-Control", "max-age=60")],
        )
    }
}

fn admin_get(s: &TestServer, path: &str) -> String {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.admin_port.unwrap())).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    String::from_utf8(util::read_response(&mut c, false).unwrap().body).unwrap()
}

#[test]
fn listed_statuses_fail_over_and_the_answer_says_so() {
    let primary = Origin::start(|r: &Seen| {
        if r.target.starts_with("/missing") {
            Reply::status(404, &[])
        } else if r.target.starts_with("/broken") {
            Reply::status(503, &[])
        } else {
            Reply::ok(b"primary", &[("Cache-Control", "max-age=60")])
        }
    });
    let secondary = Origin::start(named("secondary"));
    let s = start(primary.port, secondary.port, "");
    let r = s.get("/fine", &[]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"primary"[..]));
    assert!(!r.header("cache-status").unwrap().contains("failover"));
    for (path, why) in [("/missing/a", "status-404"), ("/broken/b", "status-503")] {
        let r = s.get(path, &[]);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body, format!("secondary {path}").as_bytes());
        let cs = r.header("cache-status").unwrap();
        assert!(cs.contains(&format!("detail=failover-{why}")), "{cs}");
    }
    // Not for other methods: a POST reaches the primary only.
    let mut c = s.connect();
    write!(
        c,
        "POST /broken/c HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let r = util::read_response(&mut c, false).unwrap();
    assert_ne!(r.body, b"secondary /broken/c");
    assert!(!secondary.requests().iter().any(|q| q.target == "/broken/c"));
    // The access log's x-edge-detailed-result-type says which answers came by failover.
    std::thread::sleep(Duration::from_millis(600));
    let log = std::fs::read_to_string(s.dir.path().join("access.log")).unwrap();
    let detailed = |path: &str| {
        log.lines()
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .find(|f| f.len() > 28 && f[7] == path)
            .map(|f| f[28].to_string())
    };
    assert_eq!(detailed("/missing/a").as_deref(), Some("OriginFailover"), "{log}");
    assert_eq!(detailed("/fine").as_deref(), Some("Miss"), "{log}");
    let m = admin_get(&s, "/metrics");
    assert!(
        m.contains("slabfront_origin_failovers_total{origin=\"primary\"} 2"),
        "{m}"
    );
}

#[test]
fn primary_killed_under_load_fails_no_get() {
    let primary = Origin::start(named("primary"));
    let secondary = Origin::start(named("secondary"));
    let s = Arc::new(start(primary.port, secondary.port, ""));
    let (stop, failed, done, by_secondary) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let (s, stop, failed, done, by_secondary) = (
                s.clone(),
                stop.clone(),
                failed.clone(),
                done.clone(),
                by_secondary.clone(),
            );
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Acquire) {
                    i += 1;
                    let r = s.get(&format!("/t{t}/{i}"), &[]);
                    if r.status != 200 {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("failed: {} {:?}", r.status, String::from_utf8_lossy(&r.body));
                    }
                    if r.body.starts_with(b"secondary") {
                        by_secondary.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let before = done.load(Ordering::Relaxed);
    primary.stop();
    std::thread::sleep(Duration::from_millis(2500));
    stop.store(true, Ordering::Release);
    for t in threads {
        t.join().unwrap();
    }
    let total = done.load(Ordering::Relaxed);
    eprintln!(
        "{total} GETs, {before} before the kill, {} from the secondary",
        by_secondary.load(Ordering::Relaxed)
    );
    assert!(
        before > 20 && total > before + 20,
        "load too light to mean anything: {before}/{total}"
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0, "{}", s.stderr());
    assert!(by_secondary.load(Ordering::Relaxed) > 20);
    let v = admin_get(&s, "/healthz?verbose");
    assert!(v.contains("primary down"), "{v}");
}

#[test]
fn a_stalled_primary_costs_at_most_response_timeout_then_is_skipped() {
    let stalled = Origin::start(|_: &Seen| Reply {
        hang: true,
        ..Default::default()
    });
    let secondary = Origin::start(named("secondary"));
    let s = start(stalled.port, secondary.port, "");
    let mut times = Vec::new();
    for i in 0..8 {
        let t0 = Instant::now();
        let r = s.get(&format!("/stall/{i}"), &[]);
        times.push(t0.elapsed());
        assert_eq!(r.status, 200);
        assert_eq!(r.body, format!("secondary /stall/{i}").as_bytes());
    }
    eprintln!("{times:?}");
    for t in &times[..3] {
        assert!(
            *t < Duration::from_millis(1900),
            "at most response_timeout (1s) each: {times:?}"
        );
    }
    for t in &times[3..] {
        assert!(*t < Duration::from_millis(500), "then skipped: {times:?}");
    }
    assert!(
        stalled.count() <= 4,
        "the stalled origin got {} requests",
        stalled.count()
    );
}

#[test]
fn a_flapping_primary_does_not_get_a_request_storm() {
    let bad = Arc::new(AtomicBool::new(false));
    let served_bad = Arc::new(AtomicUsize::new(0));
    let primary = {
        let (bad, served_bad) = (bad.clone(), served_bad.clone());
        Origin::start(move |r: &Seen| {
            if bad.load(Ordering::Acquire) {
                served_bad.fetch_add(1, Ordering::Relaxed);
                Reply::status(503, &[])
            } else {
                Reply::ok(
                    format!("primary {}", r.target).as_bytes(),
                    &[("Cache-Control", "max-age=60")],
                )
            }
        })
    };
    let secondary = Origin::start(named("secondary"));
    let s = Arc::new(start(primary.port, secondary.port, ""));
    let stop = Arc::new(AtomicBool::new(false));
    let (failed, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (s, stop, failed, done) = (s.clone(), stop.clone(), failed.clone(), done.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Acquire) {
                    i += 1;
                    if s.get(&format!("/f{t}/{i}"), &[]).status != 200 {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // 250 ms up, 250 ms down, for 5 s.
    let t0 = Instant::now();
    let mut down_time = Duration::ZERO;
    while t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(250));
        let now_bad = !bad.load(Ordering::Acquire);
        bad.store(now_bad, Ordering::Release);
        if !now_bad {
            down_time += Duration::from_millis(250);
        }
    }
    stop.store(true, Ordering::Release);
    for t in threads {
        t.join().unwrap();
    }
    let (total, storm) = (done.load(Ordering::Relaxed), served_bad.load(Ordering::Relaxed));
    eprintln!("{total} GETs; the primary answered 503 to {storm} requests in {down_time:?} of being bad");
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    // Every bad spell costs at most the failures that take it down (3), a probe, and the
    // requests already in flight (4 viewers): about 10 bad spells.
    assert!(
        storm <= 10 * (3 + 1 + 4),
        "{storm} requests reached the bad primary of {total}"
    );
    assert!(total > 100, "load too light to mean anything: {total}");
}

#[test]
fn with_every_member_down_a_stale_copy_is_served_before_any_error() {
    let reply = |r: &Seen| {
        Reply::ok(
            format!("copy of {}", r.target).as_bytes(),
            &[("Cache-Control", "max-age=1, stale-if-error=600")],
        )
    };
    let primary = Origin::start(reply);
    let secondary = Origin::start(reply);
    let s = start(primary.port, secondary.port, "");
    assert_eq!(s.get("/kept", &[]).body, b"copy of /kept");
    primary.stop();
    secondary.stop();
    std::thread::sleep(Duration::from_millis(1300));
    for _ in 0..5 {
        let r = s.get("/kept", &[]);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"copy of /kept"[..]),
            "{}",
            s.stderr()
        );
        assert!(r.header("cache-status").unwrap().contains("fwd=stale"));
    }
    // Without a stored copy: the error.
    assert_eq!(s.get("/never-stored", &[]).status, 502);
}
