#![allow(clippy::unwrap_used)]
//! A shield tier: real slabfront processes as edges (127.0.0.21 and up) in front of
//! slabfront shields (127.0.0.11 and up) in front of one counting origin. Each object is
//! fetched from the origin once for the whole fleet (collapsing across tiers), each key has
//! one home shield and losing a shield moves only its keys, the viewer's Host picks the
//! shield's distribution, origin settings are applied by the shield only, `Cache-Status`
//! lists every tier, and a request that comes round to a node it passed is refused (508).

mod util;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;
use util::origin::{Origin, Reply};
use util::{read_response, Response, TestServer};

/// One distribution in front of the origin on `port`, its requests prefixed by
/// `origin_path`, fetched through `parents`.
fn distribution(name: &str, port: u16, origin_path: &str, parents: &str) -> String {
    format!(
        "\n[[distributions]]\nname = \"{name}\"\n\
         [[distributions.origins]]\nid = \"app\"\ndomain_name = \"127.0.0.1\"\nhttp_port = {port}\n\
         protocol = \"http-only\"\norigin_path = \"{origin_path}\"\nconnection_attempts = 1\n\
         connection_timeout = \"1s\"\n{parents}\n\
         [distributions.default_cache_behavior]\ntarget_origin = \"app\"\n"
    )
}

/// A slabfront node named `name` on `ip`, serving `a.example` and `b.example` (origin paths
/// `/a` and `/b`) from the origin on `port`, through `parents` (a TOML line, or empty).
fn node(name: &str, ip: &str, port: u16, parents: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "[server]\nlisten = [\"{ip}:0\"]\nworkers = 2\nnode_name = \"{name}\"\n\
         [cache]\npath = {slab:?}\nsize = \"64MiB\"\n{a}{b}",
        slab = dir.path().join("slab"),
        a = distribution("a.example", port, "/a", parents),
        b = distribution("b.example", port, "/b", parents),
    );
    TestServer::start_config(dir, &cfg)
}

fn get(ip: &str, s: &TestServer, host: &str, path: &str, extra: &str) -> Response {
    let mut c = TcpStream::connect((ip, s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    read_response(&mut c, false).unwrap()
}

/// An origin that names the path it was asked for, slowly enough that the fleet's requests
/// for one object overlap.
fn slow_origin() -> Origin {
    Origin::start(|seen| {
        Reply::ok(
            format!("origin {}", seen.target).as_bytes(),
            &[("Cache-Control", "max-age=600")],
        )
        .delayed(Duration::from_millis(300))
    })
}

struct Fleet {
    origin: Origin,
    shields: Vec<(String, TestServer)>,
    edges: Vec<(String, TestServer)>,
}

fn fleet(shields: usize, edges: usize) -> Fleet {
    let origin = slow_origin();
    let shields: Vec<(String, TestServer)> = (0..shields)
        .map(|i| {
            let ip = format!("127.0.0.{}", 11 + i);
            let s = node(&format!("shield-{}", i + 1), &ip, origin.port, "");
            (ip, s)
        })
        .collect();
    let list: Vec<String> = shields
        .iter()
        .map(|(ip, s)| format!("\"{ip}:{}\"", s.port))
        .collect();
    let parents = format!("parents = [{}]", list.join(", "));
    let edges = (0..edges)
        .map(|i| {
            let ip = format!("127.0.0.{}", 21 + i);
            let s = node(&format!("edge-{}", i + 1), &ip, origin.port, &parents);
            (ip, s)
        })
        .collect();
    Fleet {
        origin,
        shields,
        edges,
    }
}

/// Every edge asks for every path at once; every answer must be the origin's.
fn load(f: &Fleet, host: &str, paths: &[String]) {
    std::thread::scope(|scope| {
        for (ip, e) in &f.edges {
            for p in paths {
                scope.spawn(move || {
                    let r = get(ip, e, host, p, "");
                    assert_eq!(r.status, 200, "{ip} {p}: {r:?}");
                    let want = format!("origin /{}{p}", &host[..1]);
                    assert_eq!(String::from_utf8_lossy(&r.body), want);
                });
            }
        }
    });
}

#[test]
fn a_fleet_fetches_each_object_from_the_origin_once() {
    let f = fleet(2, 3);
    let paths: Vec<String> = (0..12).map(|i| format!("/obj/{i}")).collect();
    load(&f, "a.example", &paths);
    assert_eq!(
        f.origin.count(),
        paths.len(),
        "one origin fetch per object for 3 edges x 2 shields: {:?}",
        f.origin
            .requests()
            .iter()
            .map(|r| r.target.clone())
            .collect::<Vec<_>>()
    );
    // The shield applied the distribution's origin settings once (`/a`), the edge none.
    for r in f.origin.requests() {
        assert!(r.target.starts_with("/a/obj/"), "{}", r.target);
        let via = r.header("via").unwrap_or_default().to_string();
        assert!(via.contains("shield-"), "the origin hears from a shield: {via}");
        assert!(!via.contains("edge-"), "edges never reach the origin: {via}");
    }
    // Every edge serves them again from its own cache.
    load(&f, "a.example", &paths);
    assert_eq!(f.origin.count(), paths.len());

    // The viewer's Host picks the shield's distribution: b.example's objects come from `/b`.
    let (ip, e) = &f.edges[0];
    let r = get(ip, e, "b.example", "/obj/0", "");
    assert_eq!(String::from_utf8_lossy(&r.body), "origin /b/obj/0");
    // Cache-Status lists both tiers, the shield's entry first (RFC 9211).
    let cs = r.header("cache-status").unwrap().to_string();
    let (shield, edge) = cs.split_once(", ").unwrap_or_else(|| panic!("two entries: {cs}"));
    assert!(
        shield.starts_with("shield-") && shield.contains("fwd=miss"),
        "{cs}"
    );
    assert!(edge.starts_with("edge-1; fwd=miss; stored"), "{cs}");
    // A second edge finds it at the shield: a shield hit, an edge miss.
    let (ip2, e2) = &f.edges[1];
    let cs = get(ip2, e2, "b.example", "/obj/0", "")
        .header("cache-status")
        .unwrap()
        .to_string();
    assert!(cs.contains("; hit, edge-2; fwd=miss"), "{cs}");
}

#[test]
fn losing_a_shield_moves_only_its_keys() {
    let mut f = fleet(2, 2);
    let paths: Vec<String> = (0..16).map(|i| format!("/k/{i}")).collect();
    load(&f, "a.example", &paths);
    assert_eq!(f.origin.count(), paths.len());
    // Which shield is home to which key: the shield's name is first in Cache-Status.
    let (ip, e) = &f.edges[0];
    let mut lost = Vec::new();
    for p in &paths {
        let cs = get(ip, e, "a.example", p, "")
            .header("cache-status")
            .unwrap()
            .to_string();
        if cs.starts_with("shield-1;") {
            lost.push(p.clone());
        }
    }
    assert!(
        !lost.is_empty() && lost.len() < paths.len(),
        "both shields are home to some keys"
    );
    f.shields[0].1.kill9();
    // Fresh edges (nothing cached) for the same keys: shield-1's keys come from shield-2
    // now, fetched from the origin once more each; shield-2's keys cost nothing.
    let list = format!(
        "parents = [\"{}:{}\", \"{}:{}\"]",
        f.shields[0].0, f.shields[0].1.port, f.shields[1].0, f.shields[1].1.port
    );
    let fresh = node("edge-9", "127.0.0.29", f.origin.port, &list);
    let before = f.origin.count();
    for p in &paths {
        let r = get("127.0.0.29", &fresh, "a.example", p, "");
        assert_eq!(r.status, 200, "{p}: {r:?}");
        assert!(r.header("cache-status").unwrap().starts_with("shield-2;"));
    }
    let refetched: Vec<String> = f.origin.requests()[before..]
        .iter()
        .map(|r| r.target.trim_start_matches("/a").to_string())
        .collect();
    let mut want = lost.clone();
    want.sort();
    let mut got = refetched.clone();
    got.sort();
    assert_eq!(got, want, "only the lost shield's keys, once each");
}

#[test]
fn without_parents_the_origin_is_the_last_resort_unless_refused() {
    let origin = slow_origin();
    // A parent that is not there (nothing listens on this port).
    let gone = std::net::TcpListener::bind("127.0.0.13:0").unwrap();
    let addr = gone.local_addr().unwrap();
    drop(gone);
    let falls_back = node(
        "edge-1",
        "127.0.0.21",
        origin.port,
        &format!("parents = [\"{addr}\"]"),
    );
    let r = get("127.0.0.21", &falls_back, "a.example", "/x", "");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"origin /a/x"[..]));
    let strict = node(
        "edge-2",
        "127.0.0.22",
        origin.port,
        &format!("parents = [\"{addr}\"]\nparent_fallback_to_origin = false"),
    );
    let r = get("127.0.0.22", &strict, "a.example", "/y", "");
    assert_eq!(r.status, 502, "{r:?}");
    assert_eq!(origin.count(), 1, "the strict edge never went to the origin");
}

#[test]
fn a_request_that_comes_round_again_is_refused_with_508() {
    let origin = slow_origin();
    // Two nodes, each the other's parent (a configuration mistake), without fallback.
    let a_port = free_port("127.0.0.31");
    let b_port = free_port("127.0.0.32");
    let a = node_at(
        "loop-a",
        "127.0.0.31",
        a_port,
        origin.port,
        &format!("parents = [\"127.0.0.32:{b_port}\"]\nparent_fallback_to_origin = false"),
    );
    let b = node_at(
        "loop-b",
        "127.0.0.32",
        b_port,
        origin.port,
        &format!("parents = [\"127.0.0.31:{a_port}\"]\nparent_fallback_to_origin = false"),
    );
    let r = get("127.0.0.31", &a, "a.example", "/round", "");
    assert_eq!(r.status, 508, "{r:?}");
    assert_eq!(origin.count(), 0, "never forwarded to the origin");
    // A viewer's request naming the node is refused at once too.
    let r = get(
        "127.0.0.32",
        &b,
        "a.example",
        "/x",
        "Via: 1.1 loop-b (slabfront)\r\n",
    );
    assert_eq!(r.status, 508);
    assert_eq!(origin.count(), 0);
}

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// As `node`, on a fixed port (for nodes that name each other).
fn node_at(name: &str, ip: &str, port: u16, origin: u16, parents: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "[server]\nlisten = [\"{ip}:{port}\"]\nworkers = 1\nnode_name = \"{name}\"\n\
         [cache]\npath = {slab:?}\nsize = \"64MiB\"\n{a}",
        slab = dir.path().join("slab"),
        a = distribution("a.example", origin, "/a", parents),
    );
    TestServer::start_config(dir, &cfg)
}
