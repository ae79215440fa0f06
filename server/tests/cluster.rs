#![allow(clippy::unwrap_used)]
//! The control plane on a real etcd (Debian `etcd-server`, started and stopped here by PID):
//! an invalidation posted to one node is applied by every node and is `Completed` only once
//! all have acknowledged it; a node that was down catches up before it serves again; with
//! etcd stopped, nodes keep serving and invalidations answer 503.

mod util;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use util::origin::{Origin, Reply};
use util::{read_response, TestServer};

struct Etcd {
    child: Child,
    client: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// etcd on 127.0.0.1, or `None` (the test is skipped, loudly) when it is not installed.
fn etcd() -> Option<Etcd> {
    if Command::new("etcd").arg("--version").output().is_err() {
        eprintln!("SKIPPED: etcd is not installed (Debian etcd-server; .ci/run installs it)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (free_port(), free_port());
    let child = Command::new("etcd")
        .args(["--name", "t", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
        .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
        .arg(format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"))
        .arg(format!("--initial-cluster=t=http://127.0.0.1:{peer}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("etcd.log")).unwrap())
        .spawn()
        .unwrap();
    let e = Etcd {
        child,
        client,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", client)).is_err() {
        assert!(Instant::now() < deadline, "etcd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(e)
}

fn node_config(name: &str, etcd: u16, origin: u16, slab: &std::path::Path) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\
         [cluster]\netcd = [\"http://127.0.0.1:{etcd}\"]\nnode_name = \"{name}\"\nlease_ttl = \"2s\"\ntimeout = \"1s\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [cache]\npath = {slab:?}\nsize = \"64MiB\"\n\
         [[origins]]\nid = \"app\"\ndomain_name = \"127.0.0.1\"\nhttp_port = {origin}\nprotocol = \"http-only\"\n\
         [default_cache_behavior]\ntarget_origin = \"app\"\n"
    )
}

/// A node whose slab lives in `slab` (kept across restarts by the caller).
fn node(name: &str, etcd: u16, origin: u16, slab: &std::path::Path) -> TestServer {
    TestServer::start_config(
        tempfile::tempdir().unwrap(),
        &node_config(name, etcd, origin, slab),
    )
}

fn admin(s: &TestServer, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut c = TcpStream::connect(("127.0.0.1", s.admin_port.unwrap())).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let r = read_response(&mut c, false).unwrap();
    (r.status, serde_json::from_slice(&r.body).unwrap_or_default())
}

fn invalidate(s: &TestServer, path: &str) -> (u16, serde_json::Value) {
    admin(
        s,
        "POST",
        "/invalidations",
        &format!("{{\"paths\": [\"{path}\"]}}"),
    )
}

/// Waits until the invalidation is Completed; returns how long it took.
fn completed(s: &TestServer, id: &str, within: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let (code, v) = admin(s, "GET", &format!("/invalidations/{id}"), "");
        assert_eq!(code, 200, "{v}");
        if v["status"] == "Completed" {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < within, "still {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn counting_origin() -> Origin {
    Origin::start(|seen| Reply::ok(seen.target.as_bytes(), &[("Cache-Control", "max-age=600")]))
}

fn fetches(o: &Origin, path: &str) -> usize {
    o.requests().iter().filter(|r| r.target == path).count()
}

#[test]
fn an_invalidation_on_one_node_reaches_every_node() {
    let Some(etcd) = etcd() else { return };
    let origin = counting_origin();
    let slabs = tempfile::tempdir().unwrap();
    let a = node("node-a", etcd.client, origin.port, &slabs.path().join("a"));
    let mut b = node("node-b", etcd.client, origin.port, &slabs.path().join("b"));
    for s in [&a, &b] {
        assert_eq!(s.get("/x", &[]).status, 200);
        assert_eq!(s.get("/x", &[]).header("x-cache"), Some("Hit from slabfront"));
    }
    assert_eq!(fetches(&origin, "/x"), 2);

    let (code, v) = invalidate(&a, "/x");
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    completed(&b, &id, Duration::from_secs(10));
    let (_, v) = admin(&a, "GET", &format!("/invalidations/{id}"), "");
    assert_eq!(v["acknowledged"].as_array().unwrap().len(), 2, "{v}");
    for s in [&a, &b] {
        assert_ne!(s.get("/x", &[]).header("x-cache"), Some("Hit from slabfront"));
    }
    assert_eq!(fetches(&origin, "/x"), 4, "both nodes fetched it again");

    // A node that is down when an invalidation is posted applies it before it serves again.
    assert_eq!(b.get("/y", &[]).status, 200);
    b.kill9();
    let (code, v) = invalidate(&a, "/y");
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    // node-b's lease runs out (2 s): it no longer holds the invalidation back.
    completed(&a, &id, Duration::from_secs(10));
    let before = fetches(&origin, "/y");
    let b = node("node-b", etcd.client, origin.port, &slabs.path().join("b"));
    let r = b.get("/y", &[]);
    assert_ne!(r.header("x-cache"), Some("Hit from slabfront"), "{:?}", r.headers);
    assert_eq!(fetches(&origin, "/y"), before + 1);
}

#[test]
fn with_etcd_down_nodes_serve_and_invalidations_answer_503() {
    let Some(mut etcd) = etcd() else { return };
    let origin = counting_origin();
    let slabs = tempfile::tempdir().unwrap();
    let a = node("node-a", etcd.client, origin.port, &slabs.path().join("a"));
    assert_eq!(a.get("/z", &[]).status, 200);
    let _ = etcd.child.kill();
    let _ = etcd.child.wait();
    assert_eq!(a.get("/z", &[]).header("x-cache"), Some("Hit from slabfront"));
    let (code, v) = invalidate(&a, "/z");
    assert_eq!(code, 503, "{v}");
    assert!(v.to_string().contains("etcd"), "a clear reason: {v}");
    assert_eq!(a.get("/z", &[]).status, 200, "still serving");
}
