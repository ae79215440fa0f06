//! The soak (not for CI): `--soak` runs slabfront (one worker, core 0) in front of the nginx
//! origin for `--soak-minutes` (30 by default) under a steady mixed load from wrk (core 1),
//! sampling the server's memory every 10 s, and reports start, end and peak RSS and the growth
//! after warm-up (the first `--soak-warmup-minutes`, 5 by default).
//!
//! The load, one wrk Lua script at a fixed pace (16 connections, each waiting 5 ms between a
//! response and its next request, so at most ~3,200 requests/s and the cores are not saturated):
//! - 80% hits on 1 KiB objects, keys drawn with density ∝ 1/k over 100,000 keys (each key's
//!   first request is a miss);
//! - 18.9% misses: 1 KiB, a URL never seen before;
//! - 1% the 1.3 MB page under 20 URLs (hits after the first);
//! - 0.1% misses of the 1.3 MB page under URLs never seen before.
//!
//! The slab is 1 GiB, which the misses fill in about the warm-up at this pace (~3.3 MB/s from
//! the origin); the rest of the soak runs with eviction.
//! Both RSS and RssAnon are reported: RSS includes the slab's file pages mapped in (up to
//! 1 GiB, and as many as the page cache keeps), so the growth that matters is RssAnon's. The
//! slab's object count (`slabfront_slab_objects` from the admin listener) is sampled with it:
//! the index, on the heap, grows with the objects (in steps, as its hash tables double), so
//! RssAnon growth that follows the count is the index, and growth without it is not.

use crate::{make_site, start_nginx_with, start_slabfront_with, wrk_with, Args, ServerProc};
use anyhow::Result;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SOAK_PORT: u16 = 18190;
/// slabfront's admin listener, whose `/metrics` give the slab's object count.
const ADMIN_PORT: u16 = 18191;
/// The soak's own origin (not the proxy benchmark's port, so that both can run at once).
const ORIGIN_PORT: u16 = 18192;
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

const SCRIPT: &str = r#"counter = 0
request = function()
  counter = counter + 1
  local r = math.random()
  local path
  if r < 0.80 then
    path = "/1k.bin?hot=" .. math.floor(math.exp(math.random() * math.log(100000)))
  elseif r < 0.989 then
    path = "/1k.bin?miss=" .. counter .. "-" .. math.random(1000000000)
  elseif r < 0.999 then
    path = "/simple.html?big=" .. math.random(20)
  else
    path = "/simple.html?bigmiss=" .. counter .. "-" .. math.random(1000000000)
  end
  return wrk.format("GET", path)
end
delay = function()
  return 5
end
"#;

/// One sample: seconds since the load started, RSS and RssAnon in KiB, objects in the slab.
#[derive(Clone, Copy)]
struct Point {
    secs: f64,
    rss: u64,
    anon: u64,
    objects: u64,
}

/// The origin: nginx serving the files with an hour of freshness, logging every request.
fn start_origin(root: &Path, work: &Path) -> Result<ServerProc> {
    let body = format!(
        r#"    access_log {{p}}/logs/access.log;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 100000000;
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

/// `slabfront_slab_objects` from the admin listener's `/metrics` (0 if it cannot be read).
fn slab_objects() -> u64 {
    let read = || -> std::io::Result<String> {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", ADMIN_PORT))?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")?;
        let mut text = String::new();
        c.read_to_string(&mut text)?;
        Ok(text)
    };
    read()
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("slabfront_slab_objects "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn start_server(bin: &Path, work: &Path) -> Result<ServerProc> {
    let config = crate::proxy::proxy_config(
        SOAK_PORT,
        &crate::proxy::plain_origin(),
        "query_strings = \"all\"",
        &format!("[admin]\nlisten = \"127.0.0.1:{ADMIN_PORT}\""),
        &work.join("soak-slab"),
        "1GiB",
    );
    start_slabfront_with(bin, work, "slabfront-soak", &config, SOAK_PORT)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn run(args: &Args, bin: &Path) -> Result<()> {
    let minutes = args.soak_minutes;
    let warmup = args.soak_warmup_minutes;
    anyhow::ensure!(warmup < minutes, "the warm-up must be shorter than the soak");
    let work = tempfile::tempdir()?;
    let root = make_site(work.path())?;
    let _origin = start_origin(&root, work.path())?;
    let server = start_server(bin, work.path())?;
    let script = work.path().join("soak.lua");
    std::fs::write(&script, SCRIPT)?;
    eprintln!(
        "soak: {minutes} min of mixed load, warm-up {warmup} min; {}; slabfront on core 0, load and origin on core 1",
        crate::procstat::cpu_model()
    );
    let points = Mutex::new(Vec::<Point>::new());
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    let sample = std::thread::scope(|s| {
        s.spawn(|| {
            let mut next = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                if t0.elapsed() >= next {
                    let p = Point {
                        secs: t0.elapsed().as_secs_f64(),
                        rss: server.rss_kib(),
                        anon: server.rss_anon_kib(),
                        objects: slab_objects(),
                    };
                    eprintln!(
                        "soak t={:>5.0}s RSS {:>8.1} MiB RssAnon {:>7.1} MiB objects {}",
                        p.secs,
                        mib(p.rss),
                        mib(p.anon),
                        p.objects
                    );
                    points.lock().expect("samples").push(p);
                    next += SAMPLE_EVERY;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let r = wrk_with(&server, "/", 16, minutes * 60, Some(&script));
        stop.store(true, Ordering::Relaxed);
        r
    })?;
    let points = points.into_inner().expect("samples");
    let last = *points.last().expect("at least one sample");
    let after: Vec<Point> = points
        .iter()
        .copied()
        .filter(|p| p.secs >= (warmup * 60) as f64)
        .collect();
    anyhow::ensure!(!after.is_empty(), "no sample after the warm-up");
    let first = points[0];
    let base = after[0];
    let peak = |f: fn(&Point) -> u64, v: &[Point]| v.iter().map(f).max().unwrap_or(0);
    let growth = |a: u64, b: u64| 100.0 * (b as f64 - a as f64) / a as f64;
    println!();
    println!(
        "Soak: {minutes} min of mixed load against slabfront (1 worker, core 0; 1 GiB slab), {}. Warm-up: the first {warmup} min; growth is end against the first sample after it. {} requests, {:.0} req/s, {} errors, server CPU {:.0}% of a core.",
        crate::procstat::cpu_model(),
        sample.requests,
        sample.req_s,
        sample.errors,
        100.0 * sample.cpu / (minutes * 60) as f64
    );
    println!();
    println!("| memory | at start (t=0) | after warm-up (t={}s) | end (t={:.0}s) | peak after warm-up | peak overall | growth after warm-up |", base.secs.round(), last.secs);
    println!("|---|---|---|---|---|---|---|");
    for (label, f) in [
        (
            "RSS (incl. mapped slab pages)",
            (|p: &Point| p.rss) as fn(&Point) -> u64,
        ),
        ("RssAnon (heap, stacks)", |p: &Point| p.anon),
    ] {
        println!(
            "| {label} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:+.2}% |",
            mib(f(&first)),
            mib(f(&base)),
            mib(f(&last)),
            mib(peak(f, &after)),
            mib(peak(f, &points)),
            growth(f(&base), f(&last))
        );
    }
    let objects = |p: &Point| p.objects;
    println!(
        "| objects in the slab (the index grows with them) | {} | {} | {} | {} | {} | {:+.2}% |",
        first.objects,
        base.objects,
        last.objects,
        peak(objects, &after),
        peak(objects, &points),
        growth(base.objects.max(1), last.objects)
    );
    println!();
    println!("| minute | RSS MiB | RssAnon MiB | objects |");
    println!("|---|---|---|---|");
    for p in points.iter().filter(|p| (p.secs as u64) % 60 < 10) {
        println!(
            "| {:.0} | {:.1} | {:.1} | {} |",
            p.secs / 60.0,
            mib(p.rss),
            mib(p.anon),
            p.objects
        );
    }
    Ok(())
}
