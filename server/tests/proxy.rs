#![allow(clippy::unwrap_used)]
//! The caching reverse proxy, end to end: the real binary in front of in-process origins.

mod util;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use util::origin::{tls_for, Origin, Reply, Seen};
use util::{read_response, Response, TestServer, DRIVERS};

/// A distribution with one HTTP origin on `port`; `behavior` lines go into the default
/// behavior, `extra` at the end.
fn config(dir: &std::path::Path, port: u16, driver: &str, behavior: &str, extra: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 2
driver = "{driver}"
node_name = "edge-test"

[[origins]]
id = "app"
domain_name = "127.0.0.1"
http_port = {port}
protocol = "http-only"
read_timeout = "2s"
connect_timeout = "1s"

[default_cache_behavior]
target_origin = "app"
{behavior}

[cache]
path = "{cache}"
size = "64MiB"
{extra}
"#,
        cache = dir.join("slab").display()
    )
}

fn start(origin: &Origin, driver: &str, behavior: &str, extra: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), origin.port, driver, behavior, extra);
    TestServer::start_config(dir, &cfg)
}

fn body_of(path: &str) -> Vec<u8> {
    format!("body of {path}\n").into_bytes()
}

#[test]
fn miss_then_hit_from_the_slab() {
    for driver in DRIVERS {
        let origin = Origin::start(|r: &Seen| {
            Reply::ok(
                &body_of(&r.target),
                &[("Cache-Control", "max-age=60"), ("ETag", "\"v1\"")],
            )
        });
        let s = start(&origin, driver, "", "");
        let a = s.get("/x", &[]);
        assert_eq!(a.status, 200, "{driver}");
        assert_eq!(a.body, body_of("/x"));
        assert_eq!(a.header("x-cache"), Some("Miss from slabfront"));
        assert_eq!(a.header("via"), Some("1.1 edge-test (slabfront)"));
        let b = s.get("/x", &[]);
        assert_eq!(b.body, body_of("/x"));
        assert_eq!(b.header("x-cache"), Some("Hit from slabfront"), "{driver}");
        assert_eq!(b.header("cache-status"), Some("edge-test; hit"));
        assert!(b.header("age").is_some());
        assert_eq!(b.header("etag"), Some("\"v1\""));
        assert_eq!(origin.count(), 1, "{driver}: the hit must not reach the origin");
        // HEAD is answered from the same object.
        let mut c = s.connect();
        c.write_all(b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let h = read_response(&mut c, true).unwrap();
        assert_eq!(
            h.header("content-length"),
            Some(&*body_of("/x").len().to_string())
        );
        assert_eq!(h.header("x-cache"), Some("Hit from slabfront"));
        assert_eq!(origin.count(), 1);
    }
}

#[test]
fn requests_to_the_origin_carry_forwarding_headers_and_no_hop_by_hop_ones() {
    let origin = Origin::start(|_r: &Seen| {
        Reply::ok(
            b"ok",
            &[
                ("Cache-Control", "no-store"),
                ("Connection", "x-secret"),
                ("X-Secret", "hop"),
                ("Keep-Alive", "timeout=5"),
            ],
        )
    });
    let s = start(&origin, "io_uring", "headers = \"all\"", "");
    let r = s.get(
        "/h",
        &[
            ("Connection", "x-private"),
            ("X-Private", "1"),
            ("X-Keep", "2"),
            ("Proxy-Authorization", "basic x"),
            ("TE", "trailers"),
        ],
    );
    assert_eq!(r.status, 200);
    assert!(
        r.header("x-secret").is_none(),
        "a header named by Connection crossed: {:?}",
        r.headers
    );
    assert!(r.header("keep-alive").is_none());
    let seen = &origin.requests()[0];
    assert_eq!(seen.header("x-keep"), Some("2"));
    assert!(seen.header("x-private").is_none());
    assert!(seen.header("proxy-authorization").is_none());
    assert!(seen.header("te").is_none());
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("via"), Some("1.1 edge-test (slabfront)"));
    assert_eq!(
        seen.header("host"),
        Some("test"),
        "with headers = \"all\" the viewer's Host goes through"
    );
}

#[test]
fn cache_key_policy_selects_and_forwards_only_its_parts() {
    let origin = Origin::start(|r: &Seen| Reply::ok(r.target.as_bytes(), &[("Cache-Control", "max-age=60")]));
    let s = start(
        &origin,
        "io_uring",
        "query_strings = [\"v\"]\nheaders = [\"X-Tenant\"]\ncookies = [\"session\"]",
        "",
    );
    let a = s.get(
        "/q?v=1&utm=a",
        &[("X-Tenant", "t1"), ("Cookie", "session=s1; tracking=x")],
    );
    assert_eq!(a.body, b"/q?v=1");
    let seen = &origin.requests()[0];
    assert_eq!(seen.header("x-tenant"), Some("t1"));
    assert_eq!(seen.header("cookie"), Some("session=s1"));
    assert_eq!(
        seen.header("host"),
        Some("127.0.0.1"),
        "the origin's host by default"
    );
    // Same key (only utm and tracking differ): a hit.
    let b = s.get(
        "/q?utm=b&v=1",
        &[("X-Tenant", "t1"), ("Cookie", "tracking=y; session=s1")],
    );
    assert_eq!(b.header("x-cache"), Some("Hit from slabfront"));
    // Each keyed part makes a new key.
    for (path, tenant, cookie) in [
        ("/q?v=2", "t1", "session=s1"),
        ("/q?v=1", "t2", "session=s1"),
        ("/q?v=1", "t1", "session=s2"),
    ] {
        let r = s.get(path, &[("X-Tenant", tenant), ("Cookie", cookie)]);
        assert_eq!(
            r.header("x-cache"),
            Some("Miss from slabfront"),
            "{path} {tenant} {cookie}"
        );
    }
    assert_eq!(origin.count(), 4);
}

#[test]
fn concurrent_misses_collapse_into_one_origin_request() {
    let origin = Origin::start(|_r: &Seen| {
        Reply::ok(&vec![b'c'; 200_000], &[("Cache-Control", "max-age=60")])
            .delayed(Duration::from_millis(500))
    });
    let s = start(&origin, "io_uring", "", "");
    let n = 100;
    let barrier = Arc::new(Barrier::new(n));
    let port = s.port;
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                b.wait();
                c.write_all(b"GET /cold HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
                read_response(&mut c, false).unwrap()
            })
        })
        .collect();
    for t in threads {
        let r = t.join().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), 200_000);
    }
    assert_eq!(
        origin.count(),
        1,
        "100 concurrent misses must make one origin request"
    );
}

#[test]
fn uncacheable_responses_release_the_waiters_at_once() {
    let origin = Origin::start(|_r: &Seen| {
        Reply::ok(b"private", &[("Cache-Control", "private")]).delayed(Duration::from_millis(400))
    });
    let s = start(&origin, "io_uring", "", "");
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let port = s.port;
    let t0 = Instant::now();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                b.wait();
                c.write_all(b"GET /private HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
                read_response(&mut c, false).unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().body, b"private");
    }
    // Serialised, 8 requests would take 3.2 s; released, about two origin round trips.
    assert!(
        t0.elapsed() < Duration::from_millis(2000),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(origin.count(), n);
}

#[test]
fn truncated_origin_bodies_are_never_stored_nor_padded() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let origin = Origin::start(move |_r: &Seen| {
        c2.fetch_add(1, Ordering::SeqCst);
        let mut raw =
            b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 100000\r\n\r\n".to_vec();
        raw.extend_from_slice(&vec![b't'; 30_000]);
        Reply {
            raw: Some(raw),
            ..Default::default()
        }
    });
    let s = start(&origin, "io_uring", "", "");
    for _ in 0..2 {
        let mut c = s.connect();
        c.write_all(b"GET /cut HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut got = Vec::new();
        let _ = std::io::Read::read_to_end(&mut c, &mut got);
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "{}",
            &text[..text.len().min(200)]
        );
        let body_start = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(
            got.len() - body_start < 100_000,
            "the viewer must see the cut, not a padded body"
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "a truncated body must not be stored"
    );
    // Bad chunking: never stored either.
    let origin = Origin::start(|_r: &Seen| {
        Reply {
        raw: Some(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n".to_vec()),
        ..Default::default()
    }
    });
    let s = start(&origin, "io_uring", "", "");
    for _ in 0..2 {
        let _ = s.raw(b"GET /badchunk HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    assert_eq!(origin.count(), 2);
}

#[test]
fn vary_keeps_variants_apart_with_normalised_accept() {
    let origin = Origin::start(|r: &Seen| {
        let json = r
            .header("accept")
            .is_some_and(|a| a.starts_with("application/vnd.pypi.simple.v1+json"));
        let body: &[u8] = if json { b"{\"json\":1}" } else { b"<html>" };
        Reply::ok(body, &[("Cache-Control", "max-age=60"), ("Vary", "Accept")])
    });
    let s = start(&origin, "io_uring", "headers = [\"Accept\"]", "");
    let json = "application/vnd.pypi.simple.v1+json, text/html;q=0.01";
    let json_other_spelling = "application/vnd.pypi.simple.v1+json,text/html; q=0.01";
    assert_eq!(s.get("/simple/", &[("Accept", json)]).body, b"{\"json\":1}");
    assert_eq!(s.get("/simple/", &[("Accept", "text/html")]).body, b"<html>");
    let j = s.get("/simple/", &[("Accept", json_other_spelling)]);
    assert_eq!(j.body, b"{\"json\":1}");
    assert_eq!(j.header("x-cache"), Some("Hit from slabfront"));
    let h = s.get("/simple/", &[("Accept", "text/html")]);
    assert_eq!(h.body, b"<html>");
    assert_eq!(h.header("x-cache"), Some("Hit from slabfront"));
    assert_eq!(origin.count(), 2);
}

#[test]
fn vary_star_is_never_served_from_cache() {
    let origin =
        Origin::start(|_r: &Seen| Reply::ok(b"v", &[("Cache-Control", "max-age=60"), ("Vary", "*")]));
    let s = start(&origin, "io_uring", "", "");
    s.get("/star", &[]);
    assert_eq!(s.get("/star", &[]).header("x-cache"), Some("Miss from slabfront"));
    assert_eq!(origin.count(), 2);
}

#[test]
fn stale_objects_are_revalidated_with_a_304_and_refreshed() {
    let origin = Origin::start(|r: &Seen| {
        if r.header("if-none-match") == Some("\"e1\"") {
            return Reply::status(
                304,
                &[
                    ("Cache-Control", "max-age=60"),
                    ("ETag", "\"e1\""),
                    ("X-Gen", "2"),
                ],
            );
        }
        Reply::ok(
            b"payload",
            &[("Cache-Control", "max-age=1"), ("ETag", "\"e1\""), ("X-Gen", "1")],
        )
    });
    let s = start(&origin, "io_uring", "", "");
    assert_eq!(s.get("/r", &[]).header("x-gen"), Some("1"));
    std::thread::sleep(Duration::from_millis(2100));
    let r = s.get("/r", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"payload");
    assert_eq!(r.header("x-cache"), Some("RefreshHit from slabfront"));
    assert_eq!(
        r.header("x-gen"),
        Some("2"),
        "the 304's headers replace the stored ones"
    );
    let seen = origin.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("if-none-match"), Some("\"e1\""));
    // Refreshed: fresh again for 60 s.
    assert_eq!(s.get("/r", &[]).header("x-cache"), Some("Hit from slabfront"));
    assert_eq!(origin.count(), 2);
}

#[test]
fn stale_if_error_serves_the_stored_copy_when_the_origin_is_gone() {
    let origin =
        Origin::start(|_r: &Seen| Reply::ok(b"kept", &[("Cache-Control", "max-age=1, stale-if-error=300")]));
    let s = start(&origin, "io_uring", "", "");
    assert_eq!(s.get("/sie", &[]).body, b"kept");
    origin.stop();
    drop(origin);
    std::thread::sleep(Duration::from_millis(2100));
    let r = s.get("/sie", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"kept");
    assert_eq!(r.header("x-cache"), Some("Hit from slabfront"));
    // must-revalidate forbids it: a 502.
    let origin =
        Origin::start(|_r: &Seen| Reply::ok(b"strict", &[("Cache-Control", "max-age=1, must-revalidate")]));
    let s = start(&origin, "io_uring", "", "");
    s.get("/mr", &[]);
    origin.stop();
    drop(origin);
    std::thread::sleep(Duration::from_millis(2100));
    let r = s.get("/mr", &[]);
    assert_eq!(r.status, 502);
    assert_eq!(r.header("x-cache"), Some("Error from slabfront"));
}

#[test]
fn stale_while_revalidate_answers_at_once_and_refreshes_in_the_background() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let origin = Origin::start(move |_r: &Seen| {
        // The refresh is fresh for a minute (Date has whole seconds: a 1 s lifetime could
        // already be spent by the time the next request looks).
        let cc = if c2.fetch_add(1, Ordering::SeqCst) == 0 {
            "max-age=1, stale-while-revalidate=60"
        } else {
            "max-age=60"
        };
        Reply::ok(b"swr", &[("Cache-Control", cc)]).delayed(Duration::from_millis(300))
    });
    let s = start(&origin, "io_uring", "", "");
    s.get("/swr", &[]);
    std::thread::sleep(Duration::from_millis(2100));
    let t0 = Instant::now();
    let r = s.get("/swr", &[]);
    assert!(
        t0.elapsed() < Duration::from_millis(250),
        "served stale without waiting: {:?}",
        t0.elapsed()
    );
    assert_eq!(r.body, b"swr");
    assert_eq!(r.header("cache-status"), Some("edge-test; hit; fwd=stale"));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(origin.count(), 2, "one background refresh");
    assert_eq!(s.get("/swr", &[]).header("cache-status"), Some("edge-test; hit"));
}

#[test]
fn unreachable_and_slow_origins_give_502_and_504() {
    // Nothing listens on this port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), port, "io_uring", "", "");
    let s = TestServer::start_config(dir, &cfg);
    let r = s.get("/down", &[]);
    assert_eq!(r.status, 502);
    assert_eq!(r.header("x-cache"), Some("Error from slabfront"));
    let origin = Origin::start(|_r: &Seen| Reply {
        hang: true,
        ..Default::default()
    });
    let s2 = start(&origin, "io_uring", "", "");
    let t0 = Instant::now();
    let r = s2.get("/slow", &[]);
    assert_eq!(r.status, 504);
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(
        s2.stderr().contains("origin request failed"),
        "a log line names the origin"
    );
    assert!(s.stderr().contains("origin=app"));
}

#[test]
fn range_and_conditional_requests_are_answered_from_the_cache() {
    let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let b2 = body.clone();
    let origin = Origin::start(move |_r: &Seen| {
        Reply::ok(&b2, &[("Cache-Control", "max-age=60"), ("ETag", "\"r1\"")])
    });
    let s = start(&origin, "io_uring", "", "");
    s.get("/range", &[]);
    let r = s.get("/range", &[("Range", "bytes=100-199")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 100-199/5000"));
    assert_eq!(r.body, &body[100..200]);
    let r = s.get("/range", &[("Range", "bytes=-10")]);
    assert_eq!(r.body, &body[4990..]);
    let r = s.get("/range", &[("Range", "bytes=9000-")]);
    assert_eq!(r.status, 416);
    let r = s.get("/range", &[("If-None-Match", "\"r1\"")]);
    assert_eq!(r.status, 304);
    assert_eq!(origin.count(), 1);
}

#[test]
fn unsafe_methods_stream_their_body_and_invalidate_the_url() {
    let origin = Origin::start(|r: &Seen| {
        if r.method == "POST" {
            return Reply::ok(format!("got {} bytes", r.body.len()).as_bytes(), &[]);
        }
        Reply::ok(b"page", &[("Cache-Control", "max-age=60")])
    });
    let all = "allowed_methods = [\"GET\", \"HEAD\", \"OPTIONS\", \"PUT\", \"POST\", \"PATCH\", \"DELETE\"]";
    let s = start(&origin, "io_uring", all, "");
    s.get("/form", &[]);
    assert_eq!(s.get("/form", &[]).header("x-cache"), Some("Hit from slabfront"));
    let body = vec![b'p'; 300_000];
    let mut c = s.connect();
    c.write_all(
        format!(
            "POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    c.write_all(&body).unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.body, b"got 300000 bytes");
    // Chunked request bodies pass through too.
    let mut c = s.connect();
    c.write_all(b"POST /form HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().body, b"got 11 bytes");
    assert_eq!(
        s.get("/form", &[]).header("x-cache"),
        Some("Miss from slabfront"),
        "a POST invalidates the URL"
    );
    // Not allowed by a GET/HEAD behavior: 403.
    let s2 = start(&origin, "io_uring", "", "");
    let mut c = s2.connect();
    c.write_all(b"DELETE /form HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().status, 403);
}

#[test]
fn large_objects_stream_through_and_are_stored_whole() {
    let big: Vec<u8> = (0..20_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let b2 = big.clone();
    let origin = Origin::start(move |r: &Seen| {
        let mut reply = Reply::ok(&b2, &[("Cache-Control", "max-age=60")]);
        reply.chunked = r.target.contains("chunked");
        reply
    });
    let s = start(&origin, "io_uring", "", "");
    for path in ["/big", "/big-chunked"] {
        let a = s.get(path, &[]);
        assert!(a.body == big, "{path}: miss body differs");
        let b = s.get(path, &[]);
        assert_eq!(b.header("x-cache"), Some("Hit from slabfront"), "{path}");
        assert!(b.body == big, "{path}: hit body differs");
        // A range of the stored object (sent from the slab file at an offset).
        let r = s.get(path, &[("Range", "bytes=1000003-3000002")]);
        assert_eq!(r.status, 206, "{path}");
        assert_eq!(r.header("content-range"), Some("bytes 1000003-3000002/20000000"));
        assert!(r.body == big[1_000_003..3_000_003], "{path}: range body differs");
    }
    assert_eq!(origin.count(), 2);
}

#[test]
fn error_responses_use_the_configured_page_and_ttl() {
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir(site.path().join("errors")).unwrap();
    std::fs::write(site.path().join("errors/404.html"), b"<p>custom not found</p>").unwrap();
    let origin = Origin::start(|_r: &Seen| Reply::ok(b"gone", &[]).with_status(404));
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        r#"
[[origins]]
id = "pages"
path = "{}"

[[behaviors]]
path_pattern = "/errors/*"
target_origin = "pages"

[[error_responses]]
error_code = 404
response_page_path = "/errors/404.html"
response_code = 404
error_caching_min_ttl = 30
"#,
        site.path().display()
    );
    let cfg = config(dir.path(), origin.port, "io_uring", "", &extra);
    let s = TestServer::start_config(dir, &cfg);
    let r = s.get("/missing", &[]);
    assert_eq!(r.status, 404);
    assert_eq!(r.body, b"<p>custom not found</p>");
}

trait WithStatus {
    fn with_status(self, s: u16) -> Self;
}
impl WithStatus for Reply {
    fn with_status(mut self, s: u16) -> Self {
        self.status = s;
        self
    }
}

fn admin_call(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> Response {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    c.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nHost: a\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    read_response(&mut c, false).unwrap()
}

#[test]
fn invalidations_by_path_and_prefix_through_the_admin_api_and_the_cli() {
    let origin =
        Origin::start(|r: &Seen| Reply::ok(&body_of(&r.target), &[("Cache-Control", "max-age=600")]));
    let s = start(
        &origin,
        "io_uring",
        "query_strings = \"all\"",
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"sekret\"\n",
    );
    let admin = s.admin_port.unwrap();
    for p in [
        "/simple/a/",
        "/simple/b/?x=1",
        "/index.html",
        "/index.html.bak",
        "/other",
    ] {
        s.get(p, &[]);
        assert_eq!(s.get(p, &[]).header("x-cache"), Some("Hit from slabfront"));
    }
    // The token is required.
    let r = admin_call(admin, "POST", "/invalidations", None, r#"{"paths":["/other"]}"#);
    assert_eq!(r.status, 401);
    let r = admin_call(
        admin,
        "POST",
        "/invalidations",
        Some("sekret"),
        r#"{"paths":["nope"]}"#,
    );
    assert_eq!(r.status, 400);
    let r = admin_call(
        admin,
        "POST",
        "/invalidations",
        Some("sekret"),
        r#"{"paths":["/simple/*","/index.html"]}"#,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let id = v["id"].as_str().unwrap();
    let r = admin_call(admin, "GET", &format!("/invalidations/{id}"), Some("sekret"), "");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["status"], "Completed");
    for (p, want) in [
        ("/simple/a/", "Miss"),
        ("/simple/b/?x=1", "Miss"),
        ("/index.html", "Miss"),
        ("/index.html.bak", "Hit"),
        ("/other", "Hit"),
    ] {
        assert_eq!(
            s.get(p, &[]).header("x-cache"),
            Some(&*format!("{want} from slabfront")),
            "{p}"
        );
    }
    // The CLI.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .args([
            "invalidate",
            "--admin",
            &format!("http://127.0.0.1:{admin}"),
            "--token",
            "sekret",
            "/other",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Completed"));
    assert_eq!(
        s.get("/other", &[]).header("x-cache"),
        Some("Miss from slabfront")
    );
    let r = admin_call(admin, "GET", "/healthz", Some("sekret"), "");
    assert_eq!(r.status, 200);
}

#[test]
fn admin_on_a_public_address_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 9, "io_uring", "", "[admin]\nlisten = \"0.0.0.0:0\"\n");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, cfg).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin.token"));
}

#[test]
fn the_cache_survives_kill_9_and_invalidations_stay_durable() {
    let origin = Origin::start(|r: &Seen| {
        let mut body = body_of(&r.target);
        body.extend(std::iter::repeat_n(b'z', 50_000));
        Reply::ok(&body, &[("Cache-Control", "max-age=600")])
    });
    let dir = tempfile::tempdir().unwrap();
    let slab_dir = tempfile::tempdir().unwrap();
    let cfg = config(
        slab_dir.path(),
        origin.port,
        "io_uring",
        "",
        "[admin]\nlisten = \"127.0.0.1:0\"\n",
    );
    std::fs::write(dir.path().join("cfg"), &cfg).unwrap();
    let mut s = TestServer::start_config(tempfile::tempdir().unwrap(), &cfg);
    let mut first = Vec::new();
    for i in 0..20 {
        first.push(s.get(&format!("/p{i}"), &[]).body);
    }
    let r = admin_call(
        s.admin_port.unwrap(),
        "POST",
        "/invalidations",
        None,
        r#"{"paths":["/p0"]}"#,
    );
    assert_eq!(r.status, 201);
    s.kill9();
    let s = TestServer::start_config(tempfile::tempdir().unwrap(), &cfg);
    for (i, body) in first.iter().enumerate() {
        let r = s.get(&format!("/p{i}"), &[]);
        if i == 0 {
            assert_eq!(
                r.header("x-cache"),
                Some("Miss from slabfront"),
                "an invalidated object came back"
            );
        } else {
            assert_eq!(
                r.header("x-cache"),
                Some("Hit from slabfront"),
                "/p{i} lost across kill -9"
            );
            assert!(r.body == *body, "/p{i} differs after restart");
        }
    }
    assert_eq!(origin.count(), 21);
}

#[test]
fn https_origins_are_verified() {
    let tls = tls_for(&["localhost"]);
    let origin = Origin::start_tls(tls.config.clone(), |r: &Seen| {
        Reply::ok(&body_of(&r.target), &[("Cache-Control", "max-age=60")])
    });
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &tls.cert_pem).unwrap();
    let cfg = |ca_line: &str, cache: &std::path::Path| {
        format!(
            r#"
[server]
listen = ["127.0.0.1:0"]
workers = 1
[[origins]]
id = "secure"
domain_name = "localhost"
https_port = {port}
protocol = "https-only"
{ca_line}
[default_cache_behavior]
target_origin = "secure"
[cache]
path = "{cache}"
size = "64MiB"
"#,
            port = origin.port,
            cache = cache.join("slab").display()
        )
    };
    let trusted = cfg(&format!("ca_file = \"{}\"", ca.display()), dir.path());
    let s = TestServer::start_config(tempfile::tempdir().unwrap(), &trusted);
    let r = s.get("/tls", &[]);
    assert_eq!(r.status, 200, "{}", s.stderr());
    assert_eq!(r.body, body_of("/tls"));
    assert_eq!(s.get("/tls", &[]).header("x-cache"), Some("Hit from slabfront"));
    // Without the trust root: verification fails, a 502 and a log line; never plain HTTP.
    let untrusted_dir = tempfile::tempdir().unwrap();
    let untrusted = cfg("", untrusted_dir.path());
    let s2 = TestServer::start_config(tempfile::tempdir().unwrap(), &untrusted);
    let r = s2.get("/tls", &[]);
    assert_eq!(r.status, 502);
    assert!(s2.stderr().contains("TLS handshake failed"), "{}", s2.stderr());
    assert_eq!(origin.count(), 1);
}

#[test]
fn a_viewer_that_leaves_mid_fill_does_not_abort_the_fill_others_wait_on() {
    let big: Vec<u8> = (0..8_000_000u32).map(|i| (i % 253) as u8).collect();
    let b2 = big.clone();
    let origin = Origin::start(move |_r: &Seen| {
        let mut r = Reply::ok(&b2, &[("Cache-Control", "max-age=60")]).delayed(Duration::from_millis(300));
        r.chunked = true;
        r
    });
    let s = start(&origin, "io_uring", "", "");
    // The first viewer reads a little of the head, then goes away.
    let mut quitter = s.connect();
    quitter
        .write_all(b"GET /fill HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // A second viewer asks meanwhile: it waits for the fill.
    let port = s.port;
    let waiter = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        c.write_all(b"GET /fill HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        read_response(&mut c, false).unwrap()
    });
    let mut first = [0u8; 64];
    let _ = std::io::Read::read(&mut quitter, &mut first);
    drop(quitter);
    let r = waiter.join().unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == big, "the waiting viewer got the whole body");
    assert_eq!(
        origin.count(),
        1,
        "one origin request despite the first viewer leaving"
    );
    let again = s.get("/fill", &[]);
    assert_eq!(again.header("x-cache"), Some("Hit from slabfront"));
    assert!(again.body == big);
}

#[test]
fn configured_errors_are_cached_for_their_error_ttl() {
    let origin = Origin::start(|r: &Seen| {
        let status = if r.target.starts_with("/cached") { 503 } else { 500 };
        Reply::ok(b"down", &[]).with_status(status)
    });
    let extra = r#"
[[error_responses]]
error_code = 503
error_caching_min_ttl = 30

[[error_responses]]
error_code = 500
error_caching_min_ttl = 0
"#;
    let s = start(&origin, "io_uring", "", extra);
    assert_eq!(s.get("/cached", &[]).status, 503);
    let again = s.get("/cached", &[]);
    assert_eq!(again.status, 503);
    assert_eq!(
        again.header("x-cache"),
        Some("Hit from slabfront"),
        "a 503 is cached for 30 s"
    );
    assert_eq!(origin.count(), 1);
    s.get("/uncached", &[]);
    assert_eq!(s.get("/uncached", &[]).status, 500);
    assert_eq!(origin.count(), 3, "error_caching_min_ttl = 0: not cached");
}
