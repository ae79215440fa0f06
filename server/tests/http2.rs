#![allow(clippy::unwrap_used)]
//! HTTP/2 to viewers, checked with tools someone else wrote: curl and nghttp2's `nghttp` and
//! `h2load` (Debian `nghttp2-client`), and PyPI's `h2` for viewers that misbehave
//! (`tests/h2/client.py`). Negotiation both ways, the same bytes over HTTP/1.1 and HTTP/2,
//! multiplexing beside a slow large download, every limit of `[server.http2]`, GOAWAY on
//! shutdown and reload. The tools are installed when missing (apt-get, pip in a venv).

mod util;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use util::origin::{Origin, Reply};

/// The Python with PyPI's `h2`, once the tools are there; `None` (with a loud message) when
/// they cannot be installed here.
fn python() -> Option<&'static Path> {
    static PY: OnceLock<Option<PathBuf>> = OnceLock::new();
    PY.get_or_init(|| {
        let have = |t: &str| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {t}"))
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !(have("nghttp") && have("h2load") && have("curl")) {
            let _ = Command::new("apt-get")
                .args(["install", "-y", "-q", "nghttp2-client", "curl"])
                .output();
        }
        if !(have("nghttp") && have("h2load") && have("curl")) {
            eprintln!(
                "\n!!!!! SKIPPING HTTP/2 TESTS: nghttp2-client or curl cannot be installed here !!!!!\n"
            );
            return None;
        }
        let venv = std::env::temp_dir().join("slabfront-h2-venv");
        let py = venv.join("bin/python");
        let ok = |py: &Path| {
            Command::new(py)
                .args(["-c", "import h2"])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !ok(&py) {
            let _ = Command::new("python3").arg("-m").arg("venv").arg(&venv).output();
            let _ = Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "h2>=4,<5"])
                .output();
        }
        if !ok(&py) {
            eprintln!(
                "\n!!!!! SKIPPING HTTP/2 TESTS: PyPI h2 cannot be installed in {} !!!!!\n",
                venv.display()
            );
            return None;
        }
        Some(py)
    })
    .as_deref()
}

struct Edge {
    child: Child,
    http: u16,
    https: u16,
    dir: tempfile::TempDir,
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Edge {
    /// slabfront with a plain (h2c) and a TLS listener, a directory origin (`/1k.bin`,
    /// `/big.bin` of 20 MB, `/huge.bin` of 1 GiB) and a custom origin for `/cached/*`.
    fn start(origin: &Origin, http2: &str) -> Edge {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let site = d.join("site");
        std::fs::create_dir_all(&site).unwrap();
        std::fs::write(site.join("1k.bin"), body(1024, 1)).unwrap();
        std::fs::write(site.join("big.bin"), body(20_000_000, 2)).unwrap();
        let huge = std::fs::File::create(site.join("huge.bin")).unwrap();
        huge.set_len(1 << 30).unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(d.join("c.pem"), ck.cert.pem()).unwrap();
        std::fs::write(d.join("k.pem"), ck.key_pair.serialize_pem()).unwrap();
        let cfg = format!(
            r#"
[server]
listen = ["127.0.0.1:0"]
listen_tls = ["127.0.0.1:0"]
workers = 1
h2c = true

[server.http2]
{http2}

[[tls.certificates]]
cert = "{d}/c.pem"
key = "{d}/k.pem"

[[origins]]
id = "site"
path = "{d}/site"

[[origins]]
id = "app"
domain_name = "127.0.0.1"
http_port = {port}
protocol = "http-only"

[default_cache_behavior]
target_origin = "site"

[[behaviors]]
path_pattern = "/cached/*"
target_origin = "app"
allowed_methods = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]

[cache]
path = "{d}/slab"
size = "64MiB"

[logging]
path = "{d}/access.log"
"#,
            d = d.display(),
            port = origin.port
        );
        let cfg_path = d.join("slabfront.toml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_slabfront"))
            .arg("--config")
            .arg(&cfg_path)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(d.join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (mut http, mut https) = (0, 0);
        for _ in 0..2 {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            let port = line
                .trim()
                .trim_end_matches('/')
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap_or(0);
            if line.contains("https://") {
                https = port;
            } else {
                http = port;
            }
        }
        assert!(
            http > 0 && https > 0,
            "{}",
            std::fs::read_to_string(d.join("stderr")).unwrap_or_default()
        );
        Edge {
            child,
            http,
            https,
            dir,
        }
    }

    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join("site").join(name)).unwrap()
    }

    fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// The client script's JSON for one scenario.
    fn py(&self, py: &Path, args: &[&str]) -> serde_json::Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/h2/client.py");
        let out = Command::new(py)
            .arg(script)
            .arg(args[0])
            .arg(self.http.to_string())
            .args(&args[1..])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.lines().last().unwrap_or(""))
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {text} {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Bytes that differ at every offset (and between seeds).
fn body(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "-k", "--max-time", "60"])
        .args(args)
        .output()
        .unwrap()
}

/// GET over curl: (HTTP version, status, body, header block).
fn fetch(url: &str, proto: &str) -> (String, u16, Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let (b, h) = (dir.path().join("b"), dir.path().join("h"));
    let out = curl(&[
        proto,
        "-o",
        b.to_str().unwrap(),
        "-D",
        h.to_str().unwrap(),
        "-w",
        "%{http_version} %{http_code}",
        url,
    ]);
    let w = String::from_utf8_lossy(&out.stdout).to_string();
    let mut it = w.split(' ');
    let v = it.next().unwrap_or("").to_string();
    let code = it.next().unwrap_or("0").parse().unwrap_or(0);
    (
        v,
        code,
        std::fs::read(&b).unwrap_or_default(),
        std::fs::read_to_string(&h).unwrap_or_default(),
    )
}

fn cached_origin() -> Origin {
    Origin::start(|seen| {
        let n: usize = seen
            .target
            .trim_start_matches("/cached/")
            .trim_end_matches(".bin")
            .parse()
            .unwrap_or(10);
        Reply::ok(
            &body(n, 7),
            &[
                ("Cache-Control", "max-age=600"),
                ("Content-Type", "application/octet-stream"),
            ],
        )
    })
}

#[test]
fn negotiation_both_ways_and_the_same_bytes_on_both_protocols() {
    if python().is_none() {
        return;
    }
    let origin = cached_origin();
    let e = Edge::start(&origin, "");
    let tls = |p: &str| format!("https://localhost:{}{p}", e.https);
    let plain = |p: &str| format!("http://127.0.0.1:{}{p}", e.http);
    let resolve = format!("localhost:{}:127.0.0.1", e.https);
    let get = |url: &str, proto: &str| {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("b");
        let out = curl(&[
            "--resolve",
            &resolve,
            proto,
            "-o",
            b.to_str().unwrap(),
            "-w",
            "%{http_version} %{http_code}",
            url,
        ]);
        (
            String::from_utf8_lossy(&out.stdout).to_string(),
            std::fs::read(&b).unwrap_or_default(),
        )
    };
    // ALPN: h2 when offered, HTTP/1.1 when only it is offered.
    assert_eq!(get(&tls("/1k.bin"), "--http2").0, "2 200");
    assert_eq!(get(&tls("/1k.bin"), "--http1.1").0, "1.1 200");
    // Plain: prior knowledge and HTTP/1.1 on the same listener.
    assert_eq!(get(&plain("/1k.bin"), "--http2-prior-knowledge").0, "2 200");
    assert_eq!(get(&plain("/1k.bin"), "--http1.1").0, "1.1 200");
    // nghttp says which protocol ALPN chose.
    let out = Command::new("nghttp")
        .args(["-nv", &format!("https://127.0.0.1:{}/1k.bin", e.https)])
        .output()
        .unwrap();
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.contains("The negotiated protocol: h2"), "{v}");
    assert!(
        v.contains(":status: 200") && v.contains("server: slabfront"),
        "{v}"
    );

    // The same object, byte for byte: static files and cache hits, over all four ways.
    let (one_k, big) = (e.file("1k.bin"), e.file("big.bin"));
    let _ = get(&plain("/cached/3000000.bin"), "--http1.1");
    for (path, want) in [
        ("/1k.bin", one_k),
        ("/big.bin", big),
        ("/cached/3000000.bin", body(3_000_000, 7)),
    ] {
        for (url, proto) in [
            (tls(path), "--http2"),
            (tls(path), "--http1.1"),
            (plain(path), "--http2-prior-knowledge"),
            (plain(path), "--http1.1"),
        ] {
            let (status, got) = get(&url, proto);
            assert!(status.ends_with(" 200"), "{url} {proto}: {status}");
            assert!(
                got == want,
                "{url} {proto}: {} bytes differ from {}",
                got.len(),
                want.len()
            );
        }
    }
    let (_, _, _, h2_head) = fetch(&plain("/cached/3000000.bin"), "--http2-prior-knowledge");
    assert!(
        h2_head
            .to_ascii_lowercase()
            .contains("x-cache: hit from slabfront"),
        "{h2_head}"
    );
    assert_eq!(origin.count(), 1, "one fill for every protocol");
    // HEAD and an unknown file.
    let (v, code, b, head) = fetch(&plain("/big.bin"), "--http2-prior-knowledge");
    assert_eq!((v.as_str(), code, b.len()), ("2", 200, 20_000_000), "{head}");
    let out = curl(&["--http2-prior-knowledge", "-I", &plain("/big.bin")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("content-length: 20000000"));
    assert_eq!(fetch(&plain("/nope"), "--http2-prior-knowledge").1, 404);
}

#[test]
fn h2load_and_the_access_log() {
    if python().is_none() {
        return;
    }
    let origin = cached_origin();
    let e = Edge::start(&origin, "");
    for url in [
        format!("https://127.0.0.1:{}/1k.bin", e.https),
        format!("http://127.0.0.1:{}/cached/1024.bin", e.http),
    ] {
        let out = Command::new("h2load")
            .args(["-n", "2000", "-c", "4", "-m", "10", &url])
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(s.contains("2000 succeeded, 0 failed, 0 errored"), "{url}: {s}");
        assert!(s.contains("status codes: 2000 2xx"), "{url}: {s}");
    }
    assert_eq!(origin.count(), 1);
    // Every stream is a line of the access log, as HTTP/2.0, with its cache result.
    let log = e.dir.path().join("access.log");
    let t0 = Instant::now();
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(String::from)
            .collect();
        if lines.len() >= 4000 || t0.elapsed() > Duration::from_secs(10) {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(lines.len(), 4000);
    assert!(
        lines.iter().all(|l| l.split('\t').any(|f| f == "HTTP/2.0")),
        "{}",
        lines[0]
    );
    let hits = lines
        .iter()
        .filter(|l| l.contains("/cached/1024.bin") && l.split('\t').any(|f| f == "Hit"))
        .count();
    assert_eq!(hits, 1999, "{}", lines[lines.len() - 1]);
    let https = lines
        .iter()
        .filter(|l| l.split('\t').any(|f| f == "TLSv1.3"))
        .count();
    assert_eq!(https, 2000);
}

#[test]
fn streams_go_on_while_one_is_a_slow_large_download() {
    let Some(py) = python() else { return };
    let origin = cached_origin();
    let e = Edge::start(&origin, "");
    let r = e.py(py, &["multiplex", "/huge.bin", "/1k.bin", "50"]);
    assert_eq!(r["small_done"], 50, "{r}");
    assert_eq!(r["small_bytes"], 50 * 1024, "{r}");
    assert!(r["small_secs"].as_f64().unwrap() < 10.0, "{r}");
    // The 1 GiB stream went on, as slowly as its reader allowed it: 64 KiB + 20 x 1 MiB.
    assert!(r["big_bytes"].as_u64().unwrap() >= 20 << 20, "{r}");
    assert_eq!(r["resets"], 0, "{r}");
}

#[test]
fn advertised_limits_follow_the_configuration() {
    let Some(py) = python() else { return };
    let origin = cached_origin();
    let e = Edge::start(
        &origin,
        "max_concurrent_streams = 7\nheader_table_size = 2048\nstream_window = 131072\nmax_header_list_size = 8192",
    );
    let r = e.py(py, &["settings"]);
    // HEADER_TABLE_SIZE (1), MAX_CONCURRENT_STREAMS (3), INITIAL_WINDOW_SIZE (4),
    // MAX_HEADER_LIST_SIZE (6).
    assert_eq!(r["settings"]["1"], 2048, "{r}");
    assert_eq!(r["settings"]["3"], 7, "{r}");
    assert_eq!(r["settings"]["4"], 131072, "{r}");
    assert_eq!(r["settings"]["6"], 8192, "{r}");
    // Streams beyond the limit are refused (REFUSED_STREAM, 7), the others answered.
    let r = e.py(py, &["concurrency", "/big.bin", "10"]);
    assert_eq!(r["ok"], 7, "{r}");
    assert_eq!(r["refused"], 3, "{r}");
    assert!(r["codes"].as_array().unwrap().iter().all(|c| c == 7), "{r}");
    // A header list over the limit: 431, the connection kept.
    let r = e.py(py, &["big_header", "20000"]);
    assert_eq!(r["status"], "431", "{r}");
    // Within it: answered.
    let r = e.py(py, &["big_header", "4000"]);
    assert_eq!(r["status"], "200", "{r}");
    // An HPACK table larger than we allow (a bomb's first step): the connection ends.
    let r = e.py(py, &["hpack_bomb", "1000000"]);
    assert!(
        r["goaway"].as_u64().unwrap_or(0) > 0 || r["closed"] == true,
        "{r}"
    );
    assert!(r.get("status").is_none(), "{r}");
}

#[test]
fn rapid_reset_closes_the_connection() {
    let Some(py) = python() else { return };
    let origin = cached_origin();
    let e = Edge::start(&origin, "max_resets = 100\nreset_interval = \"10s\"");
    for path in ["/1k.bin", "/cached/200000.bin"] {
        let r = e.py(py, &["rapid_reset", path, "5000"]);
        // ENHANCE_YOUR_CALM (11), long before the 5,000 streams were all opened.
        assert_eq!(r["goaway"]["code"], 11, "{path}: {r}");
        assert!(r["sent"].as_u64().unwrap() < 2000, "{path}: {r}");
    }
    assert_eq!(
        fetch(
            &format!("http://127.0.0.1:{}/1k.bin", e.http),
            "--http2-prior-knowledge"
        )
        .1,
        200
    );
}

#[test]
fn floods_are_cut_off_and_hold_bounded_memory() {
    let Some(py) = python() else { return };
    let origin = cached_origin();
    let e = Edge::start(&origin, "max_header_list_size = 16384");
    let before = e.rss_kib();
    // CONTINUATION flood: the header block is refused once over the list size, well before
    // the 20,000 frames (220 MB) are sent.
    let r = e.py(py, &["continuation", "20000"]);
    assert_eq!(r["closed"], true, "{r}");
    assert!(r["sent"].as_u64().unwrap() < 1000, "{r}");
    // PING flood from a viewer that reads nothing: the server stops reading once its answers
    // fill the socket and its bounded output; memory stays flat.
    let r = e.py(py, &["ping_flood", "5000000"]);
    assert!(
        r["sent"].as_u64().unwrap() < 5_000_000,
        "the server read every ping: {r}"
    );
    let after = e.rss_kib();
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    assert_eq!(
        fetch(
            &format!("http://127.0.0.1:{}/1k.bin", e.http),
            "--http2-prior-knowledge"
        )
        .1,
        200
    );
}

#[test]
fn a_viewer_that_opens_no_window_is_reset_after_the_send_timeout() {
    let Some(py) = python() else { return };
    let origin = cached_origin();
    let e = Edge::start(&origin, "send_timeout = \"2s\"\nmax_send_buffer = \"64KiB\"");
    let before = e.rss_kib();
    let t0 = Instant::now();
    let r = e.py(py, &["zero_window", "/huge.bin"]);
    assert_eq!(r["status"], "200", "{r}");
    // CANCEL (8) after about the send timeout.
    assert_eq!(r["reset"], 8, "{r}");
    let after_s = r["after"].as_f64().unwrap();
    assert!((1.5..6.0).contains(&after_s), "{r}");
    assert!(t0.elapsed() < Duration::from_secs(12));
    assert!(e.rss_kib() < before + 32 * 1024);
}

#[test]
fn goaway_on_shutdown_and_reload_lets_the_download_finish() {
    if python().is_none() {
        return;
    }
    for sig in ["HUP", "TERM"] {
        let origin = cached_origin();
        let e = Edge::start(&origin, "");
        let got = e.dir.path().join("got");
        // 20 MB at 5 MB/s: about 4 seconds, signalled after one.
        let client = Command::new("curl")
            .args([
                "-sS",
                "--http2-prior-knowledge",
                "--limit-rate",
                "5M",
                "-o",
                got.to_str().unwrap(),
            ])
            .arg(format!("http://127.0.0.1:{}/big.bin", e.http))
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs(1));
        e.signal(sig);
        let out = client.wait_with_output().unwrap();
        let log = std::fs::read_to_string(e.dir.path().join("stderr")).unwrap();
        let tail: Vec<&str> = log
            .lines()
            .filter(|l| !l.contains("frame=Data") && !l.contains("frame=WindowUpdate"))
            .collect();
        assert!(
            out.status.success(),
            "{sig}: curl failed: {}",
            tail[tail.len().saturating_sub(15)..].join("\n")
        );
        assert!(
            std::fs::read(&got).unwrap() == e.file("big.bin"),
            "{sig}: the download is not whole"
        );
        assert!(
            log.contains("send frame=GoAway { error_code: NO_ERROR"),
            "{sig}: no GOAWAY sent"
        );
    }
}

#[test]
fn request_bodies_reach_the_origin() {
    if python().is_none() {
        return;
    }
    let origin = cached_origin();
    let e = Edge::start(&origin, "");
    let data = e.dir.path().join("post");
    std::fs::write(&data, body(300_000, 9)).unwrap();
    let url = format!("http://127.0.0.1:{}/cached/10.bin", e.http);
    let out = curl(&[
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--data-binary",
        &format!("@{}", data.display()),
        &url,
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    let seen = origin.requests();
    let post = seen
        .iter()
        .find(|s| s.method == "POST")
        .expect("the POST reached the origin");
    assert!(post.body == body(300_000, 9), "{} bytes", post.body.len());
}
