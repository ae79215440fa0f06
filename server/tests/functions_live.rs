#![allow(clippy::unwrap_used)]
//! CloudFront Functions through the live server: each common use on a behavior of its own
//! (over HTTP/1.1 and HTTP/2), every error path as the viewer and `/metrics` see it,
//! isolation between invocations, both workers under load, and SIGHUP replacing a function
//! under an open connection.

mod util;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use util::origin::{Origin, Reply};
use util::{read_response, TestServer};

fn js(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/functions")
        .join(format!("{name}.js"))
}

fn write_store(path: &Path, version: u32) {
    let routes = serde_json::json!({ "version": version }).to_string();
    let text = serde_json::json!({ "data": [
        { "key": "origin:kvs", "value": "eu" },
        { "key": "routes", "value": routes },
    ]});
    std::fs::write(path, text.to_string()).unwrap();
}

/// `id.js` from `tests/functions/`, or inline code.
fn function(name: &str, runtime: &str) -> String {
    let store = if name == "kvs_origin" {
        "key_value_stores = [\"routes\"]\n"
    } else {
        ""
    };
    format!(
        "[[functions]]\nname = \"{name}\"\nruntime = \"cloudfront-js-{runtime}\"\ncode_file = {:?}\n{store}",
        js(name)
    )
}

/// Answers every request with what it saw, cacheable for a minute.
fn echo(tag: &'static str) -> Origin {
    Origin::start(move |s| {
        Reply::ok(
            format!("{tag} {}", s.target).as_bytes(),
            &[("Cache-Control", "max-age=60"), ("Content-Type", "text/plain")],
        )
    })
}

struct Live {
    server: TestServer,
    app: Origin,
    eu: Origin,
    store: PathBuf,
    version_js: PathBuf,
}

/// A server with a directory origin, two custom origins and a behavior per function.
fn start() -> Live {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("docs")).unwrap();
    std::fs::write(site.join("index.html"), "app shell\n").unwrap();
    std::fs::write(site.join("docs/index.html"), "docs index\n").unwrap();
    std::fs::write(site.join("style.css"), "body{}\n").unwrap();
    let store = dir.path().join("routes.json");
    write_store(&store, 3);
    let version_js = dir.path().join("version.js");
    std::fs::write(&version_js, version_code(1)).unwrap();
    let (app, eu) = (echo("app"), echo("eu"));
    let mut cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 2\nh2c = true\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n\
         [cache]\npath = {:?}\nsize = \"64MiB\"\n\n\
         [[origins]]\nid = \"site\"\npath = {site:?}\n\n\
         [[origins]]\nid = \"app\"\ndomain_name = \"127.0.0.1\"\nhttp_port = {}\nprotocol = \"http-only\"\n\n\
         [[origins]]\nid = \"eu\"\ndomain_name = \"127.0.0.1\"\nhttp_port = {}\nprotocol = \"http-only\"\n\n\
         [[key_value_stores]]\nid = \"routes\"\nfile = {store:?}\n\n",
        dir.path().join("slab"),
        app.port,
        eu.port
    );
    for (name, runtime) in [
        ("spa", "1.0"),
        ("security_headers", "2.0"),
        ("country", "1.0"),
        ("querynorm", "2.0"),
        ("token", "1.0"),
        ("ab", "2.0"),
        ("kvs_origin", "2.0"),
        ("throw", "2.0"),
        ("loop", "2.0"),
        ("alloc", "2.0"),
        ("invalid", "2.0"),
        ("forbidden", "2.0"),
        ("isolation", "1.0"),
    ] {
        cfg.push_str(&function(name, runtime));
    }
    cfg.push_str(&format!(
        "[[functions]]\nname = \"version\"\nruntime = \"cloudfront-js-2.0\"\ncode_file = {version_js:?}\n\n\
         [[functions]]\nname = \"whoami\"\nruntime = \"cloudfront-js-2.0\"\ncode = \"\"\"\n\
         function handler(event) {{ event.response.headers['x-request-id'] = {{ value: event.context.requestId }}; return event.response; }}\n\"\"\"\n\n"
    ));
    let behavior = |pattern: &str, events: &[(&str, &str)], extra: &str| {
        let list: Vec<String> = events
            .iter()
            .map(|(e, f)| format!("{{ event_type = \"{e}\", function = \"{f}\" }}"))
            .collect();
        format!(
            "[[behaviors]]\npath_pattern = \"{pattern}\"\ntarget_origin = \"app\"\nfunction_associations = [{}]\n{extra}\n",
            list.join(", ")
        )
    };
    let vr = "viewer-request";
    for (pattern, f, extra) in [
        ("/country/*", "country", ""),
        ("/q/*", "querynorm", "query_strings = \"all\"\n"),
        ("/t/*", "token", "query_strings = \"all\"\n"),
        ("/ab/*", "ab", "cookies = [\"group\"]\n"),
        ("/kvs/*", "kvs_origin", "headers = [\"x-route-version\"]\n"),
        ("/err/throw", "throw", ""),
        ("/err/loop", "loop", ""),
        ("/err/alloc", "alloc", ""),
        ("/err/invalid", "invalid", ""),
        ("/err/forbidden", "forbidden", ""),
        (
            "/iso/*",
            "isolation",
            "headers = [\"x-count\", \"x-leak\", \"x-global\", \"x-proto\"]\n",
        ),
    ] {
        cfg.push_str(&behavior(pattern, &[(vr, f)], extra));
    }
    cfg.push_str(&behavior("/who/*", &[("viewer-response", "whoami")], ""));
    cfg.push_str(&behavior("/v/*", &[("viewer-response", "version")], ""));
    cfg.push_str(
        "[default_cache_behavior]\ntarget_origin = \"site\"\n\
         function_associations = [{ event_type = \"viewer-request\", function = \"spa\" }, \
         { event_type = \"viewer-response\", function = \"security_headers\" }]\n",
    );
    let server = TestServer::start_config(dir, &cfg);
    Live {
        server,
        app,
        eu,
        store,
        version_js,
    }
}

fn version_code(n: u32) -> String {
    format!(
        "function handler(event) {{ event.response.headers['x-version'] = {{ value: '{n}' }}; return event.response; }}\n"
    )
}

fn metrics(server: &TestServer) -> String {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", server.admin_port.unwrap())).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = String::new();
    c.read_to_string(&mut all).unwrap();
    all
}

/// The value of a series in a `/metrics` text.
fn series(text: &str, name: &str, function: &str) -> f64 {
    let prefix = format!("{name}{{function=\"{function}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

fn body(r: &util::Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[test]
fn single_page_app_rewrite_and_security_headers_on_static_files() {
    let live = start();
    let s = &live.server;
    for (path, want) in [
        ("/about", "app shell\n"),
        ("/deep/link/page", "app shell\n"),
        ("/docs/", "docs index\n"),
        ("/style.css", "body{}\n"),
    ] {
        let r = s.get(path, &[]);
        assert_eq!(
            (r.status, body(&r).as_str()),
            (200, want),
            "{path} {}",
            s.stderr()
        );
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=63072000; includeSubDomains; preload")
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(r.header("set-cookie"), Some("seen=1; Path=/; Secure"));
        assert_eq!(
            r.header("content-type").map(|t| t.starts_with("text/")),
            Some(true)
        );
    }
    // A 404 from the origin: CloudFront runs no viewer-response function on it.
    let r = s.get("/missing.png", &[]);
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-frame-options"), None);
}

#[test]
fn http2_viewers_get_the_same_functions() {
    let live = start();
    let out = Command::new("curl")
        .args(["-s", "-i", "--http2-prior-knowledge"])
        .arg(format!("http://127.0.0.1:{}/about", live.server.port))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.starts_with("http/2 200"), "{text}");
    assert!(text.contains("x-frame-options: deny"), "{text}");
    assert!(text.ends_with("app shell\n"), "{text}");
    let out = Command::new("curl")
        .args([
            "-s",
            "-i",
            "--http2-prior-knowledge",
            "-H",
            "CloudFront-Viewer-Country: DE",
        ])
        .arg(format!("http://127.0.0.1:{}/country/x", live.server.port))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.starts_with("http/2 302"), "{text}");
    assert!(
        text.contains("location: https://example.org/de/country/x"),
        "{text}"
    );
}

#[test]
fn redirect_by_viewer_country_is_generated_at_the_edge_and_never_cached() {
    let live = start();
    let s = &live.server;
    for _ in 0..2 {
        let r = s.get("/country/page", &[("CloudFront-Viewer-Country", "DE")]);
        assert_eq!(r.status, 302);
        assert_eq!(r.header("location"), Some("https://example.org/de/country/page"));
        assert_eq!(
            r.header("x-cache"),
            Some("FunctionGeneratedResponse from slabfront")
        );
    }
    assert_eq!(
        live.app.count(),
        0,
        "a generated response never reaches the origin"
    );
    let r = s.get("/country/page", &[("CloudFront-Viewer-Country", "FR")]);
    assert_eq!((r.status, body(&r).as_str()), (200, "app /country/page"));
    assert_eq!(r.header("x-cache"), Some("Miss from slabfront"));
    // The redirect was not stored: a German viewer is still redirected.
    let r = s.get("/country/page", &[("CloudFront-Viewer-Country", "DE")]);
    assert_eq!(r.status, 302);
}

#[test]
fn query_string_normalisation_raises_the_hit_ratio() {
    let live = start();
    let s = &live.server;
    let variants = [
        "/q/list?Page=2&utm_source=mail",
        "/q/list?utm_campaign=x&page=2",
        "/q/list?page=2&fbclid=abc",
        "/q/list?PAGE=2",
    ];
    let mut results = Vec::new();
    for v in variants {
        let r = s.get(v, &[]);
        assert_eq!((r.status, body(&r).as_str()), (200, "app /q/list?page=2"), "{v}");
        results.push(r.header("x-cache").unwrap().to_string());
    }
    assert_eq!(results[0], "Miss from slabfront");
    assert!(
        results[1..].iter().all(|r| r == "Hit from slabfront"),
        "{results:?}"
    );
    assert_eq!(live.app.count(), 1, "four URLs, one origin request");
}

fn hmac_hex(uri: &str, exp: u64) -> String {
    use hmac::Mac;
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"edge-secret").unwrap();
    m.update(format!("{uri}:{exp}").as_bytes());
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn token_checked_with_create_hmac() {
    let live = start();
    let s = &live.server;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let sig = hmac_hex("/t/video.mp4", exp);
    let r = s.get(&format!("/t/video.mp4?exp={exp}&sig={sig}"), &[]);
    assert_eq!((r.status, body(&r).as_str()), (200, "app /t/video.mp4"));
    let r = s.get(&format!("/t/video.mp4?exp={exp}&sig=00{}", &sig[2..]), &[]);
    assert_eq!((r.status, r.header("x-denied")), (403, Some("signature")));
    let r = s.get("/t/video.mp4", &[]);
    assert_eq!((r.status, r.header("x-denied")), (403, Some("missing")));
    let old = exp - 1200;
    let r = s.get(
        &format!("/t/video.mp4?exp={old}&sig={}", hmac_hex("/t/video.mp4", old)),
        &[],
    );
    assert_eq!((r.status, r.header("x-denied")), (403, Some("expired")));
    assert_eq!(live.app.count(), 1);
}

#[test]
fn a_b_test_by_cookie() {
    let live = start();
    let s = &live.server;
    let r = s.get("/ab/home", &[("Cookie", "group=a")]);
    assert_eq!(body(&r), "app /ab/home");
    let r = s.get("/ab/home", &[("Cookie", "group=b")]);
    assert_eq!(body(&r), "app /b/ab/home");
    // No cookie: the group comes from the viewer's address (127.0.0.1: odd, so "b"), and
    // the origin sees the cookie the function set.
    let r = s.get("/ab/other", &[]);
    assert_eq!(body(&r), "app /b/ab/other");
    let seen = live.app.requests();
    let last = seen.iter().find(|r| r.target == "/b/ab/other").unwrap();
    assert_eq!(last.header("cookie"), Some("group=b"));
}

#[test]
fn origin_chosen_from_a_key_value_store_which_is_reread_when_its_file_changes() {
    let live = start();
    let s = &live.server;
    let r = s.get("/kvs/item", &[]);
    assert_eq!((r.status, body(&r).as_str()), (200, "eu /kvs/item"));
    assert_eq!(live.app.count(), 0);
    assert_eq!(live.eu.requests()[0].header("x-route-version"), Some("3"));
    std::thread::sleep(Duration::from_millis(1100));
    write_store(&live.store, 4);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.get(&format!("/kvs/item{}", deadline.elapsed().as_nanos()), &[]);
        assert_eq!(r.status, 200);
        let seen = live.eu.requests();
        if seen.last().unwrap().header("x-route-version") == Some("4") {
            break;
        }
        assert!(Instant::now() < deadline, "the store was not re-read");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_error_path_is_a_503_counted_per_function() {
    let live = start();
    let s = &live.server;
    for (path, function) in [
        ("/err/throw", "throw"),
        ("/err/loop", "loop"),
        ("/err/alloc", "alloc"),
        ("/err/invalid", "invalid"),
        ("/err/forbidden", "forbidden"),
    ] {
        let t = Instant::now();
        let r = s.get(path, &[]);
        assert_eq!(r.status, 503, "{path}");
        assert!(body(&r).contains("function"), "{path}: {}", body(&r));
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{path} took {:?}",
            t.elapsed()
        );
        let m = metrics(s);
        assert_eq!(
            series(&m, "slabfront_function_errors_total", function),
            1.0,
            "{path}\n{m}"
        );
        assert_eq!(series(&m, "slabfront_function_invocations_total", function), 1.0);
    }
    let m = metrics(s);
    assert_eq!(
        series(&m, "slabfront_function_compute_exceeded_total", "loop"),
        1.0
    );
    assert_eq!(live.app.count(), 0);
    // The worker is fine afterwards, and the failures were logged.
    assert_eq!(s.get("/about", &[]).status, 200);
    let log = s.stderr();
    assert!(log.contains("deliberate failure"), "{log}");
    assert!(log.contains("function failed"), "{log}");
}

#[test]
fn no_state_leaks_from_one_invocation_to_the_next() {
    let live = start();
    let s = &live.server;
    for i in 0..6 {
        let r = s.get(&format!("/iso/{i}"), &[]);
        assert_eq!(r.status, 200, "{}", body(&r));
    }
    let seen = live.app.requests();
    assert_eq!(seen.len(), 6);
    for r in seen {
        assert_eq!(r.header("x-count"), Some("1"), "{r:?}");
        assert_eq!(r.header("x-leak"), Some("none"), "{r:?}");
        assert_eq!(r.header("x-global"), Some("none"), "{r:?}");
        assert_eq!(r.header("x-proto"), Some("none"), "{r:?}");
    }
}

#[test]
fn the_same_function_runs_on_both_workers_under_load() {
    let live = start();
    let port = live.server.port;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut workers = std::collections::HashSet::new();
                for _ in 0..25 {
                    // A new connection each time: SO_REUSEPORT spreads them over the workers.
                    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    for _ in 0..4 {
                        c.write_all(b"GET /who/x HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
                        let r = read_response(&mut c, false).unwrap();
                        assert_eq!(r.status, 200);
                        assert_eq!(r.body, b"app /who/x");
                        workers.insert(r.header("x-request-id").unwrap()[..2].to_string());
                    }
                }
                workers
            })
        })
        .collect();
    let mut workers = std::collections::HashSet::new();
    for t in threads {
        workers.extend(t.join().unwrap());
    }
    assert_eq!(workers.len(), 2, "{workers:?}");
    let m = metrics(&live.server);
    assert_eq!(
        series(&m, "slabfront_function_invocations_total", "whoami"),
        800.0
    );
    assert_eq!(series(&m, "slabfront_function_errors_total", "whoami"), 0.0);
}

#[test]
fn sighup_replaces_a_function_without_dropping_a_connection() {
    let live = start();
    let s = &live.server;
    let mut c = s.connect();
    let get = |c: &mut std::net::TcpStream| {
        c.write_all(b"GET /v/x HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let r = read_response(c, false).unwrap();
        assert_eq!(r.status, 200);
        r.header("x-version").unwrap().to_string()
    };
    assert_eq!(get(&mut c), "1");
    std::fs::write(&live.version_js, version_code(2)).unwrap();
    Command::new("kill")
        .args(["-HUP", &s.child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&mut c) != "2" {
        assert!(Instant::now() < deadline, "the function was not replaced");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A function that no longer compiles keeps the running one.
    std::fs::write(&live.version_js, "function handler(event) {").unwrap();
    Command::new("kill")
        .args(["-HUP", &s.child.id().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(get(&mut c), "2");
}
