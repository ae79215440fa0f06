//! The exchange without a viewer socket: requests go through the phases and the answers are
//! collected by an in-memory sink. Origins are real (a scripted HTTP/1.1 server on loopback)
//! and the slab is real (a temporary file).

#![allow(clippy::unwrap_used)]

use super::*;
use crate::http::codec::{parse_request, Limits, Parsed};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the sink received.
#[derive(Default)]
struct Answer {
    interims: Vec<u16>,
    status: u16,
    fields: Vec<(String, Vec<u8>)>,
    length: Option<BodyLength>,
    cache: Option<CacheResult>,
    close: bool,
    body: Vec<u8>,
}

impl Answer {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| std::str::from_utf8(v).unwrap())
    }
}

/// A sink that keeps everything in memory: the request body comes from `body_in`.
#[derive(Default)]
struct MemorySink {
    body_in: VecDeque<Bytes>,
    answer: Answer,
}

impl Sink for MemorySink {
    fn secure(&self) -> bool {
        false
    }

    fn peer(&self) -> Option<std::net::SocketAddr> {
        "127.0.0.1:40000".parse().ok()
    }

    async fn body_piece(&mut self, _req: &Request) -> Result<Option<Bytes>, End> {
        Ok(self.body_in.pop_front())
    }

    async fn interim(&mut self, _req: &Request, head: &ResponseHead<'_>) {
        self.answer.interims.push(head.status);
    }

    async fn respond(
        &mut self,
        req: &Request,
        head: ResponseHead<'_>,
        mut body: BodySource,
    ) -> Result<(), End> {
        let a = &mut self.answer;
        a.status = head.status;
        a.fields = head
            .fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_ref().to_vec()))
            .collect();
        a.length = Some(head.length);
        a.cache = Some(head.cache);
        a.close = head.close;
        if req.method == Method::Head {
            body.finish_unsent(true).await;
            return Ok(());
        }
        while let Some(w) = body.next_window(false).await? {
            match w {
                Window::Bytes(b) => a.body.extend_from_slice(&b),
                Window::Mapped {
                    guard,
                    a: from,
                    b: to,
                    ..
                } => {
                    a.body.extend_from_slice(&guard.as_ref()[from..to]);
                    assert!(guard.0.intact());
                }
                Window::File { .. } => panic!("a sink without file windows got one"),
            }
        }
        Ok(())
    }
}

/// A scripted origin: each request (head and decoded body) is recorded and answered with the
/// raw response the script returns, after its delay.
struct Origin {
    port: u16,
    seen: Arc<Seen>,
    count: Arc<AtomicUsize>,
}

/// Every request an origin saw: its head and its decoded body.
type Seen = Mutex<Vec<(String, Vec<u8>)>>;

type Script = dyn Fn(&str, usize) -> (Duration, Vec<u8>) + Send + Sync;

impl Origin {
    fn start(script: impl Fn(&str, usize) -> (Duration, Vec<u8>) + Send + Sync + 'static) -> Origin {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let script: Arc<Script> = Arc::new(script);
        let (s2, c2) = (seen.clone(), count.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { return };
                let (seen, count, script) = (s2.clone(), c2.clone(), script.clone());
                std::thread::spawn(move || serve_origin(conn, &seen, &count, &*script));
            }
        });
        Origin { port, seen, count }
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

fn serve_origin(mut conn: std::net::TcpStream, seen: &Seen, count: &AtomicUsize, script: &Script) {
    let mut buf = Vec::new();
    loop {
        let Some(end) = read_until(&mut conn, &mut buf, b"\r\n\r\n") else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end);
        let lower = head.to_ascii_lowercase();
        let mut body = Vec::new();
        if lower.contains("transfer-encoding: chunked") {
            let Some(end) = read_until(&mut conn, &mut buf, b"0\r\n\r\n") else {
                return;
            };
            let raw: Vec<u8> = buf.drain(..end).collect();
            body = dechunk(&raw);
        } else if let Some(n) = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            while buf.len() < n {
                let mut chunk = [0u8; 4096];
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                }
            }
            body = buf.drain(..n).collect();
        }
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        seen.lock().unwrap().push((head.clone(), body));
        let (delay, reply) = script(&head, n);
        std::thread::sleep(delay);
        if conn.write_all(&reply).is_err() {
            return;
        }
    }
}

/// Reads until `pat` is in `buf`; the index just past it.
fn read_until(conn: &mut std::net::TcpStream, buf: &mut Vec<u8>, pat: &[u8]) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(pat.len()).position(|w| w == pat) {
            return Some(i + pat.len());
        }
        let mut chunk = [0u8; 4096];
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap(), 16).unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

fn reply(status: &str, fields: &[&str], body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for f in fields {
        r.push_str(f);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

/// A worker for a configuration: a custom origin on `port` behind the default behavior, and
/// a directory origin (`site`, with `/err.html`) behind `/static/*` and `/errors/*`.
struct Edge {
    w: Rc<Worker>,
    _dir: tempfile::TempDir,
}

fn edge(port: u16, behavior: &str, extra: &str) -> Edge {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("static")).unwrap();
    std::fs::create_dir_all(site.join("errors")).unwrap();
    std::fs::write(site.join("static/a.txt"), b"static file body").unwrap();
    std::fs::write(site.join("errors/err.html"), b"<p>custom error page</p>").unwrap();
    let text = format!(
        r#"
[[origins]]
id = "app"
domain_name = "127.0.0.1"
http_port = {port}
protocol = "http-only"
read_timeout = "2s"
connect_timeout = "1s"

[[origins]]
id = "site"
path = "{site}"

[default_cache_behavior]
target_origin = "app"
{behavior}

[[behaviors]]
path_pattern = "/static/*"
target_origin = "site"

[[behaviors]]
path_pattern = "/errors/*"
target_origin = "site"

[cache]
path = "{slab}"
size = "64MiB"
{extra}
"#,
        site = site.display(),
        slab = dir.path().join("slab").display(),
    );
    let cfg = config::Config::from_toml_str(&text).unwrap();
    let proxy = crate::open_proxy(&cfg, "test-node").unwrap();
    let stats = Arc::new(crate::stats::Stats::new(1, &[], &[]));
    let extras = (Arc::default(), None, false, "edge".to_string(), None, stats);
    let w = crate::build_worker(0, &cfg, crate::settings_of(&cfg), proxy.as_ref(), extras).unwrap();
    Edge {
        w: Rc::new(w),
        _dir: dir,
    }
}

fn request(raw: &str) -> Request {
    let limits = Limits {
        max_header_bytes: 16 * 1024,
        max_headers: 100,
        max_uri_bytes: 8 * 1024,
    };
    match parse_request(raw.as_bytes(), &limits) {
        Ok(Parsed::Complete(r, _)) => r,
        _ => panic!("bad test request {raw:?}"),
    }
}

fn get(path: &str, fields: &str) -> Request {
    request(&format!(
        "GET {path} HTTP/1.1\r\nHost: example.com\r\n{fields}\r\n"
    ))
}

/// Runs one exchange on `w` with `body` as the request body.
async fn exchange(w: &Rc<Worker>, req: &Request, body: &[&[u8]]) -> Answer {
    let mut sink = MemorySink {
        body_in: body.iter().map(|b| Bytes::copy_from_slice(b)).collect(),
        ..MemorySink::default()
    };
    Exchange::new(w.clone(), req, &mut sink).run().await.unwrap();
    sink.answer
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(f)
}

async fn sleep(ms: u64) {
    monoio::time::sleep(Duration::from_millis(ms)).await;
}

#[test]
fn miss_stores_then_a_fresh_hit_comes_from_the_slab() {
    let o = Origin::start(|_, n| {
        (
            Duration::ZERO,
            reply(
                "200 OK",
                &["Cache-Control: max-age=60"],
                format!("body {n}").as_bytes(),
            ),
        )
    });
    let e = edge(o.port, "", "");
    run(async {
        let a = exchange(&e.w, &get("/x", ""), &[]).await;
        assert_eq!(
            (a.status, a.cache, a.body.as_slice()),
            (200, Some(CacheResult::Miss), &b"body 1"[..])
        );
        assert_eq!(a.field("cache-status"), Some("test-node; fwd=miss; stored"));
        let b = exchange(&e.w, &get("/x", ""), &[]).await;
        assert_eq!(
            (b.status, b.cache, b.body.as_slice()),
            (200, Some(CacheResult::Hit), &b"body 1"[..])
        );
        assert_eq!(b.length, Some(BodyLength::Known(6)));
        assert!(b.field("age").is_some());
    });
    assert_eq!(o.count(), 1);
}

#[test]
fn collapsed_followers_wait_for_the_leaders_fill() {
    let o = Origin::start(|_, n| {
        (
            Duration::from_millis(300),
            reply(
                "200 OK",
                &["Cache-Control: max-age=60"],
                format!("fill {n}").as_bytes(),
            ),
        )
    });
    let e = edge(o.port, "", "");
    run(async {
        let req = get("/c", "");
        let (a, b, c) = monoio::join!(
            exchange(&e.w, &req, &[]),
            exchange(&e.w, &req, &[]),
            exchange(&e.w, &req, &[])
        );
        for x in [&a, &b, &c] {
            assert_eq!((x.status, x.body.as_slice()), (200, &b"fill 1"[..]));
        }
        let hits = [&a, &b, &c]
            .iter()
            .filter(|x| x.cache == Some(CacheResult::Hit))
            .count();
        assert_eq!(hits, 2, "the followers are answered from the stored object");
    });
    assert_eq!(o.count(), 1);
}

#[test]
fn revalidation_refreshes_on_304_and_replaces_on_200() {
    let o = Origin::start(|head, n| {
        let conditional = head.to_ascii_lowercase().contains("if-none-match: \"v1\"");
        match (n, conditional) {
            (1, _) => (
                Duration::ZERO,
                reply("200 OK", &["Cache-Control: max-age=1", "ETag: \"v1\""], b"first"),
            ),
            (2, true) => (
                Duration::ZERO,
                reply(
                    "304 Not Modified",
                    &["Cache-Control: max-age=1", "ETag: \"v1\""],
                    b"",
                ),
            ),
            _ => (
                Duration::ZERO,
                reply(
                    "200 OK",
                    &["Cache-Control: max-age=60", "ETag: \"v2\""],
                    b"second",
                ),
            ),
        }
    });
    let e = edge(o.port, "", "");
    run(async {
        exchange(&e.w, &get("/r", ""), &[]).await;
        sleep(1100).await;
        let a = exchange(&e.w, &get("/r", ""), &[]).await;
        assert_eq!(
            (a.cache, a.body.as_slice()),
            (Some(CacheResult::RefreshHit), &b"first"[..])
        );
        assert_eq!(
            a.field("cache-status"),
            Some("test-node; hit; fwd=stale; fwd-status=304")
        );
        sleep(1100).await;
        let b = exchange(&e.w, &get("/r", ""), &[]).await;
        assert_eq!(
            (b.cache, b.body.as_slice()),
            (Some(CacheResult::Miss), &b"second"[..])
        );
        let c = exchange(&e.w, &get("/r", ""), &[]).await;
        assert_eq!(
            (c.cache, c.body.as_slice()),
            (Some(CacheResult::Hit), &b"second"[..])
        );
    });
    let seen = o.seen.lock().unwrap();
    assert!(seen[1].0.to_ascii_lowercase().contains("if-none-match: \"v1\""));
}

#[test]
fn stale_while_revalidate_answers_at_once_and_refreshes_behind() {
    let o = Origin::start(|_, n| {
        (
            Duration::from_millis(if n == 1 { 0 } else { 200 }),
            reply(
                "200 OK",
                &["Cache-Control: max-age=1, stale-while-revalidate=30"],
                format!("v{n}").as_bytes(),
            ),
        )
    });
    let e = edge(o.port, "", "");
    run(async {
        exchange(&e.w, &get("/s", ""), &[]).await;
        sleep(1100).await;
        let a = exchange(&e.w, &get("/s", ""), &[]).await;
        assert_eq!((a.cache, a.body.as_slice()), (Some(CacheResult::Hit), &b"v1"[..]));
        assert_eq!(a.field("cache-status"), Some("test-node; hit; fwd=stale"));
        sleep(500).await;
        let b = exchange(&e.w, &get("/s", ""), &[]).await;
        assert_eq!((b.cache, b.body.as_slice()), (Some(CacheResult::Hit), &b"v2"[..]));
    });
    assert_eq!(o.count(), 2);
}

#[test]
fn stale_if_error_stands_in_for_a_failing_origin() {
    let o = Origin::start(|_, n| match n {
        1 => (
            Duration::ZERO,
            reply(
                "200 OK",
                &["Cache-Control: max-age=1, stale-if-error=60"],
                b"good",
            ),
        ),
        _ => (Duration::ZERO, reply("500 Internal Server Error", &[], b"broken")),
    });
    let e = edge(o.port, "", "");
    run(async {
        exchange(&e.w, &get("/e", ""), &[]).await;
        sleep(1100).await;
        let a = exchange(&e.w, &get("/e", ""), &[]).await;
        assert_eq!(
            (a.status, a.cache, a.body.as_slice()),
            (200, Some(CacheResult::Hit), &b"good"[..])
        );
        assert_eq!(a.field("cache-status"), Some("test-node; hit; fwd=stale"));
    });
}

#[test]
fn ranges_and_conditionals_are_answered_from_the_stored_object() {
    let o = Origin::start(|_, _| {
        (
            Duration::ZERO,
            reply(
                "200 OK",
                &["Cache-Control: max-age=60", "ETag: \"e\""],
                b"0123456789",
            ),
        )
    });
    let e = edge(o.port, "", "");
    run(async {
        exchange(&e.w, &get("/g", ""), &[]).await;
        let r = exchange(&e.w, &get("/g", "Range: bytes=2-5\r\n"), &[]).await;
        assert_eq!((r.status, r.body.as_slice()), (206, &b"2345"[..]));
        assert_eq!(r.field("content-range"), Some("bytes 2-5/10"));
        assert_eq!(r.length, Some(BodyLength::Known(4)));
        let u = exchange(&e.w, &get("/g", "Range: bytes=20-30\r\n"), &[]).await;
        assert_eq!((u.status, u.field("content-range")), (416, Some("bytes */10")));
        let c = exchange(&e.w, &get("/g", "If-None-Match: \"e\"\r\n"), &[]).await;
        assert_eq!(
            (c.status, c.body.len(), c.length),
            (304, 0, Some(BodyLength::None))
        );
        let f = exchange(&e.w, &get("/g", "If-Match: \"other\"\r\n"), &[]).await;
        assert_eq!(f.status, 412);
        let h = exchange(&e.w, &request("HEAD /g HTTP/1.1\r\nHost: x\r\n\r\n"), &[]).await;
        assert_eq!(
            (h.status, h.length, h.body.len()),
            (200, Some(BodyLength::Known(10)), 0)
        );
    });
    assert_eq!(o.count(), 1);
}

#[test]
fn custom_error_pages_replace_origin_errors() {
    let o = Origin::start(|_, _| (Duration::ZERO, reply("404 Not Found", &[], b"origin's own 404")));
    let extra = "[[error_responses]]\nerror_code = 404\nresponse_page_path = \"/errors/err.html\"\nresponse_code = 404\n";
    let e = edge(o.port, "", extra);
    run(async {
        let a = exchange(&e.w, &get("/missing", ""), &[]).await;
        assert_eq!(
            (a.status, a.body.as_slice()),
            (404, &b"<p>custom error page</p>"[..])
        );
        assert_eq!(a.cache, Some(CacheResult::Error));
    });
}

#[test]
fn an_unreachable_origin_is_a_502_from_the_error_mapping() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = edge(port, "", "");
    run(async {
        let a = exchange(&e.w, &get("/down", ""), &[]).await;
        assert_eq!((a.status, a.cache), (502, Some(CacheResult::Error)));
        assert!(a.field("via").is_some());
    });
}

#[test]
fn a_chunked_post_passes_through_reframed_and_invalidates() {
    let o = Origin::start(|head, n| {
        let body = if head.starts_with("POST") {
            b"posted".to_vec()
        } else {
            format!("get {n}").into_bytes()
        };
        (
            Duration::ZERO,
            reply("200 OK", &["Cache-Control: max-age=60"], &body),
        )
    });
    let behavior =
        "allowed_methods = [\"GET\", \"HEAD\", \"OPTIONS\", \"PUT\", \"POST\", \"PATCH\", \"DELETE\"]";
    let e = edge(o.port, behavior, "");
    run(async {
        exchange(&e.w, &get("/p", ""), &[]).await;
        let post = request("POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        let a = exchange(&e.w, &post, &[b"hello ", b"world"]).await;
        assert_eq!((a.status, a.body.as_slice()), (200, &b"posted"[..]));
        // The stored GET was invalidated by the successful POST.
        let b = exchange(&e.w, &get("/p", ""), &[]).await;
        assert_eq!(
            (b.cache, b.body.as_slice()),
            (Some(CacheResult::Miss), &b"get 3"[..])
        );
    });
    let seen = o.seen.lock().unwrap();
    let (head, body) = &seen[1];
    assert!(
        head.to_ascii_lowercase().contains("transfer-encoding: chunked"),
        "{head}"
    );
    assert_eq!(body, b"hello world");
}

#[test]
fn an_invalidation_during_a_fill_keeps_the_fill_out_of_the_cache() {
    let o = Origin::start(|_, n| {
        (
            Duration::from_millis(300),
            reply(
                "200 OK",
                &["Cache-Control: max-age=60"],
                format!("v{n}").as_bytes(),
            ),
        )
    });
    let e = edge(o.port, "", "");
    run(async {
        let invalidate = async {
            sleep(100).await;
            e.w.proxy.as_ref().unwrap().shared.invalidate(&["/i".to_string()]);
        };
        let req = get("/i", "");
        let (a, ()) = monoio::join!(exchange(&e.w, &req, &[]), invalidate);
        assert_eq!(a.body, b"v1");
        let b = exchange(&e.w, &get("/i", ""), &[]).await;
        assert_eq!(
            (b.cache, b.body.as_slice()),
            (Some(CacheResult::Miss), &b"v2"[..])
        );
    });
}

#[test]
fn local_phases_answer_without_an_origin() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = edge(port, "", "");
    run(async {
        // Directory origin.
        let a = exchange(&e.w, &get("/static/a.txt", ""), &[]).await;
        assert_eq!(
            (a.status, a.body.as_slice(), a.cache),
            (200, &b"static file body"[..], Some(CacheResult::Local))
        );
        assert!(a.field("etag").is_some() && a.field("last-modified").is_some());
        // Route: a target that leaves the root.
        let b = exchange(&e.w, &get("/static/../../etc/passwd", ""), &[]).await;
        assert_eq!(b.status, 400);
        // A method a directory origin does not serve.
        let c = exchange(
            &e.w,
            &request("DELETE /static/a.txt HTTP/1.1\r\nHost: x\r\n\r\n"),
            &[],
        )
        .await;
        assert_eq!((c.status, c.field("allow")), (405, Some("GET, HEAD")));
        // OPTIONS *.
        let d = exchange(&e.w, &request("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), &[]).await;
        assert_eq!((d.status, d.field("allow")), (200, Some("GET, HEAD, OPTIONS")));
        // A method the default behavior does not allow.
        let f = exchange(
            &e.w,
            &request("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"),
            &[b"hi"],
        )
        .await;
        assert_eq!(f.status, 403);
        // Unknown methods close the connection after the answer.
        let g = exchange(
            &e.w,
            &request("BREW /static/a.txt HTTP/1.1\r\nHost: x\r\n\r\n"),
            &[],
        )
        .await;
        assert_eq!((g.status, g.close), (501, true));
    });
}

#[test]
fn the_viewer_protocol_policy_redirects_plain_requests() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = edge(port, "viewer_protocol_policy = \"redirect-to-https\"", "");
    run(async {
        let a = exchange(
            &e.w,
            &request("GET /x?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"),
            &[],
        )
        .await;
        assert_eq!(
            (a.status, a.field("location")),
            (301, Some("https://example.com/x?q=1"))
        );
    });
}
