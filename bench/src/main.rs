//! slabfront's benchmark driver: starts slabfront and nginx on loopback with the same files,
//! pins each server to core 0 and the load to core 1, and prints one side-by-side table.
//!
//! It talks HTTP only and uses no server internals. Every number in the table comes from the
//! same run; each cell is the median of `--runs` runs, the servers measured alternately.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod cheap;
mod compare;
mod dashboard;
mod edge;
mod gate;
mod pair;
mod procstat;
mod proxy;
mod routing;
mod s3;
mod soak;
mod tls;

#[derive(Parser, Debug)]
#[command(about = "slabfront vs nginx, static files, one server core")]
struct Args {
    /// Runs per cell (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Idle keep-alive connections for the memory test.
    #[arg(long, default_value_t = 10_000)]
    idle_connections: usize,
    /// Only the idle-connection memory test.
    #[arg(long)]
    only_memory: bool,
    /// Only the rows whose label contains this text (e.g. "1000 conns", "MSG_TRUNC").
    #[arg(long)]
    only: Option<String>,
    /// The slabfront binary (default: next to this one).
    #[arg(long)]
    slabfront: Option<PathBuf>,
    /// Another slabfront build to pair against (the one from before a change): static and
    /// hit cells alternating A B B A, with each build's spread against itself.
    #[arg(long)]
    pair: Option<PathBuf>,
    /// What the edge security controls cost: 1 KiB hits with a repeated signed URL, and with
    /// a security-headers policy, against the same hits without.
    #[arg(long)]
    edge: bool,
    /// The cost of routing by Host: one distribution against two with 10,000 names each.
    #[arg(long)]
    routing: bool,
    /// What geo restriction and a rate-based rule cost 1 KiB hits (10,000 client addresses),
    /// each against the same proxy without it.
    #[arg(long)]
    gate: bool,
    /// The caching-proxy benchmark (slabfront vs nginx proxy_cache vs Varnish) instead.
    #[arg(long)]
    proxy: bool,
    /// The HTTPS benchmark (slabfront vs nginx, TLS 1.3, P-256) instead.
    #[arg(long)]
    tls: bool,
    /// What the admin dashboard costs: hits per CPU-second with its data polled every second
    /// against without, in alternating rounds.
    #[arg(long)]
    dashboard: bool,
    /// With --dashboard: another slabfront binary (e.g. one built without the dashboard's
    /// statistics) measured in the same rounds, dashboard closed.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// The whole comparison in one session: slabfront (slab hit and directory origin), nginx
    /// (sendfile on and off, proxy_cache), Varnish, Traffic Server and the two C floors on
    /// 1 KiB, the 1.3 MB page and unique-URL misses; then HTTPS and idle memory.
    #[arg(long)]
    compare: bool,
    /// The S3 origin benchmark (signed S3 origin vs plain HTTP origin, 1 KiB misses) instead.
    #[arg(long)]
    s3: bool,
    /// The soak instead (not for CI): slabfront under mixed load, its memory sampled every 10 s.
    #[arg(long)]
    soak: bool,
    /// Length of the soak, in minutes.
    #[arg(long, default_value_t = 30)]
    soak_minutes: u64,
    /// The soak's warm-up, in minutes (growth is measured from its end).
    #[arg(long, default_value_t = 5)]
    soak_warmup_minutes: u64,
}

impl Args {
    /// Whether a row is to run (`--only` names part of its label; without it, every row).
    fn wants(&self, label: &str) -> bool {
        self.only.as_deref().is_none_or(|o| label.contains(o))
    }
}

const SMALL: &str = "/1k.bin";
const LARGE: &str = "/simple.html";
const LARGE_SIZE: usize = 1_323_539;
const SF_PORT: u16 = 18080;
const NGINX_PORT: u16 = 18081;
const REF_PORT: u16 = 18082;

struct ServerProc {
    name: &'static str,
    child: Child,
    port: u16,
}

impl ServerProc {
    fn pids(&self) -> Vec<u32> {
        procstat::process_tree(self.child.id())
    }
    fn cpu_ticks(&self) -> u64 {
        self.pids().iter().map(|&p| procstat::cpu_ticks(p)).sum()
    }
    fn rss_kib(&self) -> u64 {
        self.pids().iter().map(|&p| procstat::rss_kib(p)).sum()
    }
    fn rss_anon_kib(&self) -> u64 {
        self.pids().iter().map(|&p| procstat::rss_anon_kib(p)).sum()
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        // Stopped by the PID we started, never by name.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_port(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listens on 127.0.0.1:{port}")
}

/// Starts slabfront pinned to core 0 with `config` (written to `work/<name>.toml`).
fn start_slabfront_with(bin: &Path, work: &Path, name: &str, config: &str, port: u16) -> Result<ServerProc> {
    let cfg = work.join(format!("{name}.toml"));
    std::fs::write(&cfg, config)?;
    let child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(bin)
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join(format!("{name}.log")))?)
        .spawn()
        .context("starting slabfront")?;
    if let Err(e) = wait_port(port) {
        let log = std::fs::read_to_string(work.join(format!("{name}.log"))).unwrap_or_default();
        bail!("{e}; slabfront's log:\n{log}");
    }
    Ok(ServerProc {
        name: "slabfront",
        child,
        port,
    })
}

/// The issue's reference: a minimal C epoll responder answering from RAM
/// (`bench/ref/responder.c`), compiled here with the system C compiler and pinned to core 0.
/// `None` (with a note) when there is no C compiler.
/// With `sendfile`, the same responder sending bodies with sendfile(2) from the files.
fn start_reference(root: &Path, work: &Path, port: u16, sendfile: bool) -> Option<ServerProc> {
    let src = work.join("responder.c");
    let exe = work.join("responder");
    if !exe.exists() {
        std::fs::write(&src, include_str!("../ref/responder.c")).ok()?;
        let built = Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&exe)
            .arg(&src)
            .status();
        if !matches!(built, Ok(s) if s.success()) {
            eprintln!("no C compiler (cc): the reference responder is left out");
            return None;
        }
    }
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0"]).arg(&exe).arg(port.to_string()).arg(root);
    if sendfile {
        cmd.arg("sendfile");
    }
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().ok()?;
    let server = ServerProc {
        name: if sendfile {
            "C epoll sendfile (reference)"
        } else {
            "C epoll from RAM (reference)"
        },
        child,
        port,
    };
    wait_port(port).ok()?;
    Some(server)
}

/// One worker on `port` serving the directory `root`.
fn static_config(port: u16, root: &Path) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\nworkers = 1\nmax_connections = 19000\n\n[[origins]]\nid = \"files\"\npath = {root:?}\n\n[default_cache_behavior]\ntarget_origin = \"files\"\n"
    )
}

fn start_slabfront(bin: &Path, root: &Path, work: &Path) -> Result<ServerProc> {
    start_slabfront_with(bin, work, "slabfront", &static_config(SF_PORT, root), SF_PORT)
}

/// Starts an nginx (one worker, pinned to `core`) whose configuration is the common header
/// (pid, logs, temp paths under `work/<dir>`) around `http_body`, the inside of `http {}`.
/// `{p}` in `http_body` stands for that folder.
fn start_nginx_with(
    work: &Path,
    dir: &str,
    core: &str,
    name: &'static str,
    http_body: &str,
    port: u16,
) -> Result<ServerProc> {
    let prefix = work.join(dir);
    std::fs::create_dir_all(prefix.join("logs"))?;
    let p = prefix.display().to_string();
    let conf = prefix.join("nginx.conf");
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
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
{body}
}}
"#,
            body = http_body.replace("{p}", &p)
        ),
    )?;
    let child = Command::new("taskset")
        .args(["-c", core, "nginx", "-c"])
        .arg(&conf)
        .arg("-p")
        .arg(&prefix)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nginx (install it with scripts/bench-deps.sh)")?;
    wait_port(port)?;
    Ok(ServerProc { name, child, port })
}

fn start_nginx(root: &Path, work: &Path) -> Result<ServerProc> {
    start_nginx_with(
        work,
        "nginx",
        "0",
        "nginx",
        &nginx_static(root, NGINX_PORT, true),
        NGINX_PORT,
    )
}

/// The inside of `http {}` for nginx serving `root` on `port` as the benchmarks run it, with
/// `sendfile` on or off.
fn nginx_static(root: &Path, port: u16, sendfile: bool) -> String {
    format!(
        r#"    access_log off;
    sendfile {on};
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 100000000;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    types {{ text/html html; application/octet-stream bin; }}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {root};
    }}"#,
        on = if sendfile { "on" } else { "off" },
        root = root.display()
    )
}

/// The files every benchmark serves: 1 KiB and a page the size of PyPI's `/simple/`.
fn make_site(work: &Path) -> Result<std::path::PathBuf> {
    let root = work.join("www");
    std::fs::create_dir(&root)?;
    std::fs::write(root.join("1k.bin"), vec![b'x'; 1024])?;
    let large: Vec<u8> = (0..LARGE_SIZE).map(|i| b"abcdefghij<>/\n"[i % 14]).collect();
    std::fs::write(root.join("simple.html"), large)?;
    Ok(root)
}

/// `runs` runs of `f` on every server, alternating servers within each run.
fn run_cell(servers: &[ServerProc], runs: usize, f: &dyn Fn(&ServerProc) -> Result<Sample>) -> Result<Cell> {
    let mut cell: Cell = vec![Vec::new(); servers.len()];
    for _ in 0..runs {
        for (i, s) in servers.iter().enumerate() {
            cell[i].push(f(s)?);
        }
    }
    Ok(cell)
}

/// One measured run.
#[derive(Debug, Clone, Default)]
struct Sample {
    req_s: f64,
    bytes_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu: f64,
    errors: u64,
    requests: f64,
    bytes: f64,
}

impl Sample {
    fn per_cpu(&self) -> f64 {
        if self.cpu > 0.0 {
            self.requests / self.cpu
        } else {
            0.0
        }
    }
    fn bytes_per_cpu(&self) -> f64 {
        if self.cpu > 0.0 {
            self.bytes / self.cpu
        } else {
            0.0
        }
    }
}

/// /proc reports CPU time in USER_HZ ticks, which Linux fixes at 100 per second.
fn ticks_per_sec() -> f64 {
    100.0
}

fn wrk(server: &ServerProc, path: &str, conns: usize, secs: u64) -> Result<Sample> {
    wrk_with(server, path, conns, secs, None)
}

/// wrk, optionally with a Lua script (e.g. one that makes every URL unique).
fn wrk_with(
    server: &ServerProc,
    path: &str,
    conns: usize,
    secs: u64,
    script: Option<&Path>,
) -> Result<Sample> {
    let url = format!("http://127.0.0.1:{}{path}", server.port);
    wrk_url(server, &url, conns, secs, script)
}

/// wrk against any URL (http or https).
fn wrk_url(server: &ServerProc, url: &str, conns: usize, secs: u64, script: Option<&Path>) -> Result<Sample> {
    let before = server.cpu_ticks();
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "1", "wrk", "-t1", "--latency"]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"))
        .arg(url)
        .output()
        .context("running wrk (install it with scripts/bench-deps.sh)")?;
    let cpu = (server.cpu_ticks() - before) as f64 / ticks_per_sec();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut s = Sample {
        cpu,
        ..Default::default()
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => s.req_s = v.parse().unwrap_or(0.0),
            ["Transfer/sec:", v] => s.bytes_s = parse_size(v),
            ["50%", v] => s.p50_ms = parse_ms(v),
            ["99%", v] => s.p99_ms = parse_ms(v),
            ["Non-2xx", "or", "3xx", "responses:", n] => s.errors += n.parse::<u64>().unwrap_or(0),
            [n, "requests", "in", ..] => s.requests = n.parse().unwrap_or(0.0),
            ["Socket", "errors:", rest @ ..] => {
                for w in rest {
                    s.errors += w.trim_end_matches(',').parse::<u64>().unwrap_or(0);
                }
            }
            _ => {}
        }
    }
    if s.requests == 0.0 {
        bail!(
            "wrk printed no result:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // CPU is sampled over wrk's whole lifetime (connection setup included), a little more
    // than its measured window: both servers are charged alike.
    s.bytes = s.bytes_s * secs as f64;
    Ok(s)
}

fn parse_ms(v: &str) -> f64 {
    let (num, unit): (String, String) = v.chars().partition(|c| c.is_ascii_digit() || *c == '.');
    let n: f64 = num.parse().unwrap_or(0.0);
    match unit.as_str() {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => n,
    }
}

fn parse_size(v: &str) -> f64 {
    let (num, unit): (String, String) = v.chars().partition(|c| c.is_ascii_digit() || *c == '.');
    let n: f64 = num.parse().unwrap_or(0.0);
    n * match unit.as_str() {
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => 1.0,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

fn median_sample(v: &[Sample]) -> Sample {
    let m = |f: fn(&Sample) -> f64| median(v.iter().map(f).collect());
    Sample {
        req_s: m(|s| s.req_s),
        bytes_s: m(|s| s.bytes_s),
        p50_ms: m(|s| s.p50_ms),
        p99_ms: m(|s| s.p99_ms),
        cpu: m(|s| s.cpu),
        errors: v.iter().map(|s| s.errors).sum(),
        requests: m(|s| s.requests),
        bytes: m(|s| s.bytes),
    }
}

/// RSS added per idle keep-alive connection, in bytes.
fn idle_memory(server: &ServerProc, n: usize) -> Result<f64> {
    // Warm up (file caches, buffer pools) before the baseline.
    for _ in 0..100 {
        let mut c = TcpStream::connect(("127.0.0.1", server.port))?;
        get_once(&mut c)?;
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = server.rss_kib();
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = TcpStream::connect(("127.0.0.1", server.port))?;
        get_once(&mut c)?;
        held.push(c);
    }
    std::thread::sleep(Duration::from_secs(1));
    let after = server.rss_kib();
    // They must still be open (not closed by the server).
    let mut open = 0;
    for c in held.iter_mut().take(100) {
        c.set_nonblocking(true)?;
        let mut b = [0u8; 1];
        match c.read(&mut b) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => open += 1,
            _ => {}
        }
    }
    if open < 100 {
        bail!(
            "{}: idle connections were closed during the memory test",
            server.name
        );
    }
    drop(held);
    Ok((after.saturating_sub(before) as f64 * 1024.0) / n as f64)
}

fn get_once(c: &mut TcpStream) -> Result<()> {
    c.write_all(b"GET /1k.bin HTTP/1.1\r\nHost: bench\r\n\r\n")?;
    let mut buf = [0u8; 4096];
    let mut got = 0;
    loop {
        let n = c.read(&mut buf[got..])?;
        if n == 0 {
            bail!("closed");
        }
        got += n;
        let text = &buf[..got];
        if let Some(end) = text.windows(4).position(|w| w == b"\r\n\r\n") {
            if got >= end + 4 + 1024 {
                return Ok(());
            }
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let me = std::env::current_exe()?;
    let bin = args
        .slabfront
        .clone()
        .unwrap_or_else(|| me.parent().map(|d| d.join("slabfront")).unwrap_or_default());
    if !bin.exists() {
        bail!(
            "{} not found: build it with cargo build --release -p slabfront",
            bin.display()
        );
    }
    if let Some(before) = &args.pair {
        return pair::run(&args, &bin, before);
    }
    if args.routing {
        return routing::run(&args, &bin);
    }
    if args.compare {
        return compare::run(&args, &bin);
    }
    if args.edge {
        return edge::run(&args, &bin);
    }
    if args.gate {
        return gate::run(&args, &bin);
    }
    if args.proxy {
        return proxy::run(&args, &bin);
    }
    if args.tls {
        return tls::run(&args, &bin);
    }
    if args.soak {
        return soak::run(&args, &bin);
    }
    if args.dashboard {
        return dashboard::run(&args, &bin);
    }
    if args.s3 {
        return s3::run(&args, &bin);
    }
    let work = tempfile::tempdir()?;
    let root = make_site(work.path())?;

    let mut servers = vec![
        start_slabfront(&bin, &root, work.path())?,
        start_nginx(&root, work.path())?,
    ];
    // The reference is measured for speed only (it holds an 8 KiB buffer per connection).
    let reference = (!args.only_memory)
        .then(|| start_reference(&root, work.path(), REF_PORT, false))
        .flatten();
    servers.extend(reference);
    let secs = args.duration;
    eprintln!(
        "machine: {} cores, {}; {} runs x {secs}s per cell",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        procstat::cpu_model(),
        args.runs
    );

    let run_cell = |f: &dyn Fn(&ServerProc) -> Result<Sample>| run_cell(&servers, args.runs, f);
    let mut rows: Vec<(String, Cell)> = Vec::new();
    if args.only_memory {
        return memory_table(&servers[..2], args.idle_connections);
    }
    for (label, path, conns) in [
        ("1 KiB, 64 conns (wrk)", SMALL, 64),
        ("1 KiB, 1000 conns (wrk)", SMALL, 1000),
        ("1.3 MB, 64 conns (wrk)", LARGE, 64),
    ] {
        if args.wants(label) {
            eprintln!("running {label}");
            rows.push((label.to_string(), run_cell(&|s| wrk(s, path, conns, secs))?));
        }
    }
    let label = "1.3 MB, 16 conns (MSG_TRUNC client)";
    if args.wants(label) {
        eprintln!("running {label}");
        rows.push((
            label.into(),
            run_cell(&|s| cheap::run(s.port, LARGE, 16, secs, || s.cpu_ticks()))?,
        ));
    }

    let names: Vec<&str> = servers.iter().map(|s| s.name).collect();
    print_rows(&rows, &names, secs);
    if args.only.is_some() {
        return Ok(());
    }
    memory_table(&servers[..2], args.idle_connections)
}

/// Runs per server, per row.
type Cell = Vec<Vec<Sample>>;

/// One markdown table: the medians of each row, and slabfront's (server 0) ratio per server
/// CPU-second against each other server.
fn print_rows(rows: &[(String, Cell)], names: &[&str], secs: u64) {
    let others = &names[1..];
    let ratio_cols: Vec<String> = others
        .iter()
        .map(|o| format!("slabfront/{o} per CPU-s"))
        .collect();
    println!(
        "| test | server | req/s | MB/s | p50 ms | p99 ms | server CPU % | req per CPU-s | MB per CPU-s | errors | {} |",
        ratio_cols.join(" | ")
    );
    println!(
        "|---|---|---|---|---|---|---|---|---|---|{}",
        "---|".repeat(others.len())
    );
    for (label, cell) in rows {
        let med: Vec<Sample> = cell.iter().map(|c| median_sample(c)).collect();
        for (i, m) in med.iter().enumerate() {
            let ratios: Vec<String> = (1..med.len())
                .map(|j| {
                    if i != 0 || med[j].per_cpu() <= 0.0 {
                        String::new()
                    } else {
                        format!("**{:.2}x**", med[0].per_cpu() / med[j].per_cpu())
                    }
                })
                .collect();
            println!(
                "| {label} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {} | {} |",
                names[i],
                m.req_s,
                m.bytes_s / 1e6,
                m.p50_ms,
                m.p99_ms,
                100.0 * m.cpu / secs as f64,
                m.per_cpu(),
                m.bytes_per_cpu() / 1e6,
                m.errors,
                ratios.join(" | ")
            );
        }
    }
}

fn memory_table(servers: &[ServerProc], n: usize) -> Result<()> {
    eprintln!("running idle-connection memory ({n} connections)");
    println!();
    println!("| idle keep-alive connections | server | RSS per connection |");
    println!("|---|---|---|");
    for s in servers {
        match idle_memory(s, n) {
            Ok(b) => println!("| {n} | {} | {:.0} bytes |", s.name, b),
            Err(e) => println!("| {n} | {} | failed: {e} |", s.name),
        }
    }
    Ok(())
}
