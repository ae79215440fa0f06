#![allow(clippy::unwrap_used)]
//! Crash safety under load: mixed load (hits, misses, large streamed fills, invalidations)
//! while the server is killed with SIGKILL at random moments, 50 times, restarting on the
//! same slab. Every complete response must be the origin's bytes for that path (never a
//! truncated or foreign body), and an object invalidated (201 received) never comes back.

mod util;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::origin::{Origin, Reply, Seen};
use util::{read_response, TestServer};

const PATHS: usize = 60;

/// The origin's body for `path` at `version`: a first line naming both, then bytes that
/// depend on both, so a body of another object or version, or a cut one, never matches.
fn body(path: &str, version: u32) -> Vec<u8> {
    let i: usize = path.trim_start_matches("/o").parse().unwrap_or(0);
    // Every tenth object is large: filled by streaming, sent from the slab by the file path.
    let len = if i.is_multiple_of(10) {
        1_500_000
    } else {
        500 + (i * 7919) % 60_000
    };
    let mut b = format!("{path} v{version}\n").into_bytes();
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(version);
    while b.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.push(b'a' + (x % 26) as u8);
    }
    b
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One GET; `Some(body)` only for a complete 200.
fn get(port: u16, path: &str) -> Option<Vec<u8>> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let r = read_response(&mut c, false).ok()?;
    (r.status == 200).then_some(r.body)
}

fn invalidate(admin: u16, path: &str) -> bool {
    let Ok(mut c) = TcpStream::connect(("127.0.0.1", admin)) else {
        return false;
    };
    let body = format!(r#"{{"paths":["{path}"]}}"#);
    let req = format!(
        "POST /invalidations HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if c.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    out.starts_with(b"HTTP/1.1 201")
}

#[test]
fn fifty_kill_9s_under_load_never_serve_a_wrong_byte() {
    let versions: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let v = versions.clone();
    let origin = Origin::start(move |r: &Seen| {
        let version = *v.lock().unwrap().get(&r.target).unwrap_or(&0);
        Reply::ok(&body(&r.target, version), &[("Cache-Control", "max-age=3600")])
    });
    let slab = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 2

[admin]
listen = "127.0.0.1:0"

[[origins]]
id = "app"
domain_name = "127.0.0.1"
http_port = {}
protocol = "http-only"

[default_cache_behavior]
target_origin = "app"

[cache]
path = "{}"
size = "64MiB"
"#,
        origin.port,
        slab.path().join("slab").display()
    );
    // The lowest version each path may be served at, for requests begun after the
    // invalidation that set it was acknowledged.
    let floor: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let wrong: Arc<Mutex<Vec<String>>> = Arc::default();
    let served = Arc::new(AtomicUsize::new(0));
    let invalidated = Arc::new(AtomicUsize::new(0));
    let mut recovery = Vec::new();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for round in 0..50u64 {
        let t = Instant::now();
        let mut s = TestServer::start_config(tempfile::tempdir().unwrap(), &cfg);
        recovery.push(t.elapsed());
        let (port, admin) = (s.port, s.admin_port.unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let seed = Arc::new(AtomicU64::new(rng.next()));
        let mut threads = Vec::new();
        for k in 0..3 {
            let (stop, floor, wrong, served, seed) = (
                stop.clone(),
                floor.clone(),
                wrong.clone(),
                served.clone(),
                seed.clone(),
            );
            threads.push(std::thread::spawn(move || {
                let mut r = Rng(seed.load(Ordering::Relaxed) ^ (k + 1));
                while !stop.load(Ordering::Relaxed) {
                    // Skewed toward the first paths: mostly hits, some misses.
                    let i = r.below(PATHS as u64).min(r.below(PATHS as u64));
                    let path = format!("/o{i}");
                    let min = *floor.lock().unwrap().get(&path).unwrap_or(&0);
                    let Some(got) = get(port, &path) else { continue };
                    let first = got.split(|&b| b == b'\n').next().unwrap_or(&[]);
                    let first = String::from_utf8_lossy(first).to_string();
                    let ok = first
                        .strip_prefix(&format!("{path} v"))
                        .and_then(|v| v.parse::<u32>().ok())
                        .filter(|&v| v >= min)
                        .is_some_and(|v| got == body(&path, v));
                    if !ok {
                        wrong.lock().unwrap().push(format!(
                            "{path} (floor v{min}): {} bytes starting {first:?}",
                            got.len()
                        ));
                    }
                    served.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        // Invalidations: a new version at the origin, then the edge told.
        if round.is_multiple_of(2) {
            let path = format!("/o{}", rng.below(10));
            let next = {
                let mut v = versions.lock().unwrap();
                let e = v.entry(path.clone()).or_insert(0);
                *e += 1;
                *e
            };
            if invalidate(admin, &path) {
                floor.lock().unwrap().insert(path, next);
                invalidated.fetch_add(1, Ordering::Relaxed);
            }
        }
        std::thread::sleep(Duration::from_millis(20 + rng.below(300)));
        s.kill9();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
    }
    recovery.sort();
    eprintln!(
        "50 kill -9 restarts: {} complete responses checked, {} invalidations; start to listening: median {:?}, max {:?}",
        served.load(Ordering::Relaxed),
        invalidated.load(Ordering::Relaxed),
        recovery[recovery.len() / 2],
        recovery[recovery.len() - 1]
    );
    let wrong = wrong.lock().unwrap();
    assert!(
        wrong.is_empty(),
        "{} wrong bodies: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert!(
        served.load(Ordering::Relaxed) > 500,
        "too little load to mean anything"
    );
    assert!(invalidated.load(Ordering::Relaxed) >= 20);
}
