//! Hostile clients at scale against one slabfront worker pinned to core 0 (load on core 1):
//! 10,000 slowloris connections, 10,000 connections opened and dropped per second, pipelining
//! floods, huge chunk extensions, and requests with as many header fields as allowed. While
//! each runs, a well-behaved canary sends one request every 5 ms on its own keep-alive
//! connection; the table gives its p99 against the quiet baseline (target: within +10 ms)
//! and the server's peak resident memory.
//!
//! `cargo run --release -p slabfront-bench --bin hostile -- [--seconds N] [--slabfront PATH]`

use anyhow::{bail, Context, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Apart from the other benchmarks' ports (18080-18084, the proxy bench's origin on 18090).
const PORT: u16 = 18099;
const ADDR: (&str, u16) = ("127.0.0.1", PORT);

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // Stopped by its PID.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pin_load() {
    if let Some(cores) = core_affinity::get_core_ids() {
        if let Some(c) = cores.get(1).or(cores.first()) {
            core_affinity::set_for_current(*c);
        }
    }
}

/// The canary: one GET every 5 ms on a keep-alive connection; latencies in µs.
fn canary(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Vec<u64>, u64)> {
    std::thread::spawn(move || {
        pin_load();
        let mut lat = Vec::new();
        let mut failures = 0;
        let mut conn: Option<TcpStream> = None;
        let req = b"GET /1k.bin HTTP/1.1\r\nHost: canary\r\n\r\n";
        let mut buf = vec![0u8; 4096];
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let c = match conn.as_mut() {
                Some(c) => c,
                None => match TcpStream::connect(ADDR) {
                    Ok(c) => {
                        c.set_read_timeout(Some(Duration::from_secs(5))).ok();
                        c.set_nodelay(true).ok();
                        conn.insert(c)
                    }
                    Err(_) => {
                        failures += 1;
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                },
            };
            let mut got = 0;
            let ok = c.write_all(req).is_ok()
                && loop {
                    match c.read(&mut buf[got..]) {
                        Ok(0) | Err(_) => break false,
                        Ok(n) => {
                            got += n;
                            // Head (~200 bytes) + 1,024 bytes of body.
                            if got >= 1024 && buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                                let end =
                                    buf[..got].windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
                                if got - end >= 1024 {
                                    break true;
                                }
                            }
                        }
                    }
                };
            if ok {
                lat.push(t.elapsed().as_micros() as u64);
            } else {
                failures += 1;
                conn = None;
            }
            std::thread::sleep(Duration::from_millis(5).saturating_sub(t.elapsed()));
        }
        (lat, failures)
    })
}

fn pct(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p) as usize] as f64 / 1000.0
}

type Attack = fn(Arc<AtomicBool>, Arc<AtomicU64>);

/// 10,000 connections that send a request head a byte at a time, one byte per connection
/// per second; closed ones are opened again.
fn slowloris(stop: Arc<AtomicBool>, ops: Arc<AtomicU64>) {
    let head = b"GET / HTTP/1.1\r\nHost: slow\r\nX-A: ";
    let mut conns: Vec<(Option<TcpStream>, usize)> = (0..10_000).map(|_| (None, 0)).collect();
    while !stop.load(Ordering::Relaxed) {
        let round = Instant::now();
        for (c, sent) in conns.iter_mut() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if c.is_none() {
                *c = TcpStream::connect(ADDR).ok();
                *sent = 0;
                if let Some(s) = c {
                    s.set_nonblocking(true).ok();
                }
            }
            if let Some(s) = c {
                let byte = head.get(*sent).copied().unwrap_or(b'a');
                match s.write(&[byte]) {
                    Ok(_) => *sent += 1,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => *c = None,
                }
                ops.fetch_add(1, Ordering::Relaxed);
            }
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(round.elapsed()));
    }
}

/// 10,000 connections a second, each closed at once.
fn churn(stop: Arc<AtomicBool>, ops: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        for _ in 0..100 {
            if let Ok(s) = TcpStream::connect(ADDR) {
                drop(s);
                ops.fetch_add(1, Ordering::Relaxed);
            }
        }
        // 100 per 10 ms.
        std::thread::sleep(Duration::from_millis(10).saturating_sub(t.elapsed()));
    }
}

/// 64 connections writing pipelined requests as fast as the server takes them, never reading.
fn pipelining(stop: Arc<AtomicBool>, ops: Arc<AtomicU64>) {
    let batch = b"GET /1k.bin HTTP/1.1\r\nHost: flood\r\n\r\n".repeat(256);
    let mut conns: Vec<TcpStream> = (0..64)
        .filter_map(|_| TcpStream::connect(ADDR).ok())
        .inspect(|s| {
            s.set_nonblocking(true).ok();
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        let mut progress = false;
        for s in conns.iter_mut() {
            if let Ok(n) = s.write(&batch) {
                progress |= n > 0;
                ops.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        if !progress {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Chunked request bodies whose chunk-size lines carry 1 MiB of extensions.
fn chunk_extensions(stop: Arc<AtomicBool>, ops: Arc<AtomicU64>) {
    let ext = format!("5;{}\r\nhello\r\n0\r\n\r\n", "e=x;".repeat(256 * 1024));
    let head = "POST /upload HTTP/1.1\r\nHost: ext\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(ADDR) else {
            continue;
        };
        s.set_read_timeout(Some(Duration::from_secs(2))).ok();
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(ext.as_bytes());
        let _ = s.read(&mut buf);
        ops.fetch_add(1, Ordering::Relaxed);
    }
}

/// Requests with as many header fields as the server allows (63 besides Host).
fn many_headers(stop: Arc<AtomicBool>, ops: Arc<AtomicU64>) {
    let mut req = String::from("GET /1k.bin HTTP/1.1\r\nHost: many\r\n");
    for i in 0..63 {
        req.push_str(&format!("X-Field-{i}: {}\r\n", "v".repeat(100)));
    }
    req.push_str("\r\n");
    let mut buf = vec![0u8; 8192];
    let mut c: Option<TcpStream> = None;
    while !stop.load(Ordering::Relaxed) {
        let s = match c.as_mut() {
            Some(s) => s,
            None => match TcpStream::connect(ADDR) {
                Ok(s) => c.insert(s),
                Err(_) => continue,
            },
        };
        if s.write_all(req.as_bytes()).is_err() || matches!(s.read(&mut buf), Ok(0) | Err(_)) {
            c = None;
            continue;
        }
        ops.fetch_add(1, Ordering::Relaxed);
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut seconds = 10u64;
    let mut bin: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => seconds = args.next().context("--seconds N")?.parse()?,
            "--slabfront" => bin = Some(args.next().context("--slabfront PATH")?.into()),
            other => bail!("unknown argument {other}"),
        }
    }
    let bin = match bin {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("slabfront"),
    };
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let work = tempfile::tempdir()?;
    let site = work.path().join("site");
    std::fs::create_dir_all(&site)?;
    std::fs::write(site.join("1k.bin"), vec![b'k'; 1024])?;
    let cfg = work.path().join("slabfront.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{PORT}\"]\nworkers = 1\nmax_connections = 30000\nmax_body_bytes = \"1MiB\"\n\n[[origins]]\nid = \"files\"\npath = {site:?}\n\n[default_cache_behavior]\ntarget_origin = \"files\"\n"
        ),
    )?;
    let child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(&bin)
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let server = Server(child);
    let pid = server.0.id();
    let t = Instant::now();
    while TcpStream::connect(ADDR).is_err() {
        if t.elapsed() > Duration::from_secs(10) {
            bail!("slabfront did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    pin_load();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!("CPU: {cpu}; slabfront pinned to core 0, clients on core 1; {seconds} s per row\n");
    println!("| load | canary p50 ms | canary p99 ms | p99 - quiet p99 ms | canary failures | attack ops | server RSS peak MiB | within +10 ms |");
    println!("|---|---|---|---|---|---|---|---|");
    let attacks: [(&str, Option<Attack>); 6] = [
        ("quiet (baseline)", None),
        ("10,000 slowloris connections", Some(slowloris)),
        ("10,000 connections opened and dropped per second", Some(churn)),
        ("pipelining flood, 64 connections never reading", Some(pipelining)),
        ("1 MiB chunk extensions", Some(chunk_extensions)),
        ("64 header fields per request", Some(many_headers)),
    ];
    let mut quiet_p99 = None;
    for (name, attack) in attacks {
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        let attacker = attack.map(|a| {
            let (stop, ops) = (stop.clone(), ops.clone());
            std::thread::spawn(move || {
                pin_load();
                a(stop, ops)
            })
        });
        // Let the attack build up before the canary starts counting.
        if attacker.is_some() {
            std::thread::sleep(Duration::from_secs(2));
        }
        let canary_stop = Arc::new(AtomicBool::new(false));
        let c = canary(canary_stop.clone());
        let mut peak = 0;
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(seconds) {
            peak = peak.max(rss_kib(pid));
            std::thread::sleep(Duration::from_millis(100));
        }
        canary_stop.store(true, Ordering::Relaxed);
        let (mut lat, failures) = c.join().map_err(|_| anyhow::anyhow!("canary panicked"))?;
        stop.store(true, Ordering::Relaxed);
        if let Some(a) = attacker {
            a.join().map_err(|_| anyhow::anyhow!("attacker panicked"))?;
        }
        let p50 = pct(&mut lat, 0.5);
        let p99 = pct(&mut lat, 0.99);
        let base = *quiet_p99.get_or_insert(p99);
        let alive = TcpStream::connect(ADDR).is_ok();
        println!(
            "| {name} | {p50:.2} | {p99:.2} | {:+.2} | {failures} | {} | {:.1} | {} |",
            p99 - base,
            ops.load(Ordering::Relaxed),
            peak as f64 / 1024.0,
            if p99 <= base + 10.0 && failures == 0 && alive {
                "yes"
            } else {
                "no"
            }
        );
        if !alive {
            bail!("slabfront stopped answering after: {name}");
        }
        // Let closed connections drain before the next row.
        std::thread::sleep(Duration::from_secs(2));
    }
    Ok(())
}
