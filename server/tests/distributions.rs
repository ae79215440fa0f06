#![allow(clippy::unwrap_used)]
//! Several distributions on one edge, chosen by Host: each as isolated as a CloudFront
//! distribution of its own (origins, cache keys, invalidations, logs), unknown and disabled
//! hosts refused as CloudFront refuses them, and reloads that add and remove distributions
//! under traffic. A file of one `[[distributions]]` is served exactly as the same
//! distribution written at the top level.

mod util;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};
use util::origin::{Origin, Reply};
use util::{read_response, Response, TestServer};

fn one(name: &str, root: &std::path::Path, root_object: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[[distributions]]\nname = \"{name}\"\n\
         root_object = \"{root_object}\"\n[[distributions.origins]]\nid = \"files\"\npath = {root:?}\n\
         [distributions.default_cache_behavior]\ntarget_origin = \"files\"\n"
    )
}

/// A distribution in front of a custom origin on `port`, with its own access log.
fn proxied(name: &str, aliases: &str, port: u16, log: &std::path::Path, extra: &str) -> String {
    format!(
        "\n[[distributions]]\nname = \"{name}\"\naliases = [{aliases}]\n{extra}\n\
         [distributions.logging]\npath = {log:?}\n\
         [[distributions.origins]]\nid = \"app\"\ndomain_name = \"127.0.0.1\"\nhttp_port = {port}\nprotocol = \"http-only\"\n\
         [distributions.default_cache_behavior]\ntarget_origin = \"app\"\n"
    )
}

/// An origin that names itself in every body: `<tag> <path>`.
fn tagged(tag: &'static str) -> Origin {
    Origin::start(move |seen| {
        Reply::ok(
            format!("{tag} {}", seen.target).as_bytes(),
            &[("Cache-Control", "max-age=600")],
        )
    })
}

struct Fleet {
    server: TestServer,
    a: Origin,
    b: Origin,
    logs: tempfile::TempDir,
}

fn two_proxied(extra_b: &str) -> Fleet {
    let (a, b) = (tagged("A"), tagged("B"));
    let logs = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 2\n[admin]\nlisten = \"127.0.0.1:0\"\n[cache]\npath = {:?}\nsize = \"64MiB\"\n{}{}",
        dir.path().join("slab"),
        proxied("a.example", "\"www.a.example\"", a.port, &logs.path().join("a.log"), ""),
        proxied("b.example", "\"*.b.example\"", b.port, &logs.path().join("b.log"), extra_b),
    );
    Fleet {
        server: TestServer::start_config(dir, &cfg),
        a,
        b,
        logs,
    }
}

fn get(port: u16, host: &str, path: &str) -> Response {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    read_response(&mut c, false).unwrap()
}

fn admin(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let r = read_response(&mut c, false).unwrap();
    (r.status, String::from_utf8_lossy(&r.body).to_string())
}

fn wait_for(server: &TestServer, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let s = server.stderr();
        if s.contains(needle) || start.elapsed() > Duration::from_secs(10) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_same_path_on_two_distributions_never_shares_an_object() {
    let f = two_proxied("");
    let p = f.server.port;
    for _ in 0..2 {
        assert_eq!(get(p, "a.example", "/same").body, b"A /same");
        assert_eq!(get(p, "b.example", "/same").body, b"B /same");
    }
    let hit = get(p, "a.example", "/same");
    assert_eq!(hit.header("x-cache"), Some("Hit from slabfront"));
    assert_eq!(f.a.count(), 1, "A fetched once");
    assert_eq!(f.b.count(), 1, "B fetched once");
}

#[test]
fn aliases_wildcards_unknown_and_disabled_hosts() {
    let f = two_proxied("");
    let p = f.server.port;
    assert_eq!(get(p, "www.a.example", "/x").body, b"A /x");
    assert_eq!(get(p, "A.EXAMPLE:8080", "/x").body, b"A /x");
    assert_eq!(get(p, "img.b.example", "/x").body, b"B /x");
    assert_eq!(get(p, "deep.img.b.example", "/x").body, b"B /x");
    let unknown = get(p, "c.example", "/x");
    assert_eq!(unknown.status, 403);
    assert!(String::from_utf8_lossy(&unknown.body).contains("could not be satisfied"));
    // The wildcard covers names below b.example only, as CloudFront's do.
    assert_eq!(get(p, "x.example", "/x").status, 403);
    assert_eq!(f.a.count() + f.b.count(), 1 + 1);

    let off = two_proxied("enabled = false");
    assert_eq!(get(off.server.port, "b.example", "/x").status, 403);
    assert_eq!(get(off.server.port, "a.example", "/x").status, 200);
    assert_eq!(
        off.b.count(),
        0,
        "a disabled distribution never reaches its origin"
    );
}

#[test]
fn invalidations_and_logs_are_per_distribution() {
    let f = two_proxied("");
    let p = f.server.port;
    let ap = f.server.admin_port.unwrap();
    get(p, "a.example", "/o");
    get(p, "b.example", "/o");
    let (status, body) = admin(
        ap,
        "POST",
        "/distributions/a.example/invalidations",
        r#"{"paths":["/o"]}"#,
    );
    assert_eq!(status, 201, "{body}");
    get(p, "a.example", "/o");
    let b = get(p, "b.example", "/o");
    assert_eq!(f.a.count(), 2, "a's object was invalidated");
    assert_eq!(
        (f.b.count(), b.header("x-cache")),
        (1, Some("Hit from slabfront"))
    );
    // With several distributions the old path must name one; an unknown one is 404.
    assert_eq!(admin(ap, "POST", "/invalidations", r#"{"paths":["/o"]}"#).0, 400);
    assert_eq!(
        admin(
            ap,
            "POST",
            "/distributions/nope.example/invalidations",
            r#"{"paths":["/o"]}"#
        )
        .0,
        404
    );
    // slabfront invalidate --distribution.
    let out = Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .args([
            "invalidate",
            "--admin",
            &format!("http://127.0.0.1:{ap}"),
            "--distribution",
            "b.example",
            "/o",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    get(p, "b.example", "/o");
    assert_eq!(f.b.count(), 2);

    // Each distribution's log has its own lines only (flushed within a second or so): two
    // requests to a, three to b.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (a_log, b_log) = loop {
        let read = |n: &str| std::fs::read_to_string(f.logs.path().join(n)).unwrap_or_default();
        let (a, b) = (read("a.log"), read("b.log"));
        if (a.lines().filter(|l| !l.starts_with('#')).count() >= 2
            && b.lines().filter(|l| !l.starts_with('#')).count() >= 3)
            || Instant::now() > deadline
        {
            break (a, b);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let lines = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(lines(&a_log).len(), 2, "{a_log}");
    assert!(
        lines(&a_log).iter().all(|l| l.contains("\ta.example\t")),
        "{a_log}"
    );
    assert_eq!(lines(&b_log).len(), 3, "{b_log}");
    assert!(
        lines(&b_log).iter().all(|l| l.contains("\tb.example\t")),
        "{b_log}"
    );
}

/// Waits until the `/metrics` series `series` reads `want` (counts land just after the
/// response leaves), failing with the whole text if it never does.
fn metric_reaches(admin_port: u16, series: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, text) = admin(admin_port, "GET", "/metrics", "");
        assert_eq!(status, 200);
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse::<u64>().ok());
        if value == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} is {value:?}, not {want}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_are_labelled_by_distribution() {
    let f = two_proxied("");
    let (p, ap) = (f.server.port, f.server.admin_port.unwrap());
    get(p, "a.example", "/m");
    get(p, "a.example", "/m");
    get(p, "img.b.example", "/m");
    get(p, "c.example", "/m");
    let a = "distribution=\"a.example\"";
    let b = "distribution=\"b.example\"";
    metric_reaches(
        ap,
        &format!("slabfront_distribution_requests_total{{{a},status_class=\"2xx\"}}"),
        2,
    );
    metric_reaches(
        ap,
        &format!("slabfront_distribution_requests_total{{{b},status_class=\"2xx\"}}"),
        1,
    );
    metric_reaches(
        ap,
        &format!("slabfront_distribution_requests_by_cache_result_total{{{a},result=\"Hit\"}}"),
        1,
    );
    metric_reaches(
        ap,
        &format!("slabfront_distribution_requests_by_cache_result_total{{{a},result=\"Miss\"}}"),
        1,
    );
    metric_reaches(
        ap,
        &format!("slabfront_distribution_requests_by_cache_result_total{{{b},result=\"Hit\"}}"),
        0,
    );
    let (_, text) = admin(ap, "GET", "/metrics", "");
    let sent = |d: &str| -> u64 {
        let series = format!("slabfront_distribution_sent_bytes_total{{{d}}}");
        text.lines()
            .find_map(|l| l.strip_prefix(&series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    // a answered twice, b once, responses of about the same size.
    assert!(sent(b) > 0);
    assert!(sent(a) > sent(b) * 3 / 2, "{text}");
}

#[test]
fn one_distribution_is_served_as_the_same_at_the_top_level() {
    let site = util::site();
    std::fs::write(site.path().join("two.html"), b"<h1>two</h1>").unwrap();
    let server = TestServer::start_config(
        tempfile::tempdir().unwrap(),
        &one("a.example", site.path(), "two.html"),
    );
    assert_eq!(server.get("/", &[]).body, b"<h1>two</h1>");
    // Any Host: a file of one distribution answers every request, as before.
    assert_eq!(get(server.port, "other.example", "/").body, b"<h1>two</h1>");
}

#[test]
fn reload_adds_and_removes_distributions_without_a_failed_request() {
    let site = util::site();
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("index.html"), b"<h1>other</h1>").unwrap();
    // With an admin listener: a distribution a reload adds is counted in `/metrics` too.
    let with_admin = |cfg: String| format!("{cfg}\n[admin]\nlisten = \"127.0.0.1:0\"\n");
    let server = TestServer::start_config(
        tempfile::tempdir().unwrap(),
        &with_admin(one("a.example", site.path(), "index.html")),
    );
    let port = server.port;
    // Keep-alive traffic to a.example the whole time.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, 0);
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sent = c.write_all(b"GET /index.html HTTP/1.1\r\nHost: a.example\r\n\r\n");
                match sent.ok().and_then(|()| read_response(&mut c, false).ok()) {
                    Some(r) if r.status == 200 && r.body == b"<h1>index</h1>\n" => ok += 1,
                    _ => {
                        failed += 1;
                        match TcpStream::connect(("127.0.0.1", port)) {
                            Ok(n) => c = n,
                            Err(_) => break,
                        }
                    }
                }
            }
            (ok, failed)
        })
    };
    let cfg_path = server.dir.path().join("slabfront.toml");
    let hup = || {
        assert!(Command::new("kill")
            .arg("-HUP")
            .arg(server.child.id().to_string())
            .status()
            .unwrap()
            .success());
    };
    let second = format!(
        "\n[[distributions]]\nname = \"b.example\"\n[[distributions.origins]]\nid = \"files\"\npath = {:?}\n[distributions.default_cache_behavior]\ntarget_origin = \"files\"\n",
        other.path()
    );
    std::fs::write(
        &cfg_path,
        with_admin(format!("{}{second}", one("a.example", site.path(), "index.html"))),
    )
    .unwrap();
    hup();
    wait_for(&server, "configuration reloaded");
    assert_eq!(get(port, "b.example", "/").body, b"<h1>other</h1>");
    assert_eq!(get(port, "a.example", "/").body, b"<h1>index</h1>\n");
    metric_reaches(
        server.admin_port.unwrap(),
        "slabfront_distribution_requests_total{distribution=\"b.example\",status_class=\"2xx\"}",
        1,
    );
    // Remove b again.
    std::fs::write(&cfg_path, with_admin(one("a.example", site.path(), "index.html"))).unwrap();
    let before = server.stderr().matches("configuration reloaded").count();
    hup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.stderr().matches("configuration reloaded").count() == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Back to one distribution: it answers every Host again.
    assert_eq!(get(port, "b.example", "/").body, b"<h1>index</h1>\n");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = traffic.join().unwrap();
    assert!(ok > 0);
    assert_eq!(failed, 0, "{ok} answered; the server said:\n{}", server.stderr());
}

#[test]
fn a_vip_distribution_answers_every_connection_on_its_own_listener() {
    let (a, b) = (tagged("A"), tagged("B"));
    let logs = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A free port on an address of b's own.
    let vip = std::net::TcpListener::bind("127.0.0.21:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 2\n[cache]\npath = {:?}\nsize = \"64MiB\"\n{}{}",
        dir.path().join("slab"),
        proxied("a.example", "", a.port, &logs.path().join("a.log"), ""),
        proxied(
            "b.example",
            "",
            b.port,
            &logs.path().join("b.log"),
            &format!("ssl_support_method = \"vip\"\nlisten = [\"{vip}\"]"),
        ),
    );
    let server = TestServer::start_config(dir, &cfg);
    let on_vip = |host: &str| {
        let mut c = TcpStream::connect(vip).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(format!("GET /v HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
            .unwrap();
        read_response(&mut c, false).unwrap()
    };
    // Whatever the Host, b's listener is b's.
    assert_eq!(on_vip("b.example").body, b"B /v");
    assert_eq!(on_vip("a.example").body, b"B /v");
    assert_eq!(on_vip("unknown.example").body, b"B /v");
    // The shared listener still routes by Host.
    assert_eq!(get(server.port, "a.example", "/v").body, b"A /v");
    assert_eq!(get(server.port, "b.example", "/v").body, b"B /v");
    assert_eq!(a.count(), 1);
}

#[test]
fn a_distribution_fails_over_within_its_own_origin_group() {
    let (a, b) = (tagged("A"), tagged("B"));
    let logs = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: b's primary refuses every connection.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n[cache]\npath = {:?}\nsize = \"64MiB\"\n{}\n\
         [[distributions]]\nname = \"b.example\"\n\
         [[distributions.origins]]\nid = \"down\"\ndomain_name = \"127.0.0.1\"\nhttp_port = {dead}\nprotocol = \"http-only\"\n\
         [[distributions.origins]]\nid = \"up\"\ndomain_name = \"127.0.0.1\"\nhttp_port = {}\nprotocol = \"http-only\"\n\
         [[distributions.origin_groups]]\nid = \"pair\"\nmembers = [\"down\", \"up\"]\n\
         [distributions.default_cache_behavior]\ntarget_origin = \"pair\"\n",
        dir.path().join("slab"),
        proxied("a.example", "", a.port, &logs.path().join("a.log"), ""),
        b.port,
    );
    let server = TestServer::start_config(dir, &cfg);
    let r = get(server.port, "b.example", "/g");
    assert_eq!(r.body, b"B /g", "{}", server.stderr());
    assert!(
        r.header("cache-status").is_some_and(|c| c.contains("failover")),
        "{:?}",
        r.header("cache-status")
    );
    assert_eq!(get(server.port, "a.example", "/g").body, b"A /g");
}

#[test]
fn every_distribution_disabled_does_not_start() {
    let site = util::site();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("off.toml");
    let text =
        one("a.example", site.path(), "index.html").replace("root_object", "enabled = false\nroot_object");
    std::fs::write(&p, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slabfront"))
        .args(["run", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("every distribution is disabled"), "{stderr}");
}
