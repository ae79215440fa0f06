//! HTTPS for viewers: slabfront (rustls, ring) vs nginx (OpenSSL), same P-256 certificate,
//! TLS 1.3, each pinned to core 0 with wrk on core 1. Full handshakes (a new connection per
//! request), and keep-alive throughput for 1 KiB and the 1.3 MB page.

use crate::{print_rows, wait_port, Args, Cell, Sample, ServerProc, LARGE, LARGE_SIZE, SMALL};
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
    let cfg = work.join("slabfront-tls.toml");
    std::fs::write(
        &cfg,
        format!(
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
        ),
    )?;
    let child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(bin)
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("slabfront-tls.log"))?)
        .spawn()
        .context("starting slabfront")?;
    wait_port(SF_TLS_PORT)?;
    Ok(ServerProc {
        name: "slabfront",
        child,
        port: SF_TLS_PORT,
    })
}

fn start_nginx(root: &Path, work: &Path, cert: &str, key: &str) -> Result<ServerProc> {
    let p = work.join("nginx-tls");
    std::fs::create_dir_all(p.join("logs"))?;
    let conf = p.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            r#"worker_processes 1;
worker_rlimit_nofile 19500;
daemon off;
pid {p}/nginx.pid;
error_log {p}/logs/error.log warn;
events {{ worker_connections 19000; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    open_file_cache max=1000 inactive=60s;
    types {{ text/html html; application/octet-stream bin; }}
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    ssl_protocols TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    server {{
        listen 127.0.0.1:{NGINX_TLS_PORT} ssl reuseport backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {root};
    }}
}}
"#,
            p = p.display(),
            root = root.display()
        ),
    )?;
    let child = Command::new("taskset")
        .args(["-c", "0", "nginx", "-c"])
        .arg(&conf)
        .arg("-p")
        .arg(&p)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nginx")?;
    wait_port(NGINX_TLS_PORT)?;
    Ok(ServerProc {
        name: "nginx",
        child,
        port: NGINX_TLS_PORT,
    })
}

pub fn run(args: &Args, bin: &Path) -> Result<()> {
    let work = tempfile::tempdir()?;
    let root = work.path().join("www");
    std::fs::create_dir(&root)?;
    std::fs::write(root.join("1k.bin"), vec![b'x'; 1024])?;
    let large: Vec<u8> = (0..LARGE_SIZE).map(|i| b"abcdefghij<>/\n"[i % 14]).collect();
    std::fs::write(root.join("simple.html"), &large)?;
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
    let close = work.path().join("close.lua");
    std::fs::write(&close, "wrk.headers[\"Connection\"] = \"close\"\n")?;
    let run_cell = |f: &dyn Fn(&ServerProc) -> Result<Sample>| -> Result<Cell> {
        let mut cell: Cell = vec![Vec::new(); servers.len()];
        for _ in 0..args.runs {
            for (i, s) in servers.iter().enumerate() {
                cell[i].push(f(s)?);
            }
        }
        Ok(cell)
    };
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
    eprintln!("running full handshakes");
    rows.push((
        "full handshake per request, 1 KiB, 64 conns".into(),
        run_cell(&|s| https(s, SMALL, 64, Some(&close)))?,
    ));
    eprintln!("running keep-alive 1 KiB");
    rows.push((
        "keep-alive 1 KiB, 64 conns".into(),
        run_cell(&|s| https(s, SMALL, 64, None))?,
    ));
    eprintln!("running keep-alive 1.3 MB");
    rows.push((
        "keep-alive 1.3 MB, 16 conns".into(),
        run_cell(&|s| https(s, LARGE, 16, None))?,
    ));
    let names: Vec<&str> = servers.iter().map(|s| s.name).collect();
    print_rows(&rows, &names, secs);
    Ok(())
}
