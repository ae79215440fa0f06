#![allow(clippy::unwrap_used)]
//! Origin faults, each with its viewer outcome: the right 502/504 or a clean close, nothing
//! partial stored, and `/metrics` counting the kind. The origin is a scripted TCP server that
//! reads a request head and then plays its steps.

mod util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::{read_response, TestServer};

#[derive(Clone)]
enum Step {
    Send(Vec<u8>),
    Sleep(Duration),
    /// Close with a reset (SO_LINGER 0).
    Reset,
    /// Send these bytes one at a time, this far apart.
    Drip(Vec<u8>, Duration),
    /// Send these bytes again and again until the peer goes away.
    Forever(Vec<u8>),
}

struct Scripted {
    port: u16,
    requests: Arc<AtomicUsize>,
    /// Set when a `Forever` step ended because the server closed the connection.
    peer_left: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn scripted(script: impl Fn(usize) -> Vec<Step> + Send + Sync + 'static) -> Scripted {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let peer_left = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let script = Arc::new(script);
    let (r, p, st) = (requests.clone(), peer_left.clone(), stop.clone());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            if st.load(Ordering::Relaxed) {
                return;
            }
            let Ok(mut s) = conn else { continue };
            let (r, p, script) = (r.clone(), p.clone(), script.clone());
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut b = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&b[..n]),
                    }
                }
                let n = r.fetch_add(1, Ordering::SeqCst);
                for step in script(n) {
                    match step {
                        Step::Send(bytes) => {
                            if s.write_all(&bytes).is_err() {
                                return;
                            }
                        }
                        Step::Sleep(d) => std::thread::sleep(d),
                        Step::Reset => {
                            socket2::SockRef::from(&s)
                                .set_linger(Some(Duration::ZERO))
                                .unwrap();
                            return;
                        }
                        Step::Drip(bytes, every) => {
                            for byte in bytes {
                                if s.write_all(&[byte]).is_err() {
                                    return;
                                }
                                std::thread::sleep(every);
                            }
                        }
                        Step::Forever(bytes) => {
                            let t = Instant::now();
                            while t.elapsed() < Duration::from_secs(30) {
                                if s.write_all(&bytes).is_err() {
                                    p.store(true, Ordering::SeqCst);
                                    return;
                                }
                            }
                        }
                    }
                }
            });
        }
    });
    Scripted {
        port,
        requests,
        peer_left,
        stop,
    }
}

fn start(port: u16) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 1

[admin]
listen = "127.0.0.1:0"

[[origins]]
id = "app"
domain_name = "127.0.0.1"
http_port = {port}
protocol = "http-only"
read_timeout = "1s"
connect_timeout = "1s"

[default_cache_behavior]
target_origin = "app"

[cache]
path = "{}"
size = "64MiB"
"#,
        dir.path().join("slab").display()
    );
    TestServer::start_config(dir, &cfg)
}

fn head(extra: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n{extra}\r\n").into_bytes()
}

/// What the viewer got: the bytes until the server closed (or 10 s passed).
fn fetch(s: &TestServer, path: &str) -> (Vec<u8>, Duration) {
    let t = Instant::now();
    let mut c = s.connect();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    (out, t.elapsed())
}

fn metric(s: &TestServer, kind: &str) -> u64 {
    let mut c = TcpStream::connect(("127.0.0.1", s.admin_port.unwrap())).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false).unwrap();
    let text = String::from_utf8_lossy(&r.body).to_string();
    let want = format!("slabfront_origin_errors_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&want))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no {want} in {text}"))
}

fn status_of(bytes: &[u8]) -> u16 {
    std::str::from_utf8(&bytes[9..12.min(bytes.len())])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A response whose body was cut short: the viewer got the head and then a close before the
/// declared length (never a complete-looking response).
fn cut_short(bytes: &[u8], declared: usize) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return true;
    };
    bytes.len() - (end + 4) < declared
}

/// The object was not stored: asking again reaches the origin again.
fn not_stored(s: &TestServer, o: &Scripted, path: &str) {
    let before = o.requests.load(Ordering::SeqCst);
    let _ = fetch(s, path);
    assert!(
        o.requests.load(Ordering::SeqCst) > before,
        "{path}: a failed fill was stored and served"
    );
}

#[test]
fn connection_refused_is_a_502_counted_as_connect() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = start(port);
    let (r, _) = fetch(&s, "/a");
    assert_eq!(status_of(&r), 502, "{}", String::from_utf8_lossy(&r));
    assert!(metric(&s, "connect") >= 1);
}

#[test]
fn malformed_heads_are_502s_and_never_stored() {
    let big = format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n", "b".repeat(200_000)).into_bytes();
    let cases: Vec<(&str, Vec<Step>)> = vec![
        (
            "reset mid-head",
            vec![Step::Send(b"HTTP/1.1 200 OK\r\nContent-Le".to_vec()), Step::Reset],
        ),
        (
            "garbage status line",
            vec![Step::Send(b"HELLO WORLD\r\n\r\n".to_vec())],
        ),
        ("oversize head", vec![Step::Send(big)]),
        (
            "interim flood",
            vec![Step::Forever(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec())],
        ),
    ];
    for (what, steps) in cases {
        let o = scripted(move |_| steps.clone());
        let s = start(o.port);
        let (r, _) = fetch(&s, "/a");
        assert_eq!(
            status_of(&r),
            502,
            "{what}: {}",
            String::from_utf8_lossy(&r[..r.len().min(200)])
        );
        not_stored(&s, &o, "/a");
    }
}

#[test]
fn a_head_dripped_a_byte_a_second_is_a_504_within_the_read_timeout() {
    let o = scripted(|_| {
        vec![Step::Drip(
            head("Content-Length: 2\r\n"),
            Duration::from_millis(300),
        )]
    });
    let s = start(o.port);
    let (r, took) = fetch(&s, "/a");
    assert_eq!(status_of(&r), 504, "{}", String::from_utf8_lossy(&r));
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert!(metric(&s, "timeout") >= 1);
}

#[test]
fn bodies_cut_short_close_the_viewer_and_are_not_stored() {
    let cases: Vec<(&str, usize, Vec<Step>)> = vec![
        (
            "reset mid-body (Content-Length)",
            1000,
            vec![
                Step::Send([head("Content-Length: 1000\r\n"), vec![b'x'; 10]].concat()),
                Step::Reset,
            ],
        ),
        (
            "reset mid-body (chunked)",
            1000,
            vec![
                Step::Send([head("Transfer-Encoding: chunked\r\n"), b"5\r\nhello\r\n".to_vec()].concat()),
                Step::Reset,
            ],
        ),
        (
            "Content-Length larger than the body",
            100,
            vec![Step::Send(
                [head("Content-Length: 100\r\n"), vec![b'x'; 10]].concat(),
            )],
        ),
        (
            "stall after the head",
            100,
            vec![
                Step::Send(head("Content-Length: 100\r\n")),
                Step::Sleep(Duration::from_secs(4)),
            ],
        ),
    ];
    for (what, declared, steps) in cases {
        let o = scripted(move |_| steps.clone());
        let s = start(o.port);
        let (r, took) = fetch(&s, "/a");
        let status = status_of(&r);
        assert!(
            status == 502 || (status == 200 && cut_short(&r, declared)),
            "{what}: {}",
            String::from_utf8_lossy(&r[..r.len().min(300)])
        );
        assert!(took < Duration::from_secs(4), "{what}: took {took:?}");
        not_stored(&s, &o, "/a");
    }
}

#[test]
fn a_body_longer_than_its_content_length_is_cut_at_the_length() {
    // The extra bytes must not be taken as the next response on a pooled connection.
    let o = scripted(|n| {
        let body = format!("body{n}");
        vec![Step::Send(
            [
                head(&format!("Content-Length: {}\r\n", body.len())),
                body.into_bytes(),
                b"EXTRA JUNK".to_vec(),
            ]
            .concat(),
        )]
    });
    let s = start(o.port);
    let first = s.get("/one", &[]);
    assert_eq!(first.status, 200);
    assert_eq!(first.body, b"body0");
    let second = s.get("/two", &[]);
    assert_eq!(second.status, 200);
    assert_eq!(second.body, b"body1");
    // Stored at the declared length.
    let again = s.get("/one", &[]);
    assert_eq!(again.body, b"body0");
    assert_eq!(o.requests.load(Ordering::SeqCst), 2);
}

#[test]
fn an_endless_body_stops_being_fetched_when_the_viewer_leaves() {
    let o = scripted(|_| {
        vec![
            Step::Send(head("Transfer-Encoding: chunked\r\n")),
            Step::Forever(
                b"4000\r\n"
                    .iter()
                    .copied()
                    .chain([b'z'; 0x4000])
                    .chain(*b"\r\n")
                    .collect(),
            ),
        ]
    });
    let s = start(o.port);
    let mut c = s.connect();
    c.write_all(b"GET /endless HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut got = 0;
    let mut b = vec![0u8; 65536];
    while got < 2 << 20 {
        got += c.read(&mut b).unwrap();
    }
    drop(c);
    let t = Instant::now();
    while !o.peer_left.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        o.peer_left.load(Ordering::SeqCst),
        "the origin is still being read after the viewer left"
    );
}

/// A TLS origin whose certificate is trusted as a root but names another host, or has
/// expired: the handshake fails, the viewer gets a 502, and the origin never sees a request.
#[test]
fn tls_origins_with_a_wrong_name_or_an_expired_certificate_are_502s() {
    use util::origin::{Origin, Reply, Seen};
    let make = |names: &[&str], expired: bool| {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert.der().clone()], der)
                .unwrap();
        (Arc::new(config), cert.pem())
    };
    for (what, names, expired) in [
        ("wrong name", &["other.test"][..], false),
        ("expired", &["localhost"][..], true),
    ] {
        let (config, pem) = make(names, expired);
        let origin = Origin::start_tls(config, |_r: &Seen| {
            Reply::ok(b"secret", &[("Cache-Control", "max-age=60")])
        });
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, pem).unwrap();
        let cfg = format!(
            r#"
[server]
listen = ["127.0.0.1:0"]
workers = 1
[admin]
listen = "127.0.0.1:0"
[[origins]]
id = "secure"
domain_name = "localhost"
https_port = {port}
protocol = "https-only"
ca_file = "{ca}"
[default_cache_behavior]
target_origin = "secure"
[cache]
path = "{cache}"
size = "64MiB"
"#,
            port = origin.port,
            ca = ca.display(),
            cache = dir.path().join("slab").display()
        );
        let s = TestServer::start_config(dir, &cfg);
        let r = s.get("/tls", &[]);
        assert_eq!(r.status, 502, "{what}");
        assert_eq!(
            origin.count(),
            0,
            "{what}: a request went over an unverified connection"
        );
        assert!(metric(&s, "tls") >= 1, "{what}");
    }
}

/// Every waiter of a collapsed fill is answered when the fill fails: none hangs, none gets a
/// complete-looking response, and the failed object is not stored.
#[test]
fn waiters_of_a_failed_collapsed_fill_are_all_answered() {
    let o = scripted(|n| {
        if n == 0 {
            vec![
                Step::Send([head("Content-Length: 100000\r\n"), vec![b'x'; 1000]].concat()),
                Step::Sleep(Duration::from_millis(500)),
                Step::Reset,
            ]
        } else {
            let body = b"fresh".to_vec();
            vec![Step::Send(
                [head(&format!("Content-Length: {}\r\n", body.len())), body].concat(),
            )]
        }
    });
    let s = Arc::new(start(o.port));
    let viewers: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || fetch(&s, "/collapsed"))
        })
        .collect();
    for v in viewers {
        let (r, took) = v.join().unwrap();
        let status = status_of(&r);
        assert!(took < Duration::from_secs(5), "a waiter took {took:?}");
        assert!(
            status == 502
                || status == 504
                || (status == 200 && (cut_short(&r, 100_000) || r.ends_with(b"fresh"))),
            "{}",
            String::from_utf8_lossy(&r[..r.len().min(300)])
        );
    }
    let again = s.get("/collapsed", &[]);
    assert_eq!(again.body, b"fresh", "the failed fill was stored");
}
