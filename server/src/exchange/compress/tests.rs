#![allow(clippy::unwrap_used)]
use super::*;
use crate::http::codec::{parse_request, Limits, Parsed};

fn req(accept_encoding: Option<&str>) -> Request {
    let limits = Limits {
        max_header_bytes: 16384,
        max_headers: 100,
        max_uri_bytes: 8192,
    };
    let ae = accept_encoding.map_or(String::new(), |v| format!("Accept-Encoding: {v}\r\n"));
    let head = format!("GET / HTTP/1.1\r\nHost: x\r\n{ae}\r\n");
    match parse_request(head.as_bytes(), &limits).unwrap() {
        Parsed::Complete(r, _) => r,
        Parsed::Partial => panic!("partial"),
    }
}

fn pick(ae: Option<&str>) -> Option<&'static str> {
    negotiate(&req(ae)).map(Coding::as_str)
}

#[test]
fn the_preference_rule() {
    assert_eq!(pick(None), None, "no header: identity");
    assert_eq!(pick(Some("")), None);
    assert_eq!(pick(Some("identity")), None);
    assert_eq!(pick(Some("deflate")), None);
    // Browsers and curl: Brotli among equals.
    assert_eq!(pick(Some("gzip, deflate, br, zstd")), Some("br"));
    assert_eq!(pick(Some("deflate, gzip, br, zstd")), Some("br"));
    assert_eq!(pick(Some("gzip")), Some("gzip"));
    assert_eq!(pick(Some("x-gzip")), Some("gzip"));
    assert_eq!(pick(Some("GZip, BR")), Some("br"));
    // zstd when the viewer names it first, or only it.
    assert_eq!(pick(Some("zstd, br, gzip")), Some("zstd"));
    assert_eq!(pick(Some("zstd")), Some("zstd"));
    assert_eq!(pick(Some("gzip, zstd")), Some("gzip"));
    // q-values decide before order.
    assert_eq!(pick(Some("br;q=0.5, gzip")), Some("gzip"));
    assert_eq!(pick(Some("br;q=0, gzip;q=0")), None);
    assert_eq!(pick(Some("gzip;q=0.2, zstd;q=0.9, br;q=0.8")), Some("zstd"));
    assert_eq!(pick(Some("br; q=0.1, gzip; Q=0.3")), Some("gzip"));
    // `*` stands for what is not named.
    assert_eq!(pick(Some("*")), Some("br"));
    assert_eq!(pick(Some("br;q=0, *")), Some("gzip"));
    assert_eq!(pick(Some("*;q=0")), None);
    assert_eq!(pick(Some("gzip, *;q=0")), Some("gzip"));
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_string(), v.as_bytes().to_vec()))
        .collect()
}

#[test]
fn what_is_compressible() {
    let html = h(&[("Content-Type", "text/html; charset=utf-8")]);
    assert!(eligible(200, &html, Some(1_000)));
    assert!(eligible(200, &html, Some(10_000_000)));
    assert!(!eligible(200, &html, Some(999)), "below 1,000 bytes");
    assert!(!eligible(200, &html, Some(10_000_001)), "above 10,000,000 bytes");
    assert!(!eligible(200, &html, None));
    assert!(!eligible(404, &html, Some(5_000)));
    assert!(eligible(
        200,
        &h(&[("content-type", "Application/JSON")]),
        Some(5_000)
    ));
    assert!(eligible(
        200,
        &h(&[("content-type", "image/svg+xml")]),
        Some(5_000)
    ));
    assert!(!eligible(200, &h(&[("content-type", "image/png")]), Some(5_000)));
    assert!(!eligible(
        200,
        &h(&[("content-type", "application/octet-stream")]),
        Some(5_000)
    ));
    assert!(!eligible(200, &[], Some(5_000)), "no type");
    let gz = h(&[("Content-Type", "text/css"), ("Content-Encoding", "gzip")]);
    assert!(!eligible(200, &gz, Some(5_000)), "already encoded");
    let id = h(&[("Content-Type", "text/css"), ("Content-Encoding", "identity")]);
    assert!(eligible(200, &id, Some(5_000)));
    let nt = h(&[
        ("Content-Type", "text/css"),
        ("Cache-Control", "max-age=60, No-Transform"),
    ]);
    assert!(!eligible(200, &nt, Some(5_000)), "no-transform");
}

#[test]
fn vary_gains_accept_encoding_once() {
    let mut head = ResponseHead::local(200);
    mark_vary(&mut head);
    assert_eq!(head.get("vary").unwrap(), b"Accept-Encoding");
    let mut head = ResponseHead::local(200);
    head.field("Vary", "Origin");
    mark_vary(&mut head);
    mark_vary(&mut head);
    assert_eq!(head.get("vary").unwrap(), b"Origin, Accept-Encoding");
    let mut head = ResponseHead::local(200);
    head.field("Vary", "accept-encoding");
    mark_vary(&mut head);
    assert_eq!(head.get("vary").unwrap(), b"accept-encoding");
}

#[test]
fn the_compressed_head_has_a_weak_etag() {
    let mut head = ResponseHead::local(200);
    head.field("ETag", "\"abc\"");
    head.field("Cache-Status", "edge; hit");
    mark_encoded(&mut head, Coding::Br, "stored", true);
    assert_eq!(head.get("etag").unwrap(), b"W/\"abc\"");
    assert_eq!(head.get("content-encoding").unwrap(), b"br");
    assert_eq!(head.get("cache-status").unwrap(), b"edge; hit; detail=br-stored");
    let mut head = ResponseHead::local(200);
    head.field("ETag", "W/\"abc\"");
    mark_encoded(&mut head, Coding::Gzip, "stored", false);
    assert_eq!(head.get("etag").unwrap(), b"W/\"abc\"");
    assert!(head.get("content-encoding").is_none(), "a 304 has no body");
}

#[test]
fn variants_share_the_identity_key_prefix() {
    let k = b"/a\0\0\0\0G".to_vec();
    let v = variant_key(&k, Coding::Gzip);
    assert!(v.starts_with(&k));
    assert_ne!(v, variant_key(&k, Coding::Br));
}

#[test]
fn every_coding_decodes_back() {
    use std::io::Read;
    let input: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("<a>{}</a>\n", i % 977).into_bytes())
        .collect();
    for c in [Coding::Br, Coding::Gzip, Coding::Zstd] {
        let mut out = Vec::new();
        pool::encode(c, 5, &input, &mut out).unwrap();
        assert!(out.len() < input.len() / 4, "{c:?}");
        let mut back = Vec::new();
        match c {
            Coding::Br => brotli::Decompressor::new(&out[..], 4096).read_to_end(&mut back),
            Coding::Gzip => flate2::read::GzDecoder::new(&out[..]).read_to_end(&mut back),
            Coding::Zstd => zstd::stream::read::Decoder::new(&out[..])
                .unwrap()
                .read_to_end(&mut back),
        }
        .unwrap();
        assert_eq!(back, input, "{c:?}");
    }
}
