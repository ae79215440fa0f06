#![allow(clippy::unwrap_used)]
//! S3 origins against a real S3 server that checks SigV4 (moto, auth on, a bucket that
//! refuses anonymous reads): signed GET and HEAD, wrong keys, rotated keys, odd object keys,
//! a large object streamed through, and no bucket listing ever reaching a viewer.

mod util;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};
use util::s3::{big_byte, credentials_file, Moto, BUCKET};
use util::TestServer;

/// A distribution in front of the moto bucket, credentials from `creds` (profile `edge`).
fn config(dir: &Path, moto: &Moto, extra: &str) -> String {
    let errors = dir.join("errors");
    std::fs::create_dir_all(&errors).unwrap();
    std::fs::write(errors.join("404.html"), "custom not found page\n").unwrap();
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 2

[[origins]]
id = "private-bucket"
s3_bucket = "{BUCKET}"
s3_endpoint = "{ep}"
s3_addressing_style = "path"
credentials_file = "{creds}"
credentials_profile = "edge"
response_timeout = "60s"
{extra}

[[origins]]
id = "pages"
path = "{dir}"

[default_cache_behavior]
target_origin = "private-bucket"

[[behaviors]]
path_pattern = "/errors/*"
target_origin = "pages"

[[error_responses]]
error_code = 404
response_page_path = "/errors/404.html"
response_code = 404

[cache]
path = "{slab}"
size = "64MiB"
"#,
        ep = moto.endpoint,
        creds = dir.join("creds").display(),
        dir = dir.display(),
        slab = dir.join("slab").display(),
    )
}

fn start(moto: &Moto, key: &(String, String), extra: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    credentials_file(&dir.path().join("creds"), "edge", key);
    let cfg = config(dir.path(), moto, extra);
    TestServer::start_config(dir, &cfg)
}

fn head(s: &TestServer, path: &str) -> util::Response {
    let mut c = s.connect();
    write!(c, "HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    util::read_response(&mut c, true).unwrap()
}

/// An anonymous request straight to the S3 server.
fn anonymous_status(moto: &Moto, path: &str) -> u16 {
    let port: u16 = moto.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    util::read_response(&mut c, false).unwrap().status
}

#[test]
fn signed_get_and_head_from_a_private_bucket() {
    let Some(moto) = Moto::start(0) else { return };
    assert_eq!(
        anonymous_status(&moto, "/private/hello.txt"),
        403,
        "the bucket refuses anonymous reads"
    );
    let s = start(&moto, &moto.keys[0], "");
    let r = s.get("/hello.txt", &[]);
    assert_eq!(r.status, 200, "{}", s.stderr());
    assert_eq!(r.body, b"hello from a private bucket\n");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let h = head(&s, "/hello.txt");
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-length"), Some("28"));
    // A key with spaces (percent-encoded by the viewer, signed as S3 encodes it).
    moto.put("with spaces/a b c.txt", "spaced\n");
    let r = s.get("/with%20spaces/a%20b%20c.txt", &[]);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"spaced\n"[..]),
        "{}",
        s.stderr()
    );
    // 404 from the bucket follows error_responses.
    let r = s.get("/no/such/object", &[]);
    assert_eq!(r.status, 404);
    assert_eq!(r.body, b"custom not found page\n");
    // The signature's fields never reach a viewer.
    let r = s.get(
        "/hello.txt",
        &[("Authorization", "AWS4-HMAC-SHA256 Credential=viewer")],
    );
    assert_eq!(
        r.status, 200,
        "a viewer's Authorization is replaced (signing_behavior = always)"
    );
    assert!(
        !s.stderr().contains(&moto.keys[0].1),
        "the secret is never logged"
    );
}

#[test]
fn bucket_listing_never_reaches_a_viewer() {
    let Some(moto) = Moto::start(0) else { return };
    let s = start(&moto, &moto.keys[0], "");
    for path in ["/", "/?list-type=2", "/?versions", "//", "/?prefix=&delimiter=/"] {
        let r = s.get(path, &[]);
        let body = String::from_utf8_lossy(&r.body);
        assert!(r.status == 403 || r.status == 404, "{path}: {}", r.status);
        assert!(
            !body.contains("ListBucketResult") && !body.contains("hello.txt"),
            "{path}: {body}"
        );
    }
    // Sub-resources of an object are not sent either (the query string stays at the edge).
    let r = s.get("/hello.txt?acl", &[]);
    assert_eq!(
        r.body, b"hello from a private bucket\n",
        "the object, not its ACL"
    );
    assert!(s.stderr().contains("would list the bucket"));
}

#[test]
fn a_wrong_key_is_a_502_naming_the_origin_not_the_secret() {
    let Some(moto) = Moto::start(0) else { return };
    let wrong = (
        moto.keys[0].0.clone(),
        "not-the-secret-0123456789abcdefghijklmn".to_string(),
    );
    let s = start(&moto, &wrong, "");
    let r = s.get("/hello.txt", &[]);
    assert_eq!(r.status, 502, "{}", s.stderr());
    let body = String::from_utf8_lossy(&r.body);
    assert!(
        !body.contains("SignatureDoesNotMatch") && !body.contains(&wrong.0),
        "{body}"
    );
    let log = s.stderr();
    assert!(
        log.lines()
            .any(|l| l.contains("origin=private-bucket") && l.contains("SignatureDoesNotMatch")),
        "{log}"
    );
    assert!(!log.contains(&wrong.1), "the secret is never logged");
    // An unknown key id: the same.
    let unknown = ("AKIAUNKNOWNUNKNOWN00".to_string(), moto.keys[0].1.clone());
    let s = start(&moto, &unknown, "");
    assert_eq!(s.get("/hello.txt", &[]).status, 502);
    assert!(s.stderr().contains("InvalidAccessKeyId"));
    assert!(!s.stderr().contains(&unknown.1));
}

#[test]
fn credentials_rotated_at_runtime_are_used() {
    let Some(moto) = Moto::start(0) else { return };
    let s = start(&moto, &moto.keys[0], "");
    assert_eq!(s.get("/hello.txt", &[]).status, 200);
    // The old key is revoked: new misses fail until the file has the new key.
    moto.revoke(&moto.keys[0]);
    moto.put("after-revoke.txt", "x");
    assert_eq!(
        s.get("/after-revoke.txt", &[]).status,
        502,
        "the revoked key is refused"
    );
    credentials_file(&s.dir.path().join("creds"), "edge", &moto.keys[1]);
    let t0 = Instant::now();
    let mut ok = false;
    for i in 0..40 {
        // Distinct paths: each is a miss that reaches the bucket.
        moto.put(&format!("rotated-{i}.txt"), "rotated\n");
        if s.get(&format!("/rotated-{i}.txt"), &[]).status == 200 {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(ok, "the rotated key was never picked up: {}", s.stderr());
    assert!(t0.elapsed() < Duration::from_secs(10));
    // Every worker picked it up.
    for i in 0..6 {
        moto.put(&format!("later-{i}.txt"), "later\n");
        assert_eq!(s.get(&format!("/later-{i}.txt"), &[]).status, 200);
    }
    assert!(s.stderr().contains("S3 credentials re-read"));
}

/// Size of the object streamed through: 1 GiB, or `SLABFRONT_S3_BIG` bytes.
fn big_size() -> u64 {
    std::env::var("SLABFRONT_S3_BIG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30)
}

#[test]
fn a_large_object_is_streamed_through() {
    // s3s-fs serves the bucket from a directory: the 1 GiB object is written there directly
    // (moto would hold it in memory and take a minute to take it in).
    let size = big_size();
    let Some(s3) = util::s3::S3sFs::start(BUCKET) else {
        return;
    };
    {
        let mut f = std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(s3.root.path().join(BUCKET).join("big.bin")).unwrap(),
        );
        let block: Vec<u8> = (0..1_000_003u64).map(big_byte).collect();
        let mut left = size;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            f.write_all(&block[..n]).unwrap();
            left -= n as u64;
        }
        f.flush().unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    credentials_file(&dir.path().join("creds"), "default", &s3.key);
    let cfg = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[[origins]]\nid = \"fs\"\ns3_bucket = \"{BUCKET}\"\n\
         s3_endpoint = \"{}\"\ns3_addressing_style = \"path\"\ncredentials_file = \"{}\"\nresponse_timeout = \"60s\"\n\n\
         [default_cache_behavior]\ntarget_origin = \"fs\"\n\n[cache]\npath = \"{}\"\nsize = \"64MiB\"\n",
        s3.endpoint,
        dir.path().join("creds").display(),
        dir.path().join("slab").display()
    );
    let s = TestServer::start_config(dir, &cfg);
    let mut c = s.connect();
    c.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(c, "GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    // The head, then the body checked piece by piece as it streams (never held whole).
    let mut buf = vec![0u8; 1 << 20];
    let mut got = Vec::new();
    let end = loop {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the head");
        got.extend_from_slice(&buf[..n]);
        if let Some(p) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&got[..end]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {size}")),
        "{head}"
    );
    let mut at = 0u64;
    // The object repeats with a period of 1,000,003 bytes: pieces are compared a slice at a
    // time against one period (a byte-by-byte check would be slower than the transfer).
    let period: Vec<u8> = (0..1_000_003u64).map(big_byte).collect();
    let check = |piece: &[u8], at: &mut u64| {
        let mut rest = piece;
        while !rest.is_empty() {
            let off = (*at % period.len() as u64) as usize;
            let n = rest.len().min(period.len() - off);
            assert!(rest[..n] == period[off..off + n], "bytes from {} differ", *at);
            rest = &rest[n..];
            *at += n as u64;
        }
    };
    check(&got[end..], &mut at);
    let t0 = Instant::now();
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        check(&buf[..n], &mut at);
    }
    assert_eq!(at, size);
    eprintln!("{size} bytes through the S3 origin in {:?}", t0.elapsed());
}

#[test]
fn keys_with_spaces_unicode_and_reserved_characters() {
    let Some(s3) = util::s3::S3sFs::start(BUCKET) else {
        return;
    };
    let key = "dir/a file \u{fc}n\u{ef}c\u{f8}de + (1)!,;=@.txt";
    let file = s3.root.path().join(BUCKET).join(key);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "spaces and unicode\n").unwrap();
    let port: u16 = s3.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "GET /{BUCKET}/dir/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    assert_eq!(
        util::read_response(&mut c, false).unwrap().status,
        403,
        "anonymous requests are refused"
    );
    let dir = tempfile::tempdir().unwrap();
    credentials_file(&dir.path().join("creds"), "default", &s3.key);
    let cfg = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
workers = 1

[[origins]]
id = "fs"
s3_bucket = "{BUCKET}"
s3_endpoint = "{ep}"
s3_addressing_style = "path"
credentials_file = "{creds}"

[default_cache_behavior]
target_origin = "fs"

[cache]
path = "{slab}"
size = "64MiB"
"#,
        ep = s3.endpoint,
        creds = dir.path().join("creds").display(),
        slab = dir.path().join("slab").display(),
    );
    let s = TestServer::start_config(dir, &cfg);
    // As a browser encodes it, and with the reserved characters left raw.
    for path in [
        "/dir/a%20file%20%C3%BCn%C3%AFc%C3%B8de%20%2B%20%281%29%21%2C%3B%3D%40.txt",
        "/dir/a%20file%20%C3%BCn%C3%AFc%C3%B8de%20+%20(1)!,;=@.txt",
    ] {
        let r = s.get(path, &[]);
        assert_eq!(r.status, 200, "{path}: {}", s.stderr());
        assert_eq!(r.body, b"spaces and unicode\n");
    }
}

/// A GET with this range, whole response read.
fn ranged(s: &TestServer, path: &str, range: &str) -> util::Response {
    s.get(path, &[("Range", range)])
}

#[test]
fn deep_ranges_of_an_object_not_stored_go_to_the_bucket_as_ranges() {
    let size: u64 = 20 << 20;
    let Some(moto) = Moto::start(size) else { return };
    let s = start(&moto, &moto.keys[0], "");
    let want = |a: u64, b: u64| (a..=b).map(big_byte).collect::<Vec<u8>>();
    // 10 MiB in: asked of S3 as that range, answered 206 at once, not stored.
    let (a, b) = (10 << 20, (10 << 20) + 15);
    for _ in 0..2 {
        let r = ranged(&s, "/big.bin", &format!("bytes={a}-{b}"));
        assert_eq!(r.status, 206, "{}", s.stderr());
        assert_eq!(r.body, want(a, b));
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {a}-{b}/{size}").as_str())
        );
        assert_ne!(
            r.header("x-cache"),
            Some("Hit from slabfront"),
            "a range is not stored"
        );
    }
    // The end of the object (a suffix range), the same way.
    let r = ranged(&s, "/big.bin", "bytes=-10");
    assert_eq!((r.status, r.body.clone()), (206, want(size - 10, size - 1)));
    // A range near the start: the whole object is fetched and stored...
    let r = ranged(&s, "/big.bin", "bytes=0-15");
    assert!(matches!(r.status, 200 | 206), "{}", r.status);
    let full = s.get("/big.bin", &[]);
    assert_eq!(full.header("x-cache"), Some("Hit from slabfront"));
    assert_eq!(full.body.len() as u64, size);
    // ...after which deep ranges are hits from the slab.
    let r = ranged(&s, "/big.bin", &format!("bytes={a}-{b}"));
    assert_eq!((r.status, r.header("x-cache")), (206, Some("Hit from slabfront")));
    assert_eq!(r.body, want(a, b));
}
