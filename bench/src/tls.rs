//! HTTPS for viewers: slabfront (rustls: aws-lc-rs key exchange, ring record ciphers) vs
//! nginx (OpenSSL), same P-256 certificate, TLS 1.3, each pinned to core 0 with wrk on core 1.
//! Full handshakes (a new connection per request), and keep-alive throughput for 1 KiB and
//! the 1.3 MB page.

use crate::{
    make_site, print_rows, run_cell, start_nginx_with, start_slabfront_with, Args, Cell, Sample, ServerProc,
    LARGE, SMALL,
};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};

const SF_TLS_PORT: u16 = 18443;
const NGINX_TLS_PORT: u16 = 18444;

fn make_cert(work: &Path) -> Result<(String, String)> {
    let cert = work.join("cert.pem");
    let key = work.join("key.pem");
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "30",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running openssl")?
        .success();
    if !ok {
        bail!("openssl could not make a certificate");
    }
    Ok((cert.display().to_string(), key.display().to_string()))
}

fn start_slabfront(bin: &Path, root: &Path, work: &Path, cert: &str, key: &str) -> Result<ServerProc> {
    let config = format!(
        r#"[server]
listen = []
listen_tls = ["127.0.0.1:{SF_TLS_PORT}"]
workers = 1
max_connections = 19000

[tls]
minimum_protocol_version = "TLSv1.3"

[[tls.certificates]]
cert = "{cert}"
key = "{key}"

[[origins]]
id = "files"
path = {root:?}

[default_cache_behavior]
target_origin = "files"
"#
    );
    start_slabfront_with(bin, work, "slabfront-tls", &config, SF_TLS_PORT)
}

fn start_nginx(root: &Path, work: &Path, cert: &str, key: &str) -> Result<ServerProc> {
    let body = format!(
        r#"    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    open_file_cache max=1000 inactive=60s;
    types {{ text/html html; application/octet-stream bin; }}
    ssl_protocols TLSv1.3;
    ssl_prefer_server_ciphers on;
    ssl_conf_command Ciphersuites {SUITES};
    ssl_session_cache shared:SSL:10m;
    server {{
        listen 127.0.0.1:{NGINX_TLS_PORT} ssl reuseport backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {root};
    }}"#,
        root = root.display()
    );
    start_nginx_with(work, "nginx-tls", "0", "nginx", &body, NGINX_TLS_PORT)
}

/// Both servers choose suites in this order (slabfront's default, CloudFront's order), so
/// that both encrypt with the same cipher whatever wrk's OpenSSL prefers.
const SUITES: &str = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

/// The suite a server negotiates with OpenSSL's default client offer (wrk's), by
/// `openssl s_client`.
fn negotiated_suite(port: u16) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-brief", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .find_map(|l| l.strip_prefix("Ciphersuite: ").map(str::to_string))
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn run(args: &Args, bin: &Path) -> Result<()> {
    let work = tempfile::tempdir()?;
    let root = make_site(work.path())?;
    let (cert, key) = make_cert(work.path())?;
    let servers = [
        start_slabfront(bin, &root, work.path(), &cert, &key)?,
        start_nginx(&root, work.path(), &cert, &key)?,
    ];
    let secs = args.duration;
    eprintln!(
        "machine: {} cores, {}; {} runs x {secs}s per cell; servers on core 0, wrk on core 1; TLS 1.3, P-256",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        crate::procstat::cpu_model(),
        args.runs
    );
    for s in &servers {
        eprintln!("{} negotiates {}", s.name, negotiated_suite(s.port));
    }
    let close = work.path().join("close.lua");
    std::fs::write(&close, "wrk.headers[\"Connection\"] = \"close\"\n")?;
    let run_cell = |f: &dyn Fn(&ServerProc) -> Result<Sample>| run_cell(&servers, args.runs, f);
    let https = |s: &ServerProc, path: &str, conns: usize, script: Option<&Path>| {
        crate::wrk_url(
            s,
            &format!("https://127.0.0.1:{}{path}", s.port),
            conns,
            secs,
            script,
        )
    };
    let mut rows: Vec<(String, Cell)> = Vec::new();
    let cells: [(&str, &str, usize, Option<&Path>); 3] = [
        (
            "full handshake per request, 1 KiB, 64 conns",
            SMALL,
            64,
            Some(&close),
        ),
        ("keep-alive 1 KiB, 64 conns", SMALL, 64, None),
        ("keep-alive 1.3 MB, 16 conns", LARGE, 16, None),
    ];
    for (label, path, conns, script) in cells {
        if args.wants(label) {
            eprintln!("running {label}");
            rows.push((label.to_string(), run_cell(&|s| https(s, path, conns, script))?));
        }
    }
    let names: Vec<&str> = servers.iter().map(|s| s.name).collect();
    print_rows(&rows, &names, secs);
    Ok(())
}
