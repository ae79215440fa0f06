#![allow(clippy::unwrap_used)]
//! Origins at the edges of the caching RFCs, end to end through the real binary: malformed
//! `Age` (RFC 9111 §5.1), targeted cache control (`CDN-Cache-Control`, RFC 9213) in a chain
//! of caches, and interim responses (`103 Early Hints`, RFC 8297).
//!
//! The request path (`conn::caching`) calls `proxy::policy::age`, `directives` /
//! `consumed_here` and `proxy::upstream::HeadReader` / `viewer_interim`; the CI caching suite
//! (tests/cache-tests/suite) expects the same `Age` handling as these tests.

mod util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::origin::{Origin, Reply, Seen};
use util::{read_one, Response, TestServer};

const WIRING: &str = "conn wiring of proxy::policy::directives / proxy::upstream::HeadReader";

/// A distribution with one HTTP origin on `port`; `behavior` lines go into the default
/// behavior.
fn config(dir: &std::path::Path, port: u16, node: &str, behavior: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 2
node_name = "{node}"

[[origins]]
id = "app"
domain_name = "127.0.0.1"
http_port = {port}
protocol = "http-only"
read_timeout = "3s"
connect_timeout = "1s"

[default_cache_behavior]
target_origin = "app"
{behavior}

[cache]
path = "{cache}"
size = "64MiB"
"#,
        cache = dir.join("slab").display()
    )
}

fn start_on(port: u16, node: &str, behavior: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), port, node, behavior);
    TestServer::start_config(dir, &cfg)
}

fn start(origin: &Origin) -> TestServer {
    start_on(origin.port, "edge-test", "")
}

fn hit(r: &Response) -> bool {
    r.header("x-cache") == Some("Hit from slabfront")
}

/// A hit at the cache named `node` (its own `Cache-Status` member; a response stored from
/// another slabfront tier also carries that tier's).
fn hit_at(r: &Response, node: &str) -> bool {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cache-status"))
        // RFC 9211's chained form: one list, the upstream caches' entries first.
        .any(|(_, v)| v.split(", ").any(|e| e == format!("{node}; hit")))
}

fn count(origin: &Origin, path: &str) -> usize {
    origin.requests().iter().filter(|r| r.target == path).count()
}

/// Replies to `/<anything>` with the headers `table` gives for that path, and `max-age=15`.
fn origin_with(table: Vec<(&'static str, Vec<(&'static str, String)>)>) -> Origin {
    Origin::start(move |r: &Seen| {
        let extra = table
            .iter()
            .find(|(p, _)| *p == r.target)
            .map(|(_, h)| h.clone())
            .unwrap_or_default();
        let mut reply = Reply::ok(format!("body of {}", r.target).as_bytes(), &[]);
        reply
            .headers
            .extend(extra.into_iter().map(|(n, v)| (n.to_string(), v)));
        reply
    })
}

// ---- Age (RFC 9111 §5.1) ----

#[test]
fn an_invalid_age_does_not_keep_a_response_out_of_the_cache() {
    let bad: Vec<(&'static str, &'static str)> = vec![
        ("/non-numeric", "abc"),
        ("/negative", "-7200"),
        ("/fractional", "7200.0"),
        ("/trailing-junk", "7200a"),
        ("/leading-junk", "a7200"),
        ("/inner-space", "72 00"),
        ("/empty", ""),
    ];
    let origin = origin_with(
        bad.iter()
            .map(|(p, v)| {
                (
                    *p,
                    vec![
                        ("Cache-Control", "max-age=3600".to_string()),
                        ("Age", v.to_string()),
                    ],
                )
            })
            .collect(),
    );
    let s = start(&origin);
    for (path, v) in &bad {
        let a = s.get(path, &[]);
        assert_eq!(a.status, 200, "Age: {v:?}");
        let b = s.get(path, &[]);
        assert!(
            hit(&b),
            "Age: {v:?} kept the response out of the cache: {:?}",
            b.headers
        );
        assert!(
            b.header("age").unwrap().parse::<u64>().unwrap() < 60,
            "Age: {v:?} is ignored"
        );
        assert_eq!(count(&origin, path), 1, "Age: {v:?}");
    }
}

#[test]
fn a_list_or_repeated_age_counts_by_its_first_member() {
    let h = |ages: &[&str]| {
        let mut v = vec![("Cache-Control", "max-age=15".to_string())];
        v.extend(ages.iter().map(|a| ("Age", a.to_string())));
        v
    };
    let origin = origin_with(vec![
        ("/list-young-first", h(&["10, 20"])),
        ("/list-old-first", h(&["20, 10"])),
        ("/lines-young-first", h(&["10", "20"])),
        ("/lines-old-first", h(&["20", "10"])),
        ("/invalid-then-old", h(&["-1", "20"])),
        ("/huge", h(&["2147483648"])),
    ]);
    let s = start(&origin);
    for path in ["/list-young-first", "/lines-young-first", "/invalid-then-old"] {
        let a = s.get(path, &[]);
        assert_eq!(a.status, 200);
        let b = s.get(path, &[]);
        assert!(hit(&b), "{path}: {:?}", b.headers);
        assert_eq!(count(&origin, path), 1, "{path}");
        if path != "/invalid-then-old" {
            let age: u64 = b.header("age").unwrap().parse().unwrap();
            assert!((10..15).contains(&age), "{path}: the hit is {age} s old");
        }
    }
    // The first member is older than max-age: stale at once, so asked for again.
    for path in ["/list-old-first", "/lines-old-first", "/huge"] {
        s.get(path, &[]);
        let b = s.get(path, &[]);
        assert!(!hit(&b), "{path}: {:?}", b.headers);
        assert_eq!(count(&origin, path), 2, "{path}");
    }
}

// ---- Targeted cache control (RFC 9213) ----

#[test]
fn cdn_cache_control_decides_and_reaches_the_viewer_unchanged() {
    let _ = WIRING;
    let origin = origin_with(vec![
        (
            "/cdn",
            vec![
                ("Cache-Control", "no-store".to_string()),
                ("CDN-Cache-Control", "max-age=600, stale-if-error=30".to_string()),
            ],
        ),
        (
            "/cdn-no-store",
            vec![
                ("Cache-Control", "max-age=600".to_string()),
                ("CDN-Cache-Control", "no-store".to_string()),
            ],
        ),
    ]);
    let s = start(&origin);
    let a = s.get("/cdn", &[]);
    let b = s.get("/cdn", &[]);
    assert!(
        hit(&b),
        "CDN-Cache-Control overrides Cache-Control: {:?}",
        b.headers
    );
    assert_eq!(count(&origin, "/cdn"), 1);
    for r in [&a, &b] {
        assert_eq!(
            r.header("cdn-cache-control"),
            Some("max-age=600, stale-if-error=30"),
            "passed downstream unchanged (miss and hit): {:?}",
            r.headers
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    s.get("/cdn-no-store", &[]);
    let b = s.get("/cdn-no-store", &[]);
    assert!(!hit(&b));
    assert_eq!(b.header("cdn-cache-control"), Some("no-store"));
    assert_eq!(count(&origin, "/cdn-no-store"), 2);
}

#[test]
fn an_invalid_cdn_cache_control_is_ignored_and_cache_control_applies() {
    let bad = [
        "max-age=\"600\"",
        "max-age=600.0",
        "max-age=-600",
        "max-age=600x",
        "Max-Age=600",
        "max-age =600",
        "max-age=600,,",
        "max-age=(600)",
        "no-store=1, max-age=600",
    ];
    let paths: Vec<&'static str> = (0..bad.len())
        .map(|i| &*format!("/bad-{i}").leak())
        .chain((0..bad.len()).map(|i| &*format!("/bad-cc-fresh-{i}").leak()))
        .collect();
    let table = (0..bad.len())
        .flat_map(|i| {
            [
                (
                    paths[i],
                    vec![
                        ("Cache-Control", "no-store".to_string()),
                        ("CDN-Cache-Control", bad[i].to_string()),
                    ],
                ),
                (
                    paths[bad.len() + i],
                    vec![
                        ("Cache-Control", "max-age=600".to_string()),
                        ("CDN-Cache-Control", bad[i].to_string()),
                    ],
                ),
            ]
        })
        .collect();
    let origin = origin_with(table);
    let s = start(&origin);
    for (i, v) in bad.iter().enumerate() {
        // Cache-Control: no-store applies: never a hit.
        let (p, q) = (paths[i], paths[bad.len() + i]);
        let a = s.get(p, &[]);
        assert_eq!(a.header("cdn-cache-control"), Some(*v), "forwarded as it came");
        let b = s.get(p, &[]);
        assert!(!hit(&b), "CDN-Cache-Control: {v} was obeyed: {:?}", b.headers);
        assert_eq!(count(&origin, p), 2, "CDN-Cache-Control: {v}");
        // Cache-Control: max-age=600 applies: a hit.
        s.get(q, &[]);
        let b = s.get(q, &[]);
        assert!(hit(&b), "CDN-Cache-Control: {v} kept Cache-Control from applying");
        assert_eq!(count(&origin, q), 1, "CDN-Cache-Control: {v}");
    }
}

#[test]
fn a_valid_cdn_cache_control_makes_expires_ignored() {
    let origin = origin_with(vec![(
        "/cdn-public",
        vec![
            ("CDN-Cache-Control", "public".to_string()),
            ("Expires", "Thu, 01 Jan 1970 00:00:00 GMT".to_string()),
        ],
    )]);
    // Without explicit freshness the behavior's default TTL applies.
    let s = start_on(origin.port, "edge-test", "default_ttl = 600");
    s.get("/cdn-public", &[]);
    let b = s.get("/cdn-public", &[]);
    assert!(hit(&b), "Expires in the past decided: {:?}", b.headers);
    assert_eq!(count(&origin, "/cdn-public"), 1);
}

#[test]
fn surrogate_control_aimed_here_is_consumed_and_removed() {
    let origin = origin_with(vec![(
        "/sc",
        vec![
            ("Cache-Control", "no-store".to_string()),
            ("Surrogate-Control", "max-age=600;slabfront".to_string()),
        ],
    )]);
    let s = start(&origin);
    let a = s.get("/sc", &[]);
    let b = s.get("/sc", &[]);
    assert!(hit(&b), "{:?}", b.headers);
    assert_eq!(count(&origin, "/sc"), 1);
    for r in [&a, &b] {
        assert!(r.header("surrogate-control").is_none(), "{:?}", r.headers);
    }
}

/// An edge behind a shield, both slabfront: the shield forwards `CDN-Cache-Control`, so the
/// edge obeys it too, while viewers (and browsers) keep `Cache-Control: no-store`.
#[test]
fn cdn_cache_control_reaches_the_next_cache_in_a_chain() {
    let origin = origin_with(vec![(
        "/chain",
        vec![
            ("Cache-Control", "no-store".to_string()),
            ("CDN-Cache-Control", "max-age=600".to_string()),
        ],
    )]);
    let shield = start_on(origin.port, "shield", "");
    let edge = start_on(shield.port, "edge", "headers = \"all\"");
    let a = edge.get("/chain", &[]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("cdn-cache-control"), Some("max-age=600"));
    let b = edge.get("/chain", &[]);
    assert!(
        hit_at(&b, "edge"),
        "the edge did not obey the shield's CDN-Cache-Control: {:?}",
        b.headers
    );
    assert_eq!(b.header("cache-control"), Some("no-store"));
    assert_eq!(b.header("cdn-cache-control"), Some("max-age=600"));
    // Another edge behind the same shield: its miss is the shield's hit.
    let edge2 = start_on(shield.port, "edge2", "");
    let c = edge2.get("/chain", &[]);
    assert_eq!(c.status, 200);
    assert_eq!(count(&origin, "/chain"), 1, "the shield served the second edge");
}

// ---- Interim responses (RFC 9110 §15.2, RFC 8297) ----

/// An origin that answers every request with `script` on the raw socket (then closes).
struct Scripted {
    port: u16,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Scripted {
    fn start(script: impl Fn(&mut TcpStream) + Send + Sync + 'static) -> Scripted {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let script = Arc::new(script);
        let (n, st) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                if st.load(Ordering::Acquire) {
                    return;
                }
                let Ok(mut s) = s else { continue };
                let (n, script) = (n.clone(), script.clone());
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match s.read(&mut b) {
                            Ok(1) => head.push(b[0]),
                            _ => return,
                        }
                    }
                    n.fetch_add(1, Ordering::SeqCst);
                    script(&mut s);
                    let _ = s.flush();
                });
            }
        });
        Scripted { port, requests, stop }
    }

    fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

const HINTS: &[u8] = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n";
const FINAL: &[u8] =
    b"HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: 4\r\nConnection: close\r\n\r\npage";

/// Writes the hints, waits `think`, writes the final response.
fn hints_then_final(think: Duration) -> impl Fn(&mut TcpStream) + Send + Sync + 'static {
    move |s: &mut TcpStream| {
        let _ = s.write_all(HINTS);
        let _ = s.flush();
        std::thread::sleep(think);
        let _ = s.write_all(FINAL);
    }
}

/// Sends a GET and reads every response on the connection, noting when each head arrived.
fn get_all(s: &TestServer, path: &str, version: &str) -> Vec<(Response, Duration)> {
    let mut c = s.connect();
    let t0 = Instant::now();
    write!(
        c,
        "GET {path} {version}\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    loop {
        let r = read_one(&mut c, false).unwrap();
        let done = r.status >= 200;
        out.push((r, t0.elapsed()));
        if done {
            return out;
        }
    }
}

#[test]
fn early_hints_reach_the_viewer_before_the_final_response_and_are_never_stored() {
    let origin = Scripted::start(hints_then_final(Duration::from_millis(600)));
    let s = start_on(origin.port, "edge-test", "");
    let got = get_all(&s, "/page", "HTTP/1.1");
    assert_eq!(got.len(), 2, "{got:?}");
    let (hints, at) = &got[0];
    assert_eq!(hints.status, 103);
    assert_eq!(hints.header("link"), Some("</style.css>; rel=preload; as=style"));
    assert!(
        *at < Duration::from_millis(500),
        "the hints waited for the final response: {at:?}"
    );
    let (fin, fin_at) = &got[1];
    assert_eq!((fin.status, &fin.body[..]), (200, &b"page"[..]));
    assert!(*fin_at >= Duration::from_millis(600));
    assert!(
        fin.header("link").is_none(),
        "hints are not merged into the final response"
    );
    // The stored response is the final one only.
    let again = get_all(&s, "/page", "HTTP/1.1");
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(hit(&again[0].0));
    assert!(again[0].0.header("link").is_none());
    assert_eq!(origin.count(), 1);
}

#[test]
fn no_interim_response_reaches_an_http10_viewer() {
    let origin = Scripted::start(hints_then_final(Duration::from_millis(50)));
    let s = start_on(origin.port, "edge-test", "");
    let got = get_all(&s, "/page10", "HTTP/1.0");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0.status, 200);
}

#[test]
fn waiters_of_a_collapsed_fill_get_the_final_response_only() {
    let origin = Scripted::start(hints_then_final(Duration::from_millis(800)));
    let s = Arc::new(start_on(origin.port, "edge-test", ""));
    let leader = {
        let s = s.clone();
        std::thread::spawn(move || get_all(&s, "/collapsed", "HTTP/1.1"))
    };
    std::thread::sleep(Duration::from_millis(200));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || get_all(&s, "/collapsed", "HTTP/1.1"))
        })
        .collect();
    let leader = leader.join().unwrap();
    assert_eq!(
        leader.iter().map(|(r, _)| r.status).collect::<Vec<_>>(),
        [103, 200],
        "the viewer whose request went to the origin gets the hints"
    );
    for w in waiters {
        let w = w.join().unwrap();
        assert_eq!(w.len(), 1, "a waiter got interim responses: {w:?}");
        assert_eq!((w[0].0.status, &w[0].0.body[..]), (200, &b"page"[..]));
    }
    assert_eq!(origin.count(), 1, "collapsed into one origin request");
}

#[test]
fn hundred_continue_from_the_origin_is_not_forwarded() {
    let origin = Scripted::start(|s: &mut TcpStream| {
        let _ = s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        let _ = s.write_all(FINAL);
    });
    let s = start_on(origin.port, "edge-test", "");
    let got = get_all(&s, "/continue", "HTTP/1.1");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0.status, &got[0].0.body[..]), (200, &b"page"[..]));
}

/// The bound the request path has today; the relaying of 103 keeps it.
#[test]
fn an_interim_flood_is_bounded_and_answered_with_502() {
    // Many hints, then a final response: the flood fails the exchange.
    let origin = Scripted::start(|s: &mut TcpStream| {
        let _ = s.write_all(&HINTS.repeat(1000));
        let _ = s.write_all(FINAL);
    });
    let s = start_on(origin.port, "edge-test", "");
    let got = get_all(&s, "/flood", "HTTP/1.1");
    let (fin, _) = got.last().unwrap();
    assert_eq!(fin.status, 502, "{:?}", fin.headers);
    assert!(
        got.len() - 1 <= 16,
        "{} interim responses reached the viewer",
        got.len() - 1
    );
    let again = get_all(&s, "/flood", "HTTP/1.1");
    assert!(!hit(&again.last().unwrap().0), "nothing was stored");
    // Hints without end (never a final response, never a quiet read): answered within the
    // read timeout (3 s) all the same.
    let endless = Scripted::start(|s: &mut TcpStream| {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(8) {
            if s.write_all(HINTS).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let s = start_on(endless.port, "edge-test", "");
    let t0 = Instant::now();
    let got = get_all(&s, "/endless", "HTTP/1.1");
    assert_eq!(got.last().unwrap().0.status, 502);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}
