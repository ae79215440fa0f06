#![allow(clippy::unwrap_used)]
//! Compression at the edge (`compress = true`): every coding decoded back to the identity
//! bytes (by the crates, and by curl `--compressed`), `Vary`/`ETag`/`Content-Length`, the
//! size bounds, types and `no-transform` left alone, an origin's own encoding passed as is,
//! ranges answered from the identity bytes, each variant computed once and then served from
//! the slab, invalidation removing every variant, and the same over HTTP/2.

mod util;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};
use util::origin::{Origin, Reply, Seen};
use util::{read_response, Response, TestServer};

/// Text of `len` bytes that compresses like real HTML (about 4-6x).
fn html(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut out = b"<!DOCTYPE html>\n<html><body>\n".to_vec();
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(
            format!("<a href=\"/simple/p{}/\">p{}</a><br>\n", x % 50_000, x % 977).as_bytes(),
        );
    }
    out.truncate(len);
    out
}

/// Two bodies are the same (without printing megabytes when they are not).
#[track_caller]
fn same(a: &[u8], b: &[u8], what: &str) {
    let at = a.iter().zip(b).position(|(x, y)| x != y);
    assert!(
        a == b,
        "{what}: {} vs {} bytes, first difference at {at:?}",
        a.len(),
        b.len()
    );
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn decode(coding: &str, b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "br" => brotli::Decompressor::new(b, 4096).read_to_end(&mut out),
        "gzip" => flate2::read::GzDecoder::new(b).read_to_end(&mut out),
        "zstd" => zstd::stream::read::Decoder::new(b).unwrap().read_to_end(&mut out),
        other => panic!("unexpected coding {other}"),
    }
    .unwrap();
    out
}

/// The origin's objects, by path.
fn object(path: &str) -> (Vec<u8>, Vec<(&'static str, &'static str)>) {
    let html_type = ("Content-Type", "text/html; charset=utf-8");
    let mut h = vec![("Cache-Control", "max-age=600"), ("ETag", "\"v1\"")];
    let body = match path {
        // Large: its compressed output streams in several pieces.
        "/page.html" => html(600_000),
        // Small: compressed whole at once.
        "/small.html" => html(8_000),
        "/tiny.html" => html(999),
        "/edge.html" => html(1_000),
        "/huge.html" => html(10_000_001),
        "/style.css" => {
            h.push(("Content-Type", "text/css"));
            return (html(20_000), h);
        }
        "/img.png" => {
            h.push(("Content-Type", "image/png"));
            return (html(20_000), h);
        }
        "/nt.html" => {
            h[0] = ("Cache-Control", "max-age=600, no-transform");
            html(20_000)
        }
        "/gz.html" => {
            h.push(("Content-Encoding", "gzip"));
            h.push(html_type);
            return (gzip(&html(20_000)), h);
        }
        _ => b"not here".to_vec(),
    };
    h.push(html_type);
    (body, h)
}

fn origin() -> Origin {
    Origin::start(|r: &Seen| {
        let path = r.target.split('?').next().unwrap_or_default();
        let path = path.strip_prefix("/plain").unwrap_or(path);
        let (body, h) = object(path);
        Reply::ok(&body, &h)
    })
}

fn start(origin: &Origin, server_extra: &str, top_extra: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 2
node_name = "edge-test"
{server_extra}

[[origins]]
id = "app"
domain_name = "127.0.0.1"
http_port = {port}
protocol = "http-only"

[default_cache_behavior]
target_origin = "app"
compress = true

[[behaviors]]
path_pattern = "/plain/*"
target_origin = "app"

[cache]
path = "{cache}"
size = "128MiB"
{top_extra}
"#,
        port = origin.port,
        cache = dir.path().join("slab").display(),
    );
    TestServer::start_config(dir, &cfg)
}

fn get(s: &TestServer, path: &str, ae: Option<&str>, extra: &[(&str, &str)]) -> Response {
    let mut h: Vec<(&str, &str)> = extra.to_vec();
    if let Some(v) = ae {
        h.push(("Accept-Encoding", v));
    }
    s.get(path, &h)
}

fn status_detail(r: &Response) -> String {
    r.header("cache-status").unwrap_or_default().to_string()
}

/// Asks until the stored variant answers (the variant a miss starts is made in the background).
fn until_stored(s: &TestServer, path: &str, coding: &str) -> Response {
    let t = Instant::now();
    loop {
        let r = get(s, path, Some(coding), &[]);
        if status_detail(&r).contains(&format!("detail={coding}-stored"))
            || t.elapsed() > Duration::from_secs(10)
        {
            return r;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn each_coding_decodes_to_the_identity_bytes_and_is_computed_once() {
    let o = origin();
    let s = start(&o, "", "");
    let (identity, _) = object("/page.html");
    // No Accept-Encoding: the identity, marked as varying.
    let r = get(&s, "/page.html", None, &[]);
    same(&r.body, &identity, "body");
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(
        r.header("etag"),
        Some("\"v1\""),
        "the identity keeps its strong ETag"
    );
    assert_eq!(r.header("content-encoding"), None);
    for coding in ["br", "gzip", "zstd"] {
        // The first viewer of a coding is sent the output as it is produced.
        let r = get(&s, "/page.html", Some(coding), &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), Some(coding));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(r.header("etag"), Some("W/\"v1\""));
        assert_eq!(
            r.header("transfer-encoding"),
            Some("chunked"),
            "{coding}: streamed"
        );
        assert!(
            status_detail(&r).contains(&format!("detail={coding}-compressing")),
            "{r:?}"
        );
        let first = r.body.clone();
        same(&decode(coding, &first), &identity, coding);
        assert!(
            first.len() * 3 < identity.len(),
            "{coding}: {} bytes",
            first.len()
        );
        // Then from the slab: the same bytes, with their length.
        let r = get(&s, "/page.html", Some(coding), &[]);
        assert!(
            status_detail(&r).contains(&format!("detail={coding}-stored")),
            "{r:?}"
        );
        assert_eq!(r.header("x-cache"), Some("Hit from slabfront"));
        assert_eq!(r.header("content-length"), Some(&*first.len().to_string()));
        assert_eq!(r.header("etag"), Some("W/\"v1\""));
        same(
            &r.body,
            &first,
            &format!("{coding}: the stored variant is the one sent first"),
        );
    }
    // A HEAD has the stored variant's head.
    let mut c = s.connect();
    c.write_all(b"HEAD /page.html HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, true).unwrap();
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(r.header("content-length").is_some());
    // Small objects are compressed whole, with their length, at the first request.
    let (small, _) = object("/small.html");
    get(&s, "/small.html", None, &[]);
    let r = get(&s, "/small.html", Some("gzip, deflate, br"), &[]);
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(r.header("content-length"), Some(&*r.body.len().to_string()));
    same(&decode("br", &r.body), &small, "body");
    assert_eq!(o.count(), 2, "one origin fetch per object, whatever the codings");
}

#[test]
fn a_miss_sends_the_identity_and_prepares_its_viewers_coding() {
    let o = origin();
    let s = start(&o, "", "");
    let (identity, _) = object("/page.html");
    let r = get(&s, "/page.html", Some("gzip"), &[]);
    assert_eq!(r.header("x-cache"), Some("Miss from slabfront"));
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    same(&r.body, &identity, "body");
    let r = until_stored(&s, "/page.html", "gzip");
    assert!(status_detail(&r).contains("detail=gzip-stored"), "{r:?}");
    same(&decode("gzip", &r.body), &identity, "body");
    assert_eq!(o.count(), 1);
}

#[test]
fn concurrent_viewers_compress_a_variant_once() {
    let o = origin();
    let s = std::sync::Arc::new(start(&o, "", ""));
    let (identity, _) = object("/page.html");
    get(&s, "/page.html", None, &[]);
    let viewers: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || get(&s, "/page.html", Some("br"), &[]))
        })
        .collect();
    for v in viewers {
        // Each is whole: the compressor's stream, the stored variant, or the identity
        // (sent to those that came while it was being compressed).
        let r = v.join().unwrap();
        match r.header("content-encoding") {
            Some(c) => same(&decode(c, &r.body), &identity, "a compressed answer"),
            None => same(&r.body, &identity, "an identity answer"),
        }
    }
    let made = s.stderr().matches("compressed variant").count();
    assert_eq!(made, 1, "one compression for eight viewers");
    let r = until_stored(&s, "/page.html", "br");
    same(&decode("br", &r.body), &identity, "stored");
}

#[test]
fn what_is_not_compressed_is_left_as_the_origin_sent_it() {
    let o = origin();
    let s = start(&o, "", "");
    for (path, vary) in [
        ("/tiny.html", false),
        ("/huge.html", false),
        ("/img.png", false),
        ("/nt.html", false),
        ("/gz.html", false),
        ("/plain/page.html", false),
    ] {
        let (body, _) = object(path.trim_start_matches("/plain"));
        for _ in 0..2 {
            let r = get(&s, path, Some("br, gzip, zstd"), &[]);
            assert_eq!(r.status, 200, "{path}");
            same(&r.body, &body, &format!("{path}: the origin's bytes"));
            assert_eq!(r.header("vary").is_some(), vary, "{path}");
            assert_eq!(r.header("etag"), Some("\"v1\""), "{path}");
            let origin_coding = (path == "/gz.html").then_some("gzip");
            assert_eq!(r.header("content-encoding"), origin_coding, "{path}");
        }
    }
    // The bounds are inclusive: 1,000 bytes is compressed, and so is a listed type other
    // than HTML.
    for path in ["/edge.html", "/style.css"] {
        let (body, _) = object(path);
        get(&s, path, None, &[]);
        let r = get(&s, path, Some("gzip"), &[]);
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{path}");
        same(&decode("gzip", &r.body), &body, path);
    }
}

#[test]
fn ranges_get_the_identity_and_validators_the_weak_etag() {
    let o = origin();
    let s = start(&o, "", "");
    let (identity, _) = object("/page.html");
    get(&s, "/page.html", None, &[]);
    let r = get(&s, "/page.html", Some("br"), &[("Range", "bytes=100-199")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-encoding"), None);
    same(&r.body, &identity[100..200], "body");
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    // The compressed representation's weak ETag revalidates it.
    let r = get(&s, "/page.html", Some("br"), &[("If-None-Match", "W/\"v1\"")]);
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some("W/\"v1\""));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    let r = get(&s, "/page.html", None, &[("If-None-Match", "\"v1\"")]);
    assert_eq!((r.status, r.header("etag")), (304, Some("\"v1\"")));
}

#[test]
fn invalidation_removes_every_variant() {
    let o = origin();
    let s = start(&o, "", "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"t\"\n");
    get(&s, "/page.html", None, &[]);
    for coding in ["br", "gzip", "zstd"] {
        let r = until_stored(&s, "/page.html", coding);
        assert!(status_detail(&r).contains(&format!("{coding}-stored")), "{r:?}");
    }
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.admin_port.unwrap())).unwrap();
    let body = r#"{"paths":["/page.html"]}"#;
    c.write_all(
        format!(
            "POST /invalidations HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let r = read_response(&mut c, false).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["removed"], 4, "the object and its three variants: {v}");
    // Nothing of the old object answers: a miss, then a variant made anew.
    let r = get(&s, "/page.html", None, &[]);
    assert_eq!(r.header("x-cache"), Some("Miss from slabfront"));
    let r = get(&s, "/page.html", Some("br"), &[]);
    assert!(status_detail(&r).contains("br-compressing"), "{r:?}");
    assert_eq!(o.count(), 2);
}

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .args(args)
        .output()
        .unwrap()
}

fn have_curl() -> bool {
    if Command::new("curl").arg("-V").output().is_err() {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-q", "curl"])
            .output();
    }
    let ok = Command::new("curl").arg("-V").output().is_ok();
    if !ok {
        eprintln!("\n!!!!! SKIPPING: curl cannot be installed here !!!!!\n");
    }
    ok
}

#[test]
fn curl_decodes_what_it_is_sent_over_http1_and_http2() {
    if !have_curl() {
        return;
    }
    let o = origin();
    let s = start(&o, "h2c = true", "");
    let (identity, _) = object("/page.html");
    let url = format!("http://127.0.0.1:{}/page.html", s.port);
    get(&s, "/page.html", None, &[]);
    for proto in ["--http1.1", "--http2-prior-knowledge"] {
        // A real client's own decoding, twice (streamed as compressed, then stored).
        for _ in 0..2 {
            let out = curl(&[proto, "--compressed", "-D", "-", "-o", "/dev/null", &url]);
            let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
            assert!(head.contains("content-encoding: br"), "{proto}: {head}");
            let out = curl(&[proto, "--compressed", &url]);
            same(&out.stdout, &identity, proto);
        }
        // And the bytes on the wire, decoded here.
        for coding in ["gzip", "zstd"] {
            let dir = tempfile::tempdir().unwrap();
            let h = dir.path().join("h");
            let out = curl(&[
                proto,
                "-H",
                &format!("Accept-Encoding: {coding}"),
                "-D",
                h.to_str().unwrap(),
                &url,
            ]);
            let head = std::fs::read_to_string(&h).unwrap().to_ascii_lowercase();
            assert!(head.contains(&format!("content-encoding: {coding}")), "{head}");
            assert!(head.contains("vary: accept-encoding"), "{head}");
            assert!(head.contains("etag: w/\"v1\""), "{head}");
            same(
                &decode(coding, &out.stdout),
                &identity,
                &format!("{proto} {coding}"),
            );
            if head.contains("detail=") && head.contains("-stored") {
                let len = format!("content-length: {}", out.stdout.len());
                assert!(head.contains(&len), "{proto}: {head}");
            }
        }
    }
    assert_eq!(o.count(), 1);
}
