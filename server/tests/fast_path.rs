#![allow(clippy::unwrap_used)]
//! The HTTP/1.1 codec's synchronous shortcut for small static responses gives the same bytes
//! as the general path (the exchange): the same corpus of requests (every method, conditionals,
//! ranges, redirects, errors, HTTP/1.0, pipelining) against two servers over one site, one
//! with the shortcut turned off, compared byte for byte but for the `Date` field.

mod util;

use util::{site, TestServer};

fn start(root: &std::path::Path, env: &[(&str, &str)]) -> TestServer {
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[[origins]]\nid = \"files\"\npath = {root:?}\n\n[default_cache_behavior]\ntarget_origin = \"files\"\n"
    );
    TestServer::start_config_env(tempfile::tempdir().unwrap(), &cfg, env)
}

/// Every `Date:` value blanked (the two servers answer at different instants).
fn normalised(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut rest = &*text;
    while let Some(i) = rest.find("\r\nDate: ") {
        out.push_str(&rest[..i + 8]);
        rest = &rest[i + 8..];
        let end = rest.find("\r\n").unwrap_or(rest.len());
        out.push_str("<date>");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_fast_path_and_the_general_path_send_the_same_bytes() {
    let d = site();
    let fast = start(d.path(), &[]);
    let general = start(d.path(), &[("SLABFRONT_NO_FAST_PATH", "1")]);
    let etag = fast.get("/1k.txt", &[]).header("etag").unwrap().to_string();
    let lm = fast
        .get("/1k.txt", &[])
        .header("last-modified")
        .unwrap()
        .to_string();
    let heads: Vec<String> = vec![
        "GET /index.html HTTP/1.1".into(),
        "HEAD /index.html HTTP/1.1".into(),
        "GET /1k.txt HTTP/1.1".into(),
        "GET /1k.txt HTTP/1.0".into(),
        "GET /big.bin HTTP/1.1".into(),
        "HEAD /big.bin HTTP/1.1".into(),
        format!("GET /1k.txt HTTP/1.1\r\nIf-None-Match: {etag}"),
        format!("GET /1k.txt HTTP/1.1\r\nIf-Modified-Since: {lm}"),
        "GET /1k.txt HTTP/1.1\r\nIf-Match: \"nope\"".into(),
        "GET /1k.txt HTTP/1.1\r\nRange: bytes=0-9".into(),
        "GET /1k.txt HTTP/1.1\r\nRange: bytes=1000-".into(),
        "GET /1k.txt HTTP/1.1\r\nRange: bytes=5000-6000".into(),
        format!("GET /1k.txt HTTP/1.1\r\nRange: bytes=0-3\r\nIf-Range: {etag}"),
        "GET /1k.txt HTTP/1.1\r\nRange: bytes=0-3\r\nIf-Range: \"old\"".into(),
        "GET /big.bin HTTP/1.1\r\nRange: bytes=100000-100099".into(),
        "GET /app.js HTTP/1.1\r\nAccept-Encoding: br, gzip".into(),
        "GET /app.js HTTP/1.1\r\nAccept-Encoding: gzip".into(),
        "GET /app.js HTTP/1.1".into(),
        "GET /docs HTTP/1.1".into(),
        "GET /docs?x=1 HTTP/1.1".into(),
        "GET /docs/ HTTP/1.1".into(),
        "GET /missing HTTP/1.1".into(),
        "GET /empty/ HTTP/1.1".into(),
        "GET /../etc/passwd HTTP/1.1".into(),
        "GET /%zz HTTP/1.1".into(),
        "POST /1k.txt HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc".into(),
        "DELETE /1k.txt HTTP/1.1".into(),
        "BREW /1k.txt HTTP/1.1".into(),
        "OPTIONS * HTTP/1.1".into(),
        "GET /1k.txt HTTP/1.1\r\nConnection: close".into(),
    ];
    for head in heads {
        // Each request, then a last one that closes: two responses on one connection.
        let (head, body) = match head.split_once("\r\n\r\n") {
            Some((h, b)) => (h.to_string(), b.to_string()),
            None => (head, String::new()),
        };
        let raw = format!(
            "{head}\r\nHost: example.com\r\n\r\n{body}GET /index.html HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
        );
        let a = normalised(&fast.raw(raw.as_bytes()));
        let b = normalised(&general.raw(raw.as_bytes()));
        assert!(a.starts_with("HTTP/1."), "{head}: {a}");
        assert!(
            a == b,
            "{head:?} differs:\nfast:    {:?}\ngeneral: {:?}",
            &a[..a.len().min(600)],
            &b[..b.len().min(600)]
        );
    }
}
