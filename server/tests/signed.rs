#![allow(clippy::unwrap_used)]
//! Signed URLs and signed cookies, made by the tools CloudFront users have: botocore's
//! `CloudFrontSigner` and the `openssl` command line, with RSA-2048 and ECDSA P-256 keys.
//! Accepted when valid; refused (403, CloudFront's message, counted in `/metrics`) when
//! tampered with, expired, from the wrong address, under an unknown key, or for another
//! resource; and every signature of one object shares one cached copy.

mod util;

use serde_json::json;
use std::io::{Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};
use util::origin::{Origin, Reply, Seen};
use util::signing::{botocore_sign, canned, key_pair, openssl_sign, KeyPair};
use util::{Response, TestServer};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

struct Setup {
    server: TestServer,
    origin: Origin,
    rsa: KeyPair,
    ec: KeyPair,
    _keys: tempfile::TempDir,
}

/// slabfront in front of an origin; the default behavior trusts key group `kg` (an RSA and an
/// ECDSA key), `/public/*` is open, `/files/*` is a directory origin that trusts `kg` too.
fn setup(extra: &str) -> Setup {
    let keys = tempfile::tempdir().unwrap();
    let rsa = key_pair(keys.path(), "rsa");
    let ec = key_pair(keys.path(), "ec");
    std::fs::write(keys.path().join("ec.pub"), &ec.public_pem).unwrap();
    let origin = Origin::start(|r: &Seen| {
        Reply::ok(
            format!("body of {}\n", r.target).as_bytes(),
            &[("Cache-Control", "max-age=600")],
        )
    });
    let site = util::site();
    std::fs::create_dir_all(site.path().join("files")).unwrap();
    std::fs::write(site.path().join("files/f.txt"), "a file\n").unwrap();
    std::fs::create_dir_all(site.path().join("errors")).unwrap();
    std::fs::write(site.path().join("errors/403.html"), "<h1>forbidden here</h1>\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 2
h2c = true

[admin]
listen = "127.0.0.1:0"

[[origins]]
id = "app"
domain_name = "127.0.0.1"
http_port = {port}
protocol = "http-only"

[[origins]]
id = "files"
path = {site:?}

[default_cache_behavior]
target_origin = "app"
trusted_key_groups = ["kg"]
query_strings = "all"
cookies = "all"

[[behaviors]]
path_pattern = "/public/*"
target_origin = "app"

[[behaviors]]
path_pattern = "/files/*"
target_origin = "files"
trusted_key_groups = ["kg"]

[[key_groups]]
id = "kg"
[[key_groups.public_keys]]
id = "KRSA"
pem = """
{rsa_pem}"""
[[key_groups.public_keys]]
id = "KEC"
pem_file = {ec_file:?}

[cache]
path = "{slab}"
size = "64MiB"
{extra}
"#,
        port = origin.port,
        site = site.path(),
        rsa_pem = rsa.public_pem,
        ec_file = keys.path().join("ec.pub"),
        slab = dir.path().join("slab").display(),
    );
    let server = TestServer::start_config(dir, &cfg);
    std::mem::forget(site);
    Setup {
        server,
        origin,
        rsa,
        ec,
        _keys: keys,
    }
}

/// The path and query of a full `http://test/...` URL.
fn target(url: &str) -> &str {
    url.strip_prefix("http://test").unwrap()
}

fn job(key: &KeyPair, id: &str, url: &str, expires: u64) -> serde_json::Value {
    json!({"key": key.private, "key_id": id, "url": url, "expires": expires, "policy": null, "form": "url"})
}

fn custom(
    key: &KeyPair,
    id: &str,
    url: &str,
    expires: u64,
    policy: serde_json::Value,
    form: &str,
) -> serde_json::Value {
    json!({"key": key.private, "key_id": id, "url": url, "expires": expires, "policy": policy, "form": form})
}

fn refused(r: &Response, code: &str) {
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains(&format!("<Code>{code}</Code>")), "{body}");
}

fn admin_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn metric(scrape: &str, reason: &str) -> u64 {
    let line = format!("slabfront_signed_refusals_total{{reason=\"{reason}\"}} ");
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[test]
fn botocore_signed_urls_are_accepted_and_share_one_cached_object() {
    let s = setup("");
    let exp = now() + 600;
    let signed = botocore_sign(&json!([
        job(&s.rsa, "KRSA", "http://test/video.mp4?lang=en", exp),
        job(&s.rsa, "KRSA", "http://test/video.mp4?lang=en", exp + 1),
        job(&s.ec, "KEC", "http://test/video.mp4?lang=en", exp + 2),
    ]));
    for u in &signed {
        let r = s.server.get(target(u.as_str().unwrap()), &[]);
        assert_eq!(r.status, 200, "{u}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.body, b"body of /video.mp4?lang=en\n");
    }
    // Three signatures, one object: the origin was asked once, without the signing
    // parameters.
    let seen: Vec<Seen> = s.origin.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].target, "/video.mp4?lang=en");
    // Unsigned: refused; an open behavior needs nothing.
    refused(&s.server.get("/video.mp4?lang=en", &[]), "MissingKey");
    assert_eq!(s.server.get("/public/x", &[]).status, 200);
    // A directory origin under a signing behavior: refused unsigned, served signed.
    refused(&s.server.get("/files/f.txt", &[]), "MissingKey");
    let f = botocore_sign(&json!([job(&s.rsa, "KRSA", "http://test/files/f.txt", exp)]));
    let r = s.server.get(target(f[0].as_str().unwrap()), &[]);
    assert_eq!((r.status, &r.body[..]), (200, &b"a file\n"[..]));
}

#[test]
fn tampering_expiry_and_wrong_keys_are_refused_and_counted() {
    let s = setup("");
    let exp = now() + 600;
    let signed = botocore_sign(&json!([
        job(&s.rsa, "KRSA", "http://test/a.bin", exp),
        job(&s.ec, "KEC", "http://test/a.bin", exp),
        job(&s.rsa, "KRSA", "http://test/old.bin", now() - 5),
        job(&s.rsa, "NOSUCH", "http://test/a.bin", exp),
    ]));
    let rsa = target(signed[0].as_str().unwrap()).to_string();
    let ec = target(signed[1].as_str().unwrap()).to_string();
    assert_eq!(s.server.get(&rsa, &[]).status, 200);
    assert_eq!(s.server.get(&ec, &[]).status, 200);
    for good in [&rsa, &ec] {
        // Another object under the same signature.
        refused(
            &s.server.get(&good.replace("/a.bin", "/b.bin"), &[]),
            "AccessDenied",
        );
        // A later expiry than the one signed.
        let later = good.replace(&format!("Expires={exp}"), &format!("Expires={}", exp + 1000));
        refused(&s.server.get(&later, &[]), "AccessDenied");
        // A changed signature (one character of it).
        let i = good.find("Signature=").unwrap() + "Signature=".len() + 5;
        let mut t = good.clone().into_bytes();
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        refused(&s.server.get(&String::from_utf8(t).unwrap(), &[]), "AccessDenied");
        // An added query parameter is part of the signed resource.
        refused(
            &s.server.get(&good.replace("/a.bin?", "/a.bin?x=1&"), &[]),
            "AccessDenied",
        );
    }
    // The RSA signature under the ECDSA key's id.
    refused(&s.server.get(&rsa.replace("KRSA", "KEC"), &[]), "AccessDenied");
    refused(
        &s.server.get(target(signed[2].as_str().unwrap()), &[]),
        "AccessDenied",
    );
    refused(
        &s.server.get(target(signed[3].as_str().unwrap()), &[]),
        "InvalidKey",
    );
    let no_id = rsa.split("&Key-Pair-Id").next().unwrap();
    refused(&s.server.get(no_id, &[]), "MissingKey");
    // The origin saw only the valid ones (one object).
    assert_eq!(s.origin.count(), 1);
    let scrape = admin_get(s.server.admin_port.unwrap(), "/metrics");
    assert_eq!(metric(&scrape, "bad_signature"), 9, "{scrape}");
    assert_eq!(metric(&scrape, "expired"), 1);
    assert_eq!(metric(&scrape, "unknown_key"), 1);
    assert_eq!(metric(&scrape, "missing_key_pair_id"), 1);
    assert!(
        s.server.stderr().contains("reason=\"bad_signature\"")
            || s.server.stderr().contains("reason=bad_signature")
    );
}

#[test]
fn custom_policies_check_resource_address_and_dates() {
    let s = setup("");
    let exp = now() + 600;
    let pol = |resource: &str, ip: Option<&str>, start: Option<u64>| json!({"resource": resource, "ip": ip, "start": start});
    let signed = botocore_sign(&json!([
        custom(
            &s.rsa,
            "KRSA",
            "http://test/v/1.ts",
            exp,
            pol("http://test/v/*", Some("127.0.0.0/8"), None),
            "url"
        ),
        custom(
            &s.ec,
            "KEC",
            "http://test/v/2.ts",
            exp,
            pol("http://test/v/*", None, None),
            "url"
        ),
        custom(
            &s.rsa,
            "KRSA",
            "http://test/v/3.ts",
            exp,
            pol("http://test/v/*", Some("10.0.0.0/8"), None),
            "url"
        ),
        custom(
            &s.rsa,
            "KRSA",
            "http://test/w/4.ts",
            exp,
            pol("http://test/v/*", None, None),
            "url"
        ),
        custom(
            &s.rsa,
            "KRSA",
            "http://test/v/5.ts",
            exp,
            pol("http://test/v/*", None, Some(now() + 300)),
            "url"
        ),
        custom(
            &s.ec,
            "KEC",
            "",
            exp,
            pol("http://test/c/*", None, None),
            "cookies"
        ),
        custom(
            &s.rsa,
            "KRSA",
            "",
            now() - 1,
            pol("http://test/c/*", None, None),
            "cookies"
        ),
        custom(
            &s.rsa,
            "KRSA",
            "",
            exp,
            pol("http://test/c/*", None, None),
            "cookies"
        ),
    ]));
    let t = |i: usize| target(signed[i].as_str().unwrap()).to_string();
    assert_eq!(s.server.get(&t(0), &[]).status, 200);
    assert_eq!(s.server.get(&t(1), &[]).status, 200);
    refused(&s.server.get(&t(2), &[]), "AccessDenied");
    refused(&s.server.get(&t(3), &[]), "AccessDenied");
    refused(&s.server.get(&t(4), &[]), "AccessDenied");
    // A changed policy no longer matches its signature.
    let p = t(1);
    let i = p.find("Policy=").unwrap() + "Policy=".len() + 20;
    let mut b = p.into_bytes();
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    refused(&s.server.get(&String::from_utf8(b).unwrap(), &[]), "AccessDenied");
    // Cookies: any object under /c/, and signed cookies stay out of the cache key.
    let cookie = |c: &serde_json::Value| {
        c.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let good = cookie(&signed[5]);
    let r = s.server.get("/c/x.m3u8", &[("Cookie", &good)]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(s.server.get("/c/y.m3u8", &[("Cookie", &good)]).status, 200);
    // Another signature of the same object: the same cached copy (signing cookies are no
    // part of the key, although this behavior keys on cookies); another cookie is.
    let other = cookie(&signed[7]);
    assert_eq!(s.server.get("/c/x.m3u8", &[("Cookie", &other)]).status, 200);
    let count = |path: &str| s.origin.requests().iter().filter(|r| r.target == path).count();
    assert_eq!(count("/c/x.m3u8"), 1);
    assert_eq!(
        s.server
            .get("/c/x.m3u8", &[("Cookie", &format!("{other}; theme=dark"))])
            .status,
        200
    );
    assert_eq!(count("/c/x.m3u8"), 2);
    let seen = s.origin.requests();
    assert!(
        seen.iter()
            .all(|r| !r.header("cookie").unwrap_or("").contains("CloudFront-")),
        "{seen:?}"
    );
    refused(&s.server.get("/d/x.m3u8", &[("Cookie", &good)]), "AccessDenied");
    refused(
        &s.server.get("/c/x.m3u8", &[("Cookie", &cookie(&signed[6]))]),
        "AccessDenied",
    );
    refused(&s.server.get("/c/x.m3u8", &[]), "MissingKey");
    let scrape = admin_get(s.server.admin_port.unwrap(), "/metrics");
    assert_eq!(metric(&scrape, "wrong_ip"), 1);
    assert_eq!(metric(&scrape, "resource_mismatch"), 2);
    assert_eq!(metric(&scrape, "not_yet_valid"), 1);
    assert_eq!(metric(&scrape, "expired"), 1);
}

#[test]
fn openssl_signed_canned_and_custom_policies_are_accepted() {
    let s = setup("");
    let exp = now() + 600;
    for (key, id) in [(&s.rsa, "KRSA"), (&s.ec, "KEC")] {
        let url = format!("http://test/o/{id}.bin");
        let sig = openssl_sign(key, canned(&url, exp).as_bytes());
        let r = s.server.get(
            &format!("{}?Expires={exp}&Signature={sig}&Key-Pair-Id={id}", target(&url)),
            &[],
        );
        assert_eq!(r.status, 200, "{id}: {}", String::from_utf8_lossy(&r.body));
        // The same signature on a URL it was not made for.
        let r = s.server.get(
            &format!("/o/other.bin?Expires={exp}&Signature={sig}&Key-Pair-Id={id}"),
            &[],
        );
        refused(&r, "AccessDenied");
        let policy = format!(
            r#"{{"Statement":[{{"Resource":"http://test/p/*","Condition":{{"DateLessThan":{{"AWS:EpochTime":{exp}}},"IpAddress":{{"AWS:SourceIp":"127.0.0.1/32"}}}}}}]}}"#
        );
        let sig = openssl_sign(key, policy.as_bytes());
        let p = util::signing::cf_b64(policy.as_bytes());
        let r = s.server.get(
            &format!("/p/{id}?Policy={p}&Signature={sig}&Key-Pair-Id={id}"),
            &[],
        );
        assert_eq!(r.status, 200, "{id}: {}", String::from_utf8_lossy(&r.body));
    }
}

#[test]
fn refusals_take_the_distributions_error_page_for_403() {
    let s = setup(
        r#"
[[behaviors]]
path_pattern = "/errors/*"
target_origin = "files"

[[error_responses]]
error_code = 403
response_page_path = "/errors/403.html"
"#,
    );
    let _ = &s.rsa;
    let r = s.server.get("/secret.bin", &[]);
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body,
        b"<h1>forbidden here</h1>\n",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

#[test]
fn http2_viewers_get_the_same_checks() {
    let s = setup("");
    let base = format!("http://127.0.0.1:{}", s.server.port);
    let signed = botocore_sign(&json!([job(
        &s.ec,
        "KEC",
        &format!("{base}/h2.bin?q=1"),
        now() + 600
    )]));
    let status = |url: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
                "--http2-prior-knowledge",
                url,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(status(signed[0].as_str().unwrap()), "2 200");
    assert_eq!(status(&format!("{base}/h2.bin?q=1")), "2 403");
    assert_eq!(s.origin.requests()[0].target, "/h2.bin?q=1");
}
