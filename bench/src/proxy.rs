//! The caching-proxy benchmark: slabfront, nginx `proxy_cache` and Varnish (malloc storage),
//! each pinned to core 0, in front of one nginx origin; load (and the origin) on core 1.
//! Hits for 1 KiB and the 1.3 MB page, misses (a unique URL per request), and collapsing
//! (1,000 concurrent requests for one cold object, origin fetches counted).

use crate::{
    cheap, make_site, print_rows, run_cell, start_nginx_with, start_slabfront_with, wait_port, wrk, wrk_with,
    Args, Cell, Sample, ServerProc, LARGE, LARGE_SIZE, SMALL,
};
use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// One measurement of one server.
type Measure<'a> = dyn Fn(&ServerProc) -> Result<Sample> + 'a;

pub(crate) const ORIGIN_PORT: u16 = 18090;
const SF_PORT: u16 = 18082;
const NGINX_PORT: u16 = 18083;
const VARNISH_PORT: u16 = 18084;

/// The origin: nginx serving the files with an hour of freshness, logging every request.
pub(crate) fn start_origin(root: &Path, work: &Path) -> Result<ServerProc> {
    let body = format!(
        r#"    access_log {{p}}/logs/access.log;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    open_file_cache max=1000 inactive=60s;
    types {{ text/html html; application/octet-stream bin; }}
    server {{
        listen 127.0.0.1:{ORIGIN_PORT} reuseport backlog=4096;
        root {root};
        add_header Cache-Control "max-age=3600";
    }}"#,
        root = root.display()
    );
    start_nginx_with(work, "origin", "1", "origin", &body, ORIGIN_PORT)
}

fn origin_requests(work: &Path) -> usize {
    std::fs::read_to_string(work.join("origin/logs/access.log")).map_or(0, |t| t.lines().count())
}

fn start_slabfront(bin: &Path, work: &Path) -> Result<ServerProc> {
    start_slabfront_at(bin, work, "slabfront-proxy", SF_PORT, &work.join("slab"))
}

pub(crate) fn start_slabfront_at(
    bin: &Path,
    work: &Path,
    name: &str,
    port: u16,
    slab: &Path,
) -> Result<ServerProc> {
    let config = proxy_config(port, &plain_origin(), "query_strings = \"all\"", "", slab, "4GiB");
    start_slabfront_with(bin, work, name, &config, port)
}

/// The benchmark origin (nginx on `ORIGIN_PORT`) as a plain HTTP origin's lines.
pub(crate) fn plain_origin() -> String {
    format!("domain_name = \"127.0.0.1\"\nhttp_port = {ORIGIN_PORT}\nprotocol = \"http-only\"")
}

/// One worker on `port` caching in front of one origin: `origin` is that origin's lines
/// (where it is and how to reach it), `behavior` more lines of the default behavior, `extra`
/// more sections (e.g. `[admin]`); the slab at `slab`, `size` large.
pub(crate) fn proxy_config(
    port: u16,
    origin: &str,
    behavior: &str,
    extra: &str,
    slab: &Path,
    size: &str,
) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:{port}"]
workers = 1
max_connections = 19000

[[origins]]
id = "origin"
{origin}
keepalive = 256

[default_cache_behavior]
target_origin = "origin"
{behavior}

[cache]
path = "{slab}"
size = "{size}"
{extra}
"#,
        slab = slab.display()
    )
}

pub(crate) fn start_nginx_cache(work: &Path) -> Result<ServerProc> {
    let body = format!(
        r#"    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    proxy_cache_path {{p}}/cache levels=1:2 keys_zone=edge:64m max_size=4g inactive=1h use_temp_path=off;
    upstream origin {{ server 127.0.0.1:{ORIGIN_PORT}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{NGINX_PORT} reuseport backlog=4096;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache edge;
            proxy_cache_lock on;
        }}
    }}"#
    );
    start_nginx_with(work, "nginx-cache", "0", "nginx proxy_cache", &body, NGINX_PORT)
}

pub(crate) fn start_varnish(work: &Path) -> Result<ServerProc> {
    let d = work.join("varnish");
    std::fs::create_dir_all(&d)?;
    let vcl = d.join("default.vcl");
    std::fs::write(
        &vcl,
        format!("vcl 4.1;\nbackend default {{ .host = \"127.0.0.1\"; .port = \"{ORIGIN_PORT}\"; }}\n"),
    )?;
    let child = Command::new("taskset")
        .args(["-c", "0", "varnishd", "-F", "-n"])
        .arg(d.join("work"))
        .args(["-a", &format!("127.0.0.1:{VARNISH_PORT}"), "-T", "none", "-f"])
        .arg(&vcl)
        .args(["-s", "malloc,4G"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("varnishd.log"))?)
        .spawn()
        .context("starting varnishd (install it with scripts/bench-deps.sh)")?;
    wait_port(VARNISH_PORT)?;
    Ok(ServerProc {
        name: "Varnish",
        child,
        port: VARNISH_PORT,
    })
}

/// A connection that has sent one GET (closing after the response), with a read timeout.
fn request(port: u16, path: &str, timeout: Duration) -> Result<TcpStream> {
    let mut c = TcpStream::connect(("127.0.0.1", port))?;
    c.set_read_timeout(Some(timeout))?;
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").as_bytes())?;
    Ok(c)
}

/// One GET, whole response read; returns the body length.
pub(crate) fn fetch(port: u16, path: &str) -> Result<usize> {
    let mut c = request(port, path, Duration::from_secs(30))?;
    let mut all = Vec::new();
    c.read_to_end(&mut all)?;
    let head = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(all.len(), |p| p + 4);
    Ok(all.len() - head)
}

/// 1,000 concurrent requests for one cold object: how many reach the origin.
fn collapsing(server: &ServerProc, work: &Path, path: &str) -> Result<(usize, usize)> {
    let before = origin_requests(work);
    let n = 1000;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let port = server.port;
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (b, path) = (barrier.clone(), path.to_string());
            std::thread::spawn(move || {
                b.wait();
                fetch(port, &path).unwrap_or(0)
            })
        })
        .collect();
    let complete = threads
        .into_iter()
        .map(|t| t.join().unwrap_or(0))
        .filter(|&len| len == LARGE_SIZE)
        .count();
    // nginx writes its access log line after the response.
    std::thread::sleep(Duration::from_millis(300));
    Ok((origin_requests(work) - before, complete))
}

/// A 1 GiB object fetched through the proxy for the first time (a miss: streamed from the
/// origin to the viewer while stored), read by a client that discards it, with the server's
/// resident anonymous memory (heap and stacks; not the mapped slab file) sampled every 10 ms.
/// Returns (bytes received, seconds, peak growth of anonymous memory in KiB).
fn pass_through(server: &ServerProc, path: &str) -> Result<(u64, f64, u64)> {
    let before = server.rss_anon_kib();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let peak = std::sync::atomic::AtomicU64::new(before);
    let t0 = std::time::Instant::now();
    let got = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(server.rss_anon_kib(), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let r = (|| -> Result<u64> {
            let mut c = request(server.port, path, Duration::from_secs(60))?;
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0u64;
            loop {
                match c.read(&mut buf)? {
                    0 => return Ok(total),
                    n => total += n as u64,
                }
            }
        })();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        r
    })?;
    let secs = t0.elapsed().as_secs_f64();
    let grown = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(before);
    Ok((got, secs, grown))
}

/// A memory cgroup limited to `limit` bytes (v2, else v1), removed when dropped.
struct MemoryCgroup {
    dir: std::path::PathBuf,
    limit_file: &'static str,
}

impl MemoryCgroup {
    fn new(limit: u64) -> Result<MemoryCgroup> {
        let name = format!("slabfront-bench-{}", std::process::id());
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers");
        let (dir, file) = if v2.exists() {
            (Path::new("/sys/fs/cgroup").join(&name), "memory.max")
        } else {
            (
                Path::new("/sys/fs/cgroup/memory").join(&name),
                "memory.limit_in_bytes",
            )
        };
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let cg = MemoryCgroup {
            dir,
            limit_file: file,
        };
        cg.limit(Some(limit))?;
        Ok(cg)
    }

    fn limit(&self, bytes: Option<u64>) -> Result<()> {
        let v = match bytes {
            Some(b) => b.to_string(),
            None if self.limit_file == "memory.max" => "max".to_string(),
            None => "-1".to_string(),
        };
        std::fs::write(self.dir.join(self.limit_file), v).context("setting the memory limit")
    }

    fn add(&self, pid: u32) -> Result<()> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).context("moving the server")
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Bytes of `file` in the page cache (`fincore` from util-linux), if it can tell.
fn resident_bytes(file: &Path) -> Option<u64> {
    let out = Command::new("fincore")
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(file)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Hits with a slab larger than the page cache: a second slabfront (one worker, core 0) runs
/// in a memory cgroup of `LIMIT` bytes, so that the page cache it may hold is smaller than the
/// `COLD_OBJECTS` 1.3 MB objects it caches. Four clients read those objects in turn (most are
/// cold hits: read in off the event loop before they are sent) while wrk measures 1 KiB hits
/// on the same worker; the same wrk run without the cold readers is the baseline.
fn cold_slab(bin: &Path, work: &Path, secs: u64) -> Result<()> {
    const COLD_OBJECTS: usize = 300;
    const LIMIT: u64 = 192 << 20;
    let cg = match MemoryCgroup::new(LIMIT) {
        Ok(cg) => cg,
        Err(e) => {
            println!();
            println!("(slab larger than the page cache: skipped, no writable memory cgroup: {e:#})");
            return Ok(());
        }
    };
    let slab = work.join("cold-slab");
    let server = start_slabfront_at(bin, work, "slabfront-cold", SF_PORT + 10, &slab)?;
    cg.add(server.child.id())?;
    // Every object once, whole (stored the first time, read back in after the limit is lifted).
    let read_all = || -> Result<()> {
        for i in 0..COLD_OBJECTS {
            let n = fetch(server.port, &format!("{LARGE}?cold-slab={i}"))?;
            anyhow::ensure!(n == LARGE_SIZE, "cold-slab object {i}: {n} bytes");
        }
        Ok(())
    };
    read_all()?;
    let _ = fetch(server.port, SMALL)?;
    let alone = wrk(&server, SMALL, 64, secs)?;
    // wrk on 1 KiB hits while four clients read the objects in turn.
    let mixed = || -> Result<(Sample, usize, usize)> {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let bad = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut threads = Vec::new();
        for t in 0..4 {
            let (stop, served, bad, port) = (stop.clone(), served.clone(), bad.clone(), server.port);
            threads.push(std::thread::spawn(move || {
                let mut i = t * 75;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match fetch(port, &format!("{LARGE}?cold-slab={}", i % COLD_OBJECTS)) {
                        Ok(n) if n == LARGE_SIZE => served.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                        _ => bad.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    };
                    i += 1;
                }
            }));
        }
        let sample = wrk(&server, SMALL, 64, secs);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        let ord = std::sync::atomic::Ordering::Relaxed;
        Ok((sample?, served.load(ord), bad.load(ord)))
    };
    let cold = mixed()?;
    let resident = resident_bytes(&slab);
    // The same mix with every object in memory: what the cold reads add.
    cg.limit(None)?;
    read_all()?;
    let hot = mixed()?;
    drop(server);
    println!();
    println!(
        "Slab larger than the page cache: {COLD_OBJECTS} x 1.3 MB objects ({} MB) cached by a slabfront limited to a {} MB memory cgroup; slab bytes in the page cache at the end: {}.",
        COLD_OBJECTS * LARGE_SIZE / 1_000_000,
        LIMIT >> 20,
        resident.map_or("unknown".to_string(), |b| format!("{} MB", b / 1_000_000))
    );
    println!();
    println!("| 1 worker, 1 KiB hits (wrk, 64 conns) | req/s | p50 ms | p99 ms | errors | cold 1.3 MB hits served alongside | failed |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| alone | {:.0} | {:.2} | {:.2} | {} | - | - |",
        alone.req_s, alone.p50_ms, alone.p99_ms, alone.errors
    );
    for (label, (m, served, bad)) in [
        (
            "with 4 clients reading the objects in turn, slab colder than the page cache",
            cold,
        ),
        ("the same, every object in the page cache (limit lifted)", hot),
    ] {
        println!(
            "| {label} | {:.0} | {:.2} | {:.2} | {} | {served} | {bad} |",
            m.req_s, m.p50_ms, m.p99_ms, m.errors
        );
    }
    Ok(())
}

pub fn run(args: &Args, bin: &Path) -> Result<()> {
    let work = tempfile::tempdir()?;
    let root = make_site(work.path())?;
    let _origin = start_origin(&root, work.path())?;
    let servers = [
        start_slabfront(bin, work.path())?,
        start_nginx_cache(work.path())?,
        start_varnish(work.path())?,
    ];
    let secs = args.duration;
    eprintln!(
        "machine: {} cores, {}; {} runs x {secs}s per cell; proxies on core 0, load and origin on core 1",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        crate::procstat::cpu_model(),
        args.runs
    );
    // Warm every cache.
    for s in &servers {
        for p in [SMALL, LARGE] {
            fetch(s.port, p)?;
            fetch(s.port, p)?;
        }
    }
    let script = work.path().join("unique.lua");
    std::fs::write(
        &script,
        "counter = 0\nrequest = function()\n  counter = counter + 1\n  return wrk.format(\"GET\", \"/1k.bin?miss=\" .. counter .. \"-\" .. math.random(1000000000))\nend\n",
    )?;
    let run_cell = |f: &dyn Fn(&ServerProc) -> Result<Sample>| run_cell(&servers, args.runs, f);
    let mut rows: Vec<(String, Cell)> = Vec::new();
    let cells: [(&str, &Measure); 3] = [
        ("hit 1 KiB, 64 conns (wrk)", &|s| wrk(s, SMALL, 64, secs)),
        ("hit 1.3 MB, 16 conns (MSG_TRUNC client)", &|s| {
            cheap::run(s.port, LARGE, 16, secs, || s.cpu_ticks())
        }),
        ("miss 1 KiB, unique URLs, 64 conns (wrk)", &|s| {
            wrk_with(s, SMALL, 64, secs, Some(&script))
        }),
    ];
    for (label, f) in cells {
        if args.wants(label) {
            eprintln!("running {label}");
            rows.push((label.to_string(), run_cell(f)?));
        }
    }
    let names: Vec<&str> = servers.iter().map(|s| s.name).collect();
    print_rows(&rows, &names, secs);
    if args.wants(MANY_KEYS) {
        eprintln!("running {MANY_KEYS}");
        many_keys(args, &servers[0], work.path())?;
    }
    if args.only.is_some() {
        if args.wants("1 GiB") {
            pass_through_table(&servers, &root)?;
        }
        if args.wants("cold slab") {
            cold_slab(bin, work.path(), secs)?;
        }
        return Ok(());
    }

    println!();
    println!("| collapsing: 1,000 concurrent requests for one cold 1.3 MB object | origin fetches | complete responses |");
    println!("|---|---|---|");
    for (i, s) in servers.iter().enumerate() {
        let (fetches, complete) = collapsing(s, work.path(), &format!("/simple.html?cold={i}"))?;
        println!("| {} | {fetches} | {complete} of 1000 |", s.name);
    }
    pass_through_table(&servers, &root)?;
    cold_slab(bin, work.path(), secs)
}

/// The 1 GiB pass-through, each server in turn (a sparse file at the origin).
fn pass_through_table(servers: &[ServerProc], root: &Path) -> Result<()> {
    const SIZE: u64 = 1 << 30;
    let big = root.join("1g.bin");
    std::fs::File::create(&big)?.set_len(SIZE)?;
    println!();
    println!("| a 1 GiB object through the proxy, first request (miss) | bytes received | seconds | peak growth of the proxy's anonymous memory |");
    println!("|---|---|---|---|");
    for (i, s) in servers.iter().enumerate() {
        let (got, secs, grown) = pass_through(s, &format!("/1g.bin?pass={i}"))?;
        anyhow::ensure!(got >= SIZE, "{}: {got} bytes of {SIZE}", s.name);
        println!(
            "| {} | {got} | {secs:.2} | {:.1} MB |",
            s.name,
            grown as f64 / 1024.0
        );
    }
    let _ = std::fs::remove_file(&big);
    Ok(())
}

const MANY_KEYS: &str = "hit 1 KiB, 1,000,000 keys, Zipf";
/// Distinct keys in the many-keys test.
const KEYS: u64 = 1_000_000;

/// wrk (core 1, 64 connections) with `script` until the origin has served `fetches` more
/// requests (its access log counted every 2 s; at most 20 minutes), then stopped with SIGINT, on which wrk
/// prints its summary; returns (requests, non-2xx responses and socket errors, seconds).
fn wrk_fill(port: u16, script: &Path, work: &Path, fetches: usize) -> Result<(u64, u64, f64)> {
    let t = std::time::Instant::now();
    let before = origin_requests(work);
    // taskset execs wrk: the child's PID is wrk's.
    let child = Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1", "-c64", "-d1200s", "-s"])
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("running wrk")?;
    while origin_requests(work) - before < fetches && t.elapsed() < Duration::from_secs(1200) {
        std::thread::sleep(Duration::from_secs(2));
    }
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status();
    let out = child.wait_with_output()?;
    let secs = t.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut requests, mut errors) = (0, 0);
    for line in text.lines() {
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            [n, "requests", "in", ..] => requests = n.parse().unwrap_or(0),
            ["Non-2xx", "or", "3xx", "responses:", n] => errors += n.parse::<u64>().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                for w in rest {
                    errors += w.trim_end_matches(',').parse::<u64>().unwrap_or(0);
                }
            }
            _ => {}
        }
    }
    Ok((requests, errors, secs))
}

/// Hits with many keys: slabfront is filled with `KEYS` distinct 1 KiB objects
/// (`/1k.bin?k=1` .. `?k=1000000`, the query string is part of the cache key), then measured
/// with keys drawn from a Zipf-like distribution (density ∝ 1/k over 1..1,000,000), against
/// one object (`?k=1`) requested by the same script, the two alternating `--runs` times.
/// Origin fetches during the measured runs are counted: each one is a miss (a key not filled,
/// or evicted), so the Zipf runs are hits only if that count stays near zero.
fn many_keys(args: &Args, server: &ServerProc, work: &Path) -> Result<()> {
    let fill = work.join("fill.lua");
    // Requests 1..=KEYS are the keys in order, then keys already asked for (hits) until the
    // origin has served them all.
    std::fs::write(
        &fill,
        format!(
            "counter = 0\nrequest = function()\n  counter = counter + 1\n  local k = counter\n  if k > {KEYS} then k = math.random({KEYS}) end\n  return wrk.format(\"GET\", \"/1k.bin?k=\" .. k)\nend\n"
        ),
    )?;
    let before = origin_requests(work);
    let (filled, fill_errors, fill_secs) = wrk_fill(server.port, &fill, work, KEYS as usize)?;
    let fetched = origin_requests(work) - before;
    eprintln!(
        "filled: {filled} requests in {fill_secs:.0} s, {fetched} origin fetches, {fill_errors} errors"
    );
    anyhow::ensure!(fill_errors == 0, "{fill_errors} errors while filling");
    anyhow::ensure!(
        fetched as u64 >= KEYS - 64,
        "only {fetched} origin fetches for {KEYS} keys"
    );
    // The same script shape for both: the same Lua work per request on the client.
    let script = |name: &str, pick: &str| -> Result<std::path::PathBuf> {
        let p = work.join(name);
        std::fs::write(
            &p,
            format!(
                "request = function()\n  local k = math.floor(math.exp(math.random() * math.log({KEYS})))\n  {pick}\n  return wrk.format(\"GET\", \"/1k.bin?k=\" .. k)\nend\n"
            ),
        )?;
        Ok(p)
    };
    let one = script("one-key.lua", "k = 1")?;
    let zipf = script("zipf.lua", "")?;
    let secs = args.duration;
    let (mut single, mut many, mut misses) = (Vec::new(), Vec::new(), 0);
    for _ in 0..args.runs {
        single.push(wrk_with(server, SMALL, 64, secs, Some(&one))?);
        let before = origin_requests(work);
        many.push(wrk_with(server, SMALL, 64, secs, Some(&zipf))?);
        misses += origin_requests(work) - before;
    }
    let (single, many) = (crate::median_sample(&single), crate::median_sample(&many));
    println!();
    println!(
        "Many keys ({}): {KEYS} distinct 1 KiB objects filled first ({filled} requests in {fill_secs:.0} s, {fetched} origin fetches); medians of {} runs x {secs} s, alternating.",
        crate::procstat::cpu_model(),
        args.runs
    );
    println!();
    println!("| slabfront, 1 KiB hits, 64 conns (wrk + Lua) | req/s | p50 ms | p99 ms | server CPU % | req per CPU-s | errors | origin fetches (misses) | vs one object, per CPU-s |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (label, m, fetches, ratio) in [
        ("one object (?k=1)", &single, "-".to_string(), String::new()),
        (
            "1,000,000 keys, Zipf-like (density ∝ 1/k)",
            &many,
            misses.to_string(),
            format!("**{:.3}**", many.per_cpu() / single.per_cpu()),
        ),
    ] {
        println!(
            "| {label} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} | {} | {fetches} | {ratio} |",
            m.req_s,
            m.p50_ms,
            m.p99_ms,
            100.0 * m.cpu / secs as f64,
            m.per_cpu(),
            m.errors,
        );
    }
    Ok(())
}
