#![allow(clippy::unwrap_used)]
//! The directory origin and the HTTP/1.1 core, through the real binary over raw TCP.

mod util;

use std::io::{Read, Write};
use std::time::{Duration, Instant};
use util::*;

fn server(driver: &str) -> (tempfile::TempDir, TestServer) {
    let site = site();
    let s = TestServer::start(site.path(), &format!("workers = 2\ndriver = {driver:?}"));
    (site, s)
}

#[test]
fn get_head_and_default_root_object_on_both_drivers() {
    for driver in DRIVERS {
        let (_site, s) = server(driver);
        let r = s.get("/", &[]);
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(r.body, b"<h1>index</h1>\n");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(r.header("etag").unwrap().starts_with('"'));
        assert!(r.header("last-modified").is_some());
        assert!(r.header("date").unwrap().ends_with("GMT"));

        let big = s.get("/big.bin", &[]);
        assert_eq!(big.status, 200);
        assert!(big.body == big_body(), "{driver}: big body differs");

        let mut c = s.connect();
        c.write_all(b"HEAD /1k.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /1k.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let h = read_response(&mut c, true).unwrap();
        assert_eq!(h.header("content-length"), Some("1024"));
        let g = read_response(&mut c, false).unwrap();
        assert_eq!(g.body, vec![b'a'; 1024], "HEAD must not send a body");
    }
}

#[test]
fn pipelined_responses_come_in_order() {
    for driver in DRIVERS {
        let (_site, s) = server(driver);
        let mut req = Vec::new();
        let paths = ["/1k.txt", "/missing", "/", "/docs/", "/big.bin", "/app.js"];
        for p in paths {
            req.extend_from_slice(format!("GET {p} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        }
        req.extend_from_slice(b"GET /1k.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let all = parse_all(&s.raw(&req));
        let statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![200, 404, 200, 200, 200, 200, 200], "{driver}");
        assert_eq!(all[3].body, b"docs index\n");
        assert!(all[4].body == big_body());
        assert_eq!(all[5].body, b"console.log('plain');\n");
        assert_eq!(all[6].header("connection"), Some("close"));
    }
}

/// Thousands of pipelined requests to a viewer that reads nothing for a while: the socket
/// takes part of the answers, the rest waits in order, and every response arrives whole.
#[test]
fn pipelined_responses_to_a_stalled_reader_arrive_whole_and_in_order() {
    for driver in DRIVERS {
        let (_site, s) = server(driver);
        let mut c = s.connect();
        let n = 6000;
        let mut req = Vec::new();
        for i in 0..n {
            let p = if i % 3 == 2 { "/app.js" } else { "/1k.txt" };
            let close = if i == n - 1 { "Connection: close\r\n" } else { "" };
            req.extend_from_slice(format!("GET {p} HTTP/1.1\r\nHost: t\r\n{close}\r\n").as_bytes());
        }
        let writer = {
            let mut c = c.try_clone().unwrap();
            std::thread::spawn(move || c.write_all(&req).unwrap())
        };
        std::thread::sleep(Duration::from_millis(300));
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        writer.join().unwrap();
        let all = parse_all(&out);
        assert_eq!(all.len(), n, "{driver}");
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.status, 200, "{driver} #{i}");
            if i % 3 == 2 {
                assert_eq!(r.body, b"console.log('plain');\n", "{driver} #{i}");
            } else {
                assert!(r.body == vec![b'a'; 1024], "{driver} #{i}");
            }
        }
    }
}

#[test]
fn pipelined_requests_split_at_every_byte() {
    let (_site, s) = server("io_uring");
    let req =
        b"GET /1k.txt HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    for cut in [1, 5, 17, 30, 33, 34, 40, 60] {
        let mut c = s.connect();
        c.set_nodelay(true).unwrap();
        c.write_all(&req[..cut]).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        c.write_all(&req[cut..]).unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        let all = parse_all(&out);
        assert_eq!(all.len(), 2, "cut {cut}");
        assert_eq!(all[1].body, b"<h1>index</h1>\n");
    }
}

#[test]
fn http10_and_connection_rules() {
    let (_site, s) = server("io_uring");
    // HTTP/1.0 without keep-alive: one response, then close.
    let out = s.raw(b"GET /1k.txt HTTP/1.0\r\n\r\nGET /1k.txt HTTP/1.0\r\n\r\n");
    let all = parse_all(&out);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].header("connection"), Some("close"));
    // HTTP/1.0 with keep-alive: the connection stays.
    let mut c = s.connect();
    c.write_all(b"GET /1k.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.status, 200);
    c.write_all(b"GET /1k.txt HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().status, 200);
    // HTTP/1.1 Connection: close.
    let out =
        s.raw(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(parse_all(&out).len(), 1);
}

#[test]
fn request_bodies_are_read_and_discarded() {
    let (_site, s) = server("io_uring");
    let req = b"GET /1k.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /docs/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let all = parse_all(&s.raw(req));
    let statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 200, 200]);
    assert_eq!(all[2].body, b"docs index\n");
}

#[test]
fn expect_100_continue() {
    let (_site, s) = server("io_uring");
    let mut c = s.connect();
    c.write_all(b"GET /1k.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let interim = read_one(&mut c, false).unwrap();
    assert_eq!(interim.status, 100);
    c.write_all(b"body").unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().status, 200);
    // A request that will be refused gets its final answer without 100, and the connection closes.
    let out = s.raw(b"PUT /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n");
    let all = parse_all(&out);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, 405);
    assert_eq!(all[0].header("allow"), Some("GET, HEAD"));
}

fn status_and_closed(s: &TestServer, req: &[u8]) -> (u16, usize) {
    let out = s.raw(req);
    let all = parse_all(&out);
    assert!(
        !all.is_empty(),
        "no response to {:?}",
        String::from_utf8_lossy(req)
    );
    (all[0].status, all.len())
}

#[test]
fn malformed_requests_are_refused_and_closed() {
    for driver in DRIVERS {
        let (_site, s) = server(driver);
        let next = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
        let cases: Vec<(String, u16)> = vec![
            (format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{next}"), 400),
            (format!("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc{next}"), 400),
            (format!("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -3\r\n\r\n{next}"), 400),
            (format!("GET / HTTP/1.1\r\nHost: t\r\nX-Fold: a\r\n  b\r\n\r\n{next}"), 400),
            (format!("GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n{next}"), 400),
            (format!("GET / HTTP/1.1\r\nHost: t\r\nBad Header: y\r\n\r\n{next}"), 400),
            (format!("GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{next}"), 400),
            (format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n{next}", "a".repeat(10_000)), 414),
            (format!("GET / HTTP/1.1\r\nHost: t\r\n{}\r\n{next}", (0..200).map(|i| format!("X-{i}: y\r\n")).collect::<String>()), 431),
            (format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n{next}", "b".repeat(20_000)), 431),
            (format!("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n{next}"), 413),
            (format!("GET / HTTP/2.0\r\nHost: t\r\n\r\n{next}"), 505),
            (format!("BREW / HTTP/1.1\r\nHost: t\r\n\r\n{next}"), 501),
            (format!("GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n{next}"), 501),
            (format!("GET / HTTP/1.1\r\n\r\n{next}"), 400),
            ("GARBAGE\r\n\r\n".to_string(), 400),
        ];
        for (req, want) in cases {
            let (status, n) = status_and_closed(&s, req.as_bytes());
            assert_eq!(status, want, "{driver}: {:?}", &req[..req.len().min(80)]);
            assert_eq!(n, 1, "{driver}: connection must close after {want}");
        }
        // The server still serves.
        assert_eq!(s.get("/", &[]).status, 200);
    }
}

#[test]
fn large_request_body_limit() {
    let site = site();
    let s = TestServer::start(site.path(), "max_body_bytes = 10");
    let (status, _) = status_and_closed(
        &s,
        b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nff\r\n",
    );
    assert_eq!(status, 413);
}

#[test]
fn ranges() {
    let (_site, s) = server("io_uring");
    let r = s.get("/big.bin", &[("Range", "bytes=100-199")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 100-199/1323539"));
    assert_eq!(r.body, &big_body()[100..200]);
    let r = s.get("/big.bin", &[("Range", "bytes=-10")]);
    assert_eq!(r.body, &big_body()[1_323_529..]);
    let r = s.get("/big.bin", &[("Range", "bytes=1323500-")]);
    assert_eq!(r.header("content-range"), Some("bytes 1323500-1323538/1323539"));
    assert_eq!(r.body.len(), 39);
    let r = s.get("/big.bin", &[("Range", "bytes=2000000-")]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */1323539"));
    // If-Range with the current ETag honours the range; with another, the full body comes.
    let etag = s.get("/1k.txt", &[]).header("etag").unwrap().to_string();
    let r = s.get("/1k.txt", &[("Range", "bytes=0-9"), ("If-Range", &etag)]);
    assert_eq!(r.status, 206);
    let r = s.get("/1k.txt", &[("Range", "bytes=0-9"), ("If-Range", "\"other\"")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 1024);
    // Several ranges: the whole representation.
    let r = s.get("/1k.txt", &[("Range", "bytes=0-1,5-6")]);
    assert_eq!(r.status, 200);
}

#[test]
fn conditional_requests() {
    let (_site, s) = server("io_uring");
    let r = s.get("/1k.txt", &[]);
    let etag = r.header("etag").unwrap().to_string();
    let lm = r.header("last-modified").unwrap().to_string();
    let r = s.get("/1k.txt", &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert!(r.body.is_empty());
    let r = s.get("/1k.txt", &[("If-None-Match", &format!("\"x\", W/{etag}"))]);
    assert_eq!(r.status, 304);
    let r = s.get("/1k.txt", &[("If-None-Match", "\"nope\"")]);
    assert_eq!(r.status, 200);
    let r = s.get("/1k.txt", &[("If-Modified-Since", &lm)]);
    assert_eq!(r.status, 304);
    let r = s.get(
        "/1k.txt",
        &[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")],
    );
    assert_eq!(r.status, 200);
    // If-None-Match takes precedence over If-Modified-Since.
    let r = s.get(
        "/1k.txt",
        &[("If-None-Match", "\"nope\""), ("If-Modified-Since", &lm)],
    );
    assert_eq!(r.status, 200);
    let r = s.get("/1k.txt", &[("If-Match", "\"nope\"")]);
    assert_eq!(r.status, 412);
}

#[test]
fn traversal_never_leaves_the_root() {
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join("secret.txt"), b"SECRET").unwrap();
    let root = outer.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("ok.txt"), b"ok").unwrap();
    std::os::unix::fs::symlink(outer.path().join("secret.txt"), root.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(outer.path(), root.join("updir")).unwrap();
    std::os::unix::fs::symlink(root.join("ok.txt"), root.join("alias.txt")).unwrap();
    let s = TestServer::start(&root, "");
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/ok.txt/../../secret.txt",
        "/..%2fsecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/secret.txt%00.txt",
        "/leak.txt",
        "/updir/secret.txt",
    ] {
        let out = s.raw(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes());
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("SECRET"), "{path} leaked");
        let r = &parse_all(&out)[0];
        assert!(r.status == 400 || r.status == 404, "{path}: {}", r.status);
    }
    assert_eq!(s.get("/alias.txt", &[]).body, b"ok");
    assert_eq!(s.get("/./ok.txt", &[]).body, b"ok");
}

#[test]
fn precompressed_siblings() {
    let (_site, s) = server("io_uring");
    let r = s.get("/app.js", &[]);
    assert_eq!(r.body, b"console.log('plain');\n");
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(r.header("content-encoding"), None);
    let r = s.get("/app.js", &[("Accept-Encoding", "gzip")]);
    assert_eq!(r.body, b"GZIPPED-BYTES");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("content-type"), Some("text/javascript; charset=utf-8"));
    let gz_etag = r.header("etag").unwrap().to_string();
    let r = s.get("/app.js", &[("Accept-Encoding", "gzip, deflate, br")]);
    assert_eq!(r.body, b"BROTLI-BYTES");
    assert_ne!(
        r.header("etag").unwrap(),
        gz_etag,
        "each encoding has its own ETag"
    );
    let r = s.get("/app.js", &[("Accept-Encoding", "br;q=0, gzip;q=0.5")]);
    assert_eq!(r.body, b"GZIPPED-BYTES");
    let r = s.get("/app.js", &[("Accept-Encoding", "identity")]);
    assert_eq!(r.body, b"console.log('plain');\n");
    // Files without siblings carry no Vary.
    assert_eq!(
        s.get("/1k.txt", &[("Accept-Encoding", "gzip")]).header("vary"),
        None
    );
}

#[test]
fn directories() {
    let (_site, s) = server("io_uring");
    assert_eq!(s.get("/empty/", &[]).status, 404, "no listing");
    assert_eq!(s.get("/empty", &[]).status, 404);
    let r = s.get("/docs", &[]);
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/docs/"));
    assert_eq!(s.get("/docs/", &[]).body, b"docs index\n");
    assert_eq!(s.get("/1k.txt/", &[]).status, 404);
}

#[test]
fn files_larger_than_the_memory_cache_are_streamed() {
    let site = site();
    let s = TestServer::start(site.path(), "file_cache_max_file = 1000");
    assert!(s.get("/big.bin", &[]).body == big_body());
    let r = s.get("/big.bin", &[("Range", "bytes=1000000-1000099")]);
    assert_eq!(r.body, &big_body()[1_000_000..1_000_100]);
}

/// Large bodies go by sendfile from the page cache. A body larger than any socket buffer,
/// taken slowly through a small receive window, makes the send wait many times; every byte
/// still arrives in order, and the worker keeps serving others meanwhile.
#[test]
fn large_bodies_survive_a_slow_reader() {
    let huge: Vec<u8> = (0..12_000_000u32)
        .map(|i| (i.wrapping_mul(40_503) >> 9) as u8)
        .collect();
    for driver in DRIVERS {
        let site = site();
        std::fs::write(site.path().join("huge.bin"), &huge).unwrap();
        let s = TestServer::start(site.path(), &format!("workers = 1\ndriver = {driver:?}"));
        let c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        socket2::SockRef::from(&c)
            .set_recv_buffer_size(32 * 1024)
            .unwrap();
        let mut c = c;
        c.write_all(b"GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /huge.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=70000-\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 2048];
        for i in 0..100 {
            let n = c.read(&mut chunk).unwrap();
            got.extend_from_slice(&chunk[..n]);
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(5));
                // The worker is not stuck behind the slow reader.
                assert_eq!(s.get("/1k.txt", &[]).status, 200, "{driver}");
            }
        }
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut rest = std::io::BufReader::new(std::io::Cursor::new(got).chain(c));
        let full = read_response(&mut rest, false).unwrap();
        assert_eq!(full.status, 200, "{driver}");
        assert!(full.body == huge, "{driver}: body differs");
        let part = read_response(&mut rest, false).unwrap();
        assert_eq!(part.status, 206, "{driver}");
        assert!(part.body == huge[70_000..], "{driver}: range differs");
    }
}

#[test]
fn changed_files_are_picked_up() {
    let site = site();
    let s = TestServer::start(site.path(), "file_cache_revalidate = \"100ms\"\nworkers = 1");
    assert_eq!(s.get("/1k.txt", &[]).body.len(), 1024);
    std::fs::write(site.path().join("1k.txt"), b"changed").unwrap();
    std::fs::write(site.path().join("new.txt"), b"new").unwrap();
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(s.get("/1k.txt", &[]).body, b"changed");
    assert_eq!(s.get("/new.txt", &[]).body, b"new");
}

#[test]
fn slow_clients_time_out_without_disturbing_others() {
    let site = site();
    let s = TestServer::start(
        site.path(),
        "header_timeout = \"1s\"\nkeepalive_timeout = \"1s\"\nworkers = 1",
    );
    // A slowloris: one header byte at a time, never finishing.
    let mut slow = s.connect();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").unwrap();
    let start = Instant::now();
    // Meanwhile others are served at once.
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(s.get("/1k.txt", &[]).status, 200);
        assert!(t.elapsed() < Duration::from_millis(500));
    }
    let mut out = Vec::new();
    let _ = slow.write_all(b"X-A: b\r\n");
    let _ = slow.read_to_end(&mut out);
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "slow client kept for {elapsed:?}"
    );
    assert!(
        String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    // An idle keep-alive connection is closed after keepalive_timeout.
    let mut idle = s.connect();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    read_response(&mut idle, false).unwrap();
    let t = Instant::now();
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(
        t.elapsed() >= Duration::from_millis(800) && t.elapsed() < Duration::from_secs(3),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn connections_beyond_the_limit_are_refused() {
    let site = site();
    let s = TestServer::start(site.path(), "max_connections = 3\nworkers = 1");
    let held: Vec<_> = (0..3)
        .map(|_| {
            let mut c = s.connect();
            c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            read_response(&mut c, false).unwrap();
            c
        })
        .collect();
    let out = s.raw(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(
        String::from_utf8_lossy(&out).starts_with("HTTP/1.1 503"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(s.get("/", &[]).status, 200);
}

#[test]
fn graceful_shutdown_finishes_in_flight_responses() {
    for driver in DRIVERS {
        let site = site();
        let mut s = TestServer::start(
            site.path(),
            &format!("workers = 1\ndriver = {driver:?}\nshutdown_grace = \"5s\""),
        );
        // An idle keep-alive connection and one slowly reading a large response.
        let mut idle = s.connect();
        idle.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        read_response(&mut idle, false).unwrap();
        // 40 MB cannot fit in the socket buffers: the response is still being written when
        // the signal arrives.
        let huge: Vec<u8> = (0..40_000_000u32).map(|i| (i % 247) as u8).collect();
        std::fs::write(site.path().join("huge.bin"), &huge).unwrap();
        let mut busy = s.connect();
        busy.write_all(b"GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        s.terminate();
        std::thread::sleep(Duration::from_millis(300));
        let r = read_response(&mut busy, false).unwrap();
        assert!(r.body == huge, "{driver}: in-flight response cut short");
        let mut rest = Vec::new();
        idle.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "idle connection is closed");
        let status = s.child.wait().unwrap();
        assert!(status.success(), "{driver}: exit {status:?}");
        assert!(std::net::TcpStream::connect(("127.0.0.1", s.port)).is_err());
    }
}
